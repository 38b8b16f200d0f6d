// toolkit-predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE]
//
// Classifies image files with a model written by `toolkit export` and prints
// the same results as `toolkit predict`: with --json one JSON list holding
// {"input": PATH, "topk": [{"index": I, "label": NAME, "prob": P}, ...]} per
// image, best first. Errors go to stderr with a non-zero exit status
// (1: bad model or input, 2: bad command line).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metadata.hpp"
#include "model.hpp"
#include "preprocess.hpp"

namespace {

using nlohmann::json;

struct Args {
  std::string prefix;
  std::vector<std::string> inputs;
  bool json_out = false, logits = false;
  int topk = 5, threads = 0;
  std::string dump;  // --dump-input FILE: raw float32 tensors as fed to the graph (to compare runtimes)
};

[[noreturn]] void usage(const std::string& message) {
  std::cerr << "toolkit-predict: error: " << message << "\n"
            << "usage: toolkit-predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE]\n";
  std::exit(2);
}

int parse_int(const std::string& flag, const std::string& text, int low) {
  try {
    std::size_t used = 0;
    int v = std::stoi(text, &used);
    if (used != text.size() || v < low) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    usage(flag + " needs an integer >= " + std::to_string(low) + ", got '" + text + "'");
  }
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--json") a.json_out = true;
    else if (s == "--logits") a.logits = true;
    else if (s == "--dump-input") {
      if (i + 1 >= argc) usage(s + " needs a file name");
      a.dump = argv[++i];
    }
    else if (s == "--topk" || s == "--threads") {
      if (i + 1 >= argc) usage(s + " needs a value");
      (s == "--topk" ? a.topk : a.threads) = parse_int(s, argv[++i], s == "--topk" ? 1 : 0);
    } else if (s == "-h" || s == "--help") {
      std::cout << "usage: toolkit-predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE]\n";
      std::exit(0);
    } else if (s.size() > 1 && s[0] == '-' && s[1] == '-') usage("unknown option " + s);
    else positional.push_back(s);
  }
  if (positional.size() < 2) usage("need a model PREFIX and at least one INPUT");
  a.prefix = positional[0];
  a.inputs.assign(positional.begin() + 1, positional.end());
  return a;
}

// Softmax in double, like toolkit/deploy/predict.py.
std::vector<double> softmax(const std::vector<float>& logits, std::size_t offset, std::size_t n) {
  double mx = -INFINITY;
  for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[offset + i]));
  std::vector<double> e(n);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += (e[i] = std::exp(static_cast<double>(logits[offset + i]) - mx));
  for (auto& v : e) v /= sum;
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  try {
    toolkit::Model model(args.prefix, args.threads);
    const toolkit::Metadata& meta = model.metadata();
    if (meta.task != "classification")
      throw toolkit::ModelError("toolkit-predict does not yet support task '" + meta.task + "' (model '" + meta.model +
                                "'); supported tasks: classification");
    if (meta.inputs.size() != 1 || meta.inputs[0].shape.size() != 4)
      throw toolkit::ModelError("an image classifier takes one NCHW input");
    toolkit::Preprocessing pre = toolkit::Preprocessing::from_metadata(meta.raw);
    const auto& want = meta.inputs[0].shape;
    json results = json::array();
    std::ofstream dump;
    if (!args.dump.empty()) {
      dump.open(args.dump, std::ios::binary);
      if (!dump) throw toolkit::ModelError("cannot write " + args.dump);
    }
    for (const std::string& path : args.inputs) {
      int c = 0, h = 0, w = 0;
      std::vector<float> data = toolkit::preprocess_image(path, pre, c, h, w);
      std::vector<std::int64_t> shape{1, c, h, w};
      for (int d = 1; d < 4; ++d)
        if (want[d] >= 0 && want[d] != shape[d])
          throw toolkit::ImageError(path + ": preprocessing gives a [" + std::to_string(c) + ", " + std::to_string(h) + ", " +
                                    std::to_string(w) + "] tensor but the graph takes [" + std::to_string(want[1]) + ", " +
                                    std::to_string(want[2]) + ", " + std::to_string(want[3]) + "]");
      if (dump.is_open()) dump.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
      std::vector<std::int64_t> out_shape;
      std::vector<float> logits = model.run(data, shape, out_shape);
      if (out_shape.size() != 2 || out_shape[0] != 1)
        throw toolkit::ModelError("the graph returned a tensor of rank " + std::to_string(out_shape.size()) +
                                  "; a classifier returns (N, classes)");
      const std::size_t n = static_cast<std::size_t>(out_shape[1]);
      std::vector<double> probs = softmax(logits, 0, n);
      std::vector<std::size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return probs[a] > probs[b]; });
      const bool named = meta.classes.size() == n;
      json top = json::array();
      for (std::size_t r = 0; r < std::min<std::size_t>(args.topk, n); ++r) {
        std::size_t i = order[r];
        top.push_back({{"index", i}, {"label", named ? meta.classes[i] : std::to_string(i)}, {"prob", probs[i]}});
      }
      json item = {{"input", path}, {"topk", top}};
      if (args.logits) item["logits"] = std::vector<double>(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(n));
      results.push_back(item);
    }
    if (args.json_out) {
      std::cout << results.dump() << std::endl;
    } else {
      for (const auto& item : results) {
        std::cout << item["input"].get<std::string>() << ":";
        for (const auto& t : item["topk"])
          std::cout << "  " << t["label"].get<std::string>() << " (" << t["index"].get<std::size_t>() << ") "
                    << std::fixed << t["prob"].get<double>();
        std::cout << "\n";
      }
    }
  } catch (const std::exception& err) {
    std::cerr << "toolkit-predict: error: " << err.what() << std::endl;
    return 1;
  }
  return 0;
}
