"""Vision utilities: training-curve plots, detection drawings, segmentation palettes and mask overlays."""
from .palette import get_color_pallete, get_palette, overlay_mask, plot_mask
from .plot import plot_training_curves, read_training_log
from .viz import plot_bbox, plot_image

__all__ = ["plot_training_curves", "read_training_log", "plot_bbox", "plot_image",
           "get_color_pallete", "get_palette", "overlay_mask", "plot_mask"]
