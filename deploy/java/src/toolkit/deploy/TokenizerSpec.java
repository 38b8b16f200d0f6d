package toolkit.deploy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The "tokenizer" block of a text export's metadata (see toolkit/nlp/deploy.py), checked: a known
 * type, the tokenizer file beside PREFIX.json with the recorded sha256, integer ids.
 */
public final class TokenizerSpec {
  public final String type;  // "wordpiece" or "sentencepiece"
  public final Path file;
  public final boolean lowercase, stripAccents, chineseChars, cleanText;
  public final int maxInputCharsPerWord, maxLength;
  /** Special ids; null where the vocabulary has none. */
  public final Integer unkId, padId, clsId, sepId, bosId, eosId;
  /** WordPiece: tokens matched verbatim in the raw text (besides those of the ids above). */
  public final List<String> specialTokens;

  private TokenizerSpec(Map<?, ?> block, Path file) {
    this.type = (String) block.get("type");
    this.file = file;
    this.lowercase = bool(block, "lowercase", type.equals("wordpiece"));
    this.stripAccents = bool(block, "strip_accents", lowercase);
    this.chineseChars = bool(block, "tokenize_chinese_chars", true);
    this.cleanText = bool(block, "clean_text", true);
    this.maxInputCharsPerWord = intValue(block, "max_input_chars_per_word", 100);
    this.maxLength = intValue(block, "max_length", -1);
    this.unkId = id(block, "unk_id");
    this.padId = id(block, "pad_id");
    this.clsId = id(block, "cls_id");
    this.sepId = id(block, "sep_id");
    this.bosId = id(block, "bos_id");
    this.eosId = id(block, "eos_id");
    List<String> specials = new ArrayList<>();
    Object listed = block.get("special_tokens");
    if (listed != null) {
      if (!(listed instanceof List)) throw new ModelException("the tokenizer's special_tokens must be a list of strings");
      for (Object t : (List<?>) listed) {
        if (!(t instanceof String)) throw new ModelException("the tokenizer's special_tokens must be a list of strings");
        specials.add((String) t);
      }
    }
    this.specialTokens = List.copyOf(specials);
  }

  /**
   * Reads meta["tokenizer"] and checks the tokenizer file it names.
   *
   * @param folder the folder of PREFIX.json (the block's "file" is relative to it)
   * @throws ModelException no block, an unknown type, missing keys, a missing or corrupt file
   */
  public static TokenizerSpec fromMetadata(Map<String, Object> meta, Path folder) {
    Object entry = meta.get("tokenizer");
    if (entry == null)
      throw new ModelException("the metadata of model '" + meta.get("model") + "' (task '" + meta.get("task")
          + "') has no \"tokenizer\" block; export text models with toolkit.nlp.deploy.export_text or "
          + "`toolkit export ... --tokenizer DIR`");
    if (!(entry instanceof Map)) throw new ModelException("the metadata's \"tokenizer\" must be an object");
    Map<?, ?> block = (Map<?, ?>) entry;
    Object type = block.get("type");
    if (!"wordpiece".equals(type) && !"sentencepiece".equals(type))
      throw new ModelException("unknown tokenizer type '" + type + "' in the metadata; known: wordpiece, sentencepiece");
    List<String> missing = new ArrayList<>();
    for (String key : new String[] {"file", "sha256", "unk_id", "max_length"})
      if (block.get(key) == null) missing.add(key);
    if (!missing.isEmpty()) throw new ModelException("the metadata's tokenizer block lacks " + String.join(", ", missing));
    if (!(block.get("file") instanceof String) || !(block.get("sha256") instanceof String))
      throw new ModelException("the tokenizer block's file and sha256 must be strings");
    String name = (String) block.get("file");
    // a file name beside PREFIX.json: never a path out of the export folder
    if (name.isEmpty() || name.equals(".") || name.equals("..") || name.contains("/") || name.contains("\\")
        || name.indexOf('\0') >= 0)
      throw new ModelException("the tokenizer file must be a file name beside the metadata, not '" + name + "'");
    Path file = folder.resolve(name);
    if (!Files.isRegularFile(file))
      throw new ModelException("tokenizer file " + file + " not found (the metadata names '" + block.get("file") + "')");
    String digest = Predictor.sha256(file);
    String recorded = (String) block.get("sha256");
    if (!digest.equals(recorded))
      throw new ModelException("tokenizer file " + file + " is corrupt or was replaced: sha256 " + digest.substring(0, 12)
          + "... but the metadata records " + recorded.substring(0, Math.min(12, recorded.length())) + "...");
    TokenizerSpec spec = new TokenizerSpec(block, file);
    if (spec.maxLength < 2) throw new ModelException("the tokenizer's max_length must be an int >= 2, got " + block.get("max_length"));
    return spec;
  }

  /** The id of a role that the task cannot do without. */
  int require(Integer id, String role, String task) {
    if (id == null) throw new ModelException("a " + task + " tokenizer block needs " + role);
    return id;
  }

  private static boolean bool(Map<?, ?> block, String key, boolean dflt) {
    Object v = block.get(key);
    if (v == null) return dflt;
    if (!(v instanceof Boolean)) throw new ModelException("the tokenizer's " + key + " must be true or false, got " + v);
    return (Boolean) v;
  }

  private static int intValue(Map<?, ?> block, String key, int dflt) {
    Object v = block.get(key);
    if (v == null) return dflt;
    if (!(v instanceof Long) || (Long) v > Integer.MAX_VALUE || (Long) v < Integer.MIN_VALUE)
      throw new ModelException("the tokenizer's " + key + " must be an integer, got " + v);
    return (int) (long) (Long) v;
  }

  private static Integer id(Map<?, ?> block, String key) {
    return block.get(key) == null ? null : intValue(block, key, -1);
  }
}
