package toolkit.deploy;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Segmentation and detection exports, as toolkit/cv/deploy/{segmentation,detection}.py (and
 * deploy/cpp/src/vision_tasks.cpp) serve them: the same checks in the same order, the same JSON.
 */
public final class VisionTasks {
  public static final String SEGMENTATION = "segmentation";
  public static final String DETECTION = "detection";

  private VisionTasks() {}

  // ------------------------------------------------------------------ segmentation

  /** The metadata's palette, one {r, g, b} per class; a missing or malformed one is refused. */
  static int[][] palette(Map<String, Object> meta, int nclass) {
    Object pal = meta.get("palette");
    if (pal == null)
      throw new ModelException("the export's metadata has no palette (a segmentation export lists one [r, g, b] per "
          + "class); re-export it with toolkit export");
    boolean ok = pal instanceof List && ((List<?>) pal).size() == nclass;
    int[][] out = new int[nclass][3];
    for (int c = 0; ok && c < nclass; c++) {
      Object rgb = ((List<?>) pal).get(c);
      ok = rgb instanceof List && ((List<?>) rgb).size() == 3;
      for (int i = 0; ok && i < 3; i++) {
        Object v = ((List<?>) rgb).get(i);
        ok = v instanceof Long && (Long) v >= 0 && (Long) v <= 255;
        if (ok) out[c][i] = (int) (long) (Long) v;
      }
    }
    if (!ok)
      throw new ModelException("the metadata's palette must list " + nclass + " colours [r, g, b] (integers 0..255), one per class");
    return out;
  }

  /**
   * Segments image files: per image OUT/&lt;stem&gt;.png (the class map as an indexed PNG with the
   * metadata's palette; with overlay also &lt;stem&gt;_overlay.png) and {input, mask, classes: {label: pixels}}.
   */
  public static List<Map<String, Object>> segment(Predictor p, List<String> inputs, String out, boolean overlay) {
    Map<String, Object> meta = p.metadata();
    List<?> specs = (List<?>) meta.get("inputs");
    Object shapeObj = specs.size() == 1 ? ((Map<?, ?>) specs.get(0)).get("shape") : null;
    if (!(shapeObj instanceof List) || ((List<?>) shapeObj).size() != 4)
      throw new ModelException("a segmentation export takes one NCHW image input");
    List<?> shape = (List<?>) shapeObj;
    List<String> classes = Predictor.classNames(meta);
    Object num = meta.get("num_classes");
    long n = num instanceof Long && (Long) num != 0 ? (Long) num : classes != null ? classes.size() : 0;
    if (n < 1 || n > 256)
      throw new ModelException("a segmentation export needs num_classes in 1..256 in its metadata, got " + n);
    int nclass = (int) n;
    int[][] palette = palette(meta, nclass);
    boolean named = classes != null && classes.size() == nclass;
    Preprocess pre = Preprocess.fromMetadata(meta);
    List<String> stems = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    for (String path : inputs) {
      String stem = ImageOutput.stem(path);
      if (!seen.add(stem))
        throw new ModelException("inputs share the file name '" + stem + "'; their masks would overwrite each other");
      stems.add(stem);
    }
    if (out == null) throw new ModelException("segmentation writes its class maps to a folder: pass --out DIR");
    ImageOutput.folder(out, "--out");
    List<Map<String, Object>> results = new ArrayList<>();
    for (int i = 0; i < inputs.size(); i++) {
      String path = inputs.get(i);
      Preprocess.Pixels px = pre.pixels(path, 0, 0);
      long[] want = new long[3];
      for (int d = 0; d < 3; d++) want[d] = shape.get(d + 1) instanceof Long ? (Long) shape.get(d + 1) : -1;
      if ((want[0] >= 0 && want[0] != px.channels) || (want[1] >= 0 && want[1] != px.height)
          || (want[2] >= 0 && want[2] != px.width))
        throw new ModelException(path + ": preprocessing gives a [" + px.channels + ", " + px.height + ", " + px.width
            + "] tensor but the graph takes " + Predictor.shapeText(want) + " (check 'resize'/'crop' in the metadata)");
      float[] logits = p.predict(Preprocess.normalize(px, pre.scale, pre.mean, pre.std),
          new long[] {1, px.channels, px.height, px.width});
      long[] os = p.outputShape();
      if (os.length != 4)
        throw new ModelException("the graph returned shape " + Predictor.shapeText(os)
            + "; a segmentation model returns (N, C, H, W)");
      for (float v : logits)
        if (!Float.isFinite(v)) throw new ModelException("the model returned non-finite logits (NaN or infinity) for " + path);
      if (os[1] != nclass)
        throw new ModelException("the graph returned " + os[1] + " classes; the metadata says " + nclass);
      int oh = (int) os[2], ow = (int) os[3], plane = oh * ow;
      byte[] mask = new byte[plane];
      long[] counts = new long[nclass];
      for (int px0 = 0; px0 < plane; px0++) {
        int best = 0;
        float bestV = logits[px0];
        for (int k = 1; k < nclass; k++) {
          float v = logits[k * plane + px0];
          if (v > bestV) {  // strict: ties keep the lowest id, as numpy's argmax
            bestV = v;
            best = k;
          }
        }
        mask[px0] = (byte) best;
        counts[best]++;
      }
      String target = ImageOutput.child(out, stems.get(i) + ".png");
      ImageOutput.writePng(ImageOutput.indexed(mask, oh, ow, palette), target);
      if (overlay) {
        if (px.height != oh || px.width != ow)
          throw new ModelException("the class map is " + oh + "x" + ow + " but the image fed to the graph " + px.height
              + "x" + px.width + ": no overlay");
        ImageOutput.writePng(overlay(px, mask, palette), ImageOutput.child(out, stems.get(i) + "_overlay.png"));
      }
      Map<String, Object> found = new LinkedHashMap<>();
      for (int k = 0; k < nclass; k++)
        if (counts[k] > 0) found.put(named ? classes.get(k) : Integer.toString(k), counts[k]);
      Map<String, Object> item = new LinkedHashMap<>();
      item.put("input", path);
      item.put("mask", target);
      item.put("classes", found);
      results.add(item);
    }
    return results;
  }

  /** The image blended half and half with the class colours, (a + b + 1) / 2 in integers; class 0 left as the image. */
  static BufferedImage overlay(Preprocess.Pixels px, byte[] mask, int[][] palette) {
    BufferedImage img = ImageOutput.rgb(px);
    for (int y = 0; y < px.height; y++)
      for (int x = 0; x < px.width; x++) {
        int c = mask[y * px.width + x] & 0xff;
        if (c == 0) continue;
        int rgb = img.getRGB(x, y);
        int r = ((rgb >> 16 & 0xff) + palette[c][0] + 1) / 2;
        int g = ((rgb >> 8 & 0xff) + palette[c][1] + 1) / 2;
        int b = ((rgb & 0xff) + palette[c][2] + 1) / 2;
        img.setRGB(x, y, (r << 16) | (g << 8) | b);
      }
    return img;
  }

  // ------------------------------------------------------------------ detection

  /** Python's float repr-ish text of a threshold for the error message. */
  private static String number(double v) {
    if (Double.isNaN(v)) return "nan";
    if (Double.isInfinite(v)) return v > 0 ? "inf" : "-inf";
    return Double.toString(v);
  }

  /**
   * Detects objects in image files: per image {input, detections: [{index, label, score, box}]} best first,
   * boxes [x1, y1, x2, y2] in the image's own pixels (x * W / w, y * H / h, not clipped), scores >= threshold.
   *
   * @param draw if not null, a folder for &lt;stem&gt;.png pictures with the boxes
   */
  @SuppressWarnings("unchecked")
  public static List<Map<String, Object>> detect(Predictor p, List<String> inputs, double threshold, String draw) {
    Map<String, Object> meta = p.metadata();
    if (!(threshold >= 0.0 && threshold <= 1.0))  // also refuses NaN
      throw new ModelException("--threshold must be between 0 and 1, got " + number(threshold));
    Object det = meta.get("detection");
    if (!(det instanceof Map) || !"NonMaxSuppression".equals(((Map<?, ?>) det).get("nms")))
      throw new ModelException("the export's metadata has no detection block (NMS in the graph); re-export the "
          + "detector with toolkit export");
    List<String> classes = Predictor.classNames(meta);
    if (classes == null) throw new ModelException("a detector export lists its class names in the metadata (classes)");
    List<?> specs = (List<?>) meta.get("inputs");
    Object shape = specs.size() == 1 ? ((Map<?, ?>) specs.get(0)).get("shape") : null;
    if (!(shape instanceof List) || ((List<?>) shape).size() != 4)
      throw new ModelException("a detector export takes one NCHW image input");
    Object preObj = meta.get("preprocessing");
    if (!(preObj instanceof Map)) throw new ModelException("the detector export's metadata has no preprocessing block");
    Map<String, Object> preMap = (Map<String, Object>) preObj;
    Object size = preMap.get("resize");
    boolean okSize = size instanceof List && ((List<?>) size).size() == 2;
    for (int d = 0; okSize && d < 2; d++) {
      Object v = ((List<?>) size).get(d);
      okSize = v instanceof Long && (Long) v >= 1 && (Long) v <= Limits.MAX_PREPROCESS_SIZE;
    }
    if (!okSize)
      throw new ModelException("detector preprocessing resize must be [h, w] (1.." + Limits.MAX_PREPROCESS_SIZE + "), got "
          + Json.write(size));
    Object crop = preMap.get("crop");
    if (crop != null && !Boolean.FALSE.equals(crop) && !(crop instanceof Long && (Long) crop == 0)
        && !(crop instanceof List && ((List<?>) crop).isEmpty()))
      throw new ModelException("detector preprocessing with a crop is not supported (boxes map back through the resize)");
    int rh = (int) (long) (Long) ((List<?>) size).get(0), rw = (int) (long) (Long) ((List<?>) size).get(1);
    Preprocess norm = Preprocess.normalizationOnly(meta);
    if (draw != null) ImageOutput.folder(draw, "--draw");
    List<Map<String, Object>> results = new ArrayList<>();
    for (String path : inputs) {
      Preprocess.Pixels pixels = Preprocess.toColor(Preprocess.readImage(path), norm.color);
      double sx = (double) pixels.width / rw, sy = (double) pixels.height / rh;
      float[] data = Preprocess.normalize(Preprocess.resizeTo(pixels, rh, rw), norm.scale, norm.mean, norm.std);
      p.predict(data, new long[] {1, pixels.channels, rh, rw});
      Predictor.Tensor ids = p.output(0), scores = p.output(1), boxes = p.output(2);
      if (ids.shape.length != 3 || ids.shape[0] != 1 || !java.util.Arrays.equals(scores.shape, ids.shape)
          || boxes.shape.length != 3 || boxes.shape[2] != 4 || boxes.shape[1] != ids.shape[1])
        throw new ModelException("a detector export returns three outputs (ids, scores, bboxes) of shapes (1, K, 1), "
            + "(1, K, 1), (1, K, 4)");
      List<Object> items = new ArrayList<>();
      for (int j = 0; j < ids.shape[1]; j++) {
        int cls = (int) ids.data[j];
        double score = scores.data[j];
        if (cls < 0 || score < threshold) continue;
        float[] b = java.util.Arrays.copyOfRange(boxes.data, 4 * j, 4 * j + 4);
        boolean finite = Float.isFinite(b[0]) && Float.isFinite(b[1]) && Float.isFinite(b[2]) && Float.isFinite(b[3]);
        if (cls >= classes.size() || !finite)
          throw new ModelException("the detector returned class " + cls + " or a non-finite box for " + path);
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("index", (long) cls);
        d.put("label", classes.get(cls));
        d.put("score", score);
        d.put("box", List.of(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy));
        items.add(d);
      }
      if (draw != null) ImageOutput.writePng(drawBoxes(pixels, items), ImageOutput.child(draw, ImageOutput.stem(path) + ".png"));
      Map<String, Object> item = new LinkedHashMap<>();
      item.put("input", path);
      item.put("detections", items);
      results.add(item);
    }
    return results;
  }

  /** A colour per class id, the same in the C++ runner: hue steps of the golden angle. */
  static Color classColor(int cls) {
    return Color.getHSBColor((float) ((cls * 0.618033988749895) % 1.0), 0.85f, 0.95f);
  }

  /** The image at its own size with each box outlined and labelled "label score" in its class colour. */
  @SuppressWarnings("unchecked")
  static BufferedImage drawBoxes(Preprocess.Pixels pixels, List<Object> items) {
    BufferedImage img = ImageOutput.rgb(pixels);
    Graphics2D g = img.createGraphics();
    try {
      int thick = Math.max(1, Math.min(img.getWidth(), img.getHeight()) / 200);
      g.setStroke(new BasicStroke(thick));
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, Math.max(10, Math.min(img.getWidth(), img.getHeight()) / 40)));
      FontMetrics fm = g.getFontMetrics();
      for (Object o : items) {
        Map<String, Object> d = (Map<String, Object>) o;
        List<Double> box = (List<Double>) d.get("box");
        int x1 = (int) Math.round(box.get(0)), y1 = (int) Math.round(box.get(1));
        int x2 = (int) Math.round(box.get(2)), y2 = (int) Math.round(box.get(3));
        Color colour = classColor((int) (long) (Long) d.get("index"));
        g.setColor(colour);
        g.drawRect(Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1));
        String text = d.get("label") + " " + Format.fixed((Double) d.get("score"), 3);
        int ty = Math.max(fm.getAscent(), Math.min(y1, y2) - 2);
        g.fillRect(Math.min(x1, x2), ty - fm.getAscent(), fm.stringWidth(text) + 4, fm.getHeight());
        g.setColor(Color.WHITE);
        g.drawString(text, Math.min(x1, x2) + 2, ty);
      }
    } finally {
      g.dispose();
    }
    return img;
  }
}
