// The `prefix.json` written by `toolkit export`, read and checked against its graph file.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace toolkit {

// The exported model cannot be used: missing/corrupt files, or metadata that does not match.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TensorSpec {
  std::string name, dtype;
  std::vector<std::int64_t> shape;  // -1 for a dynamic (named) axis
};

struct Metadata {
  nlohmann::json raw;
  std::string model, task, onnx_file, sha256;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<std::string> classes;  // empty when the metadata has none
};

// Reads PREFIX.json; throws ModelError saying what is missing or malformed.
Metadata read_metadata(const std::string& prefix);
// Hex sha256 of a file (OpenSSL).
std::string sha256_file(const std::string& path);
// PREFIX.json's folder joined with its onnx_file, checked to exist and to match the recorded sha256.
std::string verified_graph_path(const std::string& prefix, const Metadata& meta);

}  // namespace toolkit
