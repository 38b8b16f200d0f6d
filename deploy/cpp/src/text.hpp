// The text path of the runner: input text files, the tokenizer an export records in its metadata
// ("tokenizer" block of PREFIX.json, see notes on the text deployment contract), and the two
// tokenizers themselves, written to give the ids of the Python tokenizers exactly:
//   * WordPiece: HF `tokenizers` BertNormalizer + BertPreTokenizer + WordPiece (as
//     toolkit.nlp.tokenizers.BertWordPieceTokenizer builds it), with ICU for the Unicode data;
//   * SentencePiece: libsentencepiece (toolkit.nlp.tokenizers.SentencepieceTokenizer).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace toolkit {

// An input text file cannot be used (missing, unreadable, not UTF-8, no non-blank line).
struct TextError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The inputs of one text file: every line (split on '\n', one trailing '\r' removed) that is not
// empty or whitespace-only (Python's str.isspace), in file order. Throws TextError.
std::vector<std::string> read_text_lines(const std::string& path);

// The metadata's "tokenizer" block, checked; `path` is the tokenizer file beside PREFIX.json.
struct TokenizerConfig {
  std::string type, path;
  bool lowercase = false;
  // wordpiece only
  bool strip_accents = false, tokenize_chinese_chars = true, clean_text = true;
  int max_input_chars_per_word = 100;
  // "special_tokens": tokens matched verbatim in the raw text besides those of the ids above;
  // without the key, whichever of [UNK] [PAD] [CLS] [SEP] [MASK] the vocabulary has
  bool has_special_tokens = false;
  std::vector<std::string> special_tokens;
  // -1 where the metadata says null
  std::int64_t unk_id = -1, pad_id = -1, cls_id = -1, sep_id = -1, bos_id = -1, eos_id = -1;
  std::int64_t max_length = 0;

  // Reads meta["tokenizer"] and checks the file's sha256; throws ModelError saying what is wrong.
  static TokenizerConfig from_metadata(const nlohmann::json& meta, const std::string& prefix);
};

// Python's str.lower(): full Unicode lower-case mapping with the final-sigma rule (ICU, root locale).
std::string python_lower(const std::string& utf8);

// BERT's WordPiece tokenizer. No maintained C++ WordPiece library is packaged in Debian, so this
// is written here, step for step after HF `tokenizers` (normalizers/bert.rs,
// pre_tokenizers/bert.rs, models/wordpiece): special tokens of the vocabulary matched verbatim
// in the raw text; clean text; CJK ideographs as words; NFD + drop Mn; per-character
// lower-casing; split on whitespace and punctuation; greedy longest-match-first word pieces.
class WordPiece {
 public:
  // Reads the vocabulary (one token per line, line number = id); throws ModelError.
  WordPiece(const std::string& vocab_path, const TokenizerConfig& cfg);

  // Ids of the word pieces of `text` (no [CLS]/[SEP] added).
  std::vector<std::int64_t> encode(const std::string& text) const;
  std::size_t size() const { return tokens_.size(); }

 private:
  void encode_segment(const std::string& text, std::vector<std::int64_t>& ids) const;
  void encode_word(const std::u32string& word, std::vector<std::int64_t>& ids) const;

  TokenizerConfig cfg_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
  std::vector<std::string> specials_;  // matched in the raw text, longest first
};

// A SentencePiece model (libsentencepiece), with the export's lower-casing.
class SentencePiece {
 public:
  SentencePiece(const std::string& model_path, const TokenizerConfig& cfg);
  ~SentencePiece();
  std::vector<std::int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<std::int64_t>& ids) const;
  std::size_t size() const;

 private:
  TokenizerConfig cfg_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace toolkit
