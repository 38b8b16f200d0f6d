#include "preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "image_header.hpp"
#include "limits.hpp"
#include "stderr_capture.hpp"

namespace toolkit {

using nlohmann::json;

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  return s;
}

// A finite float32 (a JSON number nlohmann read as inf, or one float32 cannot hold, is refused).
float finite_float(const json& v, const char* label) {
  const double d = v.get<double>();
  const auto f = static_cast<float>(d);
  if (!std::isfinite(d) || !std::isfinite(f))
    throw ImageError(std::string("preprocessing ") + label + " has a non-finite value " + v.dump());
  return f;
}

// A JSON integer in [low, high] (read without wrapping: 2**40 must not come out as 0).
bool int_in(const json& v, std::int64_t low, std::int64_t high) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() <= static_cast<std::uint64_t>(high) && v.get<std::uint64_t>() >= static_cast<std::uint64_t>(std::max<std::int64_t>(low, 0));
  const std::int64_t x = v.get<std::int64_t>();
  return x >= low && x <= high;
}

std::vector<float> float_list(const json& value, const char* label, int channels) {
  std::vector<float> out;
  if (value.is_number()) {
    out.push_back(finite_float(value, label));
  } else if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_number()) throw ImageError(std::string("preprocessing ") + label + " must hold numbers");
      out.push_back(finite_float(v, label));
    }
  } else {
    throw ImageError(std::string("preprocessing ") + label + " must be a number or a list");
  }
  if (out.size() != 1 && static_cast<int>(out.size()) != channels)
    throw ImageError(std::string("preprocessing ") + label + " has " + std::to_string(out.size()) + " values for " +
                     std::to_string(channels) + " channels");
  return out;
}

}  // namespace

Preprocessing Preprocessing::from_metadata(const json& meta) {
  if (!meta.contains("preprocessing") || !meta["preprocessing"].is_object())
    throw ImageError("the metadata has no 'preprocessing' entry");
  const json& pre = meta["preprocessing"];
  Preprocessing p;
  if (pre.value("type", std::string("image")) != "image") throw ImageError("preprocessing type is not 'image'");
  p.color = upper(pre.value("color", std::string("RGB")));
  if (p.color != "RGB" && p.color != "L") throw ImageError("preprocessing color '" + p.color + "' is not supported (RGB or L)");
  if (upper(pre.value("layout", std::string("NCHW"))) != "NCHW") throw ImageError("preprocessing layout is not NCHW");
  std::string interp = pre.value("interpolation", std::string("bilinear"));
  if (interp != "bilinear") throw ImageError("preprocessing interpolation '" + interp + "' is not supported (bilinear)");
  if (pre.contains("resize") && !pre["resize"].is_null()) {
    if (!pre["resize"].is_number_integer()) throw ImageError("preprocessing resize must be one int (the shorter side)");
    if (!int_in(pre["resize"], 0, kMaxPreprocessSize))
      throw ImageError("preprocessing resize must be between 0 and " + std::to_string(kMaxPreprocessSize) + ", got " +
                       pre["resize"].dump());
    p.resize = pre["resize"].get<int>();
  }
  if (pre.contains("crop") && !pre["crop"].is_null()) {
    const json& crop = pre["crop"];
    const auto side = [](const json& v) { return int_in(v, 1, kMaxPreprocessSize); };
    const std::string bounds = "preprocessing crop must be [H, W] with sizes between 1 and " + std::to_string(kMaxPreprocessSize) +
                               ", got " + crop.dump();
    if (crop.is_number_integer()) {
      if (!side(crop)) throw ImageError(bounds);
      p.crop_h = p.crop_w = crop.get<int>();
    } else if (crop.is_array() && crop.size() == 2 && crop[0].is_number_integer() && crop[1].is_number_integer()) {
      if (!side(crop[0]) || !side(crop[1])) throw ImageError(bounds);
      p.crop_h = crop[0].get<int>();
      p.crop_w = crop[1].get<int>();
    } else {
      throw ImageError("preprocessing crop must be [H, W], got " + crop.dump());
    }
    p.has_crop = true;
  }
  if (pre.contains("scale") && !pre["scale"].is_null()) {
    if (!pre["scale"].is_number()) throw ImageError("preprocessing scale must be a number, got " + pre["scale"].dump());
    p.scale = finite_float(pre["scale"], "scale");
  }
  if (p.scale == 0.0) throw ImageError("preprocessing scale is zero");
  p.mean = float_list(pre.value("mean", json(0.0)), "mean", p.channels());
  p.std = float_list(pre.value("std", json(1.0)), "std", p.channels());
  for (float s : p.std)
    if (s == 0.0f) throw ImageError("preprocessing std has a zero");
  return p;
}

void check_image_size(const std::string& path, std::int64_t width, std::int64_t height, const std::string& when) {
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
    throw ImageError("image " + path + " is too large" + when + ": " + std::to_string(width) + "x" + std::to_string(height) +
                     " (this runner takes at most " + std::to_string(kMaxImageSide) + " pixels a side and " +
                     std::to_string(kMaxImagePixels) + " pixels)");
}

Pixels read_image(const std::string& path) {
  if (std::filesystem::is_directory(path)) throw ImageError("image " + path + " is a directory, not an image file");
  if (!std::filesystem::is_regular_file(path)) throw ImageError("image file " + path + " not found");
  const ImageHeader header = probe_image(path);
  if (header.known()) {
    check_image_size(path, header.width, header.height, "");
    if (header.format == "jpeg" && header.components == 4)
      throw ImageError("image " + path + " is a CMYK/YCCK JPEG, which is not supported: convert it to RGB");
  }
  // UNCHANGED: keep alpha/16-bit so we convert exactly like Python; it also ignores EXIF orientation.
  cv::Mat img;
  std::string failure;
  const std::string said = captured_stderr([&] {
    try {
      img = cv::imread(path, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception& err) {
      failure = err.what();
    }
  });
  const std::string detail = said.empty() ? "" : " (" + said + ")";
  if (!failure.empty()) throw ImageError("cannot read image " + path + ": " + failure + detail);
  if (img.empty()) throw ImageError("cannot read image " + path + ": not an image, or corrupt or truncated" + detail);
  check_image_size(path, img.cols, img.rows, "");
  if (img.dims != 2 || (img.channels() != 1 && img.channels() != 3 && img.channels() != 4))
    throw ImageError("image " + path + " has an unsupported layout");
  if (img.depth() == CV_16U) {
    // convertTo would round; Python keeps the high byte: do that by hand.
    cv::Mat high(img.rows, img.cols, CV_MAKETYPE(CV_8U, img.channels()));
    for (int y = 0; y < img.rows; ++y) {
      const auto* src = img.ptr<std::uint16_t>(y);
      auto* dst = high.ptr<std::uint8_t>(y);
      for (int i = 0; i < img.cols * img.channels(); ++i) dst[i] = static_cast<std::uint8_t>(src[i] >> 8);
    }
    img = high;
  } else if (img.depth() != CV_8U) {
    throw ImageError("image " + path + " has an unsupported pixel depth");
  }
  Pixels out;
  out.height = img.rows;
  out.width = img.cols;
  out.channels = img.channels();
  out.data.resize(static_cast<std::size_t>(out.height) * out.width * out.channels);
  for (int y = 0; y < img.rows; ++y) {
    const std::uint8_t* row = img.ptr<std::uint8_t>(y);
    std::uint8_t* dst = out.data.data() + static_cast<std::size_t>(y) * out.width * out.channels;
    for (int x = 0; x < img.cols; ++x) {
      const std::uint8_t* px = row + x * out.channels;
      std::uint8_t* o = dst + x * out.channels;
      if (out.channels == 1) {
        o[0] = px[0];
      } else {  // OpenCV stores BGR(A)
        o[0] = px[2];
        o[1] = px[1];
        o[2] = px[0];
        if (out.channels == 4) o[3] = px[3];
      }
    }
  }
  return out;
}

Pixels to_color(const Pixels& in, const std::string& color) {
  Pixels out;
  out.height = in.height;
  out.width = in.width;
  out.channels = color == "L" ? 1 : 3;
  out.data.resize(static_cast<std::size_t>(out.height) * out.width * out.channels);
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      std::uint8_t* o = out.data.data() + (static_cast<std::size_t>(y) * out.width + x) * out.channels;
      if (in.channels == 1) {
        for (int c = 0; c < out.channels; ++c) o[c] = in.at(y, x, 0);
      } else if (out.channels == 3) {  // alpha dropped, not composited
        o[0] = in.at(y, x, 0);
        o[1] = in.at(y, x, 1);
        o[2] = in.at(y, x, 2);
      } else {
        long v = (in.at(y, x, 0) * 299L + in.at(y, x, 1) * 587L + in.at(y, x, 2) * 114L + 500L) / 1000L;
        o[0] = static_cast<std::uint8_t>(v);
      }
    }
  }
  return out;
}

void resized_size(int height, int width, int shorter, int& out_h, int& out_w) {
  // floor(long * shorter / short + 1/2) in exact integer arithmetic.
  if (height <= width) {
    out_h = shorter;
    out_w = static_cast<int>((2LL * width * shorter + height) / (2LL * height));
  } else {
    out_h = static_cast<int>((2LL * height * shorter + width) / (2LL * width));
    out_w = shorter;
  }
}

namespace {

struct Taps {
  std::vector<int> i0, i1;
  std::vector<double> w;
};

Taps axis_taps(int in_size, int out_size) {
  Taps t;
  double ratio = static_cast<double>(in_size) / static_cast<double>(out_size);
  for (int o = 0; o < out_size; ++o) {
    double src = (static_cast<double>(o) + 0.5) * ratio - 0.5;
    if (src < 0.0) src = 0.0;
    int i0 = std::min(static_cast<int>(std::floor(src)), in_size - 1);
    t.i0.push_back(i0);
    t.i1.push_back(std::min(i0 + 1, in_size - 1));
    t.w.push_back(src - static_cast<double>(i0));
  }
  return t;
}

}  // namespace

Pixels resize_shorter(const Pixels& in, int shorter) {
  int out_h = 0, out_w = 0;
  resized_size(in.height, in.width, shorter, out_h, out_w);
  return resize_to(in, out_h, out_w);
}

Pixels resize_to(const Pixels& in, int out_h, int out_w) {
  if (out_h == in.height && out_w == in.width) return in;
  Taps ty = axis_taps(in.height, out_h), tx = axis_taps(in.width, out_w);
  Pixels out;
  out.height = out_h;
  out.width = out_w;
  out.channels = in.channels;
  out.data.resize(static_cast<std::size_t>(out_h) * out_w * in.channels);
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      for (int c = 0; c < in.channels; ++c) {
        double a = in.at(ty.i0[y], tx.i0[x], c), b = in.at(ty.i0[y], tx.i1[x], c);
        double d0 = in.at(ty.i1[y], tx.i0[x], c), d1 = in.at(ty.i1[y], tx.i1[x], c);
        double top = a + (b - a) * tx.w[x];
        double bottom = d0 + (d1 - d0) * tx.w[x];
        double value = top + (bottom - top) * ty.w[y];
        double r = std::floor(value + 0.5);
        r = std::min(255.0, std::max(0.0, r));
        out.data[(static_cast<std::size_t>(y) * out_w + x) * in.channels + c] = static_cast<std::uint8_t>(r);
      }
    }
  }
  return out;
}

Pixels center_crop(const Pixels& in, int crop_h, int crop_w) {
  if (crop_h > in.height || crop_w > in.width)
    throw ImageError("image of " + std::to_string(in.height) + "x" + std::to_string(in.width) +
                     " is smaller than the crop " + std::to_string(crop_h) + "x" + std::to_string(crop_w));
  int top = (in.height - crop_h) / 2, left = (in.width - crop_w) / 2;
  Pixels out;
  out.height = crop_h;
  out.width = crop_w;
  out.channels = in.channels;
  out.data.resize(static_cast<std::size_t>(crop_h) * crop_w * in.channels);
  for (int y = 0; y < crop_h; ++y)
    for (int x = 0; x < crop_w; ++x)
      for (int c = 0; c < in.channels; ++c)
        out.data[(static_cast<std::size_t>(y) * crop_w + x) * in.channels + c] = in.at(top + y, left + x, c);
  return out;
}

std::vector<float> normalize(const Pixels& in, double scale, const std::vector<float>& mean, const std::vector<float>& std) {
  const float s = static_cast<float>(scale);
  std::vector<float> out(static_cast<std::size_t>(in.channels) * in.height * in.width);
  for (int c = 0; c < in.channels; ++c) {
    const float m = mean.size() == 1 ? mean[0] : mean[c];
    const float d = std.size() == 1 ? std[0] : std[c];
    for (int y = 0; y < in.height; ++y) {
      for (int x = 0; x < in.width; ++x) {
        float v = static_cast<float>(in.at(y, x, c)) / s;
        out[(static_cast<std::size_t>(c) * in.height + y) * in.width + x] = (v - m) / d;
      }
    }
  }
  return out;
}

std::vector<float> preprocess_image(const std::string& path, const Preprocessing& pre, int& c, int& h, int& w) {
  Pixels px = preprocess_pixels(path, pre);
  c = px.channels;
  h = px.height;
  w = px.width;
  return normalize(px, pre.scale, pre.mean, pre.std);
}

Pixels preprocess_pixels(const std::string& path, const Preprocessing& pre) {
  Pixels px = to_color(read_image(path), pre.color);
  if (pre.resize > 0) {
    // an extreme aspect ratio resized up could ask for gigabytes: check the size first
    std::int64_t out_h = 0, out_w = 0;
    if (px.height <= px.width) {
      out_h = pre.resize;
      out_w = (2LL * px.width * pre.resize + px.height) / (2LL * px.height);
    } else {
      out_h = (2LL * px.height * pre.resize + px.width) / (2LL * px.width);
      out_w = pre.resize;
    }
    check_image_size(path, out_w, out_h, " after resizing to a shorter side of " + std::to_string(pre.resize));
    px = resize_shorter(px, pre.resize);
  }
  if (pre.has_crop) {
    try {
      px = center_crop(px, pre.crop_h, pre.crop_w);
    } catch (const ImageError& err) {
      throw ImageError(path + ": " + err.what());
    }
  }
  return px;
}

}  // namespace toolkit
