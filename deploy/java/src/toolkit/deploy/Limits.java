package toolkit.deploy;

/**
 * Upper bounds shared by the three runners (Python: toolkit/deploy/preprocess.py MAX_*; C++:
 * deploy/cpp/src/limits.hpp): a bad export or a hostile image fails fast with one clear error
 * instead of an allocation of gigabytes.
 */
public final class Limits {
  /** metadata preprocessing.resize (shorter side) and each side of preprocessing.crop. */
  public static final long MAX_PREPROCESS_SIZE = 8192;
  /** Width and height of an image, from its header before decoding, and after the resize step. */
  public static final long MAX_IMAGE_SIDE = 65535;
  /** width * height (Pillow's default Image.MAX_IMAGE_PIXELS, 1024**3 / 4 / 3). */
  public static final long MAX_IMAGE_PIXELS = 89_478_485;

  private Limits() {}

  /** Throws unless a width x height image is within the bounds. */
  static void checkImageSize(String path, long width, long height, String when) {
    if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > MAX_IMAGE_PIXELS)
      throw new ModelException("image " + path + " is too large" + when + ": " + width + "x" + height
          + " (this runner takes at most " + MAX_IMAGE_SIDE + " pixels a side and " + MAX_IMAGE_PIXELS + " pixels)");
  }
}
