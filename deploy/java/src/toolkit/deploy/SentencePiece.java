package toolkit.deploy;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A SentencePiece model run by libsentencepiece (the C++ library, through the JNI library
 * libtoolkit_spm_jni.so that build.sh compiles when libsentencepiece-dev is installed).
 *
 * <pre>
 *   try (SentencePiece sp = SentencePiece.load(Paths.get("out/transformer.spm.model"))) {
 *     int[] ids = sp.encode("hello world");
 *     String text = sp.decode(ids);
 *   }
 * </pre>
 */
public final class SentencePiece implements AutoCloseable {
  private static boolean loaded;

  private long handle;
  private final int size, unkId, padId, bosId, eosId;

  private static native long nativeLoad(byte[] model);

  private static native void nativeClose(long handle);

  private static native int[] nativeInfo(long handle);

  private static native int[] nativeEncode(long handle, byte[] utf8);

  private static native byte[] nativeDecode(long handle, int[] ids);

  private static synchronized void loadLibrary() {
    if (loaded) return;
    String explicit = System.getProperty("toolkit.spm.jni");
    try {
      if (explicit != null) System.load(new File(explicit).getAbsolutePath());
      else System.loadLibrary("toolkit_spm_jni");
    } catch (UnsatisfiedLinkError err) {
      throw new ModelException("cannot load the JNI library libtoolkit_spm_jni.so, needed for SentencePiece models "
          + "(install libsentencepiece-dev, rerun deploy/java/build.sh, pass -Djava.library.path=deploy/java/build): "
          + err.getMessage(), err);
    }
    loaded = true;
  }

  private SentencePiece(long handle) {
    this.handle = handle;
    int[] info = nativeInfo(handle);
    size = info[0];
    unkId = info[1];
    padId = info[2];
    bosId = info[3];
    eosId = info[4];
  }

  /**
   * Loads a model file written by SentencePiece (any version whose format libsentencepiece reads).
   *
   * @throws ModelException if the file cannot be read or is not a SentencePiece model
   */
  public static SentencePiece load(Path model) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(model);
    } catch (IOException err) {
      throw new ModelException("cannot read SentencePiece model " + model + ": " + err.getMessage(), err);
    }
    loadLibrary();
    try {
      return new SentencePiece(nativeLoad(bytes));
    } catch (ModelException err) {
      throw new ModelException("tokenizer file " + model + ": " + err.getMessage(), err);
    }
  }

  /** Number of pieces; ids are 0 .. size() - 1. */
  public int size() {
    return size;
  }

  /** The model's special ids, -1 where it has none. */
  public int unkId() {
    return unkId;
  }

  public int padId() {
    return padId;
  }

  public int bosId() {
    return bosId;
  }

  public int eosId() {
    return eosId;
  }

  /** The ids of {@code text} (the best segmentation; no bos/eos added). */
  public synchronized int[] encode(String text) {
    if (handle == 0) throw new ModelException("SentencePiece model is closed");
    return nativeEncode(handle, text.getBytes(StandardCharsets.UTF_8));
  }

  /** Text of {@code ids}, as SentencePiece decodes them (control pieces vanish). */
  public synchronized String decode(int[] ids) {
    if (handle == 0) throw new ModelException("SentencePiece model is closed");
    for (int id : ids)
      if (id < 0 || id >= size) throw new ModelException("id " + id + " is out of range for a model of " + size + " pieces");
    return new String(nativeDecode(handle, ids), StandardCharsets.UTF_8);
  }

  /**
   * Python's {@code str.lower()}, which the toolkit applies to a line before encoding it with a
   * lower-casing SentencePiece tokenizer: the full lower-case mapping of each code point (the JDK's
   * simple mapping plus U+0130 -> "i\u0307", the one unconditional multi-character mapping) and
   * the Final_Sigma rule as CPython applies it: a capital sigma preceded by a cased letter
   * (case-ignorable characters skipped) and not followed by one becomes U+03C2. Unlike
   * {@link String#toLowerCase}, the context is the whole string, not a word.
   */
  public static String pythonLower(String s) {
    StringBuilder sb = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      if (cp == 0x3A3) sb.append(finalSigma(s, i) ? '\u03C2' : '\u03C3');
      else if (cp == 0x130) sb.append("i\u0307");
      else sb.appendCodePoint(Character.toLowerCase(cp));
      i += Character.charCount(cp);
    }
    return sb.toString();
  }

  private static boolean finalSigma(String s, int at) {
    int j = at, c = -1;
    while (j > 0) {
      c = s.codePointBefore(j);
      j -= Character.charCount(c);
      if (!caseIgnorable(c)) break;
      c = -1;
    }
    if (c < 0 || !cased(c)) return false;
    for (j = at + 1; j < s.length(); ) {
      c = s.codePointAt(j);
      if (!caseIgnorable(c)) return !cased(c);
      j += Character.charCount(c);
    }
    return true;
  }

  /** Unicode's Cased property: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase. */
  static boolean cased(int cp) {
    return Character.isLowerCase(cp) || Character.isUpperCase(cp) || Character.isTitleCase(cp);
  }

  /** Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter, MidNumLet and Single_Quote. */
  static boolean caseIgnorable(int cp) {
    switch (Character.getType(cp)) {
      case Character.NON_SPACING_MARK:
      case Character.ENCLOSING_MARK:
      case Character.FORMAT:
      case Character.MODIFIER_LETTER:
      case Character.MODIFIER_SYMBOL:
        return true;
      default:
        break;
    }
    switch (cp) {
      case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019:
      case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
      default:
        return false;
    }
  }

  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeClose(handle);
      handle = 0;
    }
  }
}
