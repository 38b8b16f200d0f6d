"""Export a zoo model, quantize it to int8 and run it from Python, C++ and Java.

This tutorial walks through the deployment path of the toolkit:

1. export a model to ``PREFIX.onnx`` + ``PREFIX.json`` (``toolkit export``);
2. classify photos from Python (``toolkit predict`` / ``toolkit.deploy.predict``);
3. quantize it to int8 with calibration images (``toolkit quantize``);
4. build the C++ runner (CMake + OpenVINO from the pip wheel) and the Java
   runner (javac + JNI) and check that they print what Python prints;
5. (``--task text``) do the same for a text model: a Transformer exported with
   its SentencePiece tokenizer, fed lines of a text file, decoded greedily.

Run it from the repository root::

    python tutorials/deploy_export_quantize.py                       # resnet18_v1 at 224x224
    python tutorials/deploy_export_quantize.py --model resnet18_v1 --input-size 64 --workdir /tmp/t
    python tutorials/deploy_export_quantize.py --task text --skip-native   # the Transformer only

The weights are random unless ``--pretrained`` is given (published zoo weights
are then fetched from ``$TOOLKIT_REPO``), so the labels are meaningless here;
what matters is that every runtime agrees.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def photos() -> list[Path]:
    """A few PNG photos that ship inside scikit-image (no download)."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    return [data / n for n in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--input-size", type=int, default=None, help="export at SxS instead of the model's size")
    parser.add_argument("--pretrained", action="store_true")
    parser.add_argument("--workdir", default=None, help="where to write the exported files (default: a temp folder)")
    parser.add_argument("--skip-native", action="store_true", help="do not build/run the C++ and Java runners")
    parser.add_argument("--task", choices=("image", "text", "all"), default="image",
                        help="image: sections 1-4 (default); text: section 5 only; all: both")
    args = parser.parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="toolkit-tutorial-")
    if args.task in ("image", "all") and image_tutorial(args) != 0:
        return 1
    if args.task in ("text", "all"):
        return text_tutorial(args)
    return 0


def image_tutorial(args: argparse.Namespace) -> int:
    """Sections 1-4: an image classifier."""
    import numpy as np
    import torch

    from toolkit.deploy import load, predict
    from toolkit.deploy.cli import main as toolkit

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / args.model
    images = photos()

    # %% 1. Export ----------------------------------------------------------------
    # `toolkit export NAME --out PREFIX` builds the zoo model and writes the graph
    # (dynamic batch axis) and its metadata: preprocessing, classes, sha256.
    torch.manual_seed(0)
    cmd = ["export", args.model, "--out", str(prefix)]
    if args.input_size:
        cmd += ["--input-size", str(args.input_size)]
    if args.pretrained:
        cmd += ["--pretrained"]
    print("$ toolkit", " ".join(cmd))
    if toolkit(cmd) != 0:
        return 1
    meta = json.loads(prefix.with_suffix(".json").read_text())
    print("preprocessing recorded in the metadata:", meta["preprocessing"])

    # %% 2. Predict from Python ------------------------------------------------------
    # `toolkit.deploy.load(prefix)` is a callable over onnxruntime; `predict` adds the
    # recorded preprocessing and a softmax top-k, like `toolkit predict PREFIX IMG... --json`.
    block = load(prefix)
    print(block)
    print(block(np.zeros((2, *meta["input_shape"]), np.float32)).shape, "<- any batch size")
    python_results = predict(prefix, images, k=3, with_logits=True)
    for r in python_results:
        print(Path(r["input"]).name, [(t["label"], round(t["prob"], 4)) for t in r["topk"]])

    # %% 3. Quantize to int8 --------------------------------------------------------
    # Static post-training quantization: calibration batches go through the same
    # preprocessing; the report compares fp32 and int8 latency (and accuracy with --val).
    calib = work / "calib"
    calib.mkdir(exist_ok=True)
    for p in images:
        shutil.copy(p, calib / p.name)
    cmd = ["quantize", str(prefix), "--calib", str(calib), "--num-calib-batches", "2", "--batch-size", "2",
           "--calib-mode", "entropy"]
    print("$ toolkit", " ".join(cmd))
    if toolkit(cmd) != 0:
        return 1
    int8 = f"{prefix}-int8"
    int8_results = predict(int8, images, k=1)
    agree = sum(a["topk"][0]["index"] == b["topk"][0]["index"] for a, b in zip(python_results, int8_results))
    print(f"int8 top-1 equals fp32 top-1 on {agree}/{len(images)} photos")

    if args.skip_native:
        return 0

    # %% 4. C++ and Java ------------------------------------------------------------
    # Both runners read PREFIX.onnx + PREFIX.json, redo the preprocessing by hand
    # (bit-identical to Python's) and run the graph with OpenVINO.
    build = REPO / "deploy" / "cpp" / "build"
    subprocess.run(["cmake", "-S", str(REPO / "deploy" / "cpp"), "-B", str(build), f"-DTOOLKIT_PYTHON={sys.executable}"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j", "2"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["bash", str(REPO / "deploy" / "java" / "build.sh")], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "TOOLKIT_PYTHON": sys.executable})
    runners = {"C++": [str(build / "toolkit-predict")], "Java": [str(REPO / "deploy" / "java" / "predict")]}
    for name, runner in runners.items():
        for graph, reference in ((prefix, python_results), (int8, None)):
            out = subprocess.run([*runner, str(graph), *map(str, images), "--json", "--topk", "3", "--logits"],
                                 check=True, capture_output=True, text=True).stdout
            results = json.loads(out)
            if reference is not None:
                diff = max(np.abs(np.array(r["logits"]) - np.array(q["logits"])).max()
                           for r, q in zip(results, reference))
                print(f"{name} fp32: top-3 {[t['index'] for t in results[0]['topk']]}, max |logit - Python's| = {diff:.2e}")
            else:
                print(f"{name} int8: top-3 {[t['index'] for t in results[0]['topk']]}")
    print("Java users call it directly:  Predictor p = Predictor.load(prefix); float[] y = p.predict(x, shape);")
    return 0


#: A joint English+Spanish SentencePiece tokenizer (trained by scripts/machine_translation on the Bible corpus).
ZOO_TOKENIZER = REPO / "tutorials" / "bible-en-es-tokenizer"
SENTENCES = (
    "In the beginning, God created the heavens and the earth.\n"
    "The earth was formless and empty.\n"
    "\n"  # blank lines are skipped
    "God said, \"Let there be light,\" and there was light.\r\n"
)


def text_tutorial(args: argparse.Namespace) -> int:
    """Section 5: a Transformer with its SentencePiece tokenizer."""
    import torch

    from toolkit.deploy import predict
    from toolkit.deploy.cli import main as toolkit
    from toolkit.nlp.deploy import export_text
    from toolkit.nlp.tokenizers import load_tokenizer
    from toolkit.zoo import get_model

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / "transformer_tiny"

    # %% 5a. Export with the tokenizer ----------------------------------------------
    # `export_text` (or `toolkit export NAME --pretrained --tokenizer DIR --out PREFIX`)
    # writes the graph, PREFIX.spm.model (the tokenizer, byte for byte) and a
    # "tokenizer" block (ids, lower-casing, max_length, sha256) plus "decoding"
    # (greedy, at most 1.2 * source length + 10 tokens) into PREFIX.json.
    tok = load_tokenizer(ZOO_TOKENIZER)
    v = tok.vocab
    torch.manual_seed(0)
    if args.pretrained:
        model = get_model("transformer_tiny", pretrained=True)
    else:  # random weights sized for the tokenizer: the outputs are gibberish, but every runtime agrees
        model = get_model("transformer_tiny", vocab_size=len(v), pad_id=v.pad_id, bos_id=v.bos_id, eos_id=v.eos_id)
    meta = export_text(model.eval(), tok, prefix, max_length=64)
    print("tokenizer block:", json.dumps(meta["tokenizer"]))
    print("decoding block:", json.dumps(meta["decoding"]))

    # %% 5b. Translate the lines of a text file ----------------------------------------
    # Every non-blank line is one input. Greedy decoding re-runs the whole graph on
    # the growing target (the C++ and Java runners do exactly the same).
    sentences = work / "sentences.txt"
    sentences.write_bytes(SENTENCES.encode("utf-8"))
    print("$ toolkit predict", prefix, sentences)
    if toolkit(["predict", str(prefix), str(sentences)]) != 0:
        return 1
    ort = predict(prefix, [sentences])
    ov = predict(prefix, [sentences], runtime="openvino")
    same = sum(a["ids"] == b["ids"] for a, b in zip(ort, ov))
    print(f"onnxruntime and OpenVINO give the same ids on {same}/{len(ort)} lines; "
          f"log-probabilities {[round(r['logprob'], 4) for r in ort]}")

    # %% 5c. int8 ------------------------------------------------------------------
    # Token-id inputs get dynamic quantization (int8 weights); the tokenizer file is
    # copied beside the int8 graph, so PREFIX-int8 works on its own.
    print("$ toolkit quantize", prefix)
    if toolkit(["quantize", str(prefix)]) != 0:
        return 1
    int8 = predict(f"{prefix}-int8", [sentences])
    agree = sum(a["ids"] == b["ids"] for a, b in zip(ort, int8))
    print(f"int8 greedy output equals fp32 on {agree}/{len(ort)} lines")
    if not args.skip_native:
        print("native runners (same JSON):")
        print(f"  deploy/cpp/build/toolkit-predict {prefix} {sentences} --json")
        print(f"  deploy/java/predict {prefix} {sentences} --json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
