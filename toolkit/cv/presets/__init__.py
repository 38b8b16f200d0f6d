"""Transform presets of the vision half, one module per task.

``toolkit.cv.presets`` re-exports the classification presets (ImageNet, CIFAR,
(Fashion-)MNIST, :func:`load_test`); task presets live in submodules.
"""
from .classification import (
    DATASET_STATS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Lighting,
    cifar_eval,
    cifar_train,
    eval_preset,
    imagenet_eval,
    imagenet_train,
    load_test,
    mnist_eval,
    mnist_train,
    preprocessing_metadata,
    train_preset,
)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "DATASET_STATS", "Lighting",
    "imagenet_train", "imagenet_eval", "cifar_train", "cifar_eval", "mnist_train", "mnist_eval",
    "train_preset", "eval_preset", "preprocessing_metadata", "load_test",
]
