// toolkit-predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE] [--print-ids]
//                 [--out DIR] [--overlay] [--threshold T] [--draw DIR]
//
// Runs a model written by `toolkit export` and prints the same results as
// `toolkit predict`. By the metadata's task:
//   classification       INPUTs are images; with --json one JSON list holding
//                        {"input": PATH, "topk": [{"index", "label", "prob"}, ...]} per image;
//   text_classification  INPUTs are UTF-8 text files, one input per non-blank line (BERT, WordPiece);
//                        {"input": LINE, "topk": [...]} per line;
//   translation          same inputs (Transformer, SentencePiece, greedy decoding);
//                        {"input": LINE, "output": TEXT, "ids": [...], "logprob": F} per line;
//   segmentation         INPUTs are images; class maps written to --out DIR as indexed PNGs;
//                        {"input": PATH, "mask": PNG, "classes": {label: pixel count}} per image;
//   detection            INPUTs are images (NMS in the graph);
//                        {"input": PATH, "detections": [{"index", "label", "score", "box"}, ...]} per image.
// Errors go to stderr with a non-zero exit status (1: bad model or input, 2: bad command line).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metadata.hpp"
#include "model.hpp"
#include "preprocess.hpp"
#include "text.hpp"
#include "text_tasks.hpp"
#include "vision_tasks.hpp"

namespace {

using nlohmann::json;

struct Args {
  std::string prefix;
  std::vector<std::string> inputs;
  bool json_out = false, logits = false, print_ids = false;
  int topk = 5, threads = 0;
  std::string out;   // --out DIR: segmentation class maps
  bool overlay = false;  // --overlay: segmentation, also DIR/<stem>_overlay.png
  double threshold = 0.5;  // --threshold T: detection
  std::string draw;  // --draw DIR: detection pictures
  std::set<std::string> task_options;  // the task options given (out, overlay, threshold, draw), checked against the task
  std::string dump;  // --dump-input FILE: raw float32 tensors as fed to the graph (to compare runtimes)
};

const char* kUsage =
    "usage: toolkit-predict PREFIX INPUT... [--json] [--topk K] [--logits] [--threads N] [--dump-input FILE] [--print-ids]\n"
    "                       [--out DIR] [--overlay] [--threshold T] [--draw DIR]\n";

const char* kHelp =
    "Runs PREFIX.onnx (written by `toolkit export`) on INPUT files: images for task classification,\n"
    "UTF-8 text files (one input per non-blank line) for text_classification and translation.\n"
    "  --json             print one JSON list, as `toolkit predict --json` does\n"
    "  --topk K           classes per input (classification tasks; default 5)\n"
    "  --logits           also print the raw logits (translation: those of the first decoding step)\n"
    "  --threads N        OpenVINO inference threads (0: its default)\n"
    "  --threshold T      detection: keep detections scoring at least T, 0..1 (default 0.5)\n"
    "  --draw DIR         detection: save DIR/<stem>.png, the image with its boxes\n"
    "  --out DIR          segmentation: write each class map as DIR/<stem>.png (indexed PNG, the metadata's palette)\n"
    "  --overlay          segmentation: also write DIR/<stem>_overlay.png (class colours over the cropped image)\n"
    "  --dump-input FILE  images: write the float32 tensors fed to the graph\n"
    "  --print-ids        text models: only tokenize (reads PREFIX.json and its tokenizer file, not the\n"
    "                     graph) and print [{\"input\": LINE, \"ids\": [...]}, ...], the tokenizer's ids\n"
    "                     without special tokens or truncation (SentencePiece: also \"text\", the ids decoded)\n";

[[noreturn]] void usage(const std::string& message) {
  // one line, like every other error (the usage is one --help away)
  std::cerr << "toolkit-predict: error: " << message << " (toolkit-predict --help for the usage)\n";
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
    else if (s == "--print-ids") a.print_ids = true;
    else if (s == "--overlay") {
      a.overlay = true;
      a.task_options.insert("overlay");
    }
    else if (s == "--draw") {
      if (i + 1 >= argc) usage(s + " needs a folder");
      a.draw = argv[++i];
      a.task_options.insert("draw");
    }
    else if (s == "--threshold") {
      a.task_options.insert("threshold");
      if (i + 1 >= argc) usage(s + " needs a value");
      const std::string text = argv[++i];
      try {
        std::size_t used = 0;
        a.threshold = std::stod(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
      } catch (const std::exception&) {
        usage(s + " needs a number, got '" + text + "'");
      }
    }
    else if (s == "--out") {
      if (i + 1 >= argc) usage(s + " needs a folder");
      a.out = argv[++i];
      a.task_options.insert("out");
    }
    else if (s == "--dump-input") {
      if (i + 1 >= argc) usage(s + " needs a file name");
      a.dump = argv[++i];
    }
    else if (s == "--topk" || s == "--threads") {
      if (i + 1 >= argc) usage(s + " needs a value");
      (s == "--topk" ? a.topk : a.threads) = parse_int(s, argv[++i], s == "--topk" ? 1 : 0);
    } else if (s == "-h" || s == "--help") {
      std::cout << kUsage << kHelp;
      std::exit(0);
    } else if (s.size() > 1 && s[0] == '-' && s[1] == '-') usage("unknown option " + s);
    else positional.push_back(s);
  }
  if (positional.size() < 2) usage("need a model PREFIX and at least one INPUT");
  a.prefix = positional[0];
  a.inputs.assign(positional.begin() + 1, positional.end());
  return a;
}

// Set once --dump-input's file is opened (truncated) by this run: only then may an error remove it.
bool g_dump_opened = false;

json classify_images(toolkit::Model& model, const Args& args) {
  const toolkit::Metadata& meta = model.metadata();
  if (meta.inputs.size() != 1 || meta.inputs[0].shape.size() != 4)
    throw toolkit::ModelError("an image classifier takes one NCHW input");
  json results = json::array();
  toolkit::Preprocessing pre = toolkit::Preprocessing::from_metadata(meta.raw);
  const auto& want = meta.inputs[0].shape;
  std::ofstream dump;
  if (!args.dump.empty()) {
    dump.open(args.dump, std::ios::binary);
    if (!dump) throw toolkit::ModelError("cannot write " + args.dump);
    g_dump_opened = true;
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
    toolkit::check_class_count(meta.classes, n);
    toolkit::check_finite(logits, 0, n, path);
    std::vector<double> probs = toolkit::softmax(logits, 0, n);
    const bool named = meta.classes.size() == n;
    json top = json::array();
    for (std::size_t i : toolkit::top_indices(probs, static_cast<std::size_t>(args.topk))) {
      top.push_back({{"index", i}, {"label", named ? meta.classes[i] : std::to_string(i)}, {"prob", probs[i]}});
    }
    json item = {{"input", path}, {"topk", top}};
    if (args.logits) item["logits"] = std::vector<double>(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(n));
    results.push_back(item);
  }
  return results;
}

// printf("%.Nf"): glibc rounds the exact binary value half to even, as Python's format() does.
std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void print_text(const nlohmann::ordered_json& results, const std::string& task) {
  for (const auto& item : results) {
    if (task == "translation") {
      std::cout << item["input"].get<std::string>() << "\t=> " << item["output"].get<std::string>() << "\n";
      continue;
    }
    if (task == "segmentation") {  // as toolkit predict prints it
      std::string found;
      for (const auto& [label, n] : item["classes"].items())
        found += (found.empty() ? "" : ", ") + label + " " + std::to_string(n.get<long long>());
      std::cout << item["input"].get<std::string>() << ":  " << item["mask"].get<std::string>() << "  (" << found << ")\n";
      continue;
    }
    if (task == "detection") {
      std::string found;
      for (const auto& d : item["detections"]) {
        found += (found.empty() ? "" : "  ") + d["label"].get<std::string>() + " " + fixed(d["score"].get<double>(), 3) + " [";
        for (std::size_t k = 0; k < 4; ++k) found += (k ? ", " : "") + fixed(d["box"][k].get<double>(), 1);
        found += "]";
      }
      std::cout << item["input"].get<std::string>() << ":  " << (found.empty() ? "(nothing)" : found) << "\n";
      continue;
    }
    std::cout << item["input"].get<std::string>() << ":";
    for (const auto& t : item["topk"])
      std::cout << "  " << t["label"].get<std::string>() << " (" << t["index"].get<std::size_t>() << ") " << std::fixed
                << t["prob"].get<double>();
    std::cout << "\n";
  }
}

// One line for stderr: OpenVINO's and OpenCV's messages span several lines.
std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (char ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t' || ch == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

int fail(const Args& args, const std::string& message) {
  // a partly written --dump-input file is not a result: remove it
  if (g_dump_opened) std::remove(args.dump.c_str());
  std::cerr << "toolkit-predict: error: " << one_line(message) << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  try {
    if (args.print_ids) {
      std::cout << toolkit::tokenize_files(args.prefix, args.inputs).dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
      return 0;
    }
    toolkit::Model model(args.prefix, args.threads);
    const toolkit::Metadata& meta = model.metadata();
    const auto k = static_cast<std::size_t>(args.topk);
    // ordered: the vision tasks' keys come out in Python's order; the others' (sorted, as before) are converted
    nlohmann::ordered_json results;
    const auto ordered = [](const json& j) {
      return nlohmann::ordered_json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace));
    };
    if (meta.task != "classification" && !args.dump.empty())
      throw toolkit::ModelError("--dump-input writes image tensors; model '" + meta.model + "' has task '" + meta.task + "'");
    // task options the task does not take are refused, as `toolkit predict` does
    const std::set<std::string> known{"classification", "text_classification", "translation", "segmentation", "detection"};
    if (known.count(meta.task)) {
      const std::set<std::string> takes = meta.task == "segmentation" ? std::set<std::string>{"out", "overlay"}
                                          : meta.task == "detection"  ? std::set<std::string>{"threshold", "draw"}
                                                                      : std::set<std::string>{};
      std::string unknown;
      for (const std::string& o : args.task_options)
        if (!takes.count(o)) unknown += (unknown.empty() ? "" : ", ") + o;
      if (!unknown.empty())
        throw toolkit::ModelError("option(s) " + unknown + " do not apply to task '" + meta.task + "'");
    }
    if (meta.task == "classification") results = ordered(classify_images(model, args));
    else if (meta.task == "text_classification") results = ordered(toolkit::classify_text(model, args.prefix, args.inputs, k, args.logits));
    else if (meta.task == "translation") results = ordered(toolkit::translate(model, args.prefix, args.inputs, args.logits));
    else if (meta.task == "segmentation") results = toolkit::segment_images(model, args.inputs, args.out, args.overlay);
    else if (meta.task == "detection") results = toolkit::detect_images(model, args.inputs, args.threshold, args.draw);
    else
      throw toolkit::ModelError("toolkit-predict does not yet support task '" + meta.task + "' (model '" + meta.model +
                                "'); supported tasks: classification, text_classification, translation, segmentation, detection");
    // replace: a SentencePiece decode of byte pieces may end inside a UTF-8 sequence
    if (args.json_out) std::cout << results.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
    else print_text(results, meta.task);
  } catch (const std::bad_alloc&) {
    return fail(args, "out of memory while running " + args.prefix);
  } catch (const std::exception& err) {
    return fail(args, err.what());
  }
  return 0;
}
