package toolkit.deploy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/** The inputs of text files, read as {@code toolkit predict} reads them (toolkit.nlp.deploy.read_text_inputs). */
public final class TextInput {
  private TextInput() {}

  /**
   * Every line that is not empty or whitespace-only, in file order. A line is what lies between '\n'
   * characters, without a trailing '\r'; other Unicode line separators stay inside the line.
   *
   * @throws ModelException a file that cannot be read, is not valid UTF-8, or has no non-blank line
   */
  public static List<String> readLines(List<String> paths) {
    List<String> out = new ArrayList<>();
    for (String path : paths) {
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(Paths.get(path));
      } catch (IOException err) {
        throw new ModelException("cannot read input file " + path + ": " + reason(err), err);
      }
      String text;
      try {
        text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
      } catch (CharacterCodingException err) {
        throw new ModelException("input file " + path + " is not valid UTF-8", err);
      }
      int before = out.size();
      for (String line : text.split("\n", -1)) {
        if (line.endsWith("\r")) line = line.substring(0, line.length() - 1);
        if (!isBlank(line)) out.add(line);
      }
      if (out.size() == before) throw new ModelException("input file " + path + " has no non-empty line");
    }
    return out;
  }

  private static String reason(IOException err) {
    if (err instanceof java.nio.file.NoSuchFileException) return "no such file";
    if (err instanceof java.nio.file.AccessDeniedException) return "permission denied";
    if (err instanceof java.nio.file.FileSystemException && ((java.nio.file.FileSystemException) err).getReason() != null)
      return ((java.nio.file.FileSystemException) err).getReason();
    return err.getMessage();
  }

  /** Python's {@code not line.strip()}: empty or only characters that str.isspace() accepts. */
  static boolean isBlank(String line) {
    return line.codePoints().allMatch(c -> Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85);
  }
}
