// Size and colour components of a PNG or JPEG, read from its header before any pixel is decoded.
//
// Written here because OpenCV 4.6 has no public header-only reader (its decoders' readHeader is
// internal) and its own size limit (OPENCV_IO_MAX_IMAGE_PIXELS, 2^30 pixels) is read once when the
// library loads: the runner needs the dimensions to refuse a decompression bomb before the
// allocation, and the JPEG component count to refuse CMYK/YCCK (which OpenCV silently converts).
#pragma once

#include <cstdint>
#include <string>

namespace toolkit {

struct ImageHeader {
  std::string format;          // "png", "jpeg" or "" (another format: OpenCV decides)
  std::int64_t width = 0, height = 0;
  int components = 0;          // JPEG: colour components in the frame (4 = CMYK or YCCK)
  bool known() const { return !format.empty() && width > 0 && height > 0; }
};

// Reads the header of a PNG (IHDR) or a JPEG (the first SOFn marker); format "" for anything else
// or a header too short to tell (the decoder then reports the file).
ImageHeader probe_image(const std::string& path);

}  // namespace toolkit
