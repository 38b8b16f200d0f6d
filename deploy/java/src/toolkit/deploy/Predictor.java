package toolkit.deploy;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model written by {@code toolkit export} ({@code PREFIX.onnx} + {@code PREFIX.json}),
 * run by OpenVINO through a small JNI library.
 *
 * <pre>
 *   try (Predictor p = Predictor.load("build/resnet18")) {
 *     float[] logits = p.predict(data, new long[] {1, 3, 224, 224});
 *   }
 * </pre>
 *
 * <p>{@link #predict} feeds a graph with one float32 input; {@link #run} feeds int64 inputs by name
 * (token ids: see {@link TextClassifier} and {@link Translator} for the text tasks).
 *
 * <p>Calls on one instance are serialized (its methods are synchronized); use one
 * Predictor per thread for parallel work.
 */
public final class Predictor implements AutoCloseable {
  private static final String FORMAT = "toolkit-export/1";
  private static boolean loaded;

  private final Map<String, Object> meta;
  private final Path folder;  // of PREFIX.json: files the metadata names are relative to it
  private final List<String> inputNames, outputNames;
  private final long[][] inputShapes;  // from the metadata; -1 = dynamic axis
  private long handle;
  private long[] lastOutputShape = new long[0];

  private static native long nativeLoad(String graphPath, int threads);

  private static native void nativeClose(long handle);

  private static native String[] nativeNames(long handle, boolean inputs);

  private static native long[] nativeShape(long handle, boolean inputs, int index);

  private static native String nativeElementType(long handle, boolean inputs, int index);

  private static native float[] nativeRun(long handle, float[] data, long[] shape, long[] outShape);

  private static native float[] nativeOutput(long handle, int index, long[] outShape);

  private static native float[] nativeRunInt64(long handle, String[] names, long[][] values, long[][] shapes, int output,
                                               long[] outShape);

  private static synchronized void loadLibrary() {
    if (loaded) return;
    String explicit = System.getProperty("toolkit.jni");
    try {
      if (explicit != null) System.load(new File(explicit).getAbsolutePath());
      else System.loadLibrary("toolkit_jni");
    } catch (UnsatisfiedLinkError err) {
      throw new ModelException("cannot load the JNI library libtoolkit_jni.so (run deploy/java/build.sh and pass "
          + "-Djava.library.path=deploy/java/build): " + err.getMessage(), err);
    }
    loaded = true;
  }

  private Predictor(Map<String, Object> meta, Path folder, List<String> inputNames, List<String> outputNames,
                    long[][] inputShapes, long handle) {
    this.meta = meta;
    this.folder = folder;
    this.inputNames = List.copyOf(inputNames);
    this.outputNames = List.copyOf(outputNames);
    this.inputShapes = inputShapes;
    this.handle = handle;
  }

  /** Loads PREFIX.onnx with all OpenVINO threads. */
  public static Predictor load(String prefix) {
    return load(prefix, 0);
  }

  /**
   * Reads and checks PREFIX.json (format and the keys every export has) without loading the graph.
   *
   * @throws ModelException if the file is missing, not JSON or not an export's metadata
   */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> readMetadata(String prefix) {
    Path json = Paths.get(prefix + ".json");
    if (!Files.isRegularFile(json))
      throw new ModelException("metadata file " + json + " not found (expected next to " + prefix + ".onnx)");
    Object parsed;
    try {
      parsed = Json.parse(new String(Files.readAllBytes(json), StandardCharsets.UTF_8));
    } catch (IOException err) {
      throw new ModelException("cannot read " + json + ": " + err.getMessage(), err);
    } catch (IllegalArgumentException err) {
      throw new ModelException("metadata file " + json + " is not valid JSON: " + err.getMessage(), err);
    }
    if (!(parsed instanceof Map)) throw new ModelException("metadata file " + json + " must hold a JSON object");
    Map<String, Object> meta = (Map<String, Object>) parsed;
    for (String key : new String[] {"format", "inputs", "outputs", "sha256"})
      if (!meta.containsKey(key)) throw new ModelException("metadata file " + json + " lacks " + key);
    if (!FORMAT.equals(meta.get("format")))
      throw new ModelException("metadata file " + json + " has format " + meta.get("format") + "; this runner reads " + FORMAT);
    return meta;
  }

  /**
   * Loads PREFIX.onnx after checking it against PREFIX.json: format, sha256 of the graph,
   * input/output names and input shapes.
   *
   * @param threads OpenVINO inference threads, 0 for its default
   * @throws ModelException naming what is missing, corrupt or inconsistent
   */
  @SuppressWarnings("unchecked")
  public static Predictor load(String prefix, int threads) {
    Map<String, Object> meta = readMetadata(prefix);
    Path json = Paths.get(prefix + ".json");
    List<String> inNames = names(meta.get("inputs"), "inputs");
    List<String> outNames = names(meta.get("outputs"), "outputs");
    long[][] shapes = new long[inNames.size()][];
    for (int i = 0; i < shapes.length; i++) shapes[i] = specShape(((List<Map<String, Object>>) meta.get("inputs")).get(i));

    Object file = meta.get("onnx_file");
    Path graph = json.toAbsolutePath().getParent().resolve(file == null ? json.getFileName().toString()
        .replaceFirst("\\.json$", ".onnx") : onnxFileName(file, json));
    if (!Files.isRegularFile(graph)) throw new ModelException("graph file " + graph + " not found");
    Object sha = meta.get("sha256");
    if (!(sha instanceof String) || !((String) sha).matches("[0-9a-f]{64}"))
      throw new ModelException("metadata file " + json + " has sha256 " + Json.write(sha)
          + "; it must be the graph's 64 hex digits");
    List<String> classes = classNames(meta);
    String digest = sha256(graph);
    String recorded = (String) sha;
    if (!digest.equals(recorded))
      throw new ModelException("graph file " + graph + " is corrupt or was replaced: sha256 " + digest.substring(0, 12)
          + "... but the metadata records " + recorded.substring(0, Math.min(12, recorded.length())) + "...");

    loadLibrary();
    long handle = nativeLoad(graph.toString(), threads);
    Predictor p = new Predictor(meta, json.toAbsolutePath().getParent(), inNames, outNames, shapes, handle);
    try {
      List<String> gIn = Arrays.asList(nativeNames(handle, true));
      List<String> gOut = Arrays.asList(nativeNames(handle, false));
      if (!gIn.equals(inNames)) throw new ModelException("metadata inputs " + inNames + " do not match the graph's inputs " + gIn);
      if (gOut.size() != outNames.size())
        throw new ModelException("metadata lists " + outNames.size() + " outputs; the graph has " + gOut.size());
      if (!gOut.equals(outNames)) throw new ModelException("metadata outputs " + outNames + " do not match the graph's outputs " + gOut);
      List<Map<String, Object>> outSpecs = (List<Map<String, Object>>) meta.get("outputs");
      for (int i = 0; i < shapes.length; i++)
        checkPort(handle, true, i, ((List<Map<String, Object>>) meta.get("inputs")).get(i), shapes[i]);
      for (int i = 0; i < outNames.size(); i++) checkPort(handle, false, i, outSpecs.get(i), specShape(outSpecs.get(i)));
      Object task = meta.get("task");
      if (classes != null && !outNames.isEmpty() && ("classification".equals(task) || "text_classification".equals(task))) {
        long[] g = nativeShape(handle, false, 0);
        if (g != null && g.length == 2 && g[1] >= 0 && g[1] != classes.size())
          throw new ModelException("metadata lists " + classes.size() + " classes but the graph's output '" + outNames.get(0)
              + "' has " + g[1]);
      }
    } catch (RuntimeException err) {
      p.close();
      throw err;
    }
    return p;
  }

  /** The metadata's onnx_file: a plain .onnx file name beside the JSON, nothing OpenVINO would read with another frontend. */
  private static String onnxFileName(Object file, Path json) {
    String name = file instanceof String ? (String) file : "";
    if (name.length() <= 5 || !name.endsWith(".onnx") || name.contains("/") || name.contains("\\") || name.indexOf('\0') >= 0)
      throw new ModelException("metadata file " + json + " has onnx_file " + Json.write(file)
          + "; it must be a plain file name ending in .onnx beside the JSON");
    return name;
  }

  /** The metadata's class names: null when it lists none; a list of strings otherwise. */
  static List<String> classNames(Map<String, Object> meta) {
    Object c = meta.get("classes");
    if (c == null) return null;
    if (!(c instanceof List)) throw new ModelException("metadata classes must be a list of names, got " + Json.write(c));
    List<String> out = new ArrayList<>();
    for (Object name : (List<?>) c) {
      if (!(name instanceof String)) throw new ModelException("metadata classes must be a list of names; it holds " + Json.write(name));
      out.add((String) name);
    }
    return out.isEmpty() ? null : out;
  }

  private static final List<String> DTYPES =
      List.of("float32", "float16", "float64", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool");

  /** The graph port's dtype and shape must be the metadata's: a mismatch is refused, never cast. */
  private static void checkPort(long handle, boolean input, int index, Map<String, Object> spec, long[] want) {
    String what = (input ? "metadata input '" : "metadata outputs do not match the graph's: output '") + spec.get("name") + "'";
    Object dtype = spec.get("dtype") == null ? "float32" : spec.get("dtype");
    if (!(dtype instanceof String) || !DTYPES.contains(dtype))
      throw new ModelException(what + " has dtype " + Json.write(dtype) + ", which this runner does not know");
    String got = nativeElementType(handle, input, index);
    if (!got.isEmpty() && !got.equals(dtype))
      throw new ModelException(what + " has dtype " + dtype + " but the graph's is " + got + " (re-export the model)");
    long[] g = nativeShape(handle, input, index);
    if (g == null) return;
    if (g.length != want.length)
      throw new ModelException(what + " has rank " + want.length + "; the graph's has " + g.length);
    for (int d = 0; d < g.length; d++)
      if (g[d] >= 0 && want[d] >= 0 && g[d] != want[d])
        throw new ModelException(what + " has shape " + shapeText(want) + "; the graph " + (input ? "takes " : "gives ")
            + shapeText(g));
  }

  /** Throws unless logits[offset, offset + n) are all finite (NaN/inf would print a class). */
  static void checkFinite(float[] logits, int offset, int n, String input) {
    for (int i = offset; i < offset + n; i++)
      if (!Float.isFinite(logits[i]))
        throw new ModelException("the model returned non-finite logits (" + (Float.isNaN(logits[i]) ? "NaN" : "inf") + ") for " + input);
  }

  /** Throws unless the metadata's classes are absent or name each of the n outputs. */
  static void checkClassCount(List<?> classes, int n) {
    if (classes != null && classes.size() != n)
      throw new ModelException("metadata lists " + classes.size() + " classes but the model returned " + n + " scores");
  }

  @SuppressWarnings("unchecked")
  private static List<String> names(Object specs, String what) {
    if (!(specs instanceof List)) throw new ModelException("metadata " + what + " must be a list");
    List<String> out = new ArrayList<>();
    for (Object s : (List<Object>) specs) {
      if (!(s instanceof Map) || !(((Map<String, Object>) s).get("name") instanceof String))
        throw new ModelException("metadata " + what + " entries need a 'name'");
      out.add((String) ((Map<String, Object>) s).get("name"));
    }
    return out;
  }

  private static long[] specShape(Map<String, Object> spec) {
    Object shape = spec.get("shape");
    if (!(shape instanceof List)) throw new ModelException("metadata tensor '" + spec.get("name") + "' has no shape");
    List<?> dims = (List<?>) shape;
    long[] out = new long[dims.size()];
    for (int d = 0; d < out.length; d++) out[d] = dims.get(d) instanceof Long ? (Long) dims.get(d) : -1;
    return out;
  }

  static String shapeText(long[] shape) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? ", " : "").append(shape[i] < 0 ? "?" : Long.toString(shape[i]));
    return sb.append(']').toString();
  }

  static String sha256(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 20];
      for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
      StringBuilder hex = new StringBuilder();
      for (byte b : md.digest()) hex.append(String.format("%02x", b & 0xff));
      return hex.toString();
    } catch (IOException | NoSuchAlgorithmException err) {
      throw new ModelException("cannot hash " + file + ": " + err.getMessage(), err);
    }
  }

  /** The parsed PREFIX.json. */
  public Map<String, Object> metadata() {
    return meta;
  }

  /** The folder of PREFIX.json (the metadata names other files relative to it). */
  public Path folder() {
    return folder;
  }

  /** The graph's input names, in order. */
  public List<String> inputNames() {
    return inputNames;
  }

  /** The graph's output names, in order. */
  public List<String> outputNames() {
    return outputNames;
  }

  /** Shape of the output returned by the last {@link #predict} call. */
  public synchronized long[] outputShape() {
    return lastOutputShape.clone();
  }

  /**
   * Runs the graph's single float32 input and returns its first output (row-major).
   *
   * @param data  the input values, row-major
   * @param shape the input shape, e.g. {N, C, H, W}
   * @throws ModelException if the shape does not fit the graph or the data size
   */
  public synchronized float[] predict(float[] data, long[] shape) {
    if (handle == 0) throw new ModelException("predictor is closed");
    if (inputShapes.length != 1) throw new ModelException("predict(float[], long[]) feeds models with one input");
    long[] want = inputShapes[0];
    boolean bad = shape.length != want.length;
    long count = 1;
    for (int d = 0; d < shape.length; d++) {
      if (!bad && want[d] >= 0 && want[d] != shape[d]) bad = true;
      if (shape[d] <= 0) bad = true;
      count *= Math.max(shape[d], 0);
    }
    if (bad) throw new ModelException("input has shape " + shapeText(shape) + "; the graph takes " + shapeText(want));
    if (count != data.length) throw new ModelException("input data holds " + data.length + " values for shape " + shapeText(shape));
    long[] out = new long[17];
    float[] result = nativeRun(handle, data, shape, out);
    lastOutputShape = Arrays.copyOfRange(out, 1, 1 + (int) out[0]);
    return result;
  }

  /** A float32 output of the last run: row-major values and their shape. */
  public static final class Tensor {
    public final float[] data;
    public final long[] shape;

    Tensor(float[] data, long[] shape) {
      this.data = data;
      this.shape = shape;
    }
  }

  /**
   * Output {@code index} of the last {@link #predict} or {@link #run} call (graphs with several outputs,
   * e.g. a detector's ids, scores and boxes).
   *
   * @throws ModelException if there is no such output or it is not float32
   */
  public synchronized Tensor output(int index) {
    if (handle == 0) throw new ModelException("predictor is closed");
    if (index < 0 || index >= outputNames.size())
      throw new ModelException("the graph has " + outputNames.size() + " outputs, not " + (index + 1));
    long[] out = new long[17];
    float[] data = nativeOutput(handle, index, out);
    return new Tensor(data, Arrays.copyOfRange(out, 1, 1 + (int) out[0]));
  }

  /**
   * Runs a graph whose inputs are int64 tensors (token ids, masks, lengths), fed by name, and returns
   * one float32 output (row-major; its shape is then {@link #outputShape}).
   *
   * <pre>
   *   float[] logits = p.run(Map.of("input_ids", LongTensor.row(ids), ...), "logits");
   * </pre>
   *
   * @param inputs every graph input, by name
   * @param output the output to return
   * @throws ModelException if an input is missing or unknown, a rank does not fit the graph, or the output is unknown
   */
  public synchronized float[] run(Map<String, LongTensor> inputs, String output) {
    if (handle == 0) throw new ModelException("predictor is closed");
    int out = outputNames.indexOf(output);
    if (out < 0) throw new ModelException("the graph has no output '" + output + "'; it has " + outputNames);
    for (String name : inputs.keySet())
      if (!inputNames.contains(name)) throw new ModelException("the graph has no input '" + name + "'; it takes " + inputNames);
    String[] names = inputNames.toArray(new String[0]);
    long[][] values = new long[names.length][], shapes = new long[names.length][];
    for (int i = 0; i < names.length; i++) {
      LongTensor t = inputs.get(names[i]);
      if (t == null) throw new ModelException("no value for the graph input '" + names[i] + "'");
      long[] want = inputShapes[i];
      boolean bad = t.shape().length != want.length;
      for (int d = 0; !bad && d < want.length; d++) bad = want[d] >= 0 && want[d] != t.shape()[d];
      if (bad)
        throw new ModelException("input '" + names[i] + "' has shape " + shapeText(t.shape()) + "; the graph takes " + shapeText(want));
      values[i] = t.data();
      shapes[i] = t.shape();
    }
    long[] outShape = new long[17];
    float[] result = nativeRunInt64(handle, names, values, shapes, out, outShape);
    lastOutputShape = Arrays.copyOfRange(outShape, 1, 1 + (int) outShape[0]);
    return result;
  }

  /**
   * Classifies image files like {@code toolkit predict --json}: per image a map
   * {input, topk: [{index, label, prob}...]} best first, optionally with the logits.
   *
   * @param dump if not null, receives the preprocessed tensors (to compare runtimes)
   */
  @SuppressWarnings("unchecked")
  public List<Map<String, Object>> classify(List<String> images, int k, boolean withLogits, java.io.OutputStream dump)
      throws IOException {
    if (!"classification".equals(meta.get("task")))
      throw new ModelException("toolkit predict (Java) does not yet support task '" + meta.get("task") + "' (model '"
          + meta.get("model") + "'); supported tasks: classification");
    long[] want = inputShapes.length == 1 ? inputShapes[0] : new long[0];
    if (want.length != 4) throw new ModelException("an image classifier takes one NCHW input");
    Preprocess pre = Preprocess.fromMetadata(meta);
    List<String> classes = classNames(meta);
    List<Map<String, Object>> results = new ArrayList<>();
    for (String path : images) {
      int[] chw = new int[3];
      float[] data = pre.apply(path, chw);
      for (int d = 1; d < 4; d++)
        if (want[d] >= 0 && want[d] != chw[d - 1])
          throw new ModelException(path + ": preprocessing gives a [" + chw[0] + ", " + chw[1] + ", " + chw[2]
              + "] tensor but the graph takes [" + want[1] + ", " + want[2] + ", " + want[3] + "]");
      if (dump != null) {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(data.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(data);
        dump.write(buf.array());
      }
      float[] logits = predict(data, new long[] {1, chw[0], chw[1], chw[2]});
      long[] shape = outputShape();
      if (shape.length != 2 || shape[0] != 1)
        throw new ModelException("the graph returned shape " + shapeText(shape) + "; a classifier returns (N, classes)");
      int n = (int) shape[1];
      checkClassCount(classes, n);
      checkFinite(logits, 0, n, path);
      List<Object> top = topk(logits, k, classes == null ? null : new ArrayList<>(classes));
      Map<String, Object> item = new LinkedHashMap<>();
      item.put("input", path);
      item.put("topk", top);
      if (withLogits) {
        List<Object> l = new ArrayList<>();
        for (int i = 0; i < n; i++) l.add((double) logits[i]);
        item.put("logits", l);
      }
      results.add(item);
    }
    return results;
  }

  /**
   * The k best classes of a logits row: [{index, label, prob}] best first, probabilities from a float64
   * softmax, ties to the lower index; label = classes[i] when that list has one name per class, else "i".
   */
  static List<Object> topk(float[] logits, int k, List<Object> classes) {
    int n = logits.length;
    double mx = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) mx = Math.max(mx, logits[i]);
    double[] probs = new double[n];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (probs[i] = Math.exp((double) logits[i] - mx));
    for (int i = 0; i < n; i++) probs[i] /= sum;
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) order[i] = i;
    Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));  // stable: ties keep the lower index first
    List<Object> names = classes != null && classes.size() == n ? classes : null;
    List<Object> top = new ArrayList<>();
    for (int r = 0; r < Math.min(k, n); r++) {
      int i = order[r];
      Map<String, Object> t = new LinkedHashMap<>();
      t.put("index", (long) i);
      t.put("label", names != null ? String.valueOf(names.get(i)) : Integer.toString(i));
      t.put("prob", probs[i]);
      top.add(t);
    }
    return top;
  }

  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeClose(handle);
      handle = 0;
    }
  }
}
