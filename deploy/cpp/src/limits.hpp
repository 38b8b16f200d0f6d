// Upper bounds shared by the three runners (Python: toolkit/deploy/preprocess.py MAX_*; Java:
// deploy/java Limits.java): a bad export or a hostile image fails fast with one clear error
// instead of an allocation of gigabytes.
#pragma once

#include <cstdint>

namespace toolkit {

// metadata preprocessing.resize (shorter side) and each side of preprocessing.crop
constexpr std::int64_t kMaxPreprocessSize = 8192;
// width and height of an image, from its header before decoding, and after the resize step
constexpr std::int64_t kMaxImageSide = 65535;
// width * height (Pillow's default Image.MAX_IMAGE_PIXELS, 1024**3 // 4 // 3)
constexpr std::int64_t kMaxImagePixels = 89478485;

}  // namespace toolkit
