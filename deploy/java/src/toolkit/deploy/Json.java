package toolkit.deploy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer for the export metadata and the runner's output.
 *
 * <p>Written by hand because the JDK has no JSON API, no Maven repository is
 * reachable to build against, and Debian's JSON jars would be one more file every
 * user must put on the class path for a format this simple. Objects become
 * {@link LinkedHashMap}, arrays {@link ArrayList}, integers {@link Long}, other
 * numbers {@link Double}.
 */
public final class Json {
  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Parses one JSON value; throws IllegalArgumentException with the offset of the first error. */
  public static Object parse(String text) {
    Json p = new Json(text);
    p.skip();
    Object value = p.value();
    p.skip();
    if (p.pos != text.length()) throw p.error("trailing characters");
    return value;
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException(what + " at offset " + pos);
  }

  private void skip() {
    while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) pos++;
  }

  private char peek() {
    if (pos >= text.length()) throw error("unexpected end of input");
    return text.charAt(pos);
  }

  private void expect(String word) {
    if (!text.startsWith(word, pos)) throw error("expected '" + word + "'");
    pos += word.length();
  }

  private Object value() {
    char c = peek();
    switch (c) {
      case '{': return object();
      case '[': return array();
      case '"': return string();
      case 't': expect("true"); return Boolean.TRUE;
      case 'f': expect("false"); return Boolean.FALSE;
      case 'n': expect("null"); return null;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        throw error("unexpected character '" + c + "'");
    }
  }

  private Map<String, Object> object() {
    Map<String, Object> out = new LinkedHashMap<>();
    pos++;
    skip();
    if (peek() == '}') {
      pos++;
      return out;
    }
    while (true) {
      skip();
      if (peek() != '"') throw error("expected a key");
      String key = string();
      skip();
      if (peek() != ':') throw error("expected ':'");
      pos++;
      skip();
      out.put(key, value());
      skip();
      char c = peek();
      pos++;
      if (c == '}') return out;
      if (c != ',') throw error("expected ',' or '}'");
    }
  }

  private List<Object> array() {
    List<Object> out = new ArrayList<>();
    pos++;
    skip();
    if (peek() == ']') {
      pos++;
      return out;
    }
    while (true) {
      skip();
      out.add(value());
      skip();
      char c = peek();
      pos++;
      if (c == ']') return out;
      if (c != ',') throw error("expected ',' or ']'");
    }
  }

  private String string() {
    StringBuilder sb = new StringBuilder();
    pos++;
    while (true) {
      char c = peek();
      pos++;
      if (c == '"') return sb.toString();
      if (c != '\\') {
        sb.append(c);
        continue;
      }
      char e = peek();
      pos++;
      switch (e) {
        case '"': sb.append('"'); break;
        case '\\': sb.append('\\'); break;
        case '/': sb.append('/'); break;
        case 'b': sb.append('\b'); break;
        case 'f': sb.append('\f'); break;
        case 'n': sb.append('\n'); break;
        case 'r': sb.append('\r'); break;
        case 't': sb.append('\t'); break;
        case 'u':
          if (pos + 4 > text.length()) throw error("short \\u escape");
          try {
            sb.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
          } catch (NumberFormatException err) {
            throw error("bad \\u escape");
          }
          pos += 4;
          break;
        default: throw error("bad escape '\\" + e + "'");
      }
    }
  }

  private Object number() {
    int start = pos;
    boolean integral = true;
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c == '.' || c == 'e' || c == 'E') integral = false;
      else if (!(c == '-' || c == '+' || (c >= '0' && c <= '9'))) break;
      pos++;
    }
    String s = text.substring(start, pos);
    try {
      return integral ? (Object) Long.parseLong(s) : (Object) Double.parseDouble(s);
    } catch (NumberFormatException err) {
      if (integral) {
        try {
          return Double.parseDouble(s);
        } catch (NumberFormatException ignored) {
          // fall through
        }
      }
      throw error("bad number '" + s + "'");
    }
  }

  /** Writes maps, lists, strings, numbers, booleans and null as compact JSON. */
  public static String write(Object value) {
    StringBuilder sb = new StringBuilder();
    write(sb, value);
    return sb.toString();
  }

  private static void write(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof String) {
      quote(sb, (String) v);
    } else if (v instanceof Double || v instanceof Float) {
      double d = ((Number) v).doubleValue();
      sb.append(Double.isFinite(d) ? Double.toString(d) : "null");
    } else if (v instanceof Number || v instanceof Boolean) {
      sb.append(v);
    } else if (v instanceof Map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
        if (!first) sb.append(',');
        first = false;
        quote(sb, String.valueOf(e.getKey()));
        sb.append(':');
        write(sb, e.getValue());
      }
      sb.append('}');
    } else if (v instanceof List) {
      sb.append('[');
      boolean first = true;
      for (Object o : (List<?>) v) {
        if (!first) sb.append(',');
        first = false;
        write(sb, o);
      }
      sb.append(']');
    } else {
      quote(sb, v.toString());
    }
  }

  private static void quote(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': sb.append("\\\""); break;
        case '\\': sb.append("\\\\"); break;
        case '\n': sb.append("\\n"); break;
        case '\r': sb.append("\\r"); break;
        case '\t': sb.append("\\t"); break;
        default:
          if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
          else sb.append(c);
      }
    }
    sb.append('"');
  }
}
