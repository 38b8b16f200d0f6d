package toolkit.deploy;

import java.util.Arrays;

/**
 * An int64 tensor to feed a graph input by name (see {@link Predictor#run}): row-major values and a shape.
 *
 * @param data  the values, row-major
 * @param shape the dimensions; their product must equal {@code data.length}
 */
public record LongTensor(long[] data, long[] shape) {
  public LongTensor {
    long count = 1;
    for (long d : shape) {
      if (d < 0) throw new ModelException("tensor shape " + Arrays.toString(shape) + " has a negative dimension");
      count *= d;
    }
    if (count != data.length)
      throw new ModelException("tensor data holds " + data.length + " values for shape " + Arrays.toString(shape));
  }

  /** A batch of one sequence: shape {1, values.length}. */
  public static LongTensor row(long... values) {
    return new LongTensor(values, new long[] {1, values.length});
  }

  /** A one-dimensional tensor: shape {values.length}. */
  public static LongTensor vector(long... values) {
    return new LongTensor(values, new long[] {values.length});
  }
}
