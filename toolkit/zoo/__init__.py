"""Model zoo: registry (`register_model`, `get_model`, `list_models`) and weight store."""
from .registry import (
    DEFAULT,
    ModelEntry,
    ModelFamily,
    Weights,
    checkout_logs,
    get_entry,
    get_model,
    list_models,
    register_model,
    register_source,
)
from .store import WeightsError, fetch, load_weights, models_dir, save_weights, toolkit_home, weights_filename

__all__ = [
    "DEFAULT",
    "ModelEntry",
    "ModelFamily",
    "checkout_logs",
    "register_source",
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
