"""Bad input to the C++ and Java runners: a clear message on stderr and a non-zero exit, never a crash."""
from __future__ import annotations

import json

import pytest

from _deploy_helpers import run_native

pytestmark = pytest.mark.native

CRASH_SIGNS = ("Exception in thread", "terminate called", "Segmentation", "core dumped", "at toolkit.", "SIGSEGV")


@pytest.fixture(params=["cpp", "java"])
def runner(request):
    return request.getfixturevalue(f"{request.param}_runner")


def _fails(runner, *args, message: str, code: int = 1) -> None:
    done = run_native(runner, *args, check=False)
    assert done.returncode == code, f"exit {done.returncode}, stderr: {done.stderr}"
    assert done.stdout == ""
    assert message in done.stderr, done.stderr
    assert not any(s in done.stderr for s in CRASH_SIGNS), done.stderr


def _rewrite(prefix, **changes) -> dict:
    path = prefix.with_suffix(".json")
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))
    return meta


def test_missing_model(runner, tmp_path, photos):
    _fails(runner, tmp_path / "nothing", photos[0], "--json", message="not found")


def test_missing_and_corrupt_graph(runner, tiny_copy, photos):
    graph = tiny_copy.with_suffix(".onnx")
    data = bytearray(graph.read_bytes())
    data[len(data) // 3] ^= 0x55
    graph.write_bytes(bytes(data))
    _fails(runner, tiny_copy, photos[0], "--json", message="corrupt")
    graph.unlink()
    _fails(runner, tiny_copy, photos[0], "--json", message="not found")


def test_metadata_that_does_not_match_the_graph(runner, tiny_copy, photos):
    meta = json.loads(tiny_copy.with_suffix(".json").read_text())
    _rewrite(tiny_copy, inputs=[{**meta["inputs"][0], "name": "images"}])
    _fails(runner, tiny_copy, photos[0], "--json", message="match")
    _rewrite(tiny_copy, inputs=[{**meta["inputs"][0], "shape": ["batch", 3, 48, 48]}])
    _fails(runner, tiny_copy, photos[0], "--json", message="graph takes")
    _rewrite(tiny_copy, inputs=meta["inputs"], format="something-else/9")
    _fails(runner, tiny_copy, photos[0], "--json", message="format")
    tiny_copy.with_suffix(".json").write_text('{"format": "toolkit-export/1", "inputs": [')
    _fails(runner, tiny_copy, photos[0], "--json", message="not valid JSON")


def test_preprocessing_that_does_not_fit_the_graph(runner, tiny_copy, photos):
    meta = json.loads(tiny_copy.with_suffix(".json").read_text())
    _rewrite(tiny_copy, preprocessing={**meta["preprocessing"], "crop": [48, 48], "resize": 50})
    _fails(runner, tiny_copy, photos[0], "--json", message="graph takes")
    _rewrite(tiny_copy, preprocessing={**meta["preprocessing"], "color": "CMYK"})
    _fails(runner, tiny_copy, photos[0], "--json", message="CMYK")
    _rewrite(tiny_copy, preprocessing={**meta["preprocessing"], "resize": 0, "crop": [4000, 4000]})
    _fails(runner, tiny_copy, photos[0], "--json", message="smaller than the crop")


def test_unsupported_task(runner, tiny_copy, photos):
    _rewrite(tiny_copy, task="masked_lm")
    _fails(runner, tiny_copy, photos[0], "--json", message="does not yet support task")


def test_unreadable_images(runner, tiny_export, photos, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    _fails(runner, tiny_export, junk, "--json", message="cannot read image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photos[0].read_bytes()[:5000])
    _fails(runner, tiny_export, truncated, "--json", message="cannot read image")
    _fails(runner, tiny_export, tmp_path / "absent.png", "--json", message="not found")


def test_bad_command_lines_exit_2(runner, tiny_export, photos):
    _fails(runner, tiny_export, message="need a model PREFIX", code=2)
    _fails(runner, tiny_export, photos[0], "--topk", "zero", message="--topk", code=2)
    _fails(runner, tiny_export, photos[0], "--frobnicate", message="unknown option", code=2)
