"""VOC07 mAP of a probe's weights on the first 200 val canvases with eval-mode BatchNorm (running statistics,
as ``eval.py``) and with train-mode BatchNorm (batch statistics, batches of 16): a large gap means the running
statistics, not the weights, are what fails.

Usage: ``PYTHONPATH=. python eval_bn_modes.py RUN_DIR`` (a ``train_yolo3.py --network mobilenet0.25
--data-shape 128 --dataset fashion-scenes`` run folder with ``metrics.json``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "scripts" / "detection"))
import _det_common as common  # noqa: E402
import eval as det_eval  # noqa: E402


def main(run: str) -> None:
    torch.set_num_threads(1)
    weights = str(next(Path(run).glob("*.safetensors")))
    argv = ["--algorithm", "yolo3", "--network", "mobilenet0.25", "--data-shape", "128", "--dataset",
            "fashion-scenes", "--batch-size", "16", "--max-val-samples", "200", "--pretrained", weights]
    plain = common.evaluate
    print("eval-mode BN", det_eval.main(argv))

    def train_bn(model, *args, **kwargs):
        # evaluate() calls model.eval(); put the BatchNorm layers back to batch statistics for the forward
        real_eval = model.eval

        def eval_keep_bn():
            real_eval()
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
            return model
        model.eval = eval_keep_bn
        return plain(model, *args, **kwargs)

    common.evaluate = train_bn
    print("train-mode BN", det_eval.main(argv))


if __name__ == "__main__":
    main(sys.argv[1])
