"""Deploy a detector and a segmentation model: export, int8, Python, C++ and Java, pictures.

The deployment path of ``tutorials/deploy_export_quantize.py`` for the two dense tasks, on models
trained here on the offline fashion-scenes set:

1. train an SSD (``ssd_512_mobilenet1.0_voc`` on a MobileNet 0.25 backbone) and an LR-ASPP
   MobileNetV3 (``--seg-model fcn``: FCN on ResNet-18 v1s) for a few epochs and save checkpoints;
2. export them (``toolkit export CKPT --out PREFIX``): the detector's NMS is inside the graph
   (ONNX ``NonMaxSuppression``) and ``PREFIX.json`` records it; the segmentation export records
   the palette of its class colours;
3. run them from Python on onnxruntime and OpenVINO (``toolkit predict``): detections in the image's
   own pixels, drawn with ``toolkit.cv.utils.plot_bbox`` (``--draw``); class maps as indexed PNGs
   with an overlay (``--out DIR --overlay``);
4. quantize both to int8 (``toolkit quantize``, calibrated on training canvases) and compare fp32
   and int8 on the validation set (VOC07 mAP; pixAcc / mIoU);
5. run the C++ runner (``deploy/cpp``) and the Java runner (``deploy/java``) with the same command
   line, ``PREFIX IMAGES... --json [--threshold T] [--out DIR]``, and check that they print what
   Python prints on OpenVINO (the engine they run).

A runtime that refuses a graph is reported with its own error and skipped, never replaced by
another engine's result: at the time of writing OpenVINO fails on int8 detector graphs (so int8
detection runs on onnxruntime only), and the Java runner serves classification and text models
only (it says so, and the Java step is skipped; it runs once the runner serves these tasks).

Run from the repository root::

    python tutorials/deploy_detection_segmentation.py           # 128-pixel canvases, a few epochs (long on a CPU)
    python tutorials/deploy_detection_segmentation.py --tiny    # a small set, 64 pixels, 2 epochs (the tests)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from toolkit.cv.data import FashionScenes, FashionScenesSegmentation, build_fashion_scenes  # noqa: E402
from toolkit.cv.data.detection import detection_batchify  # noqa: E402
from toolkit.deploy import predict, quantize  # noqa: E402
from toolkit.deploy.cli import main as toolkit  # noqa: E402
from toolkit.zoo import get_model  # noqa: E402

#: what a runner prints when it does not serve a task (yet), or an option of that task
REFUSALS = ("does not yet support task", "unknown option --threshold", "unknown option --out")




# ------------------------------------------------------------------------------------------- 1. training
def train_detector(root: Path, size: int, epochs: int, folder: Path) -> Path:
    """A few epochs of SSD; returns a checkpoint ``toolkit export`` reads (zoo name, kwargs, weights)."""
    from toolkit.cv.models.ssd import SSDMultiBoxLoss, SSDTargetGenerator
    from toolkit.cv.presets.ssd import SSDDefaultTrainTransform

    train = FashionScenes("train", root)
    kwargs = {"backbone": "mobilenet0.25", "data_shape": size, "classes": list(train.classes)}
    torch.manual_seed(0)
    model = get_model("ssd_512_mobilenet1.0_voc", **kwargs)
    loader = DataLoader(train.transform(SSDDefaultTrainTransform(size, size)), batch_size=8, shuffle=True,
                        drop_last=True, collate_fn=detection_batchify())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    targets, criterion = SSDTargetGenerator(), SSDMultiBoxLoss()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for x, labels in loader:
            cls_preds, box_preds, anchors = model(x)
            loss = criterion(cls_preds, box_preds, *targets(anchors, labels))[0].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        print(f"  SSD epoch {epoch + 1}/{epochs}: loss {total / len(loader):.3f}")
    ckpt = folder / "ssd.pt"
    torch.save({"model_name": "ssd_512_mobilenet1.0_voc", "model_kwargs": kwargs,
                "state_dict": model.eval().state_dict()}, ckpt)
    return ckpt


def train_segmenter(root: Path, size: int, epochs: int, arch: str, folder: Path) -> Path:
    """A few epochs of LR-ASPP (or FCN); returns a checkpoint ``toolkit export`` reads."""
    from toolkit.cv.models.segmentation import MixSoftmaxCrossEntropyLoss
    from toolkit.cv.presets.segmentation import segmentation_train

    train = FashionScenesSegmentation("train", root=root)
    n = train.num_class
    if arch == "lraspp":
        name, kwargs = "lraspp_mobilenet_v3_large", {"classes": n, "base_size": size, "crop_size": size}
    else:
        name, kwargs = "fcn_resnet50_voc", {"backbone": "resnet18_v1s", "classes": n, "base_size": size,
                                            "crop_size": size}
    torch.manual_seed(0)
    model = get_model(name, **kwargs)
    crop = size - size // 8  # train on crops; the export takes whole canvases (crop_size = size)
    loader = DataLoader(train.transform(segmentation_train(base_size=size, crop_size=crop, num_class=n)),
                        batch_size=8, shuffle=True, drop_last=True)
    criterion = MixSoftmaxCrossEntropyLoss(aux=model.aux, aux_weight=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        print(f"  {arch} epoch {epoch + 1}/{epochs}: loss {total / len(loader):.3f}")
    ckpt = folder / f"{arch}.pt"
    torch.save({"model_name": name, "model_kwargs": kwargs, "state_dict": model.eval().state_dict(),
                "metadata": {"classes": list(train.classes), "dataset": "fashion-scenes"}}, ckpt)
    return ckpt


def save_canvases(root: Path, split: str, count: int, folder: Path) -> list[Path]:
    """The first ``count`` canvases of a split as PNG files (what a user would feed the runners)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    data = FashionScenes(split, root)
    paths = []
    for i in range(min(count, len(data))):
        image, _ = data[i]
        paths.append(folder / f"{split}{i}.png")
        Image.fromarray(np.ascontiguousarray(image.numpy().transpose(1, 2, 0))).save(paths[-1])
    return paths


# ------------------------------------------------------------------------------------------- 5. runners
def build_runners() -> dict[str, list[str]]:
    """Build the C++ runner (CMake, OpenVINO from the pip wheel) and the Java runner (javac + JNI)."""
    build = REPO / "deploy" / "cpp" / "build"
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    subprocess.run(["cmake", "-S", str(REPO / "deploy" / "cpp"), "-B", str(build), f"-DTOOLKIT_PYTHON={sys.executable}",
                    "-DCMAKE_BUILD_TYPE=Release"], **quiet)
    subprocess.run(["cmake", "--build", str(build), "-j", "2"], **quiet)
    subprocess.run(["bash", str(REPO / "deploy" / "java" / "build.sh")], env={**os.environ, "TOOLKIT_PYTHON": sys.executable},
                   **quiet)
    return {"C++": [str(build / "toolkit-predict")], "Java": [str(REPO / "deploy" / "java" / "predict")]}


def run_native(runner: list[str], prefix: Path, images: list[Path], *extra: str) -> list[dict] | str:
    """The runner's JSON, or its one-line error when it refuses the model (an unserved task, a graph its
    engine cannot compile); any other failure raises."""
    done = subprocess.run([*runner, str(prefix), *map(str, images), "--json", *extra], capture_output=True, text=True,
                          timeout=600)
    if done.returncode == 0:
        return json.loads(done.stdout)
    line = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
    if done.returncode == 1 or any(r in line for r in REFUSALS):
        return line
    raise RuntimeError(f"{runner[0]} failed with exit status {done.returncode}: {done.stderr[-2000:]}")


def compare_detections(got: list[dict], ref: list[dict]) -> tuple[bool, float]:
    """Same labels in the same order per image; the largest |score| / |box| difference."""
    same, worst = True, 0.0
    for g, r in zip(got, ref, strict=True):
        gl, rl = [d["index"] for d in g["detections"]], [d["index"] for d in r["detections"]]
        same &= gl == rl
        for a, b in zip(g["detections"], r["detections"]):
            worst = max(worst, abs(a["score"] - b["score"]),
                        float(np.abs(np.subtract(a["box"], b["box"])).max()) / 100.0)  # boxes in 1/100 pixel
    return same, worst


def mask_agreement(got: list[dict], ref: list[dict]) -> float:
    """Fraction of pixels on which two runs' class maps agree."""
    from PIL import Image

    same = total = 0
    for g, r in zip(got, ref, strict=True):
        a, b = np.asarray(Image.open(g["mask"])), np.asarray(Image.open(r["mask"]))
        same += int((a == b).sum())
        total += a.size
    return same / total


def draw_detections(image: Path, dets: dict, classes: list[str], target: Path, title: str) -> None:
    """``plot_bbox`` of one runner's detections (boxes already in the image's pixels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from toolkit.cv.utils import plot_bbox

    items = dets["detections"]
    ax = plot_bbox(np.asarray(Image.open(image).convert("RGB")), np.array([d["box"] for d in items]).reshape(-1, 4),
                   np.array([d["score"] for d in items]), np.array([d["index"] for d in items]), thresh=0.0,
                   class_names=classes)
    ax.set_title(title)
    ax.figure.savefig(target, bbox_inches="tight")
    plt.close(ax.figure)


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", default=os.environ.get("TOOLKIT_TUTORIAL_TINY") == "1",
                   help="a small set (16 training canvases), 64 pixels, 2 epochs (also: TOOLKIT_TUTORIAL_TINY=1)")
    p.add_argument("--workdir", default=None, help="where everything goes (default: a temp folder)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 2 tiny, 5 full)")
    p.add_argument("--seg-model", default="lraspp", choices=["lraspp", "fcn"])
    p.add_argument("--threshold", type=float, default=None,
                   help="detection score threshold (default 0.5; 0.1 for --tiny, whose 2-epoch detector scores low)")
    p.add_argument("--skip-native", action="store_true", help="do not build/run the C++ and Java runners")
    args = p.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="toolkit-detseg-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"workdir": str(work)}

    # %% 0. data -------------------------------------------------------------------------
    # The tiny run builds its own small set and points TOOLKIT_DATA at it, so that `toolkit quantize
    # --val fashion-scenes` evaluates on it too; the full run uses the shared set under $TOOLKIT_DATA.
    if args.tiny:
        os.environ["TOOLKIT_DATA"] = str(work / "data")
        build_fashion_scenes(num_train=16, num_val=4, image_size=64, num_workers=1)
    root = None  # $TOOLKIT_DATA/fashion_scenes
    size = 64 if args.tiny else 128
    epochs = args.epochs or (2 if args.tiny else 5)
    threshold = args.threshold if args.threshold is not None else (0.1 if args.tiny else 0.5)
    classes = list(FashionScenes("val", root).classes)
    images = save_canvases(root, "val", 3, work / "images")
    calib = save_canvases(root, "train", 8, work / "calib")

    # %% 1. train --------------------------------------------------------------------------
    print(f"1. training an SSD and {args.seg_model} on fashion-scenes ({size}x{size}, {epochs} epochs)")
    det_ckpt = train_detector(root, size, epochs, work)
    seg_ckpt = train_segmenter(root, size, epochs, args.seg_model, work)

    # %% 2. export -------------------------------------------------------------------------
    det, seg = work / "ssd", work / args.seg_model
    for ckpt, prefix in ((det_ckpt, det), (seg_ckpt, seg)):
        print(f"$ toolkit export {ckpt} --out {prefix}")
        if toolkit(["export", str(ckpt), "--out", str(prefix)]) != 0:
            raise SystemExit(f"export of {ckpt} failed")
    meta = json.loads(det.with_suffix(".json").read_text())
    print("detector metadata:", json.dumps(meta["detection"]), "resize", meta["preprocessing"]["resize"])
    print("segmentation palette (first 3 classes):", json.loads(seg.with_suffix(".json").read_text())["palette"][:3])

    # %% 3. Python: onnxruntime and OpenVINO ------------------------------------------------
    # `predict(prefix, images, runtime=...)` is `toolkit predict PREFIX IMG... --json [--runtime openvino]`;
    # draw= and out=/overlay= are --draw DIR and --out DIR --overlay.
    py: dict[str, Any] = {}
    for runtime in ("onnxruntime", "openvino"):
        py[f"det fp32 {runtime}"] = predict(det, images, runtime=runtime, threshold=threshold,
                                            draw=work / f"drawn-{runtime}")
        py[f"seg fp32 {runtime}"] = predict(seg, images, runtime=runtime, out=work / f"masks-{runtime}", overlay=True)
    for item in py["det fp32 onnxruntime"]:
        best = ", ".join(f"{d['label']} {d['score']:.2f}" for d in item["detections"][:3])
        print(f"  {Path(item['input']).name}: {len(item['detections'])} detections at >= {threshold}; best: "
              f"{best or '(nothing)'}")
    same, worst = compare_detections(py["det fp32 openvino"], py["det fp32 onnxruntime"])
    print(f"detector fp32: OpenVINO {'gives the same' if same else 'DIFFERS from'} onnxruntime's labels, "
          f"max score/box difference {worst:.1e}")
    agree = mask_agreement(py["seg fp32 openvino"], py["seg fp32 onnxruntime"])
    print(f"segmentation fp32: OpenVINO's class maps equal onnxruntime's on {agree * 100:.2f}% of pixels")
    print(f"pictures: {work / 'drawn-onnxruntime'} (boxes), {work / 'masks-onnxruntime'} (*_overlay.png)")
    result.update(det_fp32_same=same, seg_fp32_agreement=agree)

    # %% 4. int8 ---------------------------------------------------------------------------
    # Static post-training quantization calibrated on training canvases; --val fashion-scenes reports
    # VOC07 mAP (detector) or pixAcc/mIoU (segmentation) of fp32 and int8 side by side.
    reports = {}
    for prefix in (det, seg):
        print(f"$ toolkit quantize {prefix} --calib {calib[0].parent} --val fashion-scenes")
        reports[prefix.name] = quantize(prefix, calib=str(calib[0].parent), num_calib_batches=2, batch_size=4,
                                        val="fashion-scenes", latency_repeats=3)
        print(reports[prefix.name]["summary"])
    result["detection_map"] = reports[det.name]["detection"]
    result["segmentation_miou"] = reports[seg.name]["segmentation"]
    det8, seg8 = Path(f"{det}-int8"), Path(f"{seg}-int8")
    py["det int8 onnxruntime"] = predict(det8, images, threshold=threshold, draw=work / "drawn-int8")
    py["seg int8 onnxruntime"] = predict(seg8, images, out=work / "masks-int8", overlay=True)
    py["seg int8 openvino"] = predict(seg8, images, runtime="openvino", out=work / "masks-int8-openvino")
    try:
        py["det int8 openvino"] = predict(det8, images, runtime="openvino", threshold=threshold)
    except Exception as err:  # noqa: BLE001 - reported, never replaced by another engine's answer
        line = " ".join(str(err).split())[:300]
        print(f"OpenVINO refused the int8 detector ({type(err).__name__}: {line}); int8 detection runs on "
              "onnxruntime only")
        result["openvino_int8_detection"] = f"refused: {line}"
    print(f"int8 segmentation: OpenVINO's class maps equal onnxruntime's on "
          f"{mask_agreement(py['seg int8 openvino'], py['seg int8 onnxruntime']) * 100:.2f}% of pixels")

    # %% 5. C++ and Java -------------------------------------------------------------------
    # Both runners read PREFIX.onnx + PREFIX.json, redo the preprocessing (bit for bit Python's) and run
    # OpenVINO; compare with Python on OpenVINO. --threshold for detectors, --out DIR for class maps.
    result["native"] = {}
    if not args.skip_native:
        for name, runner in build_runners().items():
            for tag, prefix, ref in (("det fp32", det, "det fp32 openvino"), ("det int8", det8, "det int8 openvino"),
                                     ("seg fp32", seg, "seg fp32 openvino"), ("seg int8", seg8, "seg int8 openvino")):
                key = f"{name} {tag}"
                extra = (["--threshold", str(threshold)] if tag.startswith("det")
                         else ["--out", str(work / f"masks-{name.lower().replace('+', 'p')}-{tag.split()[1]}")])
                got = run_native(runner, prefix, images, *extra)
                if isinstance(got, str):
                    print(f"{key}: skipped, the runner refused it: {got}")
                    result["native"][key] = f"refused: {got}"
                    continue
                if ref not in py:  # Python's OpenVINO refused this graph but the runner did not: show it
                    print(f"{key}: ran, but Python's OpenVINO refused the graph; nothing to compare with")
                    result["native"][key] = "ran (no Python OpenVINO reference)"
                    continue
                if tag.startswith("det"):
                    same, worst = compare_detections(got, py[ref])
                    print(f"{key}: {'same' if same else 'DIFFERENT'} labels as Python (OpenVINO), "
                          f"max score/box difference {worst:.1e}")
                    result["native"][key] = {"same_labels": same, "max_diff": worst}
                    if tag == "det fp32":
                        target = work / f"{name.lower().replace('+', 'p')}-detections.png"
                        draw_detections(images[0], got[0], classes, target, f"{name} runner")
                        print(f"  drawn: {target}")
                else:
                    agree = mask_agreement(got, py[ref])
                    print(f"{key}: class maps equal Python's (OpenVINO) on {agree * 100:.2f}% of pixels")
                    result["native"][key] = {"pixel_agreement": agree}
                    if tag == "seg fp32":
                        from PIL import Image

                        from toolkit.cv.utils import plot_mask

                        target = work / f"{name.lower().replace('+', 'p')}-overlay.png"
                        plot_mask(np.asarray(Image.open(images[0]).convert("RGB")), np.asarray(Image.open(got[0]["mask"])),
                                  str(target), title=f"{name} runner", classes=["background", *classes])
                        print(f"  overlay: {target}")
    print(json.dumps({k: v for k, v in result.items() if k != "native"}, default=str))
    return result


if __name__ == "__main__":
    main()
