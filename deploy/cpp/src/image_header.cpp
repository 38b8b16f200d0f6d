#include "image_header.hpp"

#include <array>
#include <fstream>

namespace toolkit {

namespace {

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint32_t be16(const unsigned char* p) { return (std::uint32_t{p[0]} << 8) | p[1]; }

// Walks the JPEG markers up to the first start-of-frame (SOF0..SOF15 but DHT, JPG and DAC).
ImageHeader jpeg_header(std::ifstream& in) {
  ImageHeader h;
  for (int guard = 0; guard < 4096; ++guard) {  // a marker chain this long is not a JPEG header
    int c = in.get();
    if (c != 0xFF) return h;
    while (c == 0xFF) c = in.get();  // fill bytes
    if (c == EOF) return h;
    const int marker = c;
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    unsigned char len_bytes[2];
    if (!in.read(reinterpret_cast<char*>(len_bytes), 2)) return h;
    const std::uint32_t len = be16(len_bytes);
    if (len < 2) return h;
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      unsigned char f[6];  // precision, height (2), width (2), components
      if (len < 8 || !in.read(reinterpret_cast<char*>(f), 6)) return h;
      h.format = "jpeg";
      h.height = be16(f + 1);
      h.width = be16(f + 3);
      h.components = f[5];
      return h;
    }
    if (marker == 0xDA || marker == 0xD9) return h;  // scan or end before any frame header
    in.seekg(static_cast<std::streamoff>(len) - 2, std::ios::cur);
    if (!in) return h;
  }
  return h;
}

}  // namespace

ImageHeader probe_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 24> head{};
  if (!in.read(reinterpret_cast<char*>(head.data()), 2)) return {};
  if (head[0] == 0xFF && head[1] == 0xD8) {
    in.seekg(0);
    return jpeg_header(in);
  }
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (!in.read(reinterpret_cast<char*>(head.data()) + 2, 22)) return {};
  for (int i = 0; i < 8; ++i)
    if (head[i] != kPng[i]) return {};
  if (head[12] != 'I' || head[13] != 'H' || head[14] != 'D' || head[15] != 'R') return {};
  ImageHeader h;
  h.format = "png";
  h.width = be32(head.data() + 16);
  h.height = be32(head.data() + 20);
  return h;
}

}  // namespace toolkit
