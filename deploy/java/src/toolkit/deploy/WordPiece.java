package toolkit.deploy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * BERT's WordPiece tokenizer, giving the ids of Hugging Face {@code tokenizers}' BertNormalizer +
 * BertPreTokenizer + WordPiece model, which is what {@code toolkit.nlp.tokenizers.BertWordPieceTokenizer}
 * (and so {@code toolkit predict}) runs.
 *
 * <p>Written by hand: no maintained Java WordPiece library is reachable here (no Maven repository),
 * and the algorithm is short. Steps, in HF's order:
 * <ol>
 *   <li>special tokens of the vocabulary found verbatim in the raw text are kept whole (HF "added
 *       tokens", matched leftmost-longest before any normalisation);
 *   <li>clean text: drop U+0000, U+FFFD and "other" characters (category C*, except tab, newline and
 *       carriage return), turn White_Space characters into a space;
 *   <li>CJK ideographs get a space on each side;
 *   <li>strip accents: NFD, then drop non-spacing marks (Mn);
 *   <li>lower-case code point by code point with the full (unconditional) mapping, as Rust's
 *       {@code char::to_lowercase}: no final-sigma rule, unlike {@link String#toLowerCase};
 *   <li>split on White_Space and around punctuation (ASCII punctuation or category P*), each
 *       punctuation character a word of its own;
 *   <li>greedy longest-match-first WordPiece with "##" continuations; a word longer than
 *       {@code maxInputCharsPerWord} code points, or with a rest no piece matches, becomes [UNK].
 * </ol>
 * <p>Character classes come from the JDK (JDK 17: Unicode 13). HF takes its categories from an older
 * table (the {@code unicode_categories} crate, frozen at about Unicode 9) and its lower-casing and NFD
 * from newer ones (Rust's standard library, {@code unicode-normalization}); the few ranges where they
 * disagree with JDK 17 are listed below, found by comparing every code point with {@code tokenizers}
 * 0.23 (tests/deploy/test_native_text_java.py repeats that comparison, so a drift shows up there).
 */
public final class WordPiece {
  /** Special tokens that HF's BertWordPieceTokenizer registers when the vocabulary has them. */
  static final String[] BERT_SPECIALS = {"[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"};

  /** Ranges (first, last) of category C* in the JDK that HF does not treat as control characters. */
  private static final int[] NOT_OTHER = {
      0x8E2, 0x8E2, 0x110CD, 0x110CD, 0x13430, 0x13438
  };
  /** Ranges of non-spacing marks (Mn) in the JDK that HF does not strip. */
  private static final int[] NOT_MN = {
      0x7FD, 0x7FD, 0x8D3, 0x8E1, 0x9FE, 0x9FE, 0xAFA, 0xAFF, 0xB55, 0xB55, 0xC04, 0xC04,
      0xD00, 0xD00, 0xD3B, 0xD3C, 0xD81, 0xD81, 0xEBA, 0xEBA, 0x1885, 0x1886, 0x1ABF, 0x1AC0,
      0x1DF6, 0x1DF9, 0x1DFB, 0x1DFB, 0xA82C, 0xA82C, 0xA8C5, 0xA8C5, 0xA8FF, 0xA8FF, 0xA9BD, 0xA9BD,
      0x10D24, 0x10D27, 0x10EAB, 0x10EAC, 0x10F46, 0x10F50, 0x111C9, 0x111C9, 0x111CF, 0x111CF, 0x1123E, 0x1123E,
      0x1133B, 0x1133B, 0x11438, 0x1143F, 0x11442, 0x11444, 0x11446, 0x11446, 0x1145E, 0x1145E, 0x1182F, 0x11837,
      0x11839, 0x1183A, 0x1193B, 0x1193C, 0x1193E, 0x1193E, 0x11943, 0x11943, 0x119D4, 0x119D7, 0x119DA, 0x119DB,
      0x119E0, 0x119E0, 0x11A01, 0x11A0A, 0x11A33, 0x11A38, 0x11A3B, 0x11A3E, 0x11A47, 0x11A47, 0x11A51, 0x11A56,
      0x11A59, 0x11A5B, 0x11A8A, 0x11A96, 0x11A98, 0x11A99, 0x11C30, 0x11C36, 0x11C38, 0x11C3D, 0x11C3F, 0x11C3F,
      0x11C92, 0x11CA7, 0x11CAA, 0x11CB0, 0x11CB2, 0x11CB3, 0x11CB5, 0x11CB6, 0x11D31, 0x11D36, 0x11D3A, 0x11D3A,
      0x11D3C, 0x11D3D, 0x11D3F, 0x11D45, 0x11D47, 0x11D47, 0x11D90, 0x11D91, 0x11D95, 0x11D95, 0x11D97, 0x11D97,
      0x11EF3, 0x11EF4, 0x16F4F, 0x16F4F, 0x16FE4, 0x16FE4, 0x1E000, 0x1E006, 0x1E008, 0x1E018, 0x1E01B, 0x1E021,
      0x1E023, 0x1E024, 0x1E026, 0x1E02A, 0x1E130, 0x1E136, 0x1E2EC, 0x1E2EF, 0x1E944, 0x1E94A
  };
  /** Ranges of punctuation (P*) in the JDK that HF does not split on. */
  private static final int[] NOT_PUNCT = {
      0x9FD, 0x9FD, 0xA76, 0xA76, 0xC77, 0xC77, 0xC84, 0xC84, 0x2E43, 0x2E4F, 0x2E52, 0x2E52,
      0x10EAD, 0x10EAD, 0x10F55, 0x10F59, 0x1144B, 0x1144F, 0x1145A, 0x1145B, 0x1145D, 0x1145D, 0x11660, 0x1166C,
      0x1183B, 0x1183B, 0x11944, 0x11946, 0x119E2, 0x119E2, 0x11A3F, 0x11A46, 0x11A9A, 0x11A9C, 0x11A9E, 0x11AA2,
      0x11C41, 0x11C45, 0x11C70, 0x11C71, 0x11EF7, 0x11EF8, 0x11FFF, 0x11FFF, 0x16E97, 0x16E9A, 0x16FE2, 0x16FE2,
      0x1E95E, 0x1E95F
  };
  /** Ranges HF splits on as punctuation that the JDK does not classify P*. */
  private static final int[] EXTRA_PUNCT = {
      0x166D, 0x166D, 0x111C9, 0x111C9
  };
  /** (upper, lower) pairs Rust's char::to_lowercase maps (Unicode 14-16) that the JDK's Character.toLowerCase leaves alone. */
  private static final int[] LOWER = {
      0x1C89, 0x1C8A, 0x2C2F, 0x2C5F, 0xA7C0, 0xA7C1, 0xA7CB, 0x264, 0xA7CC, 0xA7CD, 0xA7CE, 0xA7CF,
      0xA7D0, 0xA7D1, 0xA7D2, 0xA7D3, 0xA7D4, 0xA7D5, 0xA7D6, 0xA7D7, 0xA7D8, 0xA7D9, 0xA7DA, 0xA7DB,
      0xA7DC, 0x19B, 0x10570, 0x10597, 0x10571, 0x10598, 0x10572, 0x10599, 0x10573, 0x1059A, 0x10574, 0x1059B,
      0x10575, 0x1059C, 0x10576, 0x1059D, 0x10577, 0x1059E, 0x10578, 0x1059F, 0x10579, 0x105A0, 0x1057A, 0x105A1,
      0x1057C, 0x105A3, 0x1057D, 0x105A4, 0x1057E, 0x105A5, 0x1057F, 0x105A6, 0x10580, 0x105A7, 0x10581, 0x105A8,
      0x10582, 0x105A9, 0x10583, 0x105AA, 0x10584, 0x105AB, 0x10585, 0x105AC, 0x10586, 0x105AD, 0x10587, 0x105AE,
      0x10588, 0x105AF, 0x10589, 0x105B0, 0x1058A, 0x105B1, 0x1058C, 0x105B3, 0x1058D, 0x105B4, 0x1058E, 0x105B5,
      0x1058F, 0x105B6, 0x10590, 0x105B7, 0x10591, 0x105B8, 0x10592, 0x105B9, 0x10594, 0x105BB, 0x10595, 0x105BC,
      0x10D50, 0x10D70, 0x10D51, 0x10D71, 0x10D52, 0x10D72, 0x10D53, 0x10D73, 0x10D54, 0x10D74, 0x10D55, 0x10D75,
      0x10D56, 0x10D76, 0x10D57, 0x10D77, 0x10D58, 0x10D78, 0x10D59, 0x10D79, 0x10D5A, 0x10D7A, 0x10D5B, 0x10D7B,
      0x10D5C, 0x10D7C, 0x10D5D, 0x10D7D, 0x10D5E, 0x10D7E, 0x10D5F, 0x10D7F, 0x10D60, 0x10D80, 0x10D61, 0x10D81,
      0x10D62, 0x10D82, 0x10D63, 0x10D83, 0x10D64, 0x10D84, 0x10D65, 0x10D85, 0x16EA0, 0x16EBB, 0x16EA1, 0x16EBC,
      0x16EA2, 0x16EBD, 0x16EA3, 0x16EBE, 0x16EA4, 0x16EBF, 0x16EA5, 0x16EC0, 0x16EA6, 0x16EC1, 0x16EA7, 0x16EC2,
      0x16EA8, 0x16EC3, 0x16EA9, 0x16EC4, 0x16EAA, 0x16EC5, 0x16EAB, 0x16EC6, 0x16EAC, 0x16EC7, 0x16EAD, 0x16EC8,
      0x16EAE, 0x16EC9, 0x16EAF, 0x16ECA, 0x16EB0, 0x16ECB, 0x16EB1, 0x16ECC, 0x16EB2, 0x16ECD, 0x16EB3, 0x16ECE,
      0x16EB4, 0x16ECF, 0x16EB5, 0x16ED0, 0x16EB6, 0x16ED1, 0x16EB7, 0x16ED2, 0x16EB8, 0x16ED3
  };
  /** HF's NFD leaves this one (DIVES AKURU VOWEL SIGN O, composed since Unicode 13) as it is. */
  private static final int KEEP_COMPOSED = 0x11938;

  private final Map<String, Integer> ids;
  private final List<String> tokens;
  private final String[] specials;  // longest first: leftmost-longest matching
  private final boolean lowercase, stripAccents, chineseChars, cleanText;
  private final int maxInputCharsPerWord;
  private final int unkId;

  /**
   * @param tokens               the vocabulary, id = position
   * @param unkId                id of the unknown token
   * @param specialTokens        tokens matched verbatim in the raw text (each must be in the vocabulary)
   * @param maxInputCharsPerWord longer words become the unknown token
   */
  public WordPiece(List<String> tokens, int unkId, List<String> specialTokens, boolean lowercase, boolean stripAccents,
                   boolean chineseChars, boolean cleanText, int maxInputCharsPerWord) {
    this.tokens = List.copyOf(tokens);
    this.ids = new HashMap<>(tokens.size() * 2);
    for (int i = 0; i < tokens.size(); i++)
      if (ids.putIfAbsent(tokens.get(i), i) != null)
        throw new ModelException("vocabulary token '" + tokens.get(i) + "' appears twice (ids " + ids.get(tokens.get(i))
            + " and " + i + ")");
    if (unkId < 0 || unkId >= tokens.size()) throw new ModelException("unknown-token id " + unkId + " is not in the vocabulary");
    for (String s : specialTokens)
      if (!ids.containsKey(s)) throw new ModelException("special token '" + s + "' is not in the vocabulary");
    this.specials = specialTokens.stream().distinct().sorted((a, b) -> b.length() - a.length()).toArray(String[]::new);
    this.unkId = unkId;
    this.lowercase = lowercase;
    this.stripAccents = stripAccents;
    this.chineseChars = chineseChars;
    this.cleanText = cleanText;
    if (maxInputCharsPerWord < 1) throw new ModelException("max_input_chars_per_word must be >= 1");
    this.maxInputCharsPerWord = maxInputCharsPerWord;
  }

  /**
   * Reads a BERT {@code vocab.txt}: UTF-8, one token per line, '\n' line ends, line number (0-based) = id.
   *
   * @throws ModelException if the file cannot be read or is not UTF-8
   */
  public static List<String> readVocab(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException err) {
      throw new ModelException("cannot read tokenizer file " + file + ": " + err.getMessage(), err);
    }
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException err) {
      throw new ModelException("tokenizer file " + file + " is not valid UTF-8", err);
    }
    List<String> out = new ArrayList<>(Arrays.asList(text.split("\n", -1)));
    if (!out.isEmpty() && out.get(out.size() - 1).isEmpty()) out.remove(out.size() - 1);  // final line end
    if (out.isEmpty()) throw new ModelException("tokenizer file " + file + " is empty");
    return out;
  }

  /**
   * The tokenizer a text export describes: its vocabulary file and options. The tokens matched
   * verbatim are those of the unk/pad/cls/sep ids plus the block's "special_tokens".
   *
   * @throws ModelException a vocabulary that is not UTF-8, ids outside it, special tokens it lacks
   */
  public static WordPiece fromSpec(TokenizerSpec spec) {
    List<String> tokens = readVocab(spec.file);
    List<String> specials = new ArrayList<>();
    String[] roles = {"unk_id", "pad_id", "cls_id", "sep_id"};
    Integer[] values = {spec.unkId, spec.padId, spec.clsId, spec.sepId};
    for (int r = 0; r < roles.length; r++) {
      if (values[r] == null) continue;
      if (values[r] < 0 || values[r] >= tokens.size())
        throw new ModelException(roles[r] + " " + values[r] + " is outside the " + tokens.size() + " tokens of " + spec.file);
      specials.add(tokens.get(values[r]));
    }
    List<String> absent = new ArrayList<>(spec.specialTokens);
    absent.removeAll(tokens);
    if (!absent.isEmpty()) throw new ModelException("special tokens " + absent + " are not in " + spec.file);
    specials.addAll(spec.specialTokens);
    try {
      return new WordPiece(tokens, spec.unkId, specials, spec.lowercase, spec.stripAccents, spec.chineseChars,
          spec.cleanText, spec.maxInputCharsPerWord);
    } catch (ModelException err) {
      throw new ModelException("tokenizer file " + spec.file + " is not a usable WordPiece vocabulary: " + err.getMessage(), err);
    }
  }

  /** Id of {@code token}, or null if the vocabulary lacks it. */
  public Integer id(String token) {
    return ids.get(token);
  }

  public int size() {
    return tokens.size();
  }

  /** Word-piece ids of {@code text}, without [CLS]/[SEP]. */
  public List<Integer> encode(String text) {
    List<Integer> out = new ArrayList<>();
    int start = 0, pos = 0;
    while (pos < text.length()) {
      String match = null;
      for (String s : specials)
        if (text.startsWith(s, pos)) {
          match = s;  // sorted longest first
          break;
        }
      if (match == null) {
        pos++;
        continue;
      }
      encodeSegment(text.substring(start, pos), out);
      out.add(ids.get(match));
      pos += match.length();
      start = pos;
    }
    encodeSegment(text.substring(start), out);
    return out;
  }

  private void encodeSegment(String text, List<Integer> out) {
    if (text.isEmpty()) return;
    for (String word : split(normalize(text))) wordPieces(word, out);
  }

  /** The BertNormalizer steps (clean text, CJK spacing, accents, lower case) on text without special tokens. */
  public String normalize(String text) {
    StringBuilder sb = new StringBuilder(text.length() + 8);
    for (int i = 0; i < text.length(); ) {
      int cp = text.codePointAt(i);
      i += Character.charCount(cp);
      if (cleanText) {
        if (cp == 0 || cp == 0xFFFD || isOther(cp)) continue;
        if (isWhitespace(cp)) cp = ' ';
      }
      if (chineseChars && isChinese(cp)) sb.append(' ').appendCodePoint(cp).append(' ');
      else sb.appendCodePoint(cp);
    }
    String s = sb.toString();
    if (stripAccents) {
      String nfd = nfd(s);
      sb.setLength(0);
      nfd.codePoints().filter(c -> !isNonspacingMark(c)).forEach(sb::appendCodePoint);
      s = sb.toString();
    }
    if (lowercase) {
      sb.setLength(0);
      s.codePoints().forEach(c -> appendLower(sb, c));
      s = sb.toString();
    }
    return s;
  }

  private static String nfd(String s) {
    int cut = s.indexOf(new String(Character.toChars(KEEP_COMPOSED)));
    if (cut < 0) return Normalizer.normalize(s, Normalizer.Form.NFD);
    return nfd(s.substring(0, cut)) + s.substring(cut, cut + 2) + nfd(s.substring(cut + 2));
  }

  /** Rust's char::to_lowercase: the simple mapping, except U+0130, the one unconditional multi-character mapping. */
  static void appendLower(StringBuilder sb, int cp) {
    if (cp == 0x130) {
      sb.append("i\u0307");
      return;
    }
    int lower = Character.toLowerCase(cp);
    if (lower == cp) {
      int at = pairIndex(LOWER, cp);
      if (at >= 0) lower = LOWER[at + 1];
    }
    sb.appendCodePoint(lower);
  }

  /** Index of the pair (cp, value) in a sorted pair table, or -1. */
  private static int pairIndex(int[] pairs, int cp) {
    int lo = 0, hi = pairs.length / 2 - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1, key = pairs[2 * mid];
      if (key == cp) return 2 * mid;
      if (key < cp) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Whether cp lies in one of the sorted (first, last) ranges. */
  private static boolean inRanges(int[] ranges, int cp) {
    int lo = 0, hi = ranges.length / 2 - 1;
    while (lo <= hi) {
      int mid = (lo + hi) >>> 1;
      if (cp < ranges[2 * mid]) hi = mid - 1;
      else if (cp > ranges[2 * mid + 1]) lo = mid + 1;
      else return true;
    }
    return false;
  }

  static boolean isNonspacingMark(int cp) {
    return Character.getType(cp) == Character.NON_SPACING_MARK && !inRanges(NOT_MN, cp);
  }

  /** BertPreTokenizer: words split on White_Space, each punctuation character its own word. */
  public static List<String> split(String text) {
    List<String> words = new ArrayList<>();
    int start = -1;
    for (int i = 0; i < text.length(); ) {
      int cp = text.codePointAt(i);
      int next = i + Character.charCount(cp);
      if (isWhitespace(cp) || isPunctuation(cp)) {
        if (start >= 0) words.add(text.substring(start, i));
        start = -1;
        if (!isWhitespace(cp)) words.add(text.substring(i, next));
      } else if (start < 0) {
        start = i;
      }
      i = next;
    }
    if (start >= 0) words.add(text.substring(start));
    return words;
  }

  private void wordPieces(String word, List<Integer> out) {
    int n = word.codePointCount(0, word.length());
    if (n > maxInputCharsPerWord) {
      out.add(unkId);
      return;
    }
    int mark = out.size();
    int start = 0;  // char offsets
    while (start < word.length()) {
      int end = word.length();
      Integer found = null;
      while (start < end) {
        String piece = start > 0 ? "##" + word.substring(start, end) : word.substring(start, end);
        found = ids.get(piece);
        if (found != null) break;
        end = word.offsetByCodePoints(end, -1);
      }
      if (found == null) {
        out.subList(mark, out.size()).clear();
        out.add(unkId);
        return;
      }
      out.add(found);
      start = end;
    }
  }

  /** Rust's char::is_whitespace (the White_Space property): Zs, Zl, Zp, U+0009..U+000D and U+0085. */
  static boolean isWhitespace(int cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || Character.isSpaceChar(cp);
  }

  /** Category C* as HF sees it (control, format, surrogate, private use; not unassigned), except \t, \n and \r. */
  static boolean isOther(int cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r' || inRanges(NOT_OTHER, cp)) return false;
    switch (Character.getType(cp)) {
      case Character.CONTROL:
      case Character.FORMAT:
      case Character.SURROGATE:
      case Character.PRIVATE_USE:
        return true;
      default:
        return false;
    }
  }

  /** ASCII punctuation (33-47, 58-64, 91-96, 123-126) or category P*. */
  static boolean isPunctuation(int cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
    if (inRanges(EXTRA_PUNCT, cp)) return true;
    if (inRanges(NOT_PUNCT, cp)) return false;
    switch (Character.getType(cp)) {
      case Character.CONNECTOR_PUNCTUATION:
      case Character.DASH_PUNCTUATION:
      case Character.START_PUNCTUATION:
      case Character.END_PUNCTUATION:
      case Character.INITIAL_QUOTE_PUNCTUATION:
      case Character.FINAL_QUOTE_PUNCTUATION:
      case Character.OTHER_PUNCTUATION:
        return true;
      default:
        return false;
    }
  }

  /** The CJK ideograph blocks that BERT surrounds with spaces (as HF: from U+2B920, not BERT's U+2B820). */
  static boolean isChinese(int cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
        || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
        || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }
}
