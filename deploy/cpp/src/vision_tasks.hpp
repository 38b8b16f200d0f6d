// Segmentation and detection exports in the C++ runner: the class map as an indexed PNG and the JSON of `toolkit predict`.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model.hpp"

namespace toolkit {

// For each image: preprocess as the metadata says, argmax over the class axis (ties: lowest id), write
// OUT/<stem>.png (8-bit palette PNG, the metadata's palette), with overlay also OUT/<stem>_overlay.png
// (the preprocessed image blended half and half with the class colours, (a + b + 1) / 2, class 0 left
// as the image), and return {"input", "mask": path, "classes": {label: pixel count}} (classes present only).
nlohmann::ordered_json segment_images(Model& model, const std::vector<std::string>& inputs, const std::string& out_dir,
                              bool overlay = false);

// For each image: resize to the metadata's [h, w], normalise, run the graph (NMS inside), keep detections
// scoring >= threshold and return {"input", "detections": [{"index", "label", "score", "box"}]}, boxes in
// the image's own pixels (x * W / w, y * H / h), as toolkit.cv.deploy.detection. With a draw folder, also
// writes DRAW/<stem>.png: the image at its own size with the boxes and "label score" drawn on it.
nlohmann::ordered_json detect_images(Model& model, const std::vector<std::string>& inputs, double threshold,
                             const std::string& draw_dir = "");

}  // namespace toolkit
