"""Train, evaluate and plot an image classifier on Fashion-MNIST.

The whole loop in plain PyTorch with the toolkit's pieces:

1. the dataset (``toolkit.cv.data.FashionMNIST``; the Debian package
   ``dataset-fashion-mnist`` provides the files, or put them in ``$TOOLKIT_DATA/fashion-mnist``);
2. the transform presets (``toolkit.cv.presets``: random crop + flip for training);
3. a zoo model built for 1-channel 28x28 images and 10 classes;
4. a training loop logging JSON lines (``scripts.common.JSONLinesLogger``);
5. top-1/top-5 evaluation (``toolkit.cv.metrics.TopKAccuracy``);
6. training curves drawn from the log (``toolkit.cv.utils.plot_training_curves``);
7. export of the trained model to ONNX and a check that the exported graph agrees.

Run from the repository root::

    python tutorials/classification_fashion_mnist.py            # full data, 10 epochs (hours on a shared CPU)
    python tutorials/classification_fashion_mnist.py --tiny     # seconds (what the tests run)

For the full recipe with every option (resume, DDP, mixup, distillation) use
``scripts/classification/train.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.common import JSONLinesLogger  # noqa: E402
from toolkit.cv import presets  # noqa: E402
from toolkit.cv.data import FashionMNIST  # noqa: E402
from toolkit.cv.metrics import TopKAccuracy  # noqa: E402
from toolkit.cv.utils import plot_training_curves  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402


def evaluate(model, loader) -> dict[str, float]:
    metric = TopKAccuracy((1, 5))
    model.eval()
    with torch.inference_mode():
        for x, y in loader:
            metric.update(model(x), y)
    return metric.get()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", default=os.environ.get("TOOLKIT_TUTORIAL_TINY") == "1",
                   help="a few hundred images and 2 epochs (also: TOOLKIT_TUTORIAL_TINY=1)")
    p.add_argument("--model", default="cifar_resnet20_v1")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", default="tutorial_output", help="folder for the log, plot and exported model")
    args = p.parse_args()
    torch.manual_seed(0)
    out = Path(args.out)

    # 1-2. data and presets
    train_set, test_set = FashionMNIST(train=True), FashionMNIST(train=False)
    print(f"{train_set}\n{test_set}\nclasses: {train_set.classes}")
    epochs, batch = args.epochs, 128
    # Gluon's transform_first: the preset maps the image of each (image, label) sample
    train_data = train_set.transform_first(presets.train_preset("fashion-mnist"))
    test_data = test_set.transform_first(presets.eval_preset("fashion-mnist"))
    if args.tiny:
        train_data, test_data, epochs, batch = Subset(train_data, range(512)), Subset(test_data, range(256)), 2, 64
    train_loader = DataLoader(train_data, batch_size=batch, shuffle=True, drop_last=True)
    test_loader = DataLoader(test_data, batch_size=256)

    # 3. a zoo model for 1-channel images; its metadata says how to feed it once exported
    model = get_model(args.model, classes=10, in_channels=1)
    model.metadata.update(input_shape=[1, 28, 28], classes=FashionMNIST.classes,
                          preprocessing=presets.preprocessing_metadata("fashion-mnist"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=epochs * len(train_loader))

    # 4-5. train, logging one JSON object per epoch
    log_path = out / "log.jsonl"
    log_path.unlink(missing_ok=True)
    with JSONLinesLogger(log_path) as log:
        step = 0
        for epoch in range(epochs):
            model.train()
            tic, total, seen, acc = time.time(), 0.0, 0, TopKAccuracy((1,))
            for x, y in train_loader:
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                total += float(loss.detach()) * len(y)
                seen += len(y)
                acc.update(logits, y)
            val = evaluate(model, test_loader)
            rec = log.log(kind="epoch", epoch=epoch, step=step, loss=total / seen, train_acc=acc.get()["top1"],
                          val_top1=val["top1"], val_top5=val["top5"], throughput=seen / (time.time() - tic))
            log.info(f"epoch {epoch + 1}/{epochs}: loss {rec['loss']:.3f}, train {rec['train_acc']:.1f}%, "
                     f"test top-1 {val['top1']:.2f}%, top-5 {val['top5']:.2f}%")

    # 6. curves
    png = plot_training_curves(log_path, out / "curves.png", title=f"{args.model} on Fashion-MNIST")
    print(f"training curves: {png}")

    # 7. export and check the graph against eager PyTorch
    from toolkit.deploy import load

    model.eval()
    model.export(str(out / "fashion_mnist"))
    exported = load(out / "fashion_mnist")
    x, _ = next(iter(test_loader))
    diff = (exported(x) - model(x)).abs().max().item()
    print(f"exported {out / 'fashion_mnist'}.onnx; max |onnxruntime - eager| = {diff:.2e}")


if __name__ == "__main__":
    main()
