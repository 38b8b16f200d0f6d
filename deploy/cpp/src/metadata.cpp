#include "metadata.hpp"

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <openssl/evp.h>

namespace toolkit {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kFormat = "toolkit-export/1";

TensorSpec tensor_spec(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("shape") || !j["shape"].is_array())
    throw ModelError(where + " entries need a 'name' and a 'shape'");
  TensorSpec t;
  t.name = j["name"].get<std::string>();
  if (j.contains("dtype") && !j["dtype"].is_null() && !j["dtype"].is_string())
    throw ModelError(where + " '" + t.name + "' has a dtype that is not a string: " + j["dtype"].dump());
  t.dtype = j.contains("dtype") && j["dtype"].is_string() ? j["dtype"].get<std::string>() : std::string("float32");
  for (const auto& d : j["shape"]) {
    if (d.is_number_integer()) t.shape.push_back(d.get<std::int64_t>());
    else if (d.is_string()) t.shape.push_back(-1);
    else throw ModelError(where + " '" + t.name + "' has a shape entry that is neither a size nor an axis name");
  }
  return t;
}

}  // namespace

Metadata read_metadata(const std::string& prefix) {
  const std::string path = prefix + ".json";
  if (!fs::is_regular_file(path)) throw ModelError("metadata file " + path + " not found (expected next to " + prefix + ".onnx)");
  std::ifstream in(path);
  Metadata m;
  try {
    m.raw = json::parse(in);
  } catch (const json::out_of_range& err) {
    // 1e999: a number no double holds, i.e. infinite (nlohmann refuses it while parsing)
    throw ModelError("metadata file " + path + " holds a non-finite number: " + err.what());
  } catch (const json::exception& err) {
    throw ModelError("metadata file " + path + " is not valid JSON: " + err.what());
  }
  const json& j = m.raw;
  if (!j.is_object()) throw ModelError("metadata file " + path + " must hold a JSON object");
  for (const char* key : {"format", "inputs", "outputs", "sha256"})
    if (!j.contains(key)) throw ModelError("metadata file " + path + " lacks " + key);
  if (!j["format"].is_string() || j["format"].get<std::string>() != kFormat)
    throw ModelError("metadata file " + path + " has format " + j["format"].dump() + "; this runner reads \"" + kFormat + "\"");
  if (!j["inputs"].is_array() || !j["outputs"].is_array()) throw ModelError("metadata inputs/outputs must be lists");
  for (const auto& t : j["inputs"]) m.inputs.push_back(tensor_spec(t, "metadata input"));
  for (const auto& t : j["outputs"]) m.outputs.push_back(tensor_spec(t, "metadata output"));
  m.sha256 = j["sha256"].is_string() ? j["sha256"].get<std::string>() : j["sha256"].dump();
  m.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
  m.task = j.contains("task") && j["task"].is_string() ? j["task"].get<std::string>() : "";
  if (j.contains("onnx_file") && !j["onnx_file"].is_null()) {
    // Only a plain .onnx file name beside the JSON: no path out of the export folder, and no other
    // format that OpenVINO would pick a frontend for by the name (IR .xml, .pb, ...).
    const std::string name = j["onnx_file"].is_string() ? j["onnx_file"].get<std::string>() : "";
    if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".onnx") != 0 || name.find_first_of("/\\") != std::string::npos ||
        name.find('\0') != std::string::npos)
      throw ModelError("metadata file " + path + " has onnx_file " + j["onnx_file"].dump() +
                       "; it must be a plain file name ending in .onnx beside the JSON");
    m.onnx_file = name;
  } else {
    m.onnx_file = fs::path(prefix + ".onnx").filename().string();
  }
  if (j.contains("classes") && !j["classes"].is_null()) {
    if (!j["classes"].is_array()) throw ModelError("metadata classes must be a list of names, got " + j["classes"].dump());
    for (const auto& c : j["classes"]) {
      if (!c.is_string()) throw ModelError("metadata classes must be a list of names; it holds " + c.dump());
      m.classes.push_back(c.get<std::string>());
    }
  }
  return m;
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError("cannot open " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::ostringstream hex;
  for (unsigned int i = 0; i < len; ++i) hex << std::hex << std::setw(2) << std::setfill('0') << static_cast<int>(digest[i]);
  return hex.str();
}

std::string verified_graph_path(const std::string& prefix, const Metadata& meta) {
  // checked here, not in read_metadata: --print-ids reads tokenizer-only metadata without a graph
  if (meta.sha256.size() != 64 || meta.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw ModelError("metadata file " + prefix + ".json has sha256 " +
                     (meta.raw.contains("sha256") ? meta.raw["sha256"].dump() : std::string("null")) +
                     "; it must be the graph's 64 hex digits");
  fs::path graph = fs::path(prefix + ".json").parent_path() / meta.onnx_file;
  if (!fs::is_regular_file(graph)) throw ModelError("graph file " + graph.string() + " not found");
  std::string digest = sha256_file(graph.string());
  if (digest != meta.sha256)
    throw ModelError("graph file " + graph.string() + " is corrupt or was replaced: sha256 " + digest.substr(0, 12) +
                     "... but the metadata records " + meta.sha256.substr(0, 12) + "...");
  return graph.string();
}

}  // namespace toolkit
