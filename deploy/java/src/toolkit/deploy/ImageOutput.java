package toolkit.deploy;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.WritableRaster;
import java.io.File;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import javax.imageio.ImageIO;

/**
 * Files the vision tasks write, as toolkit/cv/deploy/segmentation.py writes them: the output folder
 * (created, checked), PNGs written to a temporary file and renamed (mode 0644), and the paths printed
 * in Python's pathlib spelling.
 */
final class ImageOutput {
  private ImageOutput() {}

  /** Creates/checks the folder results are written to (option names the flag in the error). */
  static Path folder(String out, String option) {
    Path folder = Paths.get(out);
    try {
      Files.createDirectories(folder);
    } catch (FileAlreadyExistsException err) {
      throw new ModelException(option + " " + pyPath(out) + " cannot be created: File exists");
    } catch (AccessDeniedException err) {
      throw new ModelException(option + " " + pyPath(out) + " cannot be created: Permission denied");
    } catch (FileSystemException err) {
      String reason = err.getReason() != null ? err.getReason() : err.getMessage();
      throw new ModelException(option + " " + pyPath(out) + " cannot be created: " + reason);
    } catch (IOException | SecurityException err) {
      throw new ModelException(option + " " + pyPath(out) + " cannot be created: " + err.getMessage());
    }
    if (!Files.isWritable(folder) || !Files.isExecutable(folder))
      throw new ModelException(option + " " + pyPath(out) + " cannot be written (permission denied)");
    return folder;
  }

  /** Path(text) as pathlib prints it: "." parts and repeated or trailing slashes dropped (".." kept). */
  static String pyPath(String text) {
    if (text.isEmpty()) return ".";
    StringBuilder sb = new StringBuilder();
    if (text.startsWith("/")) sb.append(text.startsWith("//") && !text.startsWith("///") ? "//" : "/");
    boolean first = true;
    for (String part : text.split("/")) {
      if (part.isEmpty() || part.equals(".")) continue;
      if (!first) sb.append('/');
      sb.append(part);
      first = false;
    }
    return sb.length() == 0 ? "." : sb.toString();
  }

  /** pathlib's Path(p).stem: the file name without its last suffix (".bashrc" keeps its dot). */
  static String stem(String path) {
    String name = new File(path).getName();
    int dot = name.lastIndexOf('.');
    return dot > 0 && dot < name.length() - 1 ? name.substring(0, dot) : name;
  }

  /** {@code folder/<name>} in pathlib's spelling. */
  static String child(String folder, String name) {
    String base = pyPath(folder);
    return base.equals(".") ? name : (base.endsWith("/") ? base + name : base + "/" + name);
  }

  /** An 8-bit palette PNG: pixel value = class id, colours = palette (256 entries, no transparency). */
  static BufferedImage indexed(byte[] mask, int h, int w, int[][] palette) {
    byte[] r = new byte[256], g = new byte[256], b = new byte[256];
    for (int c = 0; c < palette.length; c++) {
      r[c] = (byte) palette[c][0];
      g[c] = (byte) palette[c][1];
      b[c] = (byte) palette[c][2];
    }
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_INDEXED, new IndexColorModel(8, 256, r, g, b));
    WritableRaster raster = img.getRaster();
    raster.setDataElements(0, 0, w, h, mask);
    return img;
  }

  /** 8-bit RGB from HWC pixels (grey repeated into the three channels). */
  static BufferedImage rgb(Preprocess.Pixels px) {
    BufferedImage img = new BufferedImage(px.width, px.height, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < px.height; y++)
      for (int x = 0; x < px.width; x++) {
        int o = (y * px.width + x) * px.channels;
        int r = px.data[o], g = px.channels == 3 ? px.data[o + 1] : r, b = px.channels == 3 ? px.data[o + 2] : r;
        img.setRGB(x, y, (r << 16) | (g << 8) | b);
      }
    return img;
  }

  /** Writes a PNG so that a reader never sees it half-written: a temporary file beside it, then a rename. */
  static void writePng(BufferedImage img, String target) {
    Path path = Paths.get(target);
    Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
    try {
      if (!ImageIO.write(img, "png", tmp.toFile())) throw new IOException("no PNG writer for this image");
      try {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
      } catch (UnsupportedOperationException ignored) {
        // not a POSIX file system: keep the default mode
      }
      Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException err) {
      try {
        Files.deleteIfExists(tmp);
      } catch (IOException ignored) {
        // the original error is the one to report
      }
      String why = err instanceof FileSystemException && ((FileSystemException) err).getReason() != null
          ? ((FileSystemException) err).getReason() : err.getMessage();
      throw new ModelException("cannot write " + target + ": " + why, err);
    }
  }
}
