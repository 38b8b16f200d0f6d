// Segmentation in the C++ runner: the same class map and PNG as toolkit.cv.deploy.segmentation.
// The PNG is written with libpng (OpenCV's imwrite has no palette images).
#include "vision_tasks.hpp"

#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "preprocess.hpp"

namespace toolkit {
namespace {

using nlohmann::json;

std::vector<std::array<int, 3>> read_palette(const json& meta, std::size_t nclass) {
  if (!meta.contains("palette"))
    throw ModelError("the export's metadata has no palette (a segmentation export lists one [r, g, b] per class); "
                     "re-export it with toolkit export");
  const json& pal = meta["palette"];
  std::vector<std::array<int, 3>> out;
  bool ok = pal.is_array() && pal.size() == nclass;
  for (std::size_t c = 0; ok && c < nclass; ++c) {
    const json& rgb = pal[c];
    ok = rgb.is_array() && rgb.size() == 3;
    std::array<int, 3> v{};
    for (std::size_t i = 0; ok && i < 3; ++i) {
      ok = rgb[i].is_number_integer() && rgb[i].get<long long>() >= 0 && rgb[i].get<long long>() <= 255;
      if (ok) v[i] = static_cast<int>(rgb[i].get<long long>());
    }
    out.push_back(v);
  }
  if (!ok)
    throw ModelError("the metadata's palette must list " + std::to_string(nclass) +
                     " colours [r, g, b] (integers 0..255), one per class");
  return out;
}

std::string output_folder(const std::string& out) {
  if (out.empty()) throw ModelError("segmentation writes its class maps to a folder: pass --out DIR");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out))
    throw ModelError("--out " + out + " cannot be created: " + (ec ? ec.message() : std::string("not a folder")));
  if (access(out.c_str(), W_OK | X_OK) != 0) throw ModelError("--out " + out + " cannot be written (permission denied)");
  return out;
}

void write_png(const std::string& path, const std::vector<std::uint8_t>& mask, int h, int w,
               const std::vector<std::array<int, 3>>& palette) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw ModelError("cannot write " + path + ": " + std::strerror(errno));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    throw ModelError("cannot write " + path + " (libpng failed)");
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8, PNG_COLOR_TYPE_PALETTE,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> colours(256, png_color{0, 0, 0});
  for (std::size_t c = 0; c < palette.size(); ++c)
    colours[c] = png_color{static_cast<png_byte>(palette[c][0]), static_cast<png_byte>(palette[c][1]),
                           static_cast<png_byte>(palette[c][2])};
  png_set_PLTE(png, info, colours.data(), 256);
  png_write_info(png, info);
  for (int y = 0; y < h; ++y) png_write_row(png, const_cast<png_bytep>(mask.data() + static_cast<std::size_t>(y) * w));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool closed = std::fclose(f) == 0;
  chmod(tmp.c_str(), 0644);
  if (!closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw ModelError("cannot write " + path + ": " + std::strerror(errno));
  }
}

}  // namespace

json segment_images(Model& model, const std::vector<std::string>& inputs, const std::string& out_dir) {
  const Metadata& meta = model.metadata();
  if (meta.inputs.size() != 1 || meta.inputs[0].shape.size() != 4)
    throw ModelError("a segmentation export takes one NCHW image input");
  std::size_t nclass = 0;
  if (meta.raw.contains("num_classes") && meta.raw["num_classes"].is_number_integer())
    nclass = static_cast<std::size_t>(meta.raw["num_classes"].get<long long>());
  else
    nclass = meta.classes.size();
  if (nclass < 1 || nclass > 256)
    throw ModelError("a segmentation export needs num_classes in 1..256 in its metadata, got " + std::to_string(nclass));
  const auto palette = read_palette(meta.raw, nclass);
  const bool named = meta.classes.size() == nclass;
  Preprocessing pre = Preprocessing::from_metadata(meta.raw);
  std::vector<std::string> stems;
  std::set<std::string> seen;
  for (const std::string& p : inputs) {
    std::string stem = std::filesystem::path(p).stem().string();
    if (!seen.insert(stem).second)
      throw ModelError("inputs share the file name '" + stem + "'; their masks would overwrite each other");
    stems.push_back(stem);
  }
  const std::string folder = output_folder(out_dir);
  json results = json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& path = inputs[i];
    int c = 0, h = 0, w = 0;
    std::vector<float> data = preprocess_image(path, pre, c, h, w);
    std::vector<std::int64_t> shape{1, c, h, w}, out_shape;
    std::vector<float> logits = model.run(data, shape, out_shape);
    if (out_shape.size() != 4 || out_shape[0] != 1 || static_cast<std::size_t>(out_shape[1]) != nclass)
      throw ModelError("the graph returned a tensor of rank " + std::to_string(out_shape.size()) +
                       "; a segmentation model returns (N, " + std::to_string(nclass) + ", H, W)");
    const std::size_t oh = static_cast<std::size_t>(out_shape[2]), ow = static_cast<std::size_t>(out_shape[3]);
    const std::size_t plane = oh * ow;
    std::vector<std::uint8_t> mask(plane, 0);
    std::vector<std::int64_t> counts(nclass, 0);
    for (std::size_t px = 0; px < plane; ++px) {
      std::size_t best = 0;
      float best_v = logits[px];
      for (std::size_t k = 0; k < nclass; ++k) {
        const float v = logits[k * plane + px];
        if (!std::isfinite(v)) throw ModelError("the model returned non-finite logits (NaN or infinity) for " + path);
        if (v > best_v) { best_v = v; best = k; }  // strict: ties keep the lowest id, as numpy's argmax
      }
      mask[px] = static_cast<std::uint8_t>(best);
      ++counts[best];
    }
    const std::string target = (std::filesystem::path(folder) / (stems[i] + ".png")).string();
    write_png(target, mask, static_cast<int>(oh), static_cast<int>(ow), palette);
    json classes = json::object();
    for (std::size_t k = 0; k < nclass; ++k)
      if (counts[k]) classes[named ? meta.classes[k] : std::to_string(k)] = counts[k];
    results.push_back({{"input", path}, {"mask", target}, {"classes", classes}});
  }
  return results;
}

json detect_images(Model& model, const std::vector<std::string>& inputs, double threshold) {
  const Metadata& meta = model.metadata();
  const json& raw = meta.raw;
  if (!(threshold >= 0.0 && threshold <= 1.0))  // also refuses NaN
    throw ModelError("--threshold must be between 0 and 1, got " + std::to_string(threshold));
  if (!raw.contains("detection") || !raw["detection"].is_object() || !raw["detection"].contains("nms") ||
      raw["detection"]["nms"] != "NonMaxSuppression")
    throw ModelError("the export's metadata has no detection block (NMS in the graph); re-export the detector with "
                     "toolkit export");
  if (meta.classes.empty()) throw ModelError("a detector export lists its class names in the metadata (classes)");
  if (meta.inputs.size() != 1 || meta.inputs[0].shape.size() != 4)
    throw ModelError("a detector export takes one NCHW image input");
  const json pre = raw.value("preprocessing", json::object());
  const json size = pre.value("resize", json());
  if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() || !size[1].is_number_integer() ||
      size[0].get<long long>() < 1 || size[0].get<long long>() > 8192 || size[1].get<long long>() < 1 ||
      size[1].get<long long>() > 8192)
    throw ModelError("detector preprocessing resize must be [h, w] (1..8192), got " + size.dump());
  if (pre.contains("crop") && !pre["crop"].is_null())
    throw ModelError("detector preprocessing with a crop is not supported (boxes map back through the resize)");
  const int rh = static_cast<int>(size[0].get<long long>()), rw = static_cast<int>(size[1].get<long long>());
  // the colour/scale/mean/std checks of classification, without its resize/crop
  json plain = raw;
  plain["preprocessing"]["resize"] = 0;
  plain["preprocessing"]["crop"] = nullptr;
  Preprocessing norm = Preprocessing::from_metadata(plain);
  json results = json::array();
  for (const std::string& path : inputs) {
    Pixels pixels = to_color(read_image(path), norm.color);
    const double sx = static_cast<double>(pixels.width) / rw, sy = static_cast<double>(pixels.height) / rh;
    std::vector<float> data = normalize(resize_to(pixels, rh, rw), norm.scale, norm.mean, norm.std);
    std::vector<std::int64_t> shape{1, pixels.channels, rh, rw}, out_shape;
    model.run(data, shape, out_shape);
    Output ids = model.output(0), scores = model.output(1), boxes = model.output(2);
    if (ids.shape.size() != 3 || scores.shape != ids.shape || boxes.shape.size() != 3 || boxes.shape[2] != 4 ||
        boxes.shape[1] != ids.shape[1] || ids.shape[0] != 1)
      throw ModelError("a detector export returns three outputs (ids, scores, bboxes) of shapes (1, K, 1), (1, K, 1), (1, K, 4)");
    json items = json::array();
    for (std::int64_t j = 0; j < ids.shape[1]; ++j) {
      const int cls = static_cast<int>(ids.data[static_cast<std::size_t>(j)]);
      const double score = scores.data[static_cast<std::size_t>(j)];
      if (cls < 0 || score < threshold) continue;
      const float* b = boxes.data.data() + 4 * j;
      if (static_cast<std::size_t>(cls) >= meta.classes.size() || !std::isfinite(b[0]) || !std::isfinite(b[1]) ||
          !std::isfinite(b[2]) || !std::isfinite(b[3]))
        throw ModelError("the detector returned class " + std::to_string(cls) + " or a non-finite box for " + path);
      items.push_back({{"index", cls}, {"label", meta.classes[static_cast<std::size_t>(cls)]}, {"score", score},
                       {"box", {b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy}}});
    }
    results.push_back({{"input", path}, {"detections", items}});
  }
  return results;
}

}  // namespace toolkit
