package toolkit.deploy;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Transformer exported by {@code toolkit.nlp.deploy.export_text} (task "translation"): SentencePiece
 * tokenization, then greedy decoding that re-runs the whole graph on (src_ids, src_valid_length,
 * tgt_ids) for every new target token, exactly as {@code toolkit predict} does.
 *
 * <pre>
 *   try (Translator t = Translator.load("out/transformer")) {
 *     Map&lt;String, Object&gt; r = t.translate("In the beginning");  // {input, output, ids, logprob}
 *   }
 * </pre>
 */
public final class Translator implements AutoCloseable {
  static final String TASK = "translation";
  private static final Set<String> INPUTS = Set.of("src_ids", "src_valid_length", "tgt_ids");

  private final Predictor predictor;  // null: tokenizing only
  private final SentencePiece sentencePiece;
  private final TokenizerSpec spec;
  private final int bosId, eosId;
  private final double maxLenA, maxLenB;

  Translator(Map<String, Object> meta, Path folder, Predictor predictor) {
    if (!TASK.equals(meta.get("task"))) throw new ModelException("model task is '" + meta.get("task") + "', not '" + TASK + "'");
    spec = TokenizerSpec.fromMetadata(meta, folder);
    if (!spec.type.equals("sentencepiece"))
      throw new ModelException("a translation model needs a sentencepiece tokenizer; the metadata has " + spec.type);
    bosId = spec.require(spec.bosId, "bos_id", "translation");
    eosId = spec.require(spec.eosId, "eos_id", "translation");
    Object decoding = meta.get("decoding");
    Map<?, ?> dec = decoding instanceof Map ? (Map<?, ?>) decoding : Map.of();
    Object strategy = dec.get("strategy");
    if (strategy != null && !"greedy".equals(strategy))
      throw new ModelException("this runner decodes greedily; the metadata asks for '" + strategy + "'");
    maxLenA = number(dec.get("max_len_a"), 1.2, "max_len_a");
    maxLenB = number(dec.get("max_len_b"), 10, "max_len_b");
    Set<String> names = new HashSet<>();
    for (Object s : (List<?>) meta.get("inputs")) names.add(String.valueOf(((Map<?, ?>) s).get("name")));
    if (!names.equals(INPUTS)) throw new ModelException("a translation graph takes " + INPUTS + "; this one takes " + names);
    SentencePiece sp = SentencePiece.load(spec.file);
    try {
      String[] roles = {"unk_id", "pad_id", "bos_id", "eos_id"};
      int[] have = {sp.unkId(), sp.padId(), sp.bosId(), sp.eosId()};
      Integer[] want = {spec.unkId, spec.padId, spec.bosId, spec.eosId};
      for (int r = 0; r < roles.length; r++) {
        Integer got = have[r] < 0 ? null : have[r];
        if (!java.util.Objects.equals(got, want[r]))
          throw new ModelException("tokenizer file " + spec.file + " has " + roles[r] + " " + got + " but the metadata records "
              + want[r]);
      }
    } catch (RuntimeException err) {
      sp.close();
      throw err;
    }
    sentencePiece = sp;
    this.predictor = predictor;
  }

  private static double number(Object v, double dflt, String key) {
    if (v == null) return dflt;
    if (!(v instanceof Number)) throw new ModelException("the metadata's decoding " + key + " must be a number, got " + v);
    return ((Number) v).doubleValue();
  }

  /** Loads PREFIX.onnx, PREFIX.json and the SentencePiece model it names. */
  public static Translator load(String prefix) {
    return load(prefix, 0);
  }

  /** As {@link #load(String)}, with that many OpenVINO threads (0: its default). */
  public static Translator load(String prefix, int threads) {
    Predictor p = Predictor.load(prefix, threads);
    try {
      return new Translator(p.metadata(), p.folder(), p);
    } catch (RuntimeException err) {
      p.close();
      throw err;
    }
  }

  /** Wraps a loaded predictor (which this translator then closes). */
  public static Translator of(Predictor p) {
    return new Translator(p.metadata(), p.folder(), p);
  }

  /** A translator that can only {@link #encode} (no graph loaded): for checking tokenization. */
  static Translator tokenizerOnly(String prefix) {
    return new Translator(Predictor.readMetadata(prefix), Paths.get(prefix + ".json").toAbsolutePath().getParent(), null);
  }

  /** The SentencePiece model. */
  public SentencePiece tokenizer() {
    return sentencePiece;
  }

  /** Source ids: sentencepiece(line, lower-cased as Python does if the tokenizer says so)[: max_length - 1] + [eos]. */
  public long[] encode(String line) {
    int[] pieces = sentencePiece.encode(spec.lowercase ? SentencePiece.pythonLower(line) : line);
    int n = Math.min(pieces.length, spec.maxLength - 1);
    long[] ids = new long[n + 1];
    for (int i = 0; i < n; i++) ids[i] = pieces[i];
    ids[n] = eosId;
    return ids;
  }

  /** The most tokens greedy decoding emits for a source of {@code s} ids: min(int(a * s + b), max_length - 1). */
  public int limit(int s) {
    return Math.min((int) (maxLenA * s + maxLenB), spec.maxLength - 1);
  }

  /** {@link #translate(String, boolean)} without the logits. */
  public Map<String, Object> translate(String line) {
    return translate(line, false);
  }

  /**
   * Greedy translation of one line like {@code toolkit predict --json}: next = argmax of the last
   * position's logits (ties to the lower index), until eos or {@link #limit}.
   *
   * @return {input: LINE, output: TEXT, ids: [generated ids without bos and the final eos],
   *     logprob: float64 sum of the chosen tokens' log-softmax, eos included}, with "logits" (the first
   *     step's row) when asked
   */
  public Map<String, Object> translate(String line, boolean withLogits) {
    if (predictor == null) throw new ModelException("this translator was opened for tokenizing only");
    long[] src = encode(line);
    LongTensor srcIds = LongTensor.row(src), valid = LongTensor.vector(src.length);
    List<String> outs = predictor.outputNames();
    String output = outs.contains("logits") ? "logits" : outs.get(0);
    List<Long> tgt = new ArrayList<>(List.of((long) bosId));
    int limit = limit(src.length);
    double logprob = 0.0;
    List<Object> first = null;
    while (tgt.size() - 1 < limit) {
      long[] t = new long[tgt.size()];
      for (int i = 0; i < t.length; i++) t[i] = tgt.get(i);
      Map<String, LongTensor> feed = new LinkedHashMap<>();
      feed.put("src_ids", srcIds);
      feed.put("src_valid_length", valid);
      feed.put("tgt_ids", LongTensor.row(t));
      float[] logits;
      long[] shape;
      synchronized (predictor) {  // the output shape of this very run
        logits = predictor.run(feed, output);
        shape = predictor.outputShape();
      }
      if (shape.length != 3 || shape[0] != 1 || shape[1] != t.length)
        throw new ModelException("the graph returned shape " + Predictor.shapeText(shape) + "; a translation graph returns (1, T, V)");
      int v = (int) shape[2], row = (t.length - 1) * v;
      Predictor.checkFinite(logits, row, v, "'" + line + "'");
      if (first == null) {
        first = new ArrayList<>();
        for (int i = 0; i < v; i++) first.add((double) logits[i]);
      }
      int next = 0;
      double mx = logits[row];
      for (int i = 1; i < v; i++)
        if (logits[row + i] > mx) {  // strict: ties keep the lower index
          mx = logits[row + i];
          next = i;
        }
      double sum = 0.0;
      for (int i = 0; i < v; i++) sum += Math.exp((double) logits[row + i] - mx);
      logprob += ((double) logits[row + next] - mx) - Math.log(sum);
      tgt.add((long) next);
      if (next == eosId) break;
    }
    List<Long> ids = new ArrayList<>(tgt.subList(1, tgt.size()));
    if (!ids.isEmpty() && ids.get(ids.size() - 1) == eosId) ids.remove(ids.size() - 1);
    int[] decode = new int[ids.size()];
    for (int i = 0; i < decode.length; i++) decode[i] = (int) (long) ids.get(i);
    Map<String, Object> item = new LinkedHashMap<>();
    item.put("input", line);
    item.put("output", sentencePiece.decode(decode));
    item.put("ids", new ArrayList<Object>(ids));
    item.put("logprob", logprob);
    if (withLogits) item.put("logits", first == null ? List.of() : first);
    return item;
  }

  @Override
  public void close() {
    sentencePiece.close();
    if (predictor != null) predictor.close();
  }
}
