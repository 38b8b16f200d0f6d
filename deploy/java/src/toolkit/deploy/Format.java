package toolkit.deploy;

import java.math.BigDecimal;
import java.math.RoundingMode;

/** Number text as Python's format() writes it, for the plain-text output of {@code toolkit predict}. */
final class Format {
  private Format() {}

  /**
   * {@code f"{v:.Nf}"}: the exact binary value rounded half to even (String.format rounds the shortest
   * decimal half up, which differs on values such as 1.0005); negative values that round to zero keep their sign.
   */
  static String fixed(double v, int digits) {
    if (Double.isNaN(v)) return "nan";
    if (Double.isInfinite(v)) return v > 0 ? "inf" : "-inf";
    String text = new BigDecimal(v).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
    boolean negative = v < 0 || (v == 0.0 && 1.0 / v < 0);
    return negative && !text.startsWith("-") ? "-" + text : text;
  }
}
