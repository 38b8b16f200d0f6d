// An exported model run by OpenVINO's C++ API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "metadata.hpp"

namespace toolkit {

// A value for one named graph input: float32 data or int64 data (the other vector stays empty).
struct Input {
  std::string name, dtype;  // dtype "float32" or "int64"
  std::vector<std::int64_t> shape;
  std::vector<float> f32;
  std::vector<std::int64_t> i64;

  static Input float32(std::string name, std::vector<std::int64_t> shape, std::vector<float> data) {
    return Input{std::move(name), "float32", std::move(shape), std::move(data), {}};
  }
  static Input int64(std::string name, std::vector<std::int64_t> shape, std::vector<std::int64_t> data) {
    return Input{std::move(name), "int64", std::move(shape), {}, std::move(data)};
  }
};

// The graph's first output (float32).
struct Output {
  std::vector<float> data;
  std::vector<std::int64_t> shape;
};

class Model {
 public:
  // Loads PREFIX.onnx after checking it against PREFIX.json (sha256, input/output names and ranks).
  explicit Model(const std::string& prefix, int num_threads = 0);

  const Metadata& metadata() const { return meta_; }

  // Runs the graph on one value per metadata input (any order, matched by name); returns its
  // first output, which must be float32. Names, dtypes and shapes are checked against the metadata.
  Output run(const std::vector<Input>& inputs);

  // Output `index` (float32) of the last run (detectors: ids, scores, bboxes).
  Output output(std::size_t index);

  // Runs the graph's single float32 input; returns the first output and sets out_shape.
  std::vector<float> run(const std::vector<float>& data, const std::vector<std::int64_t>& shape,
                         std::vector<std::int64_t>& out_shape);

 private:
  Metadata meta_;
  ov::Core core_;
  ov::CompiledModel compiled_;
  ov::InferRequest request_;
};

}  // namespace toolkit
