"""Vision utilities: training-curve plots."""
from .plot import plot_training_curves, read_training_log

__all__ = ["plot_training_curves", "read_training_log"]
