"""Hybridizable blocks and layers shared by the vision and text halves."""
from .block import HybridBlock, HybridizeError

__all__ = ["HybridBlock", "HybridizeError"]
