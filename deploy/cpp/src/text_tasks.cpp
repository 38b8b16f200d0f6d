#include "text_tasks.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "text.hpp"

namespace toolkit {

using nlohmann::json;

void check_finite(const std::vector<float>& logits, std::size_t offset, std::size_t n, const std::string& input) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(logits[offset + i]))
      throw ModelError("the model returned non-finite logits (" + std::string(std::isnan(logits[offset + i]) ? "NaN" : "inf") +
                       ") for " + input);
}

void check_class_count(const std::vector<std::string>& classes, std::size_t n) {
  if (!classes.empty() && classes.size() != n)
    throw ModelError("metadata lists " + std::to_string(classes.size()) + " classes but the model returned " + std::to_string(n) +
                     " scores");
}

std::vector<double> softmax(const std::vector<float>& logits, std::size_t offset, std::size_t n) {
  double mx = -INFINITY;
  for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[offset + i]));
  std::vector<double> e(n);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += (e[i] = std::exp(static_cast<double>(logits[offset + i]) - mx));
  for (auto& v : e) v /= sum;
  return e;
}

std::vector<std::size_t> top_indices(const std::vector<double>& scores, std::size_t k) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  order.resize(std::min(k, order.size()));
  return order;
}

double log_softmax_at(const std::vector<float>& logits, std::size_t offset, std::size_t n, std::size_t index) {
  double mx = -INFINITY;
  for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[offset + i]));
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[offset + i]) - mx);
  return static_cast<double>(logits[offset + index]) - mx - std::log(sum);
}

std::size_t argmax(const std::vector<float>& logits, std::size_t offset, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (logits[offset + i] > logits[offset + best]) best = i;
  return best;
}

namespace {

std::vector<std::string> all_lines(const std::vector<std::string>& files) {
  std::vector<std::string> lines;
  for (const std::string& f : files) {
    std::vector<std::string> part = read_text_lines(f);
    lines.insert(lines.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return lines;
}

void check_task(const Metadata& meta, const char* task) {
  if (meta.task != task) throw ModelError("model '" + meta.model + "' has task '" + meta.task + "', not " + task);
}

}  // namespace

json classify_text(Model& model, const std::string& prefix, const std::vector<std::string>& files, std::size_t topk,
                   bool with_logits) {
  const Metadata& meta = model.metadata();
  check_task(meta, "text_classification");
  const TokenizerConfig cfg = TokenizerConfig::from_metadata(meta.raw, prefix);
  if (cfg.type != "wordpiece")
    throw ModelError("a text classifier needs a wordpiece tokenizer; the metadata names '" + cfg.type + "'");
  if (cfg.max_length < 3) throw ModelError("metadata tokenizer max_length must be >= 3 for [CLS] ... [SEP]");
  bool has_ids = false;
  for (const TensorSpec& in : meta.inputs) {
    if (in.name != "input_ids" && in.name != "token_type_ids" && in.name != "attention_mask")
      throw ModelError("text classifier input '" + in.name + "' is not one of input_ids, token_type_ids, attention_mask");
    has_ids = has_ids || in.name == "input_ids";
  }
  if (!has_ids) throw ModelError("a text classifier takes an 'input_ids' input; the metadata lists none");
  const WordPiece tokenizer(cfg.path, cfg);
  const std::vector<std::string> lines = all_lines(files);

  json results = json::array();
  for (const std::string& line : lines) {
    std::vector<std::int64_t> pieces = tokenizer.encode(line);
    const auto room = static_cast<std::size_t>(cfg.max_length - 2);
    if (pieces.size() > room) pieces.resize(room);
    std::vector<std::int64_t> ids{cfg.cls_id};
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    ids.push_back(cfg.sep_id);
    const auto length = static_cast<std::int64_t>(ids.size());
    std::vector<Input> feed;
    for (const TensorSpec& in : meta.inputs) {
      if (in.name == "input_ids") feed.push_back(Input::int64(in.name, {1, length}, ids));
      else if (in.name == "token_type_ids") feed.push_back(Input::int64(in.name, {1, length}, std::vector<std::int64_t>(ids.size(), 0)));
      else feed.push_back(Input::int64(in.name, {1, length}, std::vector<std::int64_t>(ids.size(), 1)));
    }
    const Output out = model.run(feed);
    if (out.shape.size() != 2 || out.shape[0] != 1)
      throw ModelError("the graph returned a tensor of rank " + std::to_string(out.shape.size()) +
                       "; a text classifier returns (1, classes)");
    const auto n = static_cast<std::size_t>(out.shape[1]);
    check_class_count(meta.classes, n);
    check_finite(out.data, 0, n, "'" + line + "'");
    const std::vector<double> probs = softmax(out.data, 0, n);
    const bool named = meta.classes.size() == n;
    json top = json::array();
    for (std::size_t i : top_indices(probs, topk))
      top.push_back({{"index", i}, {"label", named ? meta.classes[i] : std::to_string(i)}, {"prob", probs[i]}});
    json item = {{"input", line}, {"topk", top}};
    if (with_logits) item["logits"] = std::vector<double>(out.data.begin(), out.data.begin() + static_cast<std::ptrdiff_t>(n));
    results.push_back(item);
  }
  return results;
}

json translate(Model& model, const std::string& prefix, const std::vector<std::string>& files, bool with_logits) {
  const Metadata& meta = model.metadata();
  check_task(meta, "translation");
  const TokenizerConfig cfg = TokenizerConfig::from_metadata(meta.raw, prefix);
  if (cfg.type != "sentencepiece")
    throw ModelError("a translation model needs a sentencepiece tokenizer; the metadata names '" + cfg.type + "'");
  if (cfg.bos_id < 0 || cfg.eos_id < 0) throw ModelError("a translation model needs bos_id and eos_id in the metadata tokenizer");
  const json& raw = meta.raw;
  if (!raw.contains("decoding") || !raw["decoding"].is_object())
    throw ModelError("metadata file " + prefix + ".json has no \"decoding\" block; a translation model needs one");
  const json& dec = raw["decoding"];
  if (!dec.contains("strategy") || dec["strategy"] != "greedy")
    throw ModelError("this runner decodes with strategy \"greedy\"; the metadata says " +
                     (dec.contains("strategy") ? dec["strategy"].dump() : std::string("nothing")));
  if (!dec.contains("max_len_a") || !dec["max_len_a"].is_number() || !dec.contains("max_len_b") || !dec["max_len_b"].is_number())
    throw ModelError("metadata decoding needs numbers max_len_a and max_len_b");
  const double len_a = dec["max_len_a"].get<double>(), len_b = dec["max_len_b"].get<double>();
  for (const char* name : {"src_ids", "src_valid_length", "tgt_ids"})
    if (std::none_of(meta.inputs.begin(), meta.inputs.end(), [&](const TensorSpec& t) { return t.name == name; }))
      throw ModelError(std::string("a translation model takes inputs src_ids, src_valid_length, tgt_ids; the metadata lacks ") + name);
  if (meta.inputs.size() != 3) throw ModelError("a translation model takes exactly src_ids, src_valid_length and tgt_ids");
  const SentencePiece tokenizer(cfg.path, cfg);
  const std::vector<std::string> lines = all_lines(files);

  json results = json::array();
  for (const std::string& line : lines) {
    std::vector<std::int64_t> src = tokenizer.encode(line);
    if (src.size() > static_cast<std::size_t>(cfg.max_length - 1)) src.resize(static_cast<std::size_t>(cfg.max_length - 1));
    src.push_back(cfg.eos_id);
    const auto s = static_cast<std::int64_t>(src.size());
    // int(max_len_a * S + max_len_b) in Python: double arithmetic, truncation toward zero
    const std::int64_t limit = std::min(static_cast<std::int64_t>(len_a * static_cast<double>(s) + len_b), cfg.max_length - 1);
    std::vector<std::int64_t> tgt{cfg.bos_id}, generated;
    double logprob = 0.0;
    std::vector<double> first_logits;
    while (static_cast<std::int64_t>(generated.size()) < limit) {
      const auto t = static_cast<std::int64_t>(tgt.size());
      const Output out = model.run({Input::int64("src_ids", {1, s}, src), Input::int64("src_valid_length", {1}, {s}),
                                    Input::int64("tgt_ids", {1, t}, tgt)});
      if (out.shape.size() != 3 || out.shape[0] != 1 || out.shape[1] != t)
        throw ModelError("the graph returned a tensor of rank " + std::to_string(out.shape.size()) +
                         "; a translation model returns (1, target length, vocabulary)");
      const auto v = static_cast<std::size_t>(out.shape[2]);
      const std::size_t row = static_cast<std::size_t>(t - 1) * v;
      check_finite(out.data, row, v, "'" + line + "'");
      if (with_logits && generated.empty()) first_logits.assign(out.data.begin(), out.data.begin() + static_cast<std::ptrdiff_t>(v));
      const std::size_t next = argmax(out.data, row, v);
      logprob += log_softmax_at(out.data, row, v, next);
      tgt.push_back(static_cast<std::int64_t>(next));
      generated.push_back(static_cast<std::int64_t>(next));
      if (static_cast<std::int64_t>(next) == cfg.eos_id) break;
    }
    if (!generated.empty() && generated.back() == cfg.eos_id) generated.pop_back();
    json item = {{"input", line}, {"output", tokenizer.decode(generated)}, {"ids", generated}, {"logprob", logprob}};
    if (with_logits) item["logits"] = first_logits;
    results.push_back(item);
  }
  return results;
}

json tokenize_files(const std::string& prefix, const std::vector<std::string>& files) {
  const Metadata meta = read_metadata(prefix);
  const TokenizerConfig cfg = TokenizerConfig::from_metadata(meta.raw, prefix);
  const std::vector<std::string> lines = all_lines(files);
  json results = json::array();
  if (cfg.type == "wordpiece") {
    const WordPiece tokenizer(cfg.path, cfg);
    for (const std::string& line : lines) results.push_back({{"input", line}, {"ids", tokenizer.encode(line)}});
  } else {
    const SentencePiece tokenizer(cfg.path, cfg);
    for (const std::string& line : lines) {
      const std::vector<std::int64_t> ids = tokenizer.encode(line);
      results.push_back({{"input", line}, {"ids", ids}, {"text", tokenizer.decode(ids)}});
    }
  }
  return results;
}

}  // namespace toolkit
