package toolkit.deploy;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * deploy/java/predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE] [--print-ids]
 *                     [--out DIR] [--overlay] [--threshold T] [--draw DIR]
 *
 * <p>Prints the same results as {@code toolkit predict}: for image classifiers, segmentation models and
 * detectors INPUTs are images, for text models ("text_classification", "translation") UTF-8 text files,
 * one input per non-blank line. Errors go to stderr with exit status 1 (bad model or input) or 2 (bad
 * command line).
 */
public final class Main {
  private static final String USAGE = String.join("\n",
      "usage: predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE] [--print-ids]",
      "               [--out DIR] [--overlay] [--threshold T] [--draw DIR]",
      "  INPUT          an image (tasks classification, segmentation, detection) or a UTF-8 text file, one input",
      "                 per non-blank line (tasks text_classification, translation)",
      "  --json         print the results as JSON (the form of `toolkit predict --json`)",
      "  --topk K       classes per input (default 5)",
      "  --logits       also print the logits (translation: of the first decoding step)",
      "  --threads N    OpenVINO inference threads (default: OpenVINO's choice)",
      "  --dump-input F image classifiers: write the preprocessed float32 tensors to F",
      "  --out DIR      segmentation: write each class map as DIR/<stem>.png (indexed PNG, the metadata's palette)",
      "  --overlay      segmentation: also write DIR/<stem>_overlay.png (class colours over the cropped image)",
      "  --threshold T  detection: keep detections scoring at least T, 0..1 (default 0.5)",
      "  --draw DIR     detection: save DIR/<stem>.png, the image with its boxes",
      "  --print-ids    text models: only tokenize, print [{\"input\": LINE, \"ids\": [...]}] as JSON: the ids fed",
      "                 to the graph (translation: also \"decoded\", the source pieces decoded); the graph is not loaded");

  private static void usage(String message) {
    // one line, like every other error (the usage is one --help away)
    System.err.println("predict: error: " + message + " (predict --help for the usage)");
    System.exit(2);
  }

  private static int intArg(String flag, String text, int low) {
    try {
      int v = Integer.parseInt(text);
      if (v >= low) return v;
    } catch (NumberFormatException ignored) {
      // reported below
    }
    usage(flag + " needs an integer >= " + low + ", got '" + text + "'");
    return 0;
  }

  /** A number as Python's float() reads it (also nan/inf); null if it is not one. */
  static Double parseFloat(String text) {
    String t = text.trim().toLowerCase(java.util.Locale.ROOT).replace("_", "");
    String body = t.startsWith("-") || t.startsWith("+") ? t.substring(1) : t;
    double sign = t.startsWith("-") ? -1.0 : 1.0;
    if (body.equals("nan")) return Double.NaN;
    if (body.equals("inf") || body.equals("infinity")) return sign * Double.POSITIVE_INFINITY;
    if (!body.matches("([0-9]+\\.?[0-9]*|\\.[0-9]+)(e[-+]?[0-9]+)?") || text.contains("__") || text.startsWith("_")
        || text.endsWith("_"))
      return null;
    return Double.parseDouble(t);
  }

  public static void main(String[] argv) {
    // UTF-8 whatever the locale: text inputs and outputs are UTF-8 (the JDK would use the locale's charset).
    System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
    boolean json = false, logits = false, printIds = false;
    int topk = 5, threads = 0;
    String dump = null, out = null, draw = null;
    boolean overlay = false;
    Double threshold = null;
    List<String> taskOptions = new ArrayList<>();  // given on the command line: checked against the task
    List<String> positional = new ArrayList<>();
    for (int i = 0; i < argv.length; i++) {
      String s = argv[i];
      switch (s) {
        case "--json": json = true; break;
        case "--logits": logits = true; break;
        case "--print-ids": printIds = true; break;
        case "--topk":
          if (i + 1 >= argv.length) usage("--topk needs a value");
          topk = intArg(s, argv[++i], 1);
          break;
        case "--threads":
          if (i + 1 >= argv.length) usage("--threads needs a value");
          threads = intArg(s, argv[++i], 0);
          break;
        case "--overlay":
          overlay = true;
          taskOptions.add("overlay");
          break;
        case "--out":
          if (i + 1 >= argv.length) usage("--out needs a folder");
          out = argv[++i];
          taskOptions.add("out");
          break;
        case "--draw":
          if (i + 1 >= argv.length) usage("--draw needs a folder");
          draw = argv[++i];
          taskOptions.add("draw");
          break;
        case "--threshold":
          if (i + 1 >= argv.length) usage("--threshold needs a value");
          threshold = parseFloat(argv[++i]);
          if (threshold == null) usage("--threshold needs a number, got '" + argv[i] + "'");
          taskOptions.add("threshold");
          break;
        case "--dump-input":
          if (i + 1 >= argv.length) usage("--dump-input needs a file name");
          dump = argv[++i];
          break;
        case "-h":
        case "--help":
          System.out.println(USAGE);
          return;
        default:
          if (s.startsWith("--")) usage("unknown option " + s);
          positional.add(s);
      }
    }
    if (positional.size() < 2) usage("need a model PREFIX and at least one INPUT");
    String prefix = positional.get(0);
    List<String> inputs = positional.subList(1, positional.size());
    List<Map<String, Object>> results;
    String task = null;
    try {
      if (printIds) {
        results = printIds(prefix, inputs);
        json = true;
      } else {
        try (Predictor p = Predictor.load(prefix, threads)) {
          task = String.valueOf(p.metadata().get("task"));
          checkTaskOptions(p.metadata(), taskOptions);
          if (VisionTasks.SEGMENTATION.equals(task) || VisionTasks.DETECTION.equals(task)) {
            if (dump != null)
              throw new ModelException("--dump-input writes image tensors; model '" + p.metadata().get("model")
                  + "' has task '" + task + "'");
            results = VisionTasks.SEGMENTATION.equals(task) ? VisionTasks.segment(p, inputs, out, overlay)
                : VisionTasks.detect(p, inputs, threshold == null ? 0.5 : threshold, draw);
          } else {
            results = run(p, inputs, topk, logits, dump);
          }
        }
      }
    } catch (ModelException | IOException err) {
      fail(err.getMessage(), dump);
      return;
    } catch (OutOfMemoryError err) {
      fail("out of memory while running " + prefix + " (" + err.getMessage() + ")", dump);
      return;
    } catch (RuntimeException err) {  // a bug or an unforeseen input: still one line, not a stack trace
      fail(err.getClass().getSimpleName() + ": " + err.getMessage(), dump);
      return;
    }
    if (json) {
      System.out.println(Json.write(results));
      return;
    }
    for (Map<String, Object> item : results) {
      if (Translator.TASK.equals(task)) {
        System.out.println(item.get("input") + "\t=> " + item.get("output"));
        continue;
      }
      if (item.containsKey("mask")) {  // segmentation, as toolkit predict prints it
        StringBuilder found = new StringBuilder();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) item.get("classes")).entrySet())
          found.append(found.length() > 0 ? ", " : "").append(e.getKey()).append(' ').append(e.getValue());
        System.out.println(item.get("input") + ":  " + item.get("mask") + "  (" + found + ")");
        continue;
      }
      if (item.containsKey("detections")) {
        StringBuilder found = new StringBuilder();
        for (Object o : (List<?>) item.get("detections")) {
          Map<?, ?> d = (Map<?, ?>) o;
          if (found.length() > 0) found.append("  ");
          found.append(d.get("label")).append(' ').append(Format.fixed((Double) d.get("score"), 3)).append(" [");
          List<?> box = (List<?>) d.get("box");
          for (int k = 0; k < box.size(); k++) found.append(k > 0 ? ", " : "").append(Format.fixed((Double) box.get(k), 1));
          found.append(']');
        }
        System.out.println(item.get("input") + ":  " + (found.length() > 0 ? found : "(nothing)"));
        continue;
      }
      StringBuilder sb = new StringBuilder(String.valueOf(item.get("input"))).append(":");
      for (Object o : (List<?>) item.get("topk")) {
        Map<?, ?> t = (Map<?, ?>) o;
        sb.append(String.format("  %s (%s) %.6f", t.get("label"), t.get("index"), (Double) t.get("prob")));
      }
      System.out.println(sb);
    }
  }

  /** Set once --dump-input's file is opened (truncated) by this run: only then may an error remove it. */
  private static boolean dumpOpened;

  /** Exit 1 with one line on stderr (OpenVINO's messages span several lines); a partly written dump is removed. */
  private static void fail(String message, String dump) {
    if (dumpOpened && dump != null) new java.io.File(dump).delete();
    String line = String.valueOf(message).replaceAll("\\s+", " ").trim();
    System.err.println("predict: error: " + line);
    System.exit(1);
  }

  private static final String TASKS = "classification, " + TextClassifier.TASK + ", " + Translator.TASK + ", "
      + VisionTasks.SEGMENTATION + ", " + VisionTasks.DETECTION;

  /** Task options (--out, --overlay, --threshold, --draw) the model's task does not take are refused, as in Python. */
  private static void checkTaskOptions(Map<String, Object> meta, List<String> given) {
    Object task = meta.get("task");
    if (!List.of(TASKS.split(", ")).contains(String.valueOf(task))) return;  // run() names the unsupported task
    List<String> takes = VisionTasks.SEGMENTATION.equals(task) ? List.of("out", "overlay")
        : VisionTasks.DETECTION.equals(task) ? List.of("threshold", "draw") : List.of();
    java.util.TreeSet<String> unknown = new java.util.TreeSet<>();
    for (String o : given)
      if (!takes.contains(o)) unknown.add(o);
    if (!unknown.isEmpty())
      throw new ModelException("option(s) " + String.join(", ", unknown) + " do not apply to task '" + task + "'");
  }

  private static ModelException unsupported(Map<String, Object> meta) {
    return new ModelException("toolkit predict (Java) does not yet support task '" + meta.get("task") + "' (model '"
        + meta.get("model") + "'); supported tasks: " + TASKS);
  }

  private static List<Map<String, Object>> run(Predictor p, List<String> inputs, int topk, boolean logits, String dump)
      throws IOException {
    Object task = p.metadata().get("task");
    List<Map<String, Object>> results = new ArrayList<>();
    if ("classification".equals(task)) {
      try (OutputStream out = dump != null ? openDump(dump) : null) {
        return p.classify(inputs, topk, logits, out);
      }
    }
    if (dump != null && (TextClassifier.TASK.equals(task) || Translator.TASK.equals(task)))
      throw new ModelException("--dump-input writes preprocessed images; model '" + p.metadata().get("model")
          + "' has task '" + task + "' (use --print-ids to see the ids fed to a text model)");
    if (TextClassifier.TASK.equals(task)) {
      TextClassifier c = TextClassifier.of(p);
      for (String line : TextInput.readLines(inputs)) results.add(c.classify(line, topk, logits));
      return results;
    }
    if (Translator.TASK.equals(task)) {
      try (Translator t = Translator.of(p)) {
        for (String line : TextInput.readLines(inputs)) results.add(t.translate(line, logits));
      }
      return results;
    }
    throw unsupported(p.metadata());
  }

  private static OutputStream openDump(String dump) throws IOException {
    OutputStream out = new FileOutputStream(dump);
    dumpOpened = true;
    return out;
  }

  /** --print-ids: the ids a text model would be fed, from the metadata and tokenizer alone. */
  private static List<Map<String, Object>> printIds(String prefix, List<String> inputs) {
    Map<String, Object> meta = Predictor.readMetadata(prefix);
    Object task = meta.get("task");
    List<Map<String, Object>> results = new ArrayList<>();
    java.util.function.Function<String, long[]> encode;
    Translator translator = null;
    if (TextClassifier.TASK.equals(task)) {
      encode = TextClassifier.tokenizerOnly(prefix)::encode;
    } else if (Translator.TASK.equals(task)) {
      translator = Translator.tokenizerOnly(prefix);
      encode = translator::encode;
    } else {
      throw new ModelException("--print-ids serves text models (tasks " + TextClassifier.TASK + ", " + Translator.TASK
          + "); model '" + meta.get("model") + "' has task '" + task + "'");
    }
    try {
      for (String line : TextInput.readLines(inputs)) {
        List<Object> ids = new ArrayList<>();
        long[] encoded = encode.apply(line);
        for (long id : encoded) ids.add(id);
        Map<String, Object> item = new java.util.LinkedHashMap<>();
        item.put("input", line);
        item.put("ids", ids);
        if (translator != null) {  // the source pieces decoded again (eos left out)
          int[] pieces = new int[encoded.length - 1];
          for (int i = 0; i < pieces.length; i++) pieces[i] = (int) encoded[i];
          item.put("decoded", translator.tokenizer().decode(pieces));
        }
        results.add(item);
      }
    } finally {
      if (translator != null) translator.close();
    }
    return results;
  }
}
