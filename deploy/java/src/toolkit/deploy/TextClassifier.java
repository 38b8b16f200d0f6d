package toolkit.deploy;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A sentence classifier exported by {@code toolkit.nlp.deploy.export_text} (task "text_classification",
 * e.g. BERT): WordPiece tokenization, then the graph on {@code input_ids} (and {@code token_type_ids},
 * {@code attention_mask} if it takes them), one line at a time.
 *
 * <pre>
 *   try (TextClassifier c = TextClassifier.load("out/bert")) {
 *     Map&lt;String, Object&gt; r = c.classify("Y dijo Dios: Sea la luz");  // {input, topk: [{index, label, prob}...]}
 *   }
 * </pre>
 */
public final class TextClassifier implements AutoCloseable {
  static final String TASK = "text_classification";
  private static final List<String> INPUTS = List.of("input_ids", "token_type_ids", "attention_mask");

  private final Predictor predictor;  // null: tokenizing only
  private final WordPiece wordPiece;
  private final TokenizerSpec spec;
  private final int clsId, sepId;
  private final List<Object> classes;

  TextClassifier(Map<String, Object> meta, Path folder, Predictor predictor) {
    if (!TASK.equals(meta.get("task"))) throw new ModelException("model task is '" + meta.get("task") + "', not '" + TASK + "'");
    spec = TokenizerSpec.fromMetadata(meta, folder);
    if (!spec.type.equals("wordpiece"))
      throw new ModelException("a text classifier needs a wordpiece tokenizer; the metadata has " + spec.type);
    if (spec.maxLength < 3) throw new ModelException("a text classifier's max_length must be >= 3, got " + spec.maxLength);
    clsId = spec.require(spec.clsId, "cls_id", "text classifier");
    sepId = spec.require(spec.sepId, "sep_id", "text classifier");
    List<String> names = new ArrayList<>();
    for (Object s : (List<?>) meta.get("inputs")) names.add(String.valueOf(((Map<?, ?>) s).get("name")));
    List<String> other = new ArrayList<>(names);
    other.removeAll(INPUTS);
    if (!other.isEmpty())
      throw new ModelException("a " + TASK + " graph takes inputs among " + INPUTS + "; this one also takes " + other);
    if (!names.contains("input_ids")) throw new ModelException("a text classifier takes input_ids; this graph takes " + names);
    wordPiece = WordPiece.fromSpec(spec);
    List<String> c = Predictor.classNames(meta);
    classes = c == null ? null : new ArrayList<>(c);
    this.predictor = predictor;
  }

  /** Loads PREFIX.onnx, PREFIX.json and the vocabulary file it names. */
  public static TextClassifier load(String prefix) {
    return load(prefix, 0);
  }

  /** As {@link #load(String)}, with that many OpenVINO threads (0: its default). */
  public static TextClassifier load(String prefix, int threads) {
    Predictor p = Predictor.load(prefix, threads);
    try {
      return new TextClassifier(p.metadata(), p.folder(), p);
    } catch (RuntimeException err) {
      p.close();
      throw err;
    }
  }

  /** Wraps a loaded predictor (which this classifier then closes). */
  public static TextClassifier of(Predictor p) {
    return new TextClassifier(p.metadata(), p.folder(), p);
  }

  /** A classifier that can only {@link #encode} (no graph loaded): for checking tokenization. */
  static TextClassifier tokenizerOnly(String prefix) {
    return new TextClassifier(Predictor.readMetadata(prefix), Paths.get(prefix + ".json").toAbsolutePath().getParent(), null);
  }

  /** The WordPiece tokenizer. */
  public WordPiece tokenizer() {
    return wordPiece;
  }

  /** The ids fed to the graph: [cls] + word pieces + [sep], pieces cut from the end to fit max_length. */
  public long[] encode(String line) {
    List<Integer> pieces = wordPiece.encode(line);
    int n = Math.min(pieces.size(), spec.maxLength - 2);
    long[] ids = new long[n + 2];
    ids[0] = clsId;
    for (int i = 0; i < n; i++) ids[i + 1] = pieces.get(i);
    ids[n + 1] = sepId;
    return ids;
  }

  /** The logits row (float32) of one line. */
  public float[] logits(String line) {
    if (predictor == null) throw new ModelException("this classifier was opened for tokenizing only");
    long[] ids = encode(line);
    long[] zeros = new long[ids.length], ones = new long[ids.length];
    Arrays.fill(ones, 1L);
    Map<String, LongTensor> feed = new LinkedHashMap<>();
    List<String> names = predictor.inputNames();
    if (names.contains("input_ids")) feed.put("input_ids", LongTensor.row(ids));
    if (names.contains("token_type_ids")) feed.put("token_type_ids", LongTensor.row(zeros));
    if (names.contains("attention_mask")) feed.put("attention_mask", LongTensor.row(ones));
    List<String> outs = predictor.outputNames();
    float[] logits;
    long[] shape;
    synchronized (predictor) {  // the output shape of this very run
      logits = predictor.run(feed, outs.contains("logits") ? "logits" : outs.get(0));
      shape = predictor.outputShape();
    }
    if (shape.length != 2 || shape[0] != 1)
      throw new ModelException("the graph returned shape " + Predictor.shapeText(shape) + "; a classifier returns (1, classes)");
    Predictor.checkClassCount(classes, (int) shape[1]);
    Predictor.checkFinite(logits, 0, (int) shape[1], "'" + line + "'");
    return logits;
  }

  /** {@link #classify(String, int, boolean)} with the 5 best classes and no logits. */
  public Map<String, Object> classify(String line) {
    return classify(line, 5, false);
  }

  /**
   * Classifies one line like {@code toolkit predict --json}.
   *
   * @return {input: LINE, topk: [{index, label, prob}, ...]} best first (float64 softmax, ties to the
   *     lower index), with "logits" when asked
   */
  public Map<String, Object> classify(String line, int k, boolean withLogits) {
    float[] logits = logits(line);
    Map<String, Object> item = new LinkedHashMap<>();
    item.put("input", line);
    item.put("topk", Predictor.topk(logits, k, classes));
    if (withLogits) {
      List<Object> l = new ArrayList<>();
      for (float v : logits) l.add((double) v);
      item.put("logits", l);
    }
    return item;
  }

  @Override
  public void close() {
    if (predictor != null) predictor.close();
  }
}
