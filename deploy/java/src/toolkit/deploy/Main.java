package toolkit.deploy;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * deploy/java/predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE]
 *
 * <p>Prints the same results as {@code toolkit predict}. Errors go to stderr with exit
 * status 1 (bad model or input) or 2 (bad command line).
 */
public final class Main {
  private static final String USAGE =
      "usage: predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE]";

  private static void usage(String message) {
    System.err.println("predict: error: " + message);
    System.err.println(USAGE);
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

  public static void main(String[] argv) {
    boolean json = false, logits = false;
    int topk = 5, threads = 0;
    String dump = null;
    List<String> positional = new ArrayList<>();
    for (int i = 0; i < argv.length; i++) {
      String s = argv[i];
      switch (s) {
        case "--json": json = true; break;
        case "--logits": logits = true; break;
        case "--topk":
          if (i + 1 >= argv.length) usage("--topk needs a value");
          topk = intArg(s, argv[++i], 1);
          break;
        case "--threads":
          if (i + 1 >= argv.length) usage("--threads needs a value");
          threads = intArg(s, argv[++i], 0);
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
    try (Predictor p = Predictor.load(prefix, threads);
         OutputStream out = dump != null ? new FileOutputStream(dump) : null) {
      results = p.classify(inputs, topk, logits, out);
    } catch (ModelException | IOException err) {
      System.err.println("predict: error: " + err.getMessage());
      System.exit(1);
      return;
    }
    if (json) {
      System.out.println(Json.write(results));
      return;
    }
    for (Map<String, Object> item : results) {
      StringBuilder sb = new StringBuilder(String.valueOf(item.get("input"))).append(":");
      for (Object o : (List<?>) item.get("topk")) {
        Map<?, ?> t = (Map<?, ?>) o;
        sb.append(String.format("  %s (%s) %.6f", t.get("label"), t.get("index"), (Double) t.get("prob")));
      }
      System.out.println(sb);
    }
  }
}
