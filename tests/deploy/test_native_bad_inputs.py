"""Bad inputs to the C++ and Java runners (issue 11): one clear line on stderr, never a result.

The corpus is ``_bad_corpus.py``, the one the Python runtimes are tested with, so the three
runners refuse the same images, metadata and flags with the same words. For every case:
exit status 1 (2 for a bad command line), nothing on stdout, exactly one line on stderr
containing the expected words and no crash signs, and no file written (the case's folder is
unchanged and a ``--dump-input`` file is not left behind).

Then what the corpus cannot express with a shared classification export: a tokenizer file
outside the export folder, a graph that returns NaN, a graph OpenVINO cannot read (its
multi-line message must come out as one line), and a CMYK JPEG beside the RGB one it was made from.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from _bad_corpus import bad_flags, bad_images, bad_metadata
from _deploy_helpers import TinyNet, run_native

pytestmark = pytest.mark.native

CRASH_SIGNS = ("Exception in thread", "terminate called", "Segmentation", "core dumped", "at toolkit.", "SIGSEGV",
               "Traceback", "std::bad_alloc")


@pytest.fixture(params=["cpp", "java"])
def runner(request) -> Path:
    return request.getfixturevalue(f"{request.param}_runner")


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: what "no file written" is checked against."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def _refusal(runner: Path, args: list, expected: str, watch: Path, code: int = 1) -> str | None:
    """Run one bad case; None when it was refused as the issue asks, else what went wrong."""
    before = _listing(watch)
    done = run_native(runner, *args, check=False)
    lines = done.stderr.splitlines()
    problems = []
    if done.returncode != code:
        problems.append(f"exit {done.returncode}, wanted {code}")
    if done.stdout:
        problems.append(f"stdout {done.stdout[:200]!r}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    if expected not in done.stderr:
        problems.append(f"no {expected!r} in stderr")
    if any(s in done.stderr for s in CRASH_SIGNS):
        problems.append("crash sign on stderr")
    if _listing(watch) != before:
        problems.append("files written or changed")
    return f"{'; '.join(problems)}: {done.stderr.strip()[:400]!r}" if problems else None


def _sweep(runner: Path, cases, build_args, watch_of, code: int = 1) -> None:
    failed = {}
    for name, target, expected in cases:
        problem = _refusal(runner, build_args(target), expected, watch_of(target), code)
        if problem:
            failed[name] = problem
    print(f"{runner}: {len(cases)} cases, {len(cases) - len(failed)} clear errors")
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())


@pytest.fixture(scope="session")
def corpus_images(tmp_path_factory):
    return bad_images(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def corpus_metadata(tiny_export, tmp_path_factory):
    return bad_metadata(tiny_export, tmp_path_factory.mktemp("corpus"))


def test_bad_images(runner, tiny_export, corpus_images, tmp_path):
    dump = tmp_path / "dump.bin"
    _sweep(runner, corpus_images, lambda image: [tiny_export, image, "--json", "--dump-input", dump],
           lambda image: tmp_path)
    assert not dump.exists()


@pytest.mark.slow  # about 40 runs per runner
def test_bad_metadata(runner, photos, corpus_metadata):
    _sweep(runner, corpus_metadata, lambda prefix: [prefix, photos[0], "--json"], lambda prefix: prefix.parent)


def test_bad_flags(runner, tiny_export, photos, tmp_path):
    _sweep(runner, bad_flags(tiny_export, photos[0]), lambda argv: argv, lambda argv: tiny_export.parent, code=2)


def test_a_good_image_among_bad_ones_writes_no_dump(runner, tiny_export, photos, corpus_images, tmp_path):
    """The first image is classified and dumped, the second is a bomb: the partial dump is removed."""
    bomb = next(path for name, path, _ in corpus_images if name.startswith("bomb"))
    dump = tmp_path / "dump.bin"
    assert _refusal(runner, [tiny_export, photos[0], bomb, "--dump-input", dump], "too large", tmp_path) is None
    assert not dump.exists()
    run_native(runner, tiny_export, photos[0], "--dump-input", dump)  # and the good one alone still works
    assert dump.stat().st_size == 3 * 32 * 32 * 4


def test_an_existing_file_is_kept_when_the_model_fails_first(runner, tmp_path, photos):
    """--dump-input may only remove what the run itself opened."""
    dump = tmp_path / "keep.bin"
    dump.write_bytes(b"precious")
    done = run_native(runner, tmp_path / "absent", photos[0], "--dump-input", dump, check=False)
    assert done.returncode == 1 and dump.read_bytes() == b"precious"


def test_tokenizer_file_outside_the_export_is_refused(runner, tiny_export, tmp_path):
    """A tokenizer name with ../ or an absolute path is not followed, even to a file whose sha256 matches."""
    secret = tmp_path / "secret.txt"
    secret.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    text = tmp_path / "in.txt"
    text.write_text("hello\n")
    for name in ("../secret.txt", str(secret), "sub/../../secret.txt", ".."):
        folder = tmp_path / f"case{abs(hash(name))}"
        folder.mkdir()
        meta = json.loads(tiny_export.with_suffix(".json").read_text())
        meta.update(task="text_classification", tokenizer={
            "type": "wordpiece", "file": name, "sha256": digest, "unk_id": 1, "cls_id": 2, "sep_id": 3,
            "max_length": 16, "lowercase": True, "strip_accents": True})
        (folder / "tiny.json").write_text(json.dumps(meta))
        shutil.copy(tiny_export.with_suffix(".onnx"), folder / "tiny.onnx")
        for extra in (["--print-ids"], ["--json"]):
            problem = _refusal(runner, [folder / "tiny", text, *extra], "tokenizer file must be a file name", folder)
            assert problem is None, f"{name} {extra}: {problem}"


@pytest.fixture(scope="session")
def nan_export(tmp_path_factory) -> Path:
    """A TinyNet whose last bias is NaN: every logit is NaN, the sha256 is right."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.body[-1].bias[3] = float("nan")
    prefix = tmp_path_factory.mktemp("nan") / "tiny"
    net.export(prefix)
    return prefix


def test_non_finite_logits_are_an_error(runner, nan_export, photos):
    assert _refusal(runner, [nan_export, photos[0], "--json"], "non-finite", nan_export.parent) is None
    assert _refusal(runner, [nan_export, photos[0]], "non-finite", nan_export.parent) is None


def test_openvino_errors_come_out_on_one_line(runner, tiny_copy, photos):
    """A graph OpenVINO cannot parse, with a matching sha256: its several-line message becomes one line."""
    graph = tiny_copy.with_suffix(".onnx")
    graph.write_bytes(b"\x08\x07" + b"not a protobuf\n" * 50)
    meta = json.loads(tiny_copy.with_suffix(".json").read_text())
    meta["sha256"] = hashlib.sha256(graph.read_bytes()).hexdigest()
    tiny_copy.with_suffix(".json").write_text(json.dumps(meta))
    assert _refusal(runner, [tiny_copy, photos[0], "--json"], "OpenVINO", tiny_copy.parent) is None


def test_cmyk_jpeg_is_refused_where_its_rgb_twin_is_classified(runner, tiny_export, photos, tmp_path):
    """The same picture as RGB JPEG is classified; as CMYK JPEG it is refused, not read as RGBA."""
    from PIL import Image

    rgb = Image.open(photos[0]).convert("RGB").resize((64, 64))
    rgb.save(tmp_path / "rgb.jpg", quality=95)
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as check:
        assert check.mode == "CMYK"
    out = json.loads(run_native(runner, tiny_export, tmp_path / "rgb.jpg", "--json").stdout)
    assert len(out) == 1 and len(out[0]["topk"]) == 5
    assert _refusal(runner, [tiny_export, tmp_path / "cmyk.jpg", "--json"], "CMYK", tmp_path) is None
    # Python agrees: the RGB twin is classified, the CMYK one refused with the same word
    from toolkit.deploy import ImageError, predict

    assert len(predict(tiny_export, [tmp_path / "rgb.jpg"])[0]["topk"]) == 5
    with pytest.raises(ImageError, match="CMYK"):
        predict(tiny_export, [tmp_path / "cmyk.jpg"])


def test_text_model_metadata_against_the_graph(runner, text_exports, tmp_path):
    """The load-time checks hold for the text path too: dtypes, class count, the tokenizer's folder."""
    from _text_helpers import copy_export, edit_meta

    prefix = copy_export(text_exports["bert"], tmp_path / "bert")
    meta = json.loads(prefix.with_suffix(".json").read_text())
    lines = text_exports["inputs"]
    assert run_native(runner, prefix, lines, "--json").returncode == 0  # the copy runs as it is
    inputs = meta["inputs"]
    edit_meta(prefix, lambda m: m.update(inputs=[{**inputs[0], "dtype": "float32"}, *inputs[1:]]))
    assert _refusal(runner, [prefix, lines, "--json"], "has dtype float32 but the graph's is int64", prefix.parent) is None
    edit_meta(prefix, lambda m: m.update(inputs=inputs, classes=[*meta["classes"], "one too many"]))
    assert _refusal(runner, [prefix, lines, "--json"], "classes", prefix.parent) is None
    edit_meta(prefix, lambda m: m.update(classes=meta["classes"], outputs=[{**meta["outputs"][0], "dtype": "int64"}]))
    assert _refusal(runner, [prefix, lines, "--json"], "dtype", prefix.parent) is None
    # the vocabulary moved up one folder, its name with ../: not followed (it would match its sha256)
    vocab = Path(meta["tokenizer"]["file"])
    shutil.move(prefix.parent / vocab, tmp_path / vocab)
    edit_meta(prefix, lambda m: m.update(outputs=meta["outputs"], tokenizer={**meta["tokenizer"], "file": f"../{vocab}"}))
    for extra in ("--json", "--print-ids"):
        assert _refusal(runner, [prefix, lines, extra], "tokenizer file must be a file name", prefix.parent) is None
