// Image preprocessing recorded in an export's metadata, written operation for
// operation like toolkit/deploy/preprocess.py so that the C++ runner feeds the
// graph the same float32 tensor as Python, bit for bit (see that file for the
// algorithm: colour -> shorter-side bilinear resize -> center crop -> normalise).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace toolkit {

// An image cannot be read or does not fit the preprocessing.
struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// 8-bit pixels, rows of interleaved channels (HWC), RGB(A) or grey order.
struct Pixels {
  int height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> data;
  std::uint8_t at(int y, int x, int c) const { return data[(static_cast<std::size_t>(y) * width + x) * channels + c]; }
};

struct Preprocessing {
  std::string color = "RGB";  // "RGB" or "L"
  int resize = 0;             // shorter side; 0 = no resize
  bool has_crop = false;
  int crop_h = 0, crop_w = 0;
  double scale = 255.0;
  std::vector<float> mean{0.0f}, std{1.0f};
  int channels() const { return color == "L" ? 1 : 3; }

  // Reads and checks meta["preprocessing"]; throws ImageError naming what is wrong.
  static Preprocessing from_metadata(const nlohmann::json& meta);
};

// Decodes PNG/JPEG/... with OpenCV (EXIF orientation ignored, 16-bit reduced to the high byte).
Pixels read_image(const std::string& path);
Pixels to_color(const Pixels& in, const std::string& color);
void resized_size(int height, int width, int shorter, int& out_h, int& out_w);
Pixels resize_shorter(const Pixels& in, int shorter);
// Bilinear resize to exactly out_h x out_w (the arithmetic of resize_shorter; detectors' resize [h, w]).
Pixels resize_to(const Pixels& in, int out_h, int out_w);
Pixels center_crop(const Pixels& in, int crop_h, int crop_w);
// HWC uint8 -> CHW float32: (p / scale - mean[c]) / std[c] in float32.
std::vector<float> normalize(const Pixels& in, double scale, const std::vector<float>& mean, const std::vector<float>& std);
// The 8-bit pixels the graph sees (colour, resize, crop), before normalisation: what an overlay is drawn on.
Pixels preprocess_pixels(const std::string& path, const Preprocessing& pre);
// The whole pipeline for one image file: returns C*H*W floats and sets c/h/w.
std::vector<float> preprocess_image(const std::string& path, const Preprocessing& pre, int& c, int& h, int& w);

}  // namespace toolkit
