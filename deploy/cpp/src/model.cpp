#include "model.hpp"

#include <sstream>

#include <openvino/frontend/manager.hpp>

#include "stderr_capture.hpp"

namespace toolkit {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  s << "]";
  return s.str();
}

// OpenVINO's element type for a metadata dtype (numpy's names, as `toolkit export` writes them).
const std::pair<const char*, ov::element::Type> kTypes[] = {
    {"float32", ov::element::f32}, {"float16", ov::element::f16}, {"float64", ov::element::f64},
    {"bfloat16", ov::element::bf16}, {"int64", ov::element::i64}, {"int32", ov::element::i32},
    {"int16", ov::element::i16}, {"int8", ov::element::i8}, {"uint8", ov::element::u8}, {"bool", ov::element::boolean}};

ov::element::Type element_type(const std::string& dtype, const std::string& what) {
  for (const auto& [name, type] : kTypes)
    if (dtype == name) return type;
  throw ModelError(what + " has dtype '" + dtype + "', which this runner does not know");
}

// numpy's name of an OpenVINO element type (as the metadata writes it; the Java runner says the same).
std::string dtype_name(const ov::element::Type& type) {
  for (const auto& [name, t] : kTypes)
    if (t == type) return name;
  return type.get_type_name();
}

// The graph port's element type must be the metadata's: a mismatch is refused, never cast.
// `what`: "metadata input" or "metadata outputs" (the corpus' tests look for "outputs").
void check_port(const ov::Output<const ov::Node>& port, const TensorSpec& spec, const std::string& base) {
  const bool input = base == "metadata input";
  const std::string what = input ? base : "metadata outputs do not match the graph's: output";
  const ov::element::Type want = element_type(spec.dtype, what + " '" + spec.name + "'");
  const ov::element::Type got = port.get_element_type();
  if (got.is_static() && want != got)
    throw ModelError(what + " '" + spec.name + "' has dtype " + spec.dtype + " but the graph's is " + dtype_name(got) +
                     " (re-export the model)");
  const auto& ps = port.get_partial_shape();
  if (ps.rank().is_static() && static_cast<std::size_t>(ps.rank().get_length()) != spec.shape.size())
    throw ModelError(what + " '" + spec.name + "' has rank " + std::to_string(spec.shape.size()) + "; the graph's has " +
                     std::to_string(ps.rank().get_length()));
  for (std::size_t d = 0; ps.rank().is_static() && d < spec.shape.size(); ++d)
    if (spec.shape[d] >= 0 && ps[d].is_static() && ps[d].get_length() != spec.shape[d])
      throw ModelError(what + " '" + spec.name + "' has shape " + shape_text(spec.shape) + "; the graph " +
                       (input ? "takes " : "gives ") + ps.to_string());
}

}  // namespace

Model::Model(const std::string& prefix, int num_threads) : meta_(read_metadata(prefix)) {
  const std::string graph = verified_graph_path(prefix, meta_);
  std::shared_ptr<ov::Model> model;
  std::string failure;
  const std::string said = captured_stderr([&] {
    try {
      // The ONNX frontend only: Core::read_model would offer the file to every frontend
      // (TensorFlow, Paddle, IR, ...), whatever its name.
      ov::frontend::FrontEndManager frontends;
      ov::frontend::FrontEnd::Ptr onnx = frontends.load_by_framework("onnx");
      model = onnx->convert(onnx->load(graph));
    } catch (const std::exception& err) {
      failure = err.what();
    }
  });
  if (!failure.empty() || !model)
    throw ModelError("OpenVINO cannot read " + graph + " as ONNX: " + failure + (said.empty() ? "" : " (" + said + ")"));
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
    check_port(inputs[i], spec, "metadata input");
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].get_names().count(meta_.outputs[i].name))
      throw ModelError("metadata outputs do not match the graph's: output " + std::to_string(i) + " is '" +
                       outputs[i].get_any_name() + "' in the graph, '" + meta_.outputs[i].name + "' in the metadata");
    check_port(outputs[i], meta_.outputs[i], "metadata outputs");
  }
  // A classifier's label list names every logit: one name per output column, or none at all.
  if (!meta_.classes.empty() && (meta_.task == "classification" || meta_.task == "text_classification") && !outputs.empty()) {
    const auto& ps = outputs[0].get_partial_shape();
    const std::int64_t n = ps.rank().is_static() && ps.rank().get_length() == 2 && ps[1].is_static() ? ps[1].get_length() : -1;
    if (n >= 0 && static_cast<std::size_t>(n) != meta_.classes.size())
      throw ModelError("metadata lists " + std::to_string(meta_.classes.size()) + " classes but the graph's output '" +
                       meta_.outputs[0].name + "' has " + std::to_string(n));
  }
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

Output Model::run(const std::vector<Input>& inputs) {
  std::vector<const Input*> by_index(meta_.inputs.size(), nullptr);
  for (const Input& in : inputs) {
    std::size_t i = 0;
    while (i < meta_.inputs.size() && meta_.inputs[i].name != in.name) ++i;
    if (i == meta_.inputs.size()) throw ModelError("the graph has no input '" + in.name + "'");
    if (by_index[i]) throw ModelError("input '" + in.name + "' given twice");
    by_index[i] = &in;
  }
  std::vector<ov::Tensor> tensors;  // keep the wrapped buffers alive until infer() returns
  for (std::size_t i = 0; i < meta_.inputs.size(); ++i) {
    const TensorSpec& spec = meta_.inputs[i];
    const Input* in = by_index[i];
    if (!in) throw ModelError("no value given for the graph's input '" + spec.name + "'");
    if (in->dtype != spec.dtype)
      throw ModelError("input '" + spec.name + "' is " + spec.dtype + "; this runner fed " + in->dtype);
    bool bad = in->shape.size() != spec.shape.size();
    std::size_t count = 1;
    for (std::size_t d = 0; d < in->shape.size(); ++d) {
      if (!bad && spec.shape[d] >= 0 && spec.shape[d] != in->shape[d]) bad = true;
      if (in->shape[d] <= 0) bad = true;
      count *= static_cast<std::size_t>(std::max<std::int64_t>(in->shape[d], 0));
    }
    if (bad) throw ModelError("input '" + spec.name + "' has shape " + shape_text(in->shape) + "; the graph takes " + shape_text(spec.shape));
    const std::size_t given = in->dtype == "int64" ? in->i64.size() : in->f32.size();
    if (in->dtype != "int64" && in->dtype != "float32")
      throw ModelError("input '" + spec.name + "' is " + spec.dtype + "; this runner feeds float32 and int64");
    if (count != given)
      throw ModelError("input '" + spec.name + "' holds " + std::to_string(given) + " values for shape " + shape_text(in->shape));
    ov::Shape ov_shape(in->shape.begin(), in->shape.end());
    if (in->dtype == "int64")
      tensors.emplace_back(ov::element::i64, ov_shape, const_cast<std::int64_t*>(in->i64.data()));
    else
      tensors.emplace_back(ov::element::f32, ov_shape, const_cast<float*>(in->f32.data()));
    request_.set_input_tensor(i, tensors.back());
  }
  request_.infer();
  ov::Tensor out = request_.get_output_tensor(0);
  if (out.get_element_type() != ov::element::f32) throw ModelError("the graph's first output is not float32");
  Output result;
  const ov::Shape got = out.get_shape();
  result.shape.assign(got.begin(), got.end());
  const float* p = out.data<const float>();
  result.data.assign(p, p + out.get_size());
  return result;
}

std::vector<float> Model::run(const std::vector<float>& data, const std::vector<std::int64_t>& shape,
                              std::vector<std::int64_t>& out_shape) {
  if (meta_.inputs.size() != 1) throw ModelError("this runner feeds models with one input");
  const auto& spec = meta_.inputs[0];
  if (spec.dtype != "float32") throw ModelError("input '" + spec.name + "' is " + spec.dtype + "; this runner feeds float32");
  Output out = run({Input::float32(spec.name, shape, data)});
  out_shape = std::move(out.shape);
  return std::move(out.data);
}

Output Model::output(std::size_t index) {
  if (index >= compiled_.outputs().size())
    throw ModelError("the graph has " + std::to_string(compiled_.outputs().size()) + " outputs, not " + std::to_string(index + 1));
  ov::Tensor out = request_.get_output_tensor(index);
  if (out.get_element_type() != ov::element::f32)
    throw ModelError("the graph's output " + std::to_string(index) + " is not float32");
  Output result;
  const ov::Shape got = out.get_shape();
  result.shape.assign(got.begin(), got.end());
  const float* p = out.data<const float>();
  result.data.assign(p, p + out.get_size());
  return result;
}

}  // namespace toolkit
