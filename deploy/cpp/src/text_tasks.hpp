// Text tasks of the runner, as toolkit/nlp/deploy.py serves them in `toolkit predict`:
// BERT sentence classification and greedy Transformer translation, one input line at a time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model.hpp"

namespace toolkit {

// Throws ModelError unless logits[offset, offset + n) are all finite (NaN/inf would print a class).
void check_finite(const std::vector<float>& logits, std::size_t offset, std::size_t n, const std::string& input);
// Throws ModelError unless `classes` (the metadata's) is empty or names each of the n outputs.
void check_class_count(const std::vector<std::string>& classes, std::size_t n);

// Softmax of logits[offset, offset + n) in double (like toolkit/deploy/predict.py).
std::vector<double> softmax(const std::vector<float>& logits, std::size_t offset, std::size_t n);
// The k best indices of `scores`, best first, ties to the lower index.
std::vector<std::size_t> top_indices(const std::vector<double>& scores, std::size_t k);
// log_softmax(logits[offset, offset + n))[index] in double.
double log_softmax_at(const std::vector<float>& logits, std::size_t offset, std::size_t n, std::size_t index);
// Index of the largest of logits[offset, offset + n), the lower index on ties.
std::size_t argmax(const std::vector<float>& logits, std::size_t offset, std::size_t n);

// {"input": LINE, "topk": [{"index", "label", "prob"}, ...]} (+ "logits") per line of the files.
nlohmann::json classify_text(Model& model, const std::string& prefix, const std::vector<std::string>& files,
                             std::size_t topk, bool with_logits);
// {"input": LINE, "output": TEXT, "ids": [...], "logprob": F} (+ "logits" of the first step) per line.
nlohmann::json translate(Model& model, const std::string& prefix, const std::vector<std::string>& files, bool with_logits);
// Tokenizer only (reads PREFIX.json and the tokenizer file, not the graph): {"input": LINE,
// "ids": [...]} per line, the tokenizer's ids without special tokens or truncation; for
// SentencePiece also "text": the decoded ids.
nlohmann::json tokenize_files(const std::string& prefix, const std::vector<std::string>& files);

}  // namespace toolkit
