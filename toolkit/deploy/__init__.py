"""Deployment: ONNX export with metadata, runtimes for exported graphs, int8."""
from .export import export_block
from .runtime import ExportedBlock, ExportError, load, read_metadata

__all__ = ["ExportError", "ExportedBlock", "export_block", "load", "read_metadata"]
