"""GluonCV's ``get_segmentation_model(model, dataset=..., backbone=...)`` over the zoo's names."""
from __future__ import annotations

from typing import Any

from torch import nn

from ._registry import DATASET_CLASSES

__all__ = ["MODELS", "get_segmentation_model", "normalize_dataset"]

MODELS = ("fcn", "psp", "deeplab", "lraspp")
_DATASET_ALIASES = {"pascal_voc": "voc", "pascal_aug": "voc", "voc": "voc", "ade20k": "ade", "ade": "ade",
                    "coco": "coco", "citys": "citys", "cityscapes": "citys", "fashion-scenes": "fashion-scenes"}


def normalize_dataset(dataset: str) -> str:
    """GluonCV's dataset names (``pascal_voc``, ``ade20k`` ...) to the zoo's suffixes."""
    key = str(dataset).lower()
    if key not in _DATASET_ALIASES:
        raise ValueError(f"unknown segmentation dataset {dataset!r}; known: {', '.join(sorted(_DATASET_ALIASES))}")
    return _DATASET_ALIASES[key]


def get_segmentation_model(model: str, dataset: str = "voc", backbone: str = "resnet50", **kwargs: Any) -> nn.Module:
    """Build ``model`` (``fcn``, ``psp``, ``deeplab``, ``lraspp``) for ``dataset`` on ``backbone``.

    Parameters
    ----------
    model : str
        Family, GluonCV's ``--model`` values (and ``lraspp``).
    dataset : str
        Sets the default number of classes (``voc``/``pascal_voc`` 21, ``ade20k`` 150,
        ``coco`` 21, ``citys`` 19, ``fashion-scenes`` 11); ``classes=`` overrides it.
    backbone : str
        ``resnet50`` (meaning GluonCV's ``resnet50_v1s``), any zoo ResNet v1b-family
        name (``resnet18_v1s``), or ``mobilenetv3_large`` (``deeplab`` and ``lraspp``).
    **kwargs
        Model arguments (``aux``, ``crop_size``, ``norm_layer`` ...).
    """
    from ....zoo import get_model

    family = str(model).lower()
    if family not in MODELS:
        raise ValueError(f"unknown segmentation model {model!r}; use one of {', '.join(MODELS)}")
    ds = normalize_dataset(dataset)
    kwargs.setdefault("classes", DATASET_CLASSES[ds])
    bb = str(backbone).lower()
    mobile = bb in ("mobilenetv3_large", "mobilenet_v3_large")
    if family == "lraspp" or (family == "deeplab" and mobile):
        if not mobile:
            raise ValueError(f"--model {family} runs on mobilenetv3_large, not {backbone!r}")
        return get_model("lraspp_mobilenet_v3_large" if family == "lraspp" else "deeplabv3_mobilenet_v3_large",
                         **kwargs)
    if mobile:
        raise ValueError(f"--model {family} takes a ResNet backbone, not {backbone!r}")
    if "_" not in bb:
        bb = f"{bb}_v1s"
    from ._registry import resolve_nclass
    from .deeplabv3 import DeepLabV3
    from .fcn import FCN
    from .pspnet import PSPNet

    cls = {"fcn": FCN, "psp": PSPNet, "deeplab": DeepLabV3}[family]
    net = cls(resolve_nclass(kwargs, DATASET_CLASSES[ds]), backbone=bb, **kwargs)
    net.metadata.update(name=f"{family}_{bb}_{ds}", dataset=ds)
    return net
