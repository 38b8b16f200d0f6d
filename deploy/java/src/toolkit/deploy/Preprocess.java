package toolkit.deploy;

import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.File;
import java.io.IOException;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import org.w3c.dom.Node;

/**
 * Image preprocessing recorded in an export's metadata, written operation for
 * operation like toolkit/deploy/preprocess.py (and deploy/cpp/src/preprocess.cpp)
 * so that the graph gets the same float32 tensor bit for bit: colour, shorter-side
 * bilinear resize (half-pixel centres, float64, rounded half up), center crop,
 * then (p / scale - mean) / std in float32.
 */
public final class Preprocess {
  /** 8-bit pixels, rows of interleaved channels (HWC). */
  public static final class Pixels {
    public final int height, width, channels;
    public final int[] data;

    Pixels(int height, int width, int channels) {
      this.height = height;
      this.width = width;
      this.channels = channels;
      this.data = new int[height * width * channels];
    }

    int at(int y, int x, int c) {
      return data[(y * width + x) * channels + c];
    }
  }

  public final String color;
  public final int resize;
  public final int cropH, cropW;  // 0 = no crop
  public final double scale;
  public final float[] mean, std;

  private Preprocess(String color, int resize, int cropH, int cropW, double scale, float[] mean, float[] std) {
    this.color = color;
    this.resize = resize;
    this.cropH = cropH;
    this.cropW = cropW;
    this.scale = scale;
    this.mean = mean;
    this.std = std;
  }

  public int channels() {
    return color.equals("L") ? 1 : 3;
  }

  /** A finite float32 (a JSON number read as infinity, or one float32 cannot hold, is refused). */
  private static float finite(Number v, String label) {
    double d = v.doubleValue();
    if (!Double.isFinite(d) || !Float.isFinite((float) d))
      throw new ModelException("preprocessing " + label + " has a non-finite value " + v);
    return (float) d;
  }

  /** A JSON integer (Long) in [low, high]. */
  private static boolean intIn(Object v, long low, long high) {
    return v instanceof Long && (Long) v >= low && (Long) v <= high;
  }

  private static float[] floats(Object v, String label, int channels) {
    float[] out;
    if (v == null) {
      out = new float[] {label.equals("std") ? 1f : 0f};
    } else if (v instanceof Number) {
      out = new float[] {finite((Number) v, label)};
    } else if (v instanceof List) {
      List<?> list = (List<?>) v;
      out = new float[list.size()];
      for (int i = 0; i < out.length; i++) {
        if (!(list.get(i) instanceof Number)) throw new ModelException("preprocessing " + label + " must hold numbers");
        out[i] = finite((Number) list.get(i), label);
      }
    } else {
      throw new ModelException("preprocessing " + label + " must be a number or a list");
    }
    if (out.length != 1 && out.length != channels)
      throw new ModelException("preprocessing " + label + " has " + out.length + " values for " + channels + " channels");
    return out;
  }

  private static String str(Map<?, ?> m, String key, String dflt) {
    Object v = m.get(key);
    return v == null ? dflt : v.toString();
  }

  /** Reads and checks meta["preprocessing"]. */
  public static Preprocess fromMetadata(Map<String, Object> meta) {
    Object entry = meta.get("preprocessing");
    if (!(entry instanceof Map)) throw new ModelException("the metadata has no 'preprocessing' entry");
    Map<?, ?> pre = (Map<?, ?>) entry;
    if (!str(pre, "type", "image").equals("image")) throw new ModelException("preprocessing type is not 'image'");
    String color = str(pre, "color", "RGB").toUpperCase();
    if (!color.equals("RGB") && !color.equals("L"))
      throw new ModelException("preprocessing color '" + color + "' is not supported (RGB or L)");
    if (!str(pre, "layout", "NCHW").toUpperCase().equals("NCHW")) throw new ModelException("preprocessing layout is not NCHW");
    String interp = str(pre, "interpolation", "bilinear");
    if (!interp.equals("bilinear"))
      throw new ModelException("preprocessing interpolation '" + interp + "' is not supported (bilinear)");
    int resize = 0;
    Object r = pre.get("resize");
    if (r != null) {
      if (!(r instanceof Long)) throw new ModelException("preprocessing resize must be one int (the shorter side)");
      if (!intIn(r, 0, Limits.MAX_PREPROCESS_SIZE))
        throw new ModelException("preprocessing resize must be between 0 and " + Limits.MAX_PREPROCESS_SIZE + ", got " + r);
      resize = (int) (long) (Long) r;
    }
    int ch = 0, cw = 0;
    Object crop = pre.get("crop");
    String bounds = "preprocessing crop must be [H, W] with sizes between 1 and " + Limits.MAX_PREPROCESS_SIZE + ", got "
        + Json.write(crop);
    if (crop instanceof Long) {
      if (!intIn(crop, 1, Limits.MAX_PREPROCESS_SIZE)) throw new ModelException(bounds);
      ch = cw = (int) (long) (Long) crop;
    } else if (crop instanceof List && ((List<?>) crop).size() == 2 && ((List<?>) crop).get(0) instanceof Long
        && ((List<?>) crop).get(1) instanceof Long) {
      if (!intIn(((List<?>) crop).get(0), 1, Limits.MAX_PREPROCESS_SIZE)
          || !intIn(((List<?>) crop).get(1), 1, Limits.MAX_PREPROCESS_SIZE))
        throw new ModelException(bounds);
      ch = (int) (long) (Long) ((List<?>) crop).get(0);
      cw = (int) (long) (Long) ((List<?>) crop).get(1);
    } else if (crop != null) {
      throw new ModelException("preprocessing crop must be [H, W], got " + Json.write(crop));
    }
    Object s = pre.get("scale");
    if (s != null && !(s instanceof Number)) throw new ModelException("preprocessing scale must be a number, got " + Json.write(s));
    double scale = s instanceof Number ? finite((Number) s, "scale") : 255.0;
    if (scale == 0.0) throw new ModelException("preprocessing scale is zero");
    int channels = color.equals("L") ? 1 : 3;
    float[] mean = floats(pre.get("mean"), "mean", channels);
    float[] std = floats(pre.get("std"), "std", channels);
    for (float v : std)
      if (v == 0f) throw new ModelException("preprocessing std has a zero");
    return new Preprocess(color, resize, ch, cw, scale, mean, std);
  }

  /**
   * Decodes an image with javax.imageio, reading raw raster samples (getRGB would
   * apply colour-space conversions to grey images); 16-bit samples keep their high byte.
   */
  public static Pixels readImage(String path) {
    File file = new File(path);
    if (file.isDirectory()) throw new ModelException("image " + path + " is a directory, not an image file");
    if (!file.isFile()) throw new ModelException("image file " + path + " not found");
    BufferedImage img;
    String format;
    try (ImageInputStream in = ImageIO.createImageInputStream(file)) {
      Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
      if (readers == null || !readers.hasNext())
        throw new ModelException("cannot read image " + path + ": not an image this runner can decode");
      ImageReader reader = readers.next();
      format = reader.getFormatName().toLowerCase(java.util.Locale.ROOT);
      try {
        reader.setInput(in, true, false);
        // the header first: a decompression bomb is refused before its pixels are allocated
        Limits.checkImageSize(path, reader.getWidth(0), reader.getHeight(0), "");
        if (jpegComponents(reader) == 4) throw cmyk(path);
        img = reader.read(0);
      } finally {
        reader.dispose();
      }
    } catch (IIOException err) {
      // ImageIO cannot convert Adobe CMYK/YCCK JPEGs: "Unsupported Image Type"
      if (String.valueOf(err.getMessage()).contains("Unsupported Image Type")) throw cmyk(path);
      throw new ModelException("cannot read image " + path + ": " + err.getMessage(), err);
    } catch (IOException | RuntimeException err) {
      if (err instanceof ModelException) throw (ModelException) err;
      throw new ModelException("cannot read image " + path + ": " + err.getMessage(), err);
    }
    if (img == null) throw new ModelException("cannot read image " + path + ": not an image this runner can decode");
    ColorModel cm = img.getColorModel();
    Raster raster = img.getRaster();
    int h = img.getHeight(), w = img.getWidth();
    if (cm instanceof IndexColorModel) {
      IndexColorModel icm = (IndexColorModel) cm;
      Pixels out = new Pixels(h, w, 3);
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          int idx = raster.getSample(x, y, 0), o = (y * w + x) * 3;
          out.data[o] = icm.getRed(idx);
          out.data[o + 1] = icm.getGreen(idx);
          out.data[o + 2] = icm.getBlue(idx);
        }
      return out;
    }
    int bands = raster.getNumBands();
    if (bands == 4 && format.equals("jpeg")) throw cmyk(path);  // never read CMYK as RGBA
    int bits = raster.getSampleModel().getSampleSize(0);
    if (bits != 8 && bits != 16) throw new ModelException("image " + path + " has " + bits + "-bit samples, which are not supported");
    int shift = bits - 8;
    int channels = bands <= 2 ? 1 : 3;  // grey(+alpha) or RGB(+alpha): alpha is dropped, not composited
    Pixels out = new Pixels(h, w, channels);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int c = 0; c < channels; c++) out.data[(y * w + x) * channels + c] = raster.getSample(x, y, c) >> shift;
    return out;
  }

  private static ModelException cmyk(String path) {
    return new ModelException("image " + path + " is a CMYK/YCCK JPEG, which is not supported: convert it to RGB");
  }

  /** Colour components in a JPEG's frame header (4: CMYK or YCCK); 0 for another format. */
  private static int jpegComponents(ImageReader reader) throws IOException {
    if (!"jpeg".equalsIgnoreCase(reader.getFormatName())) return 0;
    IIOMetadata meta = reader.getImageMetadata(0);
    if (meta == null) return 0;
    Node root = meta.getAsTree("javax_imageio_jpeg_image_1.0");
    for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
      if (!"markerSequence".equals(n.getNodeName())) continue;
      for (Node m = n.getFirstChild(); m != null; m = m.getNextSibling())
        if ("sof".equals(m.getNodeName())) return m.getChildNodes().getLength();  // one componentSpec per component
    }
    return 0;
  }

  public static Pixels toColor(Pixels in, String color) {
    int channels = color.equals("L") ? 1 : 3;
    Pixels out = new Pixels(in.height, in.width, channels);
    for (int y = 0; y < in.height; y++)
      for (int x = 0; x < in.width; x++) {
        int o = (y * in.width + x) * channels;
        if (in.channels == 1) {
          for (int c = 0; c < channels; c++) out.data[o + c] = in.at(y, x, 0);
        } else if (channels == 3) {
          for (int c = 0; c < 3; c++) out.data[o + c] = in.at(y, x, c);
        } else {
          out.data[o] = (int) ((in.at(y, x, 0) * 299L + in.at(y, x, 1) * 587L + in.at(y, x, 2) * 114L + 500L) / 1000L);
        }
      }
    return out;
  }

  /** {H, W} after resizing the shorter side to `shorter`, rounding half up in exact integers. */
  public static int[] resizedSize(int height, int width, int shorter) {
    if (height <= width) return new int[] {shorter, (int) ((2L * width * shorter + height) / (2L * height))};
    return new int[] {(int) ((2L * height * shorter + width) / (2L * width)), shorter};
  }

  private static void taps(int inSize, int outSize, int[] i0, int[] i1, double[] w) {
    double ratio = (double) inSize / (double) outSize;
    for (int o = 0; o < outSize; o++) {
      double src = ((double) o + 0.5) * ratio - 0.5;
      if (src < 0.0) src = 0.0;
      int a = Math.min((int) Math.floor(src), inSize - 1);
      i0[o] = a;
      i1[o] = Math.min(a + 1, inSize - 1);
      w[o] = src - (double) a;
    }
  }

  public static Pixels resizeShorter(Pixels in, int shorter) {
    int[] size = resizedSize(in.height, in.width, shorter);
    return resizeTo(in, size[0], size[1]);
  }

  /** Bilinear resize to exactly oh x ow (the arithmetic of resizeShorter; detectors' resize [h, w]). */
  public static Pixels resizeTo(Pixels in, int oh, int ow) {
    if (oh == in.height && ow == in.width) return in;
    int[] y0 = new int[oh], y1 = new int[oh], x0 = new int[ow], x1 = new int[ow];
    double[] wy = new double[oh], wx = new double[ow];
    taps(in.height, oh, y0, y1, wy);
    taps(in.width, ow, x0, x1, wx);
    Pixels out = new Pixels(oh, ow, in.channels);
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++)
        for (int c = 0; c < in.channels; c++) {
          double a = in.at(y0[y], x0[x], c), b = in.at(y0[y], x1[x], c);
          double d0 = in.at(y1[y], x0[x], c), d1 = in.at(y1[y], x1[x], c);
          double top = a + (b - a) * wx[x];
          double bottom = d0 + (d1 - d0) * wx[x];
          double value = top + (bottom - top) * wy[y];
          double r = Math.floor(value + 0.5);
          r = Math.min(255.0, Math.max(0.0, r));
          out.data[(y * ow + x) * in.channels + c] = (int) r;
        }
    return out;
  }

  public static Pixels centerCrop(Pixels in, int ch, int cw) {
    if (ch > in.height || cw > in.width)
      throw new ModelException("image of " + in.height + "x" + in.width + " is smaller than the crop " + ch + "x" + cw);
    int top = (in.height - ch) / 2, left = (in.width - cw) / 2;
    Pixels out = new Pixels(ch, cw, in.channels);
    for (int y = 0; y < ch; y++)
      for (int x = 0; x < cw; x++)
        for (int c = 0; c < in.channels; c++) out.data[(y * cw + x) * in.channels + c] = in.at(top + y, left + x, c);
    return out;
  }

  /** HWC 8-bit -> CHW float32: (p / scale - mean[c]) / std[c] in float32. */
  public static float[] normalize(Pixels in, double scale, float[] mean, float[] std) {
    float s = (float) scale;
    float[] out = new float[in.channels * in.height * in.width];
    for (int c = 0; c < in.channels; c++) {
      float m = mean.length == 1 ? mean[0] : mean[c];
      float d = std.length == 1 ? std[0] : std[c];
      for (int y = 0; y < in.height; y++)
        for (int x = 0; x < in.width; x++) {
          float v = (float) in.at(y, x, c) / s;
          out[(c * in.height + y) * in.width + x] = (v - m) / d;
        }
    }
    return out;
  }

  /**
   * The colour, scale, mean and std checks of {@link #fromMetadata} for a metadata block whose resize and
   * crop are read elsewhere (a detector's resize is [h, w]).
   */
  @SuppressWarnings("unchecked")
  public static Preprocess normalizationOnly(Map<String, Object> meta) {
    Map<String, Object> copy = new java.util.LinkedHashMap<>(meta);
    Object pre = meta.get("preprocessing");
    if (pre instanceof Map) {
      Map<String, Object> p = new java.util.LinkedHashMap<>((Map<String, Object>) pre);
      p.put("resize", 0L);
      p.put("crop", null);
      copy.put("preprocessing", p);
    }
    return fromMetadata(copy);
  }

  /** The whole pipeline for one image file; returns C*H*W floats and writes {C, H, W} into chw. */
  public float[] apply(String path, int[] chw) {
    Pixels px = pixels(path, 0, 0);
    chw[0] = px.channels;
    chw[1] = px.height;
    chw[2] = px.width;
    return normalize(px, scale, mean, std);
  }

  /**
   * The 8-bit pixels the graph sees for one image file, before normalisation: colour, resize, then the
   * metadata's crop, or (when it has none and fallbackH > 0) a center crop to fallbackH x fallbackW.
   */
  public Pixels pixels(String path, int fallbackH, int fallbackW) {
    Pixels px = toColor(readImage(path), color);
    if (resize > 0) {
      // an extreme aspect ratio resized up could ask for gigabytes: check the size first
      long oh = px.height <= px.width ? resize : (2L * px.height * resize + px.width) / (2L * px.width);
      long ow = px.height <= px.width ? (2L * px.width * resize + px.height) / (2L * px.height) : resize;
      Limits.checkImageSize(path, ow, oh, " after resizing to a shorter side of " + resize);
      px = resizeShorter(px, resize);
    }
    int ch = cropH > 0 ? cropH : fallbackH, cw = cropH > 0 ? cropW : fallbackW;
    if (ch > 0) {
      try {
        px = centerCrop(px, ch, cw);
      } catch (ModelException err) {
        throw new ModelException(path + ": " + err.getMessage());
      }
    }
    return px;
  }
}
