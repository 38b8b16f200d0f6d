"""Model zoo: registry (`register_model`, `get_model`, `list_models`) and weight store."""
from .registry import ModelEntry, Weights, get_entry, get_model, list_models, register_model
from .store import WeightsError, fetch, load_weights, models_dir, save_weights, toolkit_home, weights_filename

__all__ = [
    "ModelEntry",
    "Weights",
    "WeightsError",
    "fetch",
    "get_entry",
    "get_model",
    "list_models",
    "load_weights",
    "models_dir",
    "register_model",
    "save_weights",
    "toolkit_home",
    "weights_filename",
]
