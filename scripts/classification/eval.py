#!/usr/bin/env python
"""Evaluate a classifier: top-1/top-5 accuracy and throughput.

A zoo model with weights (a safetensors path, ``True`` for the published ones, or a tag)::

    python scripts/classification/eval.py --model cifar_resnet20_v1 --dataset fashion-mnist \\
        --weights model_zoo_logs/classification/cifar_resnet20_v1-fashion-mnist/cifar_resnet20_v1.safetensors

An exported graph (``prefix.onnx`` + ``prefix.json``; fp32 or int8), run by onnxruntime::

    python scripts/classification/eval.py --exported /tmp/r20 --dataset fashion-mnist

Images are pre-processed as the model's metadata says (``preprocessing``:
resize of the shorter side, center crop, scale, mean, std), so the numbers
check the metadata an exported model ships with. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.common import parse_args  # noqa: E402
from toolkit.cv.metrics import TopKAccuracy  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate a classifier on a dataset's validation/test split.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name")
    src.add_argument("--exported", metavar="PREFIX", help="exported graph prefix (toolkit.deploy.load)")
    a("--weights", default=None, help="safetensors path, 'True' (published weights) or a tag; default: random init")
    a("--model-kwargs", default="{}", help="JSON dict of builder arguments")
    a("--dataset", default="fashion-mnist", choices=["imagenet", "cifar10", "cifar100", "mnist", "fashion-mnist", "folder"])
    a("--data-dir", default=None, help="dataset folder (for 'folder': the folder of class folders)")
    a("--batch-size", type=int, default=256)
    a("--num-threads", type=int, default=None)
    a("--num-workers", "-j", type=int, default=0)
    a("--max-samples", type=int, default=None, help="evaluate only the first N samples")
    a("--hybridize", action="store_true", help="run the zoo model as a captured graph")
    a("--channels-last", action="store_true")
    return p


def _dataset(args):
    from toolkit.cv import data as cvdata

    if args.dataset == "folder":
        if not args.data_dir:
            raise SystemExit("--dataset folder needs --data-dir")
        return cvdata.ImageFolderDataset(args.data_dir)
    cls = {"imagenet": cvdata.ImageNet, "cifar10": cvdata.CIFAR10, "cifar100": cvdata.CIFAR100,
           "mnist": cvdata.MNIST, "fashion-mnist": cvdata.FashionMNIST}[args.dataset]
    return cls(args.data_dir, train=False)


class MetadataTransform:
    """The evaluation pre-processing a model's ``metadata["preprocessing"]`` describes, on torchvision v2.

    Resize of the shorter side (bilinear, no antialias), center crop, ``x / scale``,
    ``(x - mean) / std``; grayscale/RGB conversion to the expected channel count.
    """

    def __init__(self, prep: dict[str, Any]) -> None:
        from torchvision.transforms import v2

        if prep.get("layout", "NCHW") != "NCHW":
            raise ValueError(f"only NCHW models are supported, metadata says {prep.get('layout')}")
        self.color = prep.get("color", "RGB")
        ops: list[Any] = [v2.ToImage()]
        if int(prep.get("resize", 0)):
            ops.append(v2.Resize(int(prep["resize"]), interpolation=v2.InterpolationMode.BILINEAR, antialias=False))
        ops.append(v2.CenterCrop([int(c) for c in prep["crop"]]))
        self.ops = v2.Compose(ops)
        self.scale = float(prep.get("scale", 255.0))
        self.mean = torch.tensor(prep["mean"], dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(prep["std"], dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, sample):
        image, label = sample
        x = self.ops(image)
        if self.color == "L" and x.shape[0] == 3:
            from torchvision.transforms.v2 import functional as TF

            x = TF.rgb_to_grayscale(x)
        elif self.color == "RGB" and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        x = (x.float() / self.scale - self.mean) / self.std
        return x, label


class _Mapped(torch.utils.data.Dataset):
    def __init__(self, data, fn, n=None):
        self.data, self.fn = data, fn
        self.n = len(data) if n is None else min(n, len(data))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return self.fn(self.data[i])


def load_model(args, num_classes: int):
    """Return ``(callable, metadata, description)``."""
    if args.exported:
        from toolkit.deploy import load

        block = load(args.exported, num_threads=args.num_threads)
        return block, block.metadata, f"exported graph {args.exported}"
    from toolkit.zoo import get_model

    kwargs = json.loads(args.model_kwargs)
    pretrained: Any = False
    if args.weights is not None:
        pretrained = True if args.weights == "True" else args.weights
    if args.weights and Path(args.weights).is_file():
        # Our own trained weights carry their metadata (dataset preprocessing, classes).
        from safetensors import safe_open

        with safe_open(args.weights, "pt") as f:
            header = f.metadata() or {}
        stored = json.loads(header.get("toolkit", "{}")).get("metadata") or json.loads(header.get("metadata", "{}"))
        if stored.get("preprocessing"):
            kwargs.setdefault("in_channels", stored["input_shape"][0])
        kwargs.setdefault("classes", stored.get("num_classes") or num_classes)
    else:
        stored = {}
    kwargs.setdefault("classes", num_classes)
    model = get_model(args.model, pretrained=pretrained, **kwargs).eval()
    meta = dict(getattr(model, "metadata", {}))
    meta.update({k: v for k, v in stored.items() if k in ("preprocessing", "input_shape", "classes")})
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.hybridize:
        model.hybridize()
    return model, meta, f"zoo model {args.model}" + (f" with weights {args.weights}" if args.weights else " (random init)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(build_parser(), argv, task="classification")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    data = _dataset(args)
    num_classes = len(data.classes) if getattr(data, "classes", None) else int(max(data.targets)) + 1
    model, meta, what = load_model(args, num_classes)
    prep = meta.get("preprocessing")
    if not prep:
        raise SystemExit(f"{what} has no metadata['preprocessing']: cannot know how to feed it images")
    loader = DataLoader(_Mapped(data, MetadataTransform(prep), args.max_samples), batch_size=args.batch_size,
                        num_workers=args.num_workers)
    metric = TopKAccuracy((1, 5))
    compute = 0.0
    tic = time.time()
    with torch.inference_mode():
        for x, y in loader:
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            out = model(x)
            compute += time.perf_counter() - t0
            out = torch.as_tensor(out)
            if out.shape[-1] != num_classes:
                raise SystemExit(f"{what} outputs {out.shape[-1]} classes but {args.dataset} has {num_classes}")
            metric.update(out.float(), y)
    total = time.time() - tic
    result = {"model": args.model or args.exported, "dataset": args.dataset, "samples": metric.count,
              **{k: round(v, 2) for k, v in metric.get().items()},
              "throughput_img_s": round(metric.count / max(compute, 1e-9), 1),
              "end_to_end_img_s": round(metric.count / max(total, 1e-9), 1), "batch_size": args.batch_size,
              "threads": torch.get_num_threads()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
