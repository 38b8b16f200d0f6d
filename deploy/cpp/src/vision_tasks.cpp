// Segmentation and detection in the C++ runner: the same class map, PNGs and detections as
// toolkit.cv.deploy.{segmentation,detection}. PNGs are written with libpng (OpenCV's imwrite has no
// palette images); detection pictures are drawn with OpenCV.
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

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "preprocess.hpp"

namespace toolkit {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;  // results keep Python's key order (input, mask, classes in class-id order)

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

// Creates/checks the folder results are written to; option ("--out", "--draw") names the flag in errors.
std::string output_folder(const std::string& out, const std::string& option) {
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out))
    throw ModelError(option + " " + out + " cannot be created: " + (ec ? ec.message() : std::string("not a folder")));
  if (access(out.c_str(), W_OK | X_OK) != 0) throw ModelError(option + " " + out + " cannot be written (permission denied)");
  return out;
}

// An 8-bit PNG written to PATH.tmp and renamed (a reader never sees half a file): with a palette, one
// byte per pixel (the class id); without, interleaved RGB.
void write_png(const std::string& path, const std::vector<std::uint8_t>& pixels, int h, int w,
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
  const bool indexed = !palette.empty();
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
               indexed ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  std::vector<png_color> colours(256, png_color{0, 0, 0});
  for (std::size_t c = 0; c < palette.size(); ++c)
    colours[c] = png_color{static_cast<png_byte>(palette[c][0]), static_cast<png_byte>(palette[c][1]),
                           static_cast<png_byte>(palette[c][2])};
  if (indexed) png_set_PLTE(png, info, colours.data(), 256);
  png_write_info(png, info);
  const std::size_t row = static_cast<std::size_t>(w) * (indexed ? 1 : 3);
  for (int y = 0; y < h; ++y) png_write_row(png, const_cast<png_bytep>(pixels.data() + static_cast<std::size_t>(y) * row));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool closed = std::fclose(f) == 0;
  chmod(tmp.c_str(), 0644);
  if (!closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw ModelError("cannot write " + path + ": " + std::strerror(errno));
  }
}

// Interleaved RGB of HWC pixels (grey repeated into the three channels).
std::vector<std::uint8_t> rgb_of(const Pixels& px) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(px.height) * px.width * 3);
  for (std::size_t i = 0, n = static_cast<std::size_t>(px.height) * px.width; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[3 * i + c] = px.data[i * px.channels + (px.channels == 3 ? c : 0)];
  return out;
}

// The class colours blended half and half over the image, (a + b + 1) / 2 in integers; class 0 left as the image.
std::vector<std::uint8_t> overlay_of(const Pixels& px, const std::vector<std::uint8_t>& mask,
                                     const std::vector<std::array<int, 3>>& palette) {
  std::vector<std::uint8_t> out = rgb_of(px);
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (mask[i] != 0)
      for (int c = 0; c < 3; ++c) out[3 * i + c] = static_cast<std::uint8_t>((out[3 * i + c] + palette[mask[i]][c] + 1) / 2);
  return out;
}

// A colour per class id, the same as the Java runner's: HSB(golden-angle hue steps, 0.85, 0.95) as java.awt.Color does.
std::array<int, 3> class_colour(int cls) {
  const float hue = static_cast<float>(std::fmod(cls * 0.618033988749895, 1.0)), sat = 0.85f, bri = 0.95f;
  const float h = (hue - std::floor(hue)) * 6.0f, f = h - std::floor(h);
  const float p = bri * (1.0f - sat), q = bri * (1.0f - sat * f), t = bri * (1.0f - sat * (1.0f - f));
  float r = 0, g = 0, b = 0;
  switch (static_cast<int>(h)) {
    case 0: r = bri; g = t; b = p; break;
    case 1: r = q; g = bri; b = p; break;
    case 2: r = p; g = bri; b = t; break;
    case 3: r = p; g = q; b = bri; break;
    case 4: r = t; g = p; b = bri; break;
    default: r = bri; g = p; b = q; break;
  }
  return {static_cast<int>(r * 255.0f + 0.5f), static_cast<int>(g * 255.0f + 0.5f), static_cast<int>(b * 255.0f + 0.5f)};
}

// The image at its own size with each box outlined and labelled "label score" in its class colour.
std::vector<std::uint8_t> draw_boxes(const Pixels& px, const ordered_json& items) {
  std::vector<std::uint8_t> rgb = rgb_of(px);
  cv::Mat img(px.height, px.width, CV_8UC3, rgb.data());  // RGB order: colours below are given as RGB
  const int side = std::min(px.height, px.width);
  const int thick = std::max(1, side / 200);
  const double font = std::max(0.35, side / 1000.0);
  for (const ordered_json& d : items) {
    const auto colour = class_colour(d["index"].get<int>());
    const cv::Scalar c(colour[0], colour[1], colour[2]);
    const auto& b = d["box"];
    const cv::Point p1(static_cast<int>(std::lround(b[0].get<double>())), static_cast<int>(std::lround(b[1].get<double>())));
    const cv::Point p2(static_cast<int>(std::lround(b[2].get<double>())), static_cast<int>(std::lround(b[3].get<double>())));
    cv::rectangle(img, p1, p2, c, thick);
    char score[32];
    std::snprintf(score, sizeof score, "%.3f", d["score"].get<double>());
    const std::string text = d["label"].get<std::string>() + " " + score;
    int base = 0;
    const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &base);
    const int x = std::min(p1.x, p2.x), y = std::max(size.height + 2, std::min(p1.y, p2.y) - 2);
    cv::rectangle(img, cv::Point(x, y - size.height - 2), cv::Point(x + size.width + 4, y + base), c, cv::FILLED);
    cv::putText(img, text, cv::Point(x + 2, y), cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(255, 255, 255), 1, cv::LINE_AA);
  }
  return rgb;
}

}  // namespace

nlohmann::ordered_json segment_images(Model& model, const std::vector<std::string>& inputs, const std::string& out_dir, bool overlay) {
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
  if (out_dir.empty()) throw ModelError("segmentation writes its class maps to a folder: pass --out DIR");
  const std::string folder = output_folder(out_dir, "--out");
  ordered_json results = ordered_json::array();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& path = inputs[i];
    const Pixels px = preprocess_pixels(path, pre);
    const int c = px.channels, h = px.height, w = px.width;
    const auto& want = meta.inputs[0].shape;
    if ((want[1] >= 0 && want[1] != c) || (want[2] >= 0 && want[2] != h) || (want[3] >= 0 && want[3] != w))
      throw ImageError(path + ": preprocessing gives a [" + std::to_string(c) + ", " + std::to_string(h) + ", " +
                       std::to_string(w) + "] tensor but the graph takes [" + std::to_string(want[1]) + ", " +
                       std::to_string(want[2]) + ", " + std::to_string(want[3]) + "] (check 'resize'/'crop' in the metadata)");
    std::vector<float> data = normalize(px, pre.scale, pre.mean, pre.std);
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
    if (overlay) {
      if (static_cast<std::size_t>(h) != oh || static_cast<std::size_t>(w) != ow)
        throw ModelError("the class map is " + std::to_string(oh) + "x" + std::to_string(ow) + " but the image fed to the graph " +
                         std::to_string(h) + "x" + std::to_string(w) + ": no overlay");
      write_png((std::filesystem::path(folder) / (stems[i] + "_overlay.png")).string(), overlay_of(px, mask, palette), h, w, {});
    }
    ordered_json classes = ordered_json::object();
    for (std::size_t k = 0; k < nclass; ++k)
      if (counts[k]) classes[named ? meta.classes[k] : std::to_string(k)] = counts[k];
    results.push_back({{"input", path}, {"mask", target}, {"classes", classes}});
  }
  return results;
}

nlohmann::ordered_json detect_images(Model& model, const std::vector<std::string>& inputs, double threshold, const std::string& draw_dir) {
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
  const std::string folder = draw_dir.empty() ? draw_dir : output_folder(draw_dir, "--draw");
  ordered_json results = ordered_json::array();
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
    ordered_json items = ordered_json::array();
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
    if (!folder.empty())
      write_png((std::filesystem::path(folder) / (std::filesystem::path(path).stem().string() + ".png")).string(),
                draw_boxes(pixels, items), pixels.height, pixels.width, {});
    results.push_back({{"input", path}, {"detections", items}});
  }
  return results;
}

}  // namespace toolkit
