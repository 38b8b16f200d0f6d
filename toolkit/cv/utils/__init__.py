"""Vision utilities: training-curve plots, segmentation palettes and mask overlays."""
from .palette import get_color_pallete, get_palette, overlay_mask, plot_mask
from .plot import plot_training_curves, read_training_log

__all__ = ["get_color_pallete", "get_palette", "overlay_mask", "plot_mask", "plot_training_curves", "read_training_log"]
