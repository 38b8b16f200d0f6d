"""The Java runner on detection and segmentation exports, and both native runners' --draw/--overlay (issue 14).

Java against Python's ``toolkit predict --runtime openvino`` on the scikit-image photos, with the
session's tiny exports (``det_export``, ``seg_export`` and their int8 twins, conftest.py):

* detections: the same classes in the same order, scores within 1e-5, boxes (original image
  pixels) within 1e-3 px; the plain-text output is Python's, character for character;
* class maps: indexed PNGs with the metadata's palette, >= 99.99% of pixels equal (equal class
  counts where the maps are identical), overlays equal to Python's where the maps agree;
* bad input (no NMS block, no palette, an image smaller than the crop, a threshold outside [0, 1],
  an output folder that cannot be created, options of another task): one line on stderr, exit 1
  (2 for a bad command line), nothing on stdout, no file written; C++ is held to the same cases.
"""
from __future__ import annotations

import colorsys
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torchvision")
from PIL import Image  # noqa: E402

from _deploy_helpers import run_native  # noqa: E402
from toolkit.deploy.cli import main  # noqa: E402

pytestmark = pytest.mark.native

SCORE_TOL = 1e-5
BOX_TOL = 1e-3  # pixels of the original image
PIXEL_AGREEMENT = 0.9999
CRASH_SIGNS = ("Exception in thread", "terminate called", "Segmentation", "core dumped", "at toolkit.", "SIGSEGV",
               "Traceback", "std::bad_alloc")


def _python(capsys, *argv) -> str:
    capsys.readouterr()
    rc = main(["predict", *map(str, argv), "--runtime", "openvino"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _same_detections(got: list[dict], ref: list[dict]) -> None:
    assert sum(len(r["detections"]) for r in ref) > 0, "the tiny detector should find something"
    for g, r in zip(got, ref, strict=True):
        assert g["input"] == r["input"]
        assert [(d["index"], d["label"]) for d in g["detections"]] == [(d["index"], d["label"]) for d in r["detections"]]
        np.testing.assert_allclose([d["score"] for d in g["detections"]], [d["score"] for d in r["detections"]],
                                   rtol=0, atol=SCORE_TOL)
        np.testing.assert_allclose(np.array([d["box"] for d in g["detections"]]).reshape(-1, 4),
                                   np.array([d["box"] for d in r["detections"]]).reshape(-1, 4), rtol=0, atol=BOX_TOL)


def _same_class_maps(got: list[dict], ref: list[dict], overlay: bool) -> None:
    for g, r in zip(got, ref, strict=True):
        assert g["input"] == r["input"] and Path(g["mask"]).name == Path(r["mask"]).name
        a, b = Image.open(g["mask"]), Image.open(r["mask"])
        assert a.mode == b.mode == "P" and a.size == b.size and a.getpalette() == b.getpalette()
        ma, mb = np.asarray(a), np.asarray(b)
        assert (ma == mb).mean() >= PIXEL_AGREEMENT
        assert sum(g["classes"].values()) == ma.size
        if (ma == mb).all():
            assert g["classes"] == r["classes"] and list(g["classes"]) == list(r["classes"])  # class-id order too
        if overlay:
            name = Path(g["mask"]).stem + "_overlay.png"
            oa = np.asarray(Image.open(Path(g["mask"]).with_name(name)))
            ob = np.asarray(Image.open(Path(r["mask"]).with_name(name)))
            assert oa.shape == ob.shape and (oa[ma == mb] == ob[ma == mb]).all()


# ---------------------------------------------------------------- Java against Python
def test_java_detections_equal_python(java_runner, det_export, photos, tmp_path, capsys):
    prefix, _ = det_export
    got = json.loads(run_native(java_runner, prefix, *photos, "--threshold", "0.3", "--json").stdout)
    ref = json.loads(_python(capsys, prefix, *photos, "--threshold", "0.3", "--json"))
    _same_detections(got, ref)
    # the plain-text lines too (Python's rounding of the scores and boxes), at the default threshold
    text = run_native(java_runner, prefix, *photos[:2]).stdout
    assert text == _python(capsys, prefix, *photos[:2])


def test_java_class_maps_equal_python(java_runner, seg_export, photos, tmp_path, capsys):
    got = json.loads(run_native(java_runner, seg_export, *photos, "--out", tmp_path / "java", "--overlay",
                                "--json").stdout)
    ref = json.loads(_python(capsys, seg_export, *photos, "--out", tmp_path / "py", "--overlay", "--json"))
    _same_class_maps(got, ref, overlay=True)
    text = run_native(java_runner, seg_export, photos[0], "--out", tmp_path / "py").stdout
    assert text == _python(capsys, seg_export, photos[0], "--out", tmp_path / "py")


@pytest.mark.slow  # quantizing the tiny FCN: ~25 s
def test_java_int8_class_maps_equal_python(java_runner, seg_int8_export, photos, tmp_path, capsys):
    got = json.loads(run_native(java_runner, seg_int8_export, *photos, "--out", tmp_path / "java", "--json").stdout)
    ref = json.loads(_python(capsys, seg_int8_export, *photos, "--out", tmp_path / "py", "--json"))
    _same_class_maps(got, ref, overlay=False)


@pytest.mark.slow  # quantizing the tiny SSD: ~25 s
def test_java_int8_detections_equal_python(java_runner, det_int8_export, photos, capsys):
    done = run_native(java_runner, det_int8_export, *photos, "--threshold", "0.3", "--json", check=False)
    assert done.returncode == 0, done.stderr
    ref = json.loads(_python(capsys, det_int8_export, *photos, "--threshold", "0.3", "--json"))
    _same_detections(json.loads(done.stdout), ref)


# ---------------------------------------------------------------- --draw and --overlay in both native runners
@pytest.fixture(params=["cpp", "java"])
def runner(request) -> Path:
    return request.getfixturevalue(f"{request.param}_runner")


def _class_colour(cls: int) -> np.ndarray:
    """The runners' box colour: HSB(golden-angle hue steps, 0.85, 0.95)."""
    r, g, b = colorsys.hsv_to_rgb((cls * 0.618033988749895) % 1.0, 0.85, 0.95)
    return np.array([int(v * 255 + 0.5) for v in (r, g, b)])


def test_draw_outlines_the_detections(runner, det_export, photos, tmp_path):
    prefix, _ = det_export
    photo = photos[0]
    items = json.loads(run_native(runner, prefix, photo, "--threshold", "0.7", "--json", "--draw",
                                  tmp_path / "drawn").stdout)[0]["detections"]
    assert items, "the tiny detector finds something at 0.7 on the astronaut"
    original = np.asarray(Image.open(photo).convert("RGB"))
    drawn = Image.open(tmp_path / "drawn" / f"{photo.stem}.png")
    assert drawn.mode == "RGB" and drawn.size == (original.shape[1], original.shape[0])  # the image's own size
    drawn = np.asarray(drawn)
    changed = (drawn != original).any(axis=2)
    assert 0 < changed.mean() < 0.5
    inside = [d for d in items if 0 <= d["box"][0] < original.shape[1] and 0 <= d["box"][1] < d["box"][3] <= original.shape[0]]
    assert inside, items
    for d in inside:  # the left edge at mid-height carries the class colour (or another box's drawing)
        x, y = round(d["box"][0]), round((d["box"][1] + d["box"][3]) / 2)
        assert changed[y, x]
    d = inside[0]
    x, y = round(d["box"][0]), round((d["box"][1] + d["box"][3]) / 2)
    assert np.abs(drawn[y, x].astype(int) - _class_colour(d["index"])).max() <= 1


def test_overlay_equals_python(runner, seg_export, photos, tmp_path, capsys):
    pics = photos[:3]
    got = json.loads(run_native(runner, seg_export, *pics, "--out", tmp_path / "native", "--overlay", "--json").stdout)
    ref = json.loads(_python(capsys, seg_export, *pics, "--out", tmp_path / "py", "--overlay", "--json"))
    _same_class_maps(got, ref, overlay=True)


# ---------------------------------------------------------------- bad input
def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def _refused(runner: Path, args: list, expected: str, watch: Path, code: int = 1) -> str | None:
    """None when the runner refused as asked (exit code, one line naming ``expected``, no output, no file)."""
    before = _listing(watch)
    done = run_native(runner, *args, check=False)
    problems = []
    if done.returncode != code:
        problems.append(f"exit {done.returncode}, wanted {code}")
    if done.stdout:
        problems.append(f"stdout {done.stdout[:200]!r}")
    if len(done.stderr.splitlines()) != 1 or expected not in done.stderr:
        problems.append(f"not one line naming {expected!r}")
    if any(s in done.stderr for s in CRASH_SIGNS):
        problems.append("crash sign")
    if _listing(watch) != before:
        problems.append("files written")
    return f"{'; '.join(problems)}: {done.stderr.strip()[:300]!r}" if problems else None


def _edited_copy(prefix: Path, folder: Path, edit) -> Path:
    folder.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.copy(f"{prefix}{suffix}", folder / f"{prefix.name}{suffix}")
    meta = json.loads((folder / f"{prefix.name}.json").read_text())
    edit(meta)
    (folder / f"{prefix.name}.json").write_text(json.dumps(meta))
    return folder / prefix.name


# C++ already runs the threshold, NMS, palette, small-image and --out cases (test_vision_*.py): here only the new ones
CPP_CASES = ("bad palette", "--draw under a file", "--out for a detector", "--threshold for segmentation",
             "--overlay for a classifier")


def test_bad_input_is_one_clear_line(runner, det_export, seg_export, tiny_export, photos, tmp_path):
    det, photo = det_export[0], photos[0]
    cases_dir = tmp_path / "cases"
    cases_dir.mkdir()
    blocker = cases_dir / "a-file"
    blocker.write_text("x")
    small = cases_dir / "small.png"
    Image.open(photo).convert("RGB").crop((0, 0, 40, 50)).save(small)
    no_nms = _edited_copy(det, tmp_path / "no-nms", lambda m: m.pop("detection"))
    no_palette = _edited_copy(seg_export, tmp_path / "no-palette", lambda m: m.pop("palette"))
    bad_palette = _edited_copy(seg_export, tmp_path / "bad-palette", lambda m: m["palette"].__setitem__(3, [0, 300, 0]))
    out = cases_dir / "m"
    cases = [
        ("threshold below 0", [det, photo, "--threshold", "-0.1"], "--threshold", 1),
        ("threshold above 1", [det, photo, "--threshold", "1.5"], "--threshold", 1),
        ("threshold nan", [det, photo, "--threshold", "nan"], "--threshold", 1),
        ("threshold not a number", [det, photo, "--threshold", "high"], "--threshold", 2),
        ("no NMS block", [no_nms, photo, "--json"], "NMS", 1),
        ("--draw under a file", [det, photo, "--draw", blocker / "d"], "cannot be created", 1),
        ("--out for a detector", [det, photo, "--out", out], "do not apply to task 'detection'", 1),
        ("no palette", [no_palette, photo, "--out", out], "palette", 1),
        ("bad palette", [bad_palette, photo, "--out", out], "palette", 1),
        # (the folder is created before the images are read, as in Python: outside the watched one)
        ("image smaller than the crop", [seg_export, small, "--out", tmp_path / "small-out"], "smaller", 1),
        ("--out under a file", [seg_export, photo, "--out", blocker / "m"], "cannot be created", 1),
        ("no --out", [seg_export, photo], "--out DIR", 1),
        ("--threshold for segmentation", [seg_export, photo, "--out", out, "--threshold", "0.2"], "do not apply", 1),
        ("--overlay for a classifier", [tiny_export, photo, "--overlay"], "do not apply to task 'classification'", 1),
    ]
    failed = {}
    for name, args, expected, code in cases:
        if runner.name != "predict" and name not in CPP_CASES:
            continue
        problem = _refused(runner, args, expected, cases_dir, code)
        if problem:
            failed[name] = problem
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
    assert not out.exists()
