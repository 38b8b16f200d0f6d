"""Deployment: ONNX export with metadata, runtimes for exported graphs, int8."""
from .export import export_block
from .openvino import OpenVINOBlock, load_openvino
from .predict import predict, register_predictor
from .preprocess import ImageError, ImagePreprocessing, preprocess_image, read_image
from .quantize import quantize
from .runtime import ExportedBlock, ExportError, load, read_metadata

__all__ = [
    "ExportError",
    "ExportedBlock",
    "ImageError",
    "ImagePreprocessing",
    "OpenVINOBlock",
    "export_block",
    "load",
    "load_openvino",
    "predict",
    "preprocess_image",
    "quantize",
    "read_image",
    "read_metadata",
    "register_predictor",
]
