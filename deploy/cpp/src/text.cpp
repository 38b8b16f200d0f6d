#include "text.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <sentencepiece_processor.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "metadata.hpp"

namespace toolkit {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Byte offset of the first ill-formed UTF-8 sequence (strict: no surrogates, no overlongs), or npos.
std::size_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const std::int32_t n = static_cast<std::int32_t>(s.size());
  std::int32_t i = 0;
  while (i < n) {
    const std::int32_t at = i;
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0) return static_cast<std::size_t>(at);
  }
  return std::string::npos;
}

// Decodes text already checked by invalid_utf8_at.
std::u32string to_u32(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const std::int32_t n = static_cast<std::int32_t>(s.size());
  std::int32_t i = 0;
  while (i < n) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    out.push_back(static_cast<char32_t>(c < 0 ? 0xFFFD : c));
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  std::uint8_t buf[U8_MAX_LENGTH];
  std::int32_t len = 0;
  U8_APPEND_UNSAFE(buf, len, static_cast<UChar32>(c));
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(len));
}

std::string to_utf8(const std::u32string& s, std::size_t begin = 0, std::size_t end = std::u32string::npos) {
  std::string out;
  end = std::min(end, s.size());
  for (std::size_t i = begin; i < end; ++i) append_utf8(out, s[i]);
  return out;
}

icu::UnicodeString to_icu(const std::u32string& s) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()), static_cast<std::int32_t>(s.size()));
}

std::u32string from_icu(const icu::UnicodeString& s) {
  std::u32string out;
  out.reserve(static_cast<std::size_t>(s.length()));
  for (std::int32_t i = 0; i < s.length(); i = s.moveIndex32(i, 1)) out.push_back(static_cast<char32_t>(s.char32At(i)));
  return out;
}

// Python's str.isspace() for one character: category Zs or bidirectional class WS, B or S.
bool python_space(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  if (u_charType(cp) == U_SPACE_SEPARATOR) return true;
  const UCharDirection d = u_charDirection(cp);
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

// ---- HF tokenizers' character classes (normalizers/bert.rs, pre_tokenizers/bert.rs) ----

constexpr std::uint8_t kHfUnicodeMajor = 8;

// Rust's char::is_whitespace: the White_Space property.
bool rust_whitespace(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

// HF `tokenizers` reads general categories (and NFD data) from tables of Unicode 8.0 (crates
// unicode_categories, unicode-normalization-alignments): a character assigned later has none of
// the categories it tests for and no decomposition.
bool newer_than_hf(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] > kHfUnicodeMajor;
}

// Characters whose category changed after Unicode 8.0 in a way that matters here (punctuation,
// non-spacing mark), with their 8.0 category; found by running every code point through both.
struct CategoryOverride {
  char32_t c;
  std::uint32_t mask;
};
constexpr CategoryOverride kUnicode8Categories[] = {
    {0x166D, U_GC_PO_MASK},   // CANADIAN SYLLABICS CHI SIGN: So since 12.0
    {0x1734, U_GC_MN_MASK},   // HANUNOO SIGN PAMUDPOD: Mc since 14.0
    {0x1885, U_GC_LO_MASK},   // MONGOLIAN LETTER ALI GALI BALUDA: Mn since 9.0
    {0x1886, U_GC_LO_MASK},   // MONGOLIAN LETTER ALI GALI THREE BALUDA: Mn since 9.0
    {0xA9BD, U_GC_MC_MASK},   // JAVANESE CONSONANT SIGN KERET: Mn since 12.0
    {0x111C9, U_GC_PO_MASK},  // SHARADA SANDHI MARK: Mn since 11.0
};

std::uint32_t hf_category_mask(char32_t c) {
  for (const auto& o : kUnicode8Categories)
    if (o.c == c) return o.mask;
  if (newer_than_hf(c)) return U_GC_CN_MASK;
  return U_GET_GC_MASK(static_cast<UChar32>(c));
}

// Lower-case mappings that Rust's char::to_lowercase has (Unicode 16/17) and ICU 72 (Unicode 15.0)
// does not yet know: [first, last] maps to c + delta.
struct CaseRange {
  char32_t first, last;
  std::int32_t delta;
};
constexpr CaseRange kNewerLowercase[] = {
    {0x1C89, 0x1C89, 1},       {0xA7CB, 0xA7CB, 0x0264 - 0xA7CB}, {0xA7CC, 0xA7CC, 1}, {0xA7CE, 0xA7CE, 1},
    {0xA7D2, 0xA7D2, 1},       {0xA7D4, 0xA7D4, 1},               {0xA7DA, 0xA7DA, 1}, {0xA7DC, 0xA7DC, 0x019B - 0xA7DC},
    {0x10D50, 0x10D65, 0x20},  {0x16EA0, 0x16EB8, 0x1B},
};

// BertNormalizer's whitespace: \t \n \r and White_Space.
bool bert_whitespace(char32_t c) { return c == U'\t' || c == U'\n' || c == U'\r' || rust_whitespace(c); }

// BertNormalizer's control: an "Other" category except \t \n \r. HF's tables leave unassigned
// code points (Cn) out, so those are kept.
bool bert_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return (hf_category_mask(c) & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK)) != 0;
}

// BertPreTokenizer's punctuation: ASCII punctuation or a P* category.
bool bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return (hf_category_mask(c) & U_GC_P_MASK) != 0;
}

// BertNormalizer's "Chinese character" ranges (CJK Unified Ideographs and extensions, compatibility ideographs).
bool bert_chinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Rust's char::to_lowercase: the full lower-case mapping of one character, without context
// (a lone capital sigma has no cased letter before it, so ICU maps it to the non-final form).
void append_lower(std::u32string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(c >= U'A' && c <= U'Z' ? c + 32 : c);
    return;
  }
  for (const auto& r : kNewerLowercase)
    if (c >= r.first && c <= r.last) {
      out.push_back(static_cast<char32_t>(static_cast<std::int32_t>(c) + r.delta));
      return;
    }
  UChar src[2], dst[8];
  std::int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, static_cast<UChar32>(c));
  UErrorCode err = U_ZERO_ERROR;
  const std::int32_t len = u_strToLower(dst, 8, src, n, "", &err);
  if (U_FAILURE(err) || len > 8) {
    out.push_back(c);
    return;
  }
  for (std::int32_t i = 0; i < len;) {
    UChar32 d;
    U16_NEXT_UNSAFE(dst, i, d);
    out.push_back(static_cast<char32_t>(d));
  }
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TextError("cannot read " + std::string(what) + " " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw TextError("cannot read " + std::string(what) + " " + path);
  // ICU's UTF-8 macros index with int32_t
  if (s.tellp() > std::numeric_limits<std::int32_t>::max()) throw TextError(std::string(what) + " " + path + " is over 2 GiB");
  return s.str();
}

std::int64_t optional_id(const json& t, const char* key) {
  if (!t.contains(key) || t[key].is_null()) return -1;
  if (!t[key].is_number_integer() || t[key].get<std::int64_t>() < 0)
    throw ModelError(std::string("metadata tokenizer \"") + key + "\" must be a non-negative integer or null");
  return t[key].get<std::int64_t>();
}

bool flag(const json& t, const char* key) {
  if (!t.contains(key) || !t[key].is_boolean())
    throw ModelError(std::string("metadata tokenizer lacks the boolean \"") + key + "\"");
  return t[key].get<bool>();
}

}  // namespace

std::vector<std::string> read_text_lines(const std::string& path) {
  if (!fs::exists(path)) throw TextError("input file " + path + " not found");
  if (!fs::is_regular_file(path)) throw TextError("input " + path + " is not a file");
  const std::string data = read_file(path, "input file");
  const std::size_t bad = invalid_utf8_at(data);
  if (bad != std::string::npos)
    throw TextError("input file " + path + " is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < data.size()) {
    std::size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::u32string chars = to_u32(line);
    if (std::all_of(chars.begin(), chars.end(), python_space)) continue;
    lines.push_back(std::move(line));
  }
  if (lines.empty()) throw TextError("input file " + path + " has no non-empty line");
  return lines;
}

TokenizerConfig TokenizerConfig::from_metadata(const json& meta, const std::string& prefix) {
  if (!meta.contains("tokenizer"))
    throw ModelError("metadata file " + prefix + ".json has no \"tokenizer\" block; a text model needs one (re-export it)");
  const json& t = meta["tokenizer"];
  if (!t.is_object() || !t.contains("type") || !t["type"].is_string() || !t.contains("file") || !t["file"].is_string())
    throw ModelError("metadata tokenizer needs a \"type\" and a \"file\"");
  TokenizerConfig c;
  c.type = t["type"].get<std::string>();
  if (c.type != "wordpiece" && c.type != "sentencepiece")
    throw ModelError("unknown tokenizer type '" + c.type + "' in " + prefix + ".json (this runner knows wordpiece and sentencepiece)");
  const std::string name = t["file"].get<std::string>();
  if (name.empty() || fs::path(name).filename().string() != name || name == "." || name == "..")
    throw ModelError("the tokenizer file must be a file name beside " + prefix + ".json, not '" + name + "'");
  c.path = (fs::path(prefix + ".json").parent_path() / name).string();
  if (!fs::is_regular_file(c.path)) throw ModelError("tokenizer file " + c.path + " not found");
  if (!t.contains("sha256") || !t["sha256"].is_string()) throw ModelError("metadata tokenizer lacks \"sha256\"");
  const std::string want = t["sha256"].get<std::string>(), got = sha256_file(c.path);
  if (got != want)
    throw ModelError("tokenizer file " + c.path + " is corrupt or was replaced: sha256 " + got.substr(0, 12) +
                     "... but the metadata records " + want.substr(0, 12) + "...");
  c.lowercase = flag(t, "lowercase");
  if (c.type == "wordpiece") {
    c.strip_accents = flag(t, "strip_accents");
    c.tokenize_chinese_chars = flag(t, "tokenize_chinese_chars");
    c.clean_text = flag(t, "clean_text");
    if (!t.contains("max_input_chars_per_word") || !t["max_input_chars_per_word"].is_number_integer())
      throw ModelError("metadata tokenizer lacks the integer \"max_input_chars_per_word\"");
    c.max_input_chars_per_word = t["max_input_chars_per_word"].get<int>();
    if (c.max_input_chars_per_word < 1) throw ModelError("metadata tokenizer max_input_chars_per_word must be >= 1");
    if (t.contains("special_tokens") && !t["special_tokens"].is_null()) {
      if (!t["special_tokens"].is_array()) throw ModelError("metadata tokenizer special_tokens must be a list of strings");
      for (const auto& s : t["special_tokens"]) {
        if (!s.is_string()) throw ModelError("metadata tokenizer special_tokens must be a list of strings");
        c.special_tokens.push_back(s.get<std::string>());
      }
      c.has_special_tokens = true;
    }
  }
  c.unk_id = optional_id(t, "unk_id");
  c.pad_id = optional_id(t, "pad_id");
  c.cls_id = optional_id(t, "cls_id");
  c.sep_id = optional_id(t, "sep_id");
  c.bos_id = optional_id(t, "bos_id");
  c.eos_id = optional_id(t, "eos_id");
  if (!t.contains("max_length") || !t["max_length"].is_number_integer() || t["max_length"].get<std::int64_t>() < 2)
    throw ModelError("metadata tokenizer needs an integer \"max_length\" >= 2");
  c.max_length = t["max_length"].get<std::int64_t>();
  return c;
}

std::string python_lower(const std::string& utf8) {
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(utf8);
  s.toLower(icu::Locale::getRoot());
  std::string out;
  s.toUTF8String(out);
  return out;
}

// ------------------------------------------------------------------------------------ WordPiece

WordPiece::WordPiece(const std::string& vocab_path, const TokenizerConfig& cfg) : cfg_(cfg) {
  std::string data;
  try {
    data = read_file(vocab_path, "vocabulary");
  } catch (const TextError& err) {
    throw ModelError(err.what());
  }
  const std::size_t bad = invalid_utf8_at(data);
  if (bad != std::string::npos)
    throw ModelError("vocabulary " + vocab_path + " is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::size_t start = 0;
  while (start < data.size()) {  // a final '\n' ends the last line; it does not start an empty one
    std::size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    tokens_.push_back(data.substr(start, end - start));
    start = end + 1;
  }
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    if (!ids_.emplace(tokens_[i], static_cast<std::int64_t>(i)).second)
      throw ModelError("vocabulary " + vocab_path + ": token '" + tokens_[i] + "' appears twice (lines " +
                       std::to_string(ids_[tokens_[i]] + 1) + " and " + std::to_string(i + 1) + ")");
  const auto n = static_cast<std::int64_t>(tokens_.size());
  for (auto [name, id] : {std::pair{"unk_id", cfg_.unk_id}, {"cls_id", cfg_.cls_id}, {"sep_id", cfg_.sep_id}, {"pad_id", cfg_.pad_id}})
    if (id >= n)
      throw ModelError(std::string("metadata tokenizer ") + name + " " + std::to_string(id) + " is outside the vocabulary of " +
                       std::to_string(n) + " tokens in " + vocab_path);
  if (cfg_.unk_id < 0 || cfg_.cls_id < 0 || cfg_.sep_id < 0)
    throw ModelError("a wordpiece tokenizer needs unk_id, cls_id and sep_id in the metadata");
  // The special tokens HF `tokenizers` matches in the raw text: toolkit adds the vocabulary's
  // special tokens (those of the ids, and the others the metadata lists) as added tokens.
  if (cfg_.has_special_tokens) {
    for (const std::string& t : cfg_.special_tokens) {
      if (!ids_.count(t)) throw ModelError("metadata special token '" + t + "' is not in " + vocab_path);
      if (!t.empty() && std::find(specials_.begin(), specials_.end(), t) == specials_.end()) specials_.push_back(t);
    }
  } else {
    for (const char* t : {"[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"})
      if (ids_.count(t)) specials_.push_back(t);
  }
  for (std::int64_t id : {cfg_.unk_id, cfg_.pad_id, cfg_.cls_id, cfg_.sep_id})
    if (id >= 0 && !tokens_[id].empty() && std::find(specials_.begin(), specials_.end(), tokens_[id]) == specials_.end())
      specials_.push_back(tokens_[id]);
  std::stable_sort(specials_.begin(), specials_.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::vector<std::int64_t> WordPiece::encode(const std::string& text) const {
  // Leftmost-longest, non-overlapping matches of the special tokens; the text between them is
  // normalised and split on its own.
  std::vector<std::int64_t> ids;
  std::size_t plain = 0, i = 0;
  while (i < text.size()) {
    const std::string* hit = nullptr;
    for (const std::string& s : specials_)  // longest first
      if (text.compare(i, s.size(), s) == 0) {
        hit = &s;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > plain) encode_segment(text.substr(plain, i - plain), ids);
    ids.push_back(ids_.at(*hit));
    i += hit->size();
    plain = i;
  }
  if (plain < text.size()) encode_segment(text.substr(plain), ids);
  return ids;
}

void WordPiece::encode_segment(const std::string& text, std::vector<std::int64_t>& ids) const {
  std::u32string s = to_u32(text), t;
  if (cfg_.clean_text) {
    t.reserve(s.size());
    for (char32_t c : s) {
      if (c == 0 || c == 0xFFFD || bert_control(c)) continue;
      t.push_back(bert_whitespace(c) ? U' ' : c);
    }
    s.swap(t);
    t.clear();
  }
  if (cfg_.tokenize_chinese_chars) {
    for (char32_t c : s) {
      if (bert_chinese(c)) {
        t.push_back(U' ');
        t.push_back(c);
        t.push_back(U' ');
      } else {
        t.push_back(c);
      }
    }
    s.swap(t);
    t.clear();
  }
  if (cfg_.strip_accents) {
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
    if (U_FAILURE(err)) throw ModelError(std::string("ICU has no NFD data: ") + u_errorName(err));
    // NFD of the runs between characters newer than HF's tables (those stay as they are, and
    // as starters they also bound the reordering of combining marks)
    std::u32string run;
    auto flush = [&]() {
      if (run.empty()) return;
      icu::UnicodeString decomposed = nfd->normalize(to_icu(run), err);
      if (U_FAILURE(err)) throw ModelError(std::string("ICU NFD failed: ") + u_errorName(err));
      for (char32_t c : from_icu(decomposed))
        if (!(hf_category_mask(c) & U_GC_MN_MASK)) t.push_back(c);
      run.clear();
    };
    for (char32_t c : s) {
      if (c >= 0x80 && newer_than_hf(c)) {
        flush();
        t.push_back(c);
      } else {
        run.push_back(c);
      }
    }
    flush();
    s.swap(t);
    t.clear();
  }
  if (cfg_.lowercase) {
    for (char32_t c : s) append_lower(t, c);
    s.swap(t);
    t.clear();
  }
  // Split on whitespace (removed) and punctuation (each its own word).
  std::u32string word;
  for (char32_t c : s) {
    if (rust_whitespace(c) || bert_punctuation(c)) {
      if (!word.empty()) encode_word(word, ids);
      word.clear();
      if (!rust_whitespace(c)) encode_word(std::u32string(1, c), ids);
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) encode_word(word, ids);
}

void WordPiece::encode_word(const std::u32string& word, std::vector<std::int64_t>& ids) const {
  if (word.size() > static_cast<std::size_t>(cfg_.max_input_chars_per_word)) {
    ids.push_back(cfg_.unk_id);
    return;
  }
  const std::size_t first = ids.size();
  std::size_t start = 0;
  std::string piece;
  while (start < word.size()) {
    std::size_t end = word.size();
    std::int64_t found = -1;
    for (; end > start; --end) {
      piece = start > 0 ? "##" : "";
      piece += to_utf8(word, start, end);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {  // an unmatchable rest: the whole word is unknown
      ids.resize(first);
      ids.push_back(cfg_.unk_id);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

// -------------------------------------------------------------------------------- SentencePiece

SentencePiece::SentencePiece(const std::string& model_path, const TokenizerConfig& cfg)
    : cfg_(cfg), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  std::string bytes;
  try {
    bytes = read_file(model_path, "SentencePiece model");
  } catch (const TextError& err) {
    throw ModelError(err.what());
  }
  const auto status = sp_->LoadFromSerializedProto(bytes);
  if (!status.ok()) throw ModelError("SentencePiece model " + model_path + " cannot be loaded: " + status.ToString());
  const auto n = static_cast<std::int64_t>(sp_->GetPieceSize());
  for (auto [name, id] : {std::pair{"unk_id", cfg_.unk_id}, {"bos_id", cfg_.bos_id}, {"eos_id", cfg_.eos_id}, {"pad_id", cfg_.pad_id}})
    if (id >= n)
      throw ModelError(std::string("metadata tokenizer ") + name + " " + std::to_string(id) + " is outside the " +
                       std::to_string(n) + " pieces of " + model_path);
}

SentencePiece::~SentencePiece() = default;

std::size_t SentencePiece::size() const { return static_cast<std::size_t>(sp_->GetPieceSize()); }

std::vector<std::int64_t> SentencePiece::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(cfg_.lowercase ? python_lower(text) : text, &ids);
  if (!status.ok()) throw TextError("SentencePiece cannot encode '" + text + "': " + status.ToString());
  return std::vector<std::int64_t>(ids.begin(), ids.end());
}

std::string SentencePiece::decode(const std::vector<std::int64_t>& ids) const {
  const auto n = static_cast<std::int64_t>(size());
  std::vector<int> v;
  v.reserve(ids.size());
  for (std::int64_t id : ids) {
    if (id < 0 || id >= n) throw ModelError("id " + std::to_string(id) + " is outside the " + std::to_string(n) + " pieces");
    v.push_back(static_cast<int>(id));
  }
  std::string out;
  const auto status = sp_->Decode(v, &out);
  if (!status.ok()) throw ModelError("SentencePiece cannot decode: " + status.ToString());
  return out;
}

}  // namespace toolkit
