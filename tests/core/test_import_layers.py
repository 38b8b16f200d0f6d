"""Issue 15: toolkit.deploy's runtime does not import its exporter, and the exporter needs no private HybridBlock API."""
from __future__ import annotations

import torch

from toolkit.nn import HybridBlock
from toolkit.nn.block import ExportSpec


def _imports(module: str) -> set[str]:
    """Absolute names of the toolkit modules ``module``'s source imports (anywhere in the file)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin).read())
    package = module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.add(name)
            out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {n for n in out if n.startswith("toolkit")}


def test_runtime_does_not_import_the_exporter():
    for module in ("toolkit.deploy.runtime", "toolkit.deploy.openvino", "toolkit.deploy.predict",
                   "toolkit.deploy.fileformat", "toolkit.deploy.preprocess"):
        assert "toolkit.deploy.export" not in _imports(module), module


def test_exporter_does_not_import_toolkit_nn():
    found = _imports("toolkit.deploy.export")
    assert not any(m.startswith("toolkit.nn") for m in found), found
    assert "toolkit.deploy.runtime" in found  # the eager-vs-onnxruntime check: export -> runtime only
    import toolkit.deploy.export as export

    assert "._axes_for" not in open(export.__file__).read()


def test_export_spec_is_public():
    class Two(HybridBlock):
        dynamic_axes = {"a": {0: "batch", 1: "seq"}, "b": {0: "batch"}}

        def forward(self, a, b):
            return a.sum(1) + b

    spec = Two().export_spec((torch.zeros(2, 3), torch.zeros(2)))
    assert isinstance(spec, ExportSpec)
    assert spec.axes == [{0: "batch", 1: "seq"}, {0: "batch"}]
    a, b = spec.dynamic_shapes
    assert a[0] is b[0]  # axes of the same name share one torch.export Dim


def test_moved_helpers_still_importable_from_export():
    from toolkit.deploy import export, fileformat

    for name in ("FORMAT", "onnx_path", "metadata_path", "sha256_file", "write_json_atomic", "write_bytes_atomic"):
        assert getattr(export, name) is getattr(fileformat, name)
    from toolkit.deploy.runtime import ExportError, read_metadata

    assert ExportError is fileformat.ExportError and read_metadata is fileformat.read_metadata


def test_nlp_deploy_package_keeps_its_public_names():
    import toolkit.nlp.deploy as d
    from toolkit.deploy.predict import PREDICTORS

    for name in d.__all__:
        assert hasattr(d, name), name
    assert PREDICTORS["text_classification"] is d.classify_text and PREDICTORS["translation"] is d.translate
