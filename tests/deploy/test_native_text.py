"""The C++ and the Java runners' text path against Python, on whole models (each test runs for both).

``deploy/cpp/build/toolkit-predict`` and ``deploy/java/predict`` on the text fixtures
(tests/deploy/_text_fixtures.py) print what ``toolkit predict`` gives with onnxruntime and with
OpenVINO: the same inputs, top-5 and generated ids and text; probabilities, log-probabilities and
logits within 1e-4 relative. The same holds for dynamic int8 exports (``toolkit quantize``) against
Python's OpenVINO, and the plain-text output has the documented form.

What only one runner has (its tokenizer implementation, its error messages, the Java API) is tested
in test_native_text_cpp.py and test_native_text_java.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from _deploy_helpers import run_native

# before the import, so that the helpers' asserts are rewritten
pytest.register_assert_rewrite("_text_helpers")
from _text_helpers import RTOL, rel, text_json  # noqa: E402

pytestmark = pytest.mark.native

RUNNERS = ["cpp", "java"]


@pytest.fixture(scope="session", params=RUNNERS)
def runner(request) -> Path:
    """Each native runner in turn (built once per session by conftest's ``cpp_runner``/``java_runner``)."""
    return request.getfixturevalue(f"{request.param}_runner")


@pytest.fixture(scope="session")
def runner_results(text_exports, runner) -> dict[str, list[dict]]:
    """The runner's JSON output (top-5, logits) on the input file, per export; computed once per runner."""
    return {name: text_json(runner, text_exports[name], text_exports["inputs"], "--json", "--topk", "5", "--logits")
            for name in ("bert", "transformer")}


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_classification_matches_python(text_exports, runner_results, runtime):
    from _text_fixtures import BERT_CLASSES, expected_inputs
    from toolkit.deploy import predict

    ref = predict(text_exports["bert"], [text_exports["inputs"]], k=5, with_logits=True, runtime=runtime)
    got = runner_results["bert"]
    assert [r["input"] for r in got] == [r["input"] for r in ref] == expected_inputs()
    for a, b in zip(got, ref):
        assert [t["index"] for t in a["topk"]] == [t["index"] for t in b["topk"]], a["input"]
        assert [t["label"] for t in a["topk"]] == [t["label"] for t in b["topk"]]
        assert {t["label"] for t in a["topk"]} == set(BERT_CLASSES)  # 3 classes: k=5 reports all
        assert rel([t["prob"] for t in a["topk"]], [t["prob"] for t in b["topk"]]) <= RTOL, a["input"]
        assert rel(a["logits"], b["logits"]) <= RTOL, a["input"]
    # the fixture's classifier does not answer every line alike (else the check above would be weak)
    assert len({r["topk"][0]["index"] for r in ref}) > 1


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_translation_matches_python(text_exports, runner_results, runtime):
    from _text_fixtures import EXPORT_MAX_LENGTH, expected_inputs
    from toolkit.deploy import predict

    ref = predict(text_exports["transformer"], [text_exports["inputs"]], with_logits=True, runtime=runtime)
    got = runner_results["transformer"]
    assert [r["input"] for r in got] == [r["input"] for r in ref] == expected_inputs()
    assert len({tuple(r["ids"]) for r in ref}) > 1, "every line translates alike: the test would be weak"
    for a, b in zip(got, ref):
        assert a["ids"] == b["ids"], a["input"]
        assert a["output"] == b["output"], a["input"]
        assert abs(a["logprob"] - b["logprob"]) <= RTOL * abs(b["logprob"]), a["input"]
        assert rel(a["logits"], b["logits"]) <= RTOL, a["input"]
    # both ways of stopping occur: at eos (shorter output) and at the length limit
    lengths = {len(r["ids"]) for r in got}
    assert EXPORT_MAX_LENGTH - 1 in lengths and min(lengths) < EXPORT_MAX_LENGTH - 1


def test_plain_text_output(text_exports, runner):
    """Without --json: `LINE:  label (index) prob ...` and `LINE\\t=> OUTPUT`, one line per input."""
    from _text_fixtures import expected_inputs

    lines = expected_inputs()
    bert = run_native(runner, text_exports["bert"], text_exports["inputs"], "--topk", "2").stdout.split("\n")[:-1]
    assert len(bert) == len(lines)
    for out, line in zip(bert, lines):
        assert out.startswith(line + ":") and re.fullmatch(r"(  \w+ \(\d\) \d\.\d{6}){2}", out[len(line) + 1:]), out
    mt = run_native(runner, text_exports["transformer"], text_exports["inputs"]).stdout.split("\n")[:-1]
    ref = text_json(runner, text_exports["transformer"], text_exports["inputs"], "--json")
    assert mt == [f"{r['input']}\t=> {r['output']}" for r in ref]


@pytest.fixture(scope="session")
def int8_exports(text_exports, tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    """`toolkit quantize` (dynamic int8) of both text exports, with Python's OpenVINO results on them."""
    from toolkit.deploy import predict
    from toolkit.deploy.cli import main

    folder = tmp_path_factory.mktemp("text_int8")
    quantized = {}
    for name in ("bert", "transformer"):
        out = folder / f"{name}-int8"
        assert main(["quantize", str(text_exports[name]), "--out", str(out)]) == 0
        quantized[name] = out, predict(out, [text_exports["inputs"]], with_logits=True, runtime="openvino")
    return quantized


def test_int8_text_exports_match_python_openvino(text_exports, int8_exports, runner):
    """`toolkit quantize` (dynamic int8) of both text exports: the runner gives Python's OpenVINO results."""
    for name in ("bert", "transformer"):
        out, ref = int8_exports[name]
        got = text_json(runner, out, text_exports["inputs"], "--json", "--logits")
        assert [g["input"] for g in got] == [r["input"] for r in ref]
        for a, b in zip(got, ref):
            if name == "bert":
                assert [t["index"] for t in a["topk"]] == [t["index"] for t in b["topk"]], a["input"]
            else:
                assert a["ids"] == b["ids"] and a["output"] == b["output"], a["input"]
                assert abs(a["logprob"] - b["logprob"]) <= RTOL * abs(b["logprob"]), a["input"]
            assert rel(a["logits"], b["logits"]) <= RTOL, a["input"]
