#include "model.hpp"

#include <sstream>

namespace toolkit {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  s << "]";
  return s.str();
}

}  // namespace

Model::Model(const std::string& prefix, int num_threads) : meta_(read_metadata(prefix)) {
  const std::string graph = verified_graph_path(prefix, meta_);
  std::shared_ptr<ov::Model> model;
  try {
    model = core_.read_model(graph);
  } catch (const std::exception& err) {
    throw ModelError("OpenVINO cannot read " + graph + ": " + err.what());
  }
  const auto& inputs = model->inputs();
  const auto& outputs = model->outputs();
  if (inputs.size() != meta_.inputs.size())
    throw ModelError("metadata lists " + std::to_string(meta_.inputs.size()) + " inputs; the graph has " + std::to_string(inputs.size()));
  if (outputs.size() != meta_.outputs.size())
    throw ModelError("metadata lists " + std::to_string(meta_.outputs.size()) + " outputs; the graph has " + std::to_string(outputs.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& spec = meta_.inputs[i];
    if (!inputs[i].get_names().count(spec.name))
      throw ModelError("metadata input '" + spec.name + "' does not match the graph's input '" + inputs[i].get_any_name() + "'");
    const auto& ps = inputs[i].get_partial_shape();
    if (ps.rank().is_static() && static_cast<std::size_t>(ps.rank().get_length()) != spec.shape.size())
      throw ModelError("metadata input '" + spec.name + "' has rank " + std::to_string(spec.shape.size()) + "; the graph's has " +
                       std::to_string(ps.rank().get_length()));
    for (std::size_t d = 0; ps.rank().is_static() && d < spec.shape.size(); ++d)
      if (spec.shape[d] >= 0 && ps[d].is_static() && ps[d].get_length() != spec.shape[d])
        throw ModelError("metadata input '" + spec.name + "' has shape " + shape_text(spec.shape) + "; the graph takes " + ps.to_string());
  }
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].get_names().count(meta_.outputs[i].name))
      throw ModelError("metadata output '" + meta_.outputs[i].name + "' does not match the graph's output '" + outputs[i].get_any_name() + "'");
  // f32 inference precision: on CPUs with bf16 support OpenVINO would otherwise drop to bf16.
  ov::AnyMap config{ov::hint::inference_precision(ov::element::f32)};
  if (num_threads > 0) config.emplace(ov::inference_num_threads.name(), num_threads);
  try {
    compiled_ = core_.compile_model(model, "CPU", config);
    request_ = compiled_.create_infer_request();
  } catch (const std::exception& err) {
    throw ModelError("OpenVINO cannot compile " + graph + ": " + err.what());
  }
}

std::vector<float> Model::run(const std::vector<float>& data, const std::vector<std::int64_t>& shape,
                              std::vector<std::int64_t>& out_shape) {
  if (meta_.inputs.size() != 1) throw ModelError("this runner feeds models with one input");
  const auto& spec = meta_.inputs[0];
  if (spec.dtype != "float32") throw ModelError("input '" + spec.name + "' is " + spec.dtype + "; this runner feeds float32");
  bool bad = shape.size() != spec.shape.size();
  std::size_t count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!bad && spec.shape[d] >= 0 && spec.shape[d] != shape[d]) bad = true;
    if (shape[d] <= 0) bad = true;
    count *= static_cast<std::size_t>(std::max<std::int64_t>(shape[d], 0));
  }
  if (bad) throw ModelError("input '" + spec.name + "' has shape " + shape_text(shape) + "; the graph takes " + shape_text(spec.shape));
  if (count != data.size()) throw ModelError("input data holds " + std::to_string(data.size()) + " values for shape " + shape_text(shape));
  ov::Shape ov_shape(shape.begin(), shape.end());
  ov::Tensor input(ov::element::f32, ov_shape, const_cast<float*>(data.data()));
  request_.set_input_tensor(0, input);
  request_.infer();
  ov::Tensor out = request_.get_output_tensor(0);
  if (out.get_element_type() != ov::element::f32) throw ModelError("the graph's first output is not float32");
  const ov::Shape got = out.get_shape();
  out_shape.assign(got.begin(), got.end());
  const float* p = out.data<const float>();
  return std::vector<float>(p, p + out.get_size());
}

}  // namespace toolkit
