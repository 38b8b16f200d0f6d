"""Python eager, onnxruntime, the C++ runner and the Java runner agree on real photos.

For each exportable classification family (random weights, fixed seed): the
preprocessed tensors are bit-identical across Python, C++ and Java, the logits
agree within 1e-4 relative to eager PyTorch, and the top-5 are the same.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _deploy_helpers import assert_same_ranking, native_json
from toolkit.deploy import load, load_openvino, predict
from toolkit.deploy.cli import build_model
from toolkit.deploy.preprocess import preprocess_image

pytestmark = [pytest.mark.native, pytest.mark.slow]

# ImageNet size for one model, smaller inputs for the others to keep CI fast.
FAMILIES = [("resnet18_v1", 224), ("resnet18_v1b", 64), ("mobilenetv2_1.0", 64), ("mobilenetv3_large", 64)]
RTOL = 1e-4


@pytest.fixture(scope="module", params=FAMILIES, ids=[f"{n}@{s}" for n, s in FAMILIES])
def family(request, tmp_path_factory):
    name, size = request.param
    torch.manual_seed(0)
    block = build_model(name, input_size=[size])
    prefix = tmp_path_factory.mktemp(name.replace(".", "_")) / name
    block.export(prefix)
    return block, prefix


def _close(got, ref, what: str) -> None:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = np.abs(ref).max()
    diff = np.abs(got - ref).max()
    assert got.shape == ref.shape and diff <= RTOL * scale, f"{what}: max diff {diff:.3g} vs {RTOL} x {scale:.3g}"


def test_four_runtimes_agree(family, photos, cpp_runner, java_runner, tmp_path):
    block, prefix = family
    meta = load(prefix).metadata
    shape = meta["input_shape"]
    batch = np.stack([preprocess_image(p, meta, shape) for p in photos])
    with torch.no_grad():
        eager = block(torch.from_numpy(batch)).numpy()
    _close(load(prefix)(batch), eager, "onnxruntime vs eager")
    _close(load_openvino(prefix)(batch), eager, "OpenVINO (Python) vs eager")

    runs = {"python": predict(prefix, photos, k=5, with_logits=True)}
    for label, runner in (("cpp", cpp_runner), ("java", java_runner)):
        dump = tmp_path / f"{label}.bin"
        runs[label] = native_json(runner, prefix, photos, "--topk", "5", "--logits", "--dump-input", dump)
        fed = np.fromfile(dump, dtype="<f4").reshape(batch.shape)
        # bit-identical preprocessing (compare the float32 bit patterns)
        assert np.array_equal(fed.view(np.uint32), batch.view(np.uint32)), f"{label} preprocessing differs from Python"

    tol = RTOL * np.abs(eager).max()
    for label, results in runs.items():
        assert [r["input"] for r in results] == [str(p) for p in photos]
        for i, r in enumerate(results):
            _close(r["logits"], eager[i], f"{label} logits on {photos[i].name}")
            assert len(r["topk"]) == 5
            assert_same_ranking(eager[i], [t["index"] for t in r["topk"]], 5, tol)
            probs = np.exp(eager[i] - eager[i].max())
            probs /= probs.sum()
            for t in r["topk"]:
                assert abs(t["prob"] - probs[t["index"]]) <= 1e-4
                assert t["label"] == str(t["index"])  # random-init ImageNet models carry no class names
    # the three printed the same top-5 (ties aside, covered above)
    for i in range(len(photos)):
        assert [t["index"] for t in runs["cpp"][i]["topk"]] == [t["index"] for t in runs["java"][i]["topk"]]


def test_tutorial_runs_at_small_scale(tmp_path, cpp_runner, java_runner):
    import subprocess
    import sys

    from _deploy_helpers import REPO

    done = subprocess.run(
        [sys.executable, str(REPO / "tutorials" / "deploy_export_quantize.py"), "--model", "resnet18_v1",
         "--input-size", "64", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Java int8: top-3" in done.stdout and "C++ fp32: top-3" in done.stdout
    diffs = [float(line.rsplit("= ", 1)[1]) for line in done.stdout.splitlines() if "max |logit - Python's|" in line]
    assert len(diffs) == 2 and max(diffs) < 1e-3


def test_java_predictor_api(tiny_export, java_runner, tmp_path):
    """A Java user's program: Predictor.load(prefix).predict(float[], long[]) equals onnxruntime."""
    import subprocess

    from _deploy_helpers import java_program

    command = java_program(
        "import toolkit.deploy.Predictor;\n"
        "public class Example {\n"
        "  public static void main(String[] a) {\n"
        "    float[] x = new float[2 * 3 * 32 * 32];\n"
        "    for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i * 0.01);\n"
        "    try (Predictor p = Predictor.load(a[0], 1)) {\n"
        "      float[] y = p.predict(x, new long[] {2, 3, 32, 32});\n"
        "      long[] s = p.outputShape();\n"
        "      StringBuilder sb = new StringBuilder(s[0] + \" \" + s[1]);\n"
        "      for (float v : y) sb.append(' ').append(v);\n"
        "      System.out.println(sb);\n"
        "      try { p.predict(x, new long[] {2, 3, 16, 64}); } catch (toolkit.deploy.ModelException e) {\n"
        "        System.out.println(\"rejected: \" + e.getMessage()); }\n"
        "    }\n"
        "  }\n"
        "}\n",
        "Example",
        tmp_path,
    )
    done = subprocess.run([*command, str(tiny_export)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    values = np.array([float(v) for v in first.split()])
    assert values[:2].tolist() == [2, 10]
    x = np.sin(np.arange(2 * 3 * 32 * 32, dtype=np.float64) * 0.01).astype(np.float32).reshape(2, 3, 32, 32)
    ref = load(tiny_export)(x)
    assert np.abs(values[2:].reshape(2, 10) - ref).max() <= 1e-4 * np.abs(ref).max()
    assert second.startswith("rejected: input has shape [2, 3, 16, 64]; the graph takes [?, 3, 32, 32]")
