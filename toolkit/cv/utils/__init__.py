"""Vision utilities: training-curve plots, detection drawings."""
from .plot import plot_training_curves, read_training_log
from .viz import plot_bbox, plot_image

__all__ = ["plot_training_curves", "read_training_log", "plot_bbox", "plot_image"]
