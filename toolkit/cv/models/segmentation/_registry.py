"""Zoo registration of the segmentation families under GluonCV's names (``fcn_resnet50_voc`` ...)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ....zoo import Weights, register_model

__all__ = ["DATASET_CLASSES", "META", "fashion_scenes_weights", "register_fashion_scenes", "register_segmentation",
           "resolve_nclass"]

#: Classes (background included) of the datasets GluonCV's names end with.
DATASET_CLASSES = {"voc": 21, "coco": 21, "ade": 150, "citys": 19, "fashion-scenes": 11}
# GluonCV's base/crop sizes per dataset (Cityscapes images are 2048x1024).
_SIZES = {"citys": {"base_size": 2048, "crop_size": 768}}
META = {"family": "segmentation"}
_DATASET_NAMES = {"voc": "Pascal VOC", "coco": "COCO (VOC's 21 classes)", "ade": "ADE20K", "citys": "Cityscapes"}


def resolve_nclass(kwargs: dict[str, Any], default: int) -> int:
    """Pop the class count from ``kwargs``: ``nclass`` (GluonCV) or ``classes`` (the zoo's usual name)."""
    nclass = kwargs.pop("nclass", None)
    classes = kwargs.pop("classes", None)
    if nclass is not None and classes is not None and int(nclass) != int(classes):
        raise ValueError(f"nclass={nclass} and classes={classes} disagree; give one")
    return int(nclass if nclass is not None else classes if classes is not None else default)


def _builder(cls: type, name: str, depth: str, dataset: str):
    def build(**kwargs: Any):
        kwargs.setdefault("backbone", f"{depth}_v1s")
        for k, v in _SIZES.get(dataset, {}).items():
            kwargs.setdefault(k, v)
        return cls(resolve_nclass(kwargs, DATASET_CLASSES[dataset]), **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"{cls.__name__} on a dilated {depth} v1s for {_DATASET_NAMES[dataset]} ({DATASET_CLASSES[dataset]} classes), "
        f"GluonCV's ``{name}``. Keyword arguments go to :class:`{cls.__name__}` (``backbone=``, ``aux=``, "
        "``classes=``, ``crop_size=`` ...)."
    )
    return build


def register_segmentation(prefix: str, cls: type, combos: Sequence[tuple[str, str]]) -> None:
    """Register ``{prefix}_{depth}_{dataset}`` for each ``(depth, dataset)``."""
    for depth, dataset in combos:
        name = f"{prefix}_{depth}_{dataset}"
        register_model(_builder(cls, name, depth, dataset), name=name, task="segmentation",
                       metadata={**META, "family": prefix, "dataset": dataset})


def fashion_scenes_weights(log: str, sha256: str, metrics: dict[str, float], crop_size: int,
                           **kwargs: Any) -> Weights:
    """:class:`~toolkit.zoo.Weights` of a zoo row trained on ``fashion-scenes`` (``model_zoo_logs/<log>``).

    The metadata (class names, input shape, preprocessing) is what the run's
    ``config.json`` records; ``kwargs`` are the builder arguments the weights need.
    """
    from ...data.scenes import SCENES_CLASSES
    from ._base import segmentation_preprocessing

    return Weights(
        sha256=sha256, metrics=dict(metrics), log=log,
        kwargs={"classes": DATASET_CLASSES["fashion-scenes"], "crop_size": crop_size, **kwargs},
        metadata={"dataset": "fashion-scenes", "classes": ["background", *SCENES_CLASSES],
                  "input_shape": [3, crop_size, crop_size], "preprocessing": segmentation_preprocessing(crop_size)},
    )


def register_fashion_scenes(builder: Any, name: str, family: str, log: str, sha256: str, metrics: dict[str, float],
                            crop_size: int, base_size: int) -> None:
    """Register ``builder`` as ``name``, a ``family`` model for ``fashion-scenes``, with its zoo row's weights.

    ``log`` is the row's folder under ``model_zoo_logs``; ``metrics`` are the numbers as its run wrote
    them (``tests/core/test_zoo.py`` compares them), ``crop_size``/``base_size`` the run's, so that
    :class:`MultiEvalModel` on the pretrained model evaluates at the row's scales.
    """
    register_model(builder, name=name, task="segmentation", metadata={**META, "family": family, "dataset": "fashion-scenes"},
                   weights=[fashion_scenes_weights(log, sha256=sha256, metrics=metrics, crop_size=crop_size,
                                                   base_size=base_size)])
