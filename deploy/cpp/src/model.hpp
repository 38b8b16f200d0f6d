// An exported model run by OpenVINO's C++ API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

#include "metadata.hpp"

namespace toolkit {

class Model {
 public:
  // Loads PREFIX.onnx after checking it against PREFIX.json (sha256, input/output names and ranks).
  explicit Model(const std::string& prefix, int num_threads = 0);

  const Metadata& metadata() const { return meta_; }

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
