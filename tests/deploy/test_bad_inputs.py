"""Issue 11's bad-input sweep for the Python runtimes (onnxruntime and OpenVINO), CLI and API.

Every case of the shared corpus (:mod:`_bad_corpus`, also fed to the C++ and Java runners)
must end with a non-zero exit, exactly one line on stderr that names the problem, nothing
on stdout, and no file written. Python-only cases (bare NaN tokens, NaN logits, pixel
dtypes, file modes) follow.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _bad_corpus import bad_flags, bad_images, bad_metadata
from _deploy_helpers import REPO, TinyNet
from toolkit.deploy import ExportError, ImageError, load, predict
from toolkit.deploy.cli import main

RUNTIMES = ["onnxruntime", "openvino"]


def _openvino_or_skip(runtime: str) -> None:
    if runtime == "openvino":
        pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def corpus(tiny_export, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("corpus")
    return {
        "root": root,
        "images": {name: (path, want) for name, path, want in bad_images(root)},
        "metadata": {name: (prefix, want) for name, prefix, want in bad_metadata(tiny_export, root)},
        "good": root / "bad_images" / "good.png",
    }


# the case names, listed here so that pytest ids name them (the corpus itself is built once per module)
IMAGE_CASES = [
    "missing_file", "directory", "dangling_symlink", "empty_file", "not_an_image", "truncated_png",
    "png_signature_only", "bomb_50000x50000", "pixels_over_limit", "side_over_limit", "resized_side_over_limit",
    "cmyk_jpeg",
]
METADATA_CASES = [
    "onnx_file_absolute", "onnx_file_parent", "onnx_file_subfolder", "onnx_file_other_extension", "onnx_file_empty",
    "onnx_file_not_a_string", "onnx_file_dotdot", "sha256_null", "sha256_empty", "sha256_short", "sha256_not_hex",
    "sha256_other_graph", "input_dtype_int64", "output_dtype_int64", "output_renamed", "output_rank", "output_extra",
    "input_renamed", "classes_too_many", "classes_too_few", "classes_not_a_list", "std_infinite",
    "mean_minus_infinite", "scale_infinite", "std_zero", "std_wrong_count", "scale_zero", "resize_1e9",
    "resize_over_bound", "resize_negative", "resize_fraction", "resize_string", "crop_over_bound", "crop_zero",
    "crop_one_value_list", "color_cmyk", "format_unknown", "task_unknown", "not_json", "json_array",
    "json_missing", "graph_missing",
]


def _snapshot(*roots: Path) -> set:
    """Every file under ``roots`` with its size and modification time."""
    out = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames + dirnames:
                p = Path(dirpath) / name
                st = p.lstat()
                out.add((str(p), st.st_size, st.st_mtime_ns))
    return out


def _cli_fails(capfd, monkeypatch, tmp_path, args: list, want: str, code: int, watch: list[Path]) -> str:
    """Run ``toolkit`` in-process from an empty folder; check exit, one stderr line, no stdout, no file."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    monkeypatch.chdir(cwd)
    before = _snapshot(cwd, *watch)
    capfd.readouterr()
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse
        status = exit_.code
    out, err = capfd.readouterr()
    assert status == code, f"exit {status}, stderr: {err!r}"
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1, f"stderr must be one line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("toolkit"), err
    assert want in lines[0], f"{want!r} not in {lines[0]!r}"
    assert "Traceback" not in err
    assert _snapshot(cwd, *watch) == before, "files were written"
    return lines[0]


# ---------------------------------------------------------------------------------------------- shared corpus
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_bad_image_cli(case, runtime, corpus, tiny_export, capfd, monkeypatch, tmp_path):
    _openvino_or_skip(runtime)
    path, want = corpus["images"][case]
    _cli_fails(capfd, monkeypatch, tmp_path, ["predict", tiny_export, path, "--json", "--runtime", runtime],
               want, 1, [corpus["root"], tiny_export.parent])


@pytest.fixture(scope="module")
def loaded(tiny_export) -> dict:
    return {"onnxruntime": load(tiny_export)}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_bad_image_api(case, runtime, corpus, loaded, tiny_export):
    _openvino_or_skip(runtime)
    if runtime not in loaded:
        from toolkit.deploy import load_openvino

        loaded[runtime] = load_openvino(tiny_export)
    path, want = corpus["images"][case]
    with pytest.raises(ImageError, match=None) as info:
        predict(loaded[runtime], [corpus["good"], path])
    assert want in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", METADATA_CASES)
def test_bad_metadata_cli(case, runtime, corpus, capfd, monkeypatch, tmp_path):
    _openvino_or_skip(runtime)
    prefix, want = corpus["metadata"][case]
    _cli_fails(capfd, monkeypatch, tmp_path, ["predict", prefix, corpus["good"], "--runtime", runtime],
               want, 1, [prefix.parent, corpus["root"] / "bad_images"])


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", [c for c in METADATA_CASES if c != "task_unknown"])  # a predict-time error
def test_bad_metadata_refused_at_load(case, runtime, corpus):
    _openvino_or_skip(runtime)
    prefix, want = corpus["metadata"][case]
    if runtime == "openvino":
        from toolkit.deploy import load_openvino as loader
    else:
        loader = load
    with pytest.raises((ExportError, ImageError)) as info:
        loader(prefix)
    assert want in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("case,argv,want", bad_flags("PREFIX", "IMAGE"), ids=[c[0] for c in bad_flags("P", "I")])
def test_bad_flags_exit_2(case, argv, want, corpus, tiny_export, capfd, monkeypatch, tmp_path):
    argv = [str(tiny_export) if a == "PREFIX" else str(corpus["good"]) if a == "IMAGE" else a for a in argv]
    _cli_fails(capfd, monkeypatch, tmp_path, ["predict", *argv], want, 2, [tiny_export.parent])


def test_corpus_names_and_metadata_cases_agree(corpus):
    """The parametrised lists above cover the whole corpus (a case added there is tested here)."""
    assert sorted(corpus["images"]) == sorted(IMAGE_CASES)
    assert sorted(corpus["metadata"]) == sorted(METADATA_CASES)
    for path, want in [*corpus["images"].values(), *corpus["metadata"].values()]:
        assert want not in str(path), f"{want!r} is in the path {path}: a message repeating it would pass"


def test_a_few_cases_through_the_real_command(corpus, tiny_export, tmp_path):
    """``python -m toolkit``: exit 1, one stderr line (no warning from a library), no traceback."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for args in ([str(tiny_export), str(corpus["images"]["pixels_over_limit"][0])],
                 [str(corpus["metadata"]["resize_1e9"][0]), str(corpus["good"])]):
        done = subprocess.run([sys.executable, "-m", "toolkit", "predict", *args, "--json"], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- Python only
def _write_meta(prefix: Path, text: str) -> None:
    Path(f"{prefix}.json").write_text(text)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_bare_nan_tokens_in_metadata_are_not_json(token, tiny_copy, capfd, monkeypatch, tmp_path):
    meta = json.loads(tiny_copy.with_suffix(".json").read_text())
    meta["preprocessing"]["std"] = ["__X__", 0.2, 0.2]
    _write_meta(tiny_copy, json.dumps(meta).replace('"__X__"', token))
    line = _cli_fails(capfd, monkeypatch, tmp_path, ["predict", tiny_copy, REPO / "README.md"], "non-finite", 1,
                      [tiny_copy.parent])
    assert "not valid JSON" in line


@pytest.fixture(scope="module")
def nan_export(tmp_path_factory) -> Path:
    """A classifier whose logits are all NaN (its last bias is NaN)."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.body[-1].bias.fill_(float("nan"))
    prefix = tmp_path_factory.mktemp("nan") / "nan"
    net.export(prefix)
    return prefix


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_nan_logits_are_an_error_not_a_class(runtime, nan_export, corpus, capfd, monkeypatch, tmp_path):
    _openvino_or_skip(runtime)
    for extra in ([], ["--json"], ["--json", "--logits"]):
        _cli_fails(capfd, monkeypatch, tmp_path, ["predict", nan_export, corpus["good"], "--runtime", runtime, *extra],
                   "non-finite", 1, [nan_export.parent])
    with pytest.raises(ExportError, match="non-finite"):
        predict(nan_export, [corpus["good"]], runtime=runtime)


def test_json_output_never_holds_bare_nan(tiny_export, corpus, capfd):
    assert main(["predict", str(tiny_export), str(corpus["good"]), "--json", "--logits"]) == 0
    out = capfd.readouterr().out
    json.loads(out, parse_constant=lambda t: pytest.fail(f"bare {t} in --json output"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pixel_arrays_are_not_cast_silently(runtime, tiny_export):
    """The explicit rule: casts within a kind only (float64 -> float32); integer pixels are refused."""
    _openvino_or_skip(runtime)
    if runtime == "openvino":
        from toolkit.deploy import load_openvino as loader
    else:
        loader = load
    model = loader(tiny_export)
    x = np.random.default_rng(0).random((1, 3, 32, 32))
    ref = model(x.astype(np.float32))
    np.testing.assert_array_equal(model(x), ref)  # float64 -> float32 is allowed
    for pixels in (np.zeros((1, 3, 32, 32), np.int64), torch.zeros(1, 3, 32, 32, dtype=torch.uint8)):
        with pytest.raises(ExportError, match="not cast silently"):
            model(pixels)


def test_export_writes_files_readable_by_all(tmp_path):
    torch.manual_seed(0)
    prefix = tmp_path / "t"
    TinyNet().export(prefix, check=False)
    for suffix in (".onnx", ".json"):
        assert stat.S_IMODE(Path(f"{prefix}{suffix}").stat().st_mode) == 0o644


def test_openvino_errors_are_one_line(tiny_copy):
    pytest.importorskip("openvino")
    from toolkit.deploy import load_openvino

    graph = tiny_copy.with_suffix(".onnx")
    graph.write_bytes(graph.read_bytes()[:200])
    with pytest.raises(ExportError, match="OpenVINO cannot read") as info:
        load_openvino(tiny_copy, verify=False)
    assert "\n" not in str(info.value)


def test_metadata_directory_and_image_directory(tiny_export, tmp_path, capfd, monkeypatch):
    (tmp_path / "m.json").mkdir()
    _cli_fails(capfd, monkeypatch, tmp_path, ["predict", tmp_path / "m", REPO / "README.md"], "is a directory", 1,
               [tmp_path / "m.json"])
    _cli_fails(capfd, monkeypatch, tmp_path, ["predict", tiny_export, tmp_path], "is a directory", 1,
               [tiny_export.parent])


@pytest.mark.parametrize("case", ["bomb_50000x50000", "pixels_over_limit", "cmyk_jpeg"])
def test_quantize_calibration_images_get_one_line(case, corpus, tiny_copy, capfd, monkeypatch, tmp_path):
    """``toolkit quantize --calib FOLDER`` reads images the way predict does: a bomb is one clear line."""
    from PIL import Image

    calib = tmp_path / "calib"
    calib.mkdir()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(calib / "a.png")
    path = corpus["images"][case][0]
    shutil.copy(path, calib / ("z" + path.suffix))
    _cli_fails(capfd, monkeypatch, tmp_path, ["quantize", tiny_copy, "--calib", calib, "--num-calib-batches", "1",
                                              "--batch-size", "2"], corpus["images"][case][1], 1, [tiny_copy.parent])
