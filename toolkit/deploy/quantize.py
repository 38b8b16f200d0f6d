"""Post-training int8 quantization of exported graphs, through onnxruntime.

``quantize(prefix, calib=...)`` writes ``PREFIX-int8.onnx`` + ``PREFIX-int8.json``:

* image models (float inputs): **static** quantization in QDQ form with
  calibration batches taken through the model's own preprocessing; weights
  int8 per output channel, activations uint8 (on this AVX2 CPU int8
  activations gave no speed-up, see DESIGN.md); calibration modes ``naive``
  (min/max), ``entropy`` and ``percentile``; optionally the first and last
  layers kept in float. Before calibrating, float ops with no uint8 kernel in
  onnxruntime (``HardSigmoid``, a ``ReduceMean`` over H and W) are rewritten into
  exact equivalents that have one (:mod:`toolkit.deploy._int8_rewrite`): otherwise
  each runs in float between a DequantizeLinear and a QuantizeLinear, which made
  MobileNetV3 graphs slower in int8 than in fp32; and non-compute nodes that write
  a graph output (a segmentation model's full-size Resize) stay float;
* token-input models (integer inputs, e.g. BERT, Transformer): **dynamic**
  quantization of the MatMul/Gemm weights, no calibration data needed.

Both use a weight range chosen for the CPU (``scheme``, see :mod:`toolkit.deploy.cpu`):
8-bit weights where onnxruntime's u8 x s8 kernels accumulate exactly (VNNI/AMX), 7-bit
(``reduce_range``) on AVX2/AVX-512 without VNNI, where 8-bit products saturate int16
(a small BERT's logits drift 6.4% with 8-bit weights on an AMD EPYC, 1.3% with 7-bit, 1.6%
with 8-bit on a VNNI Xeon: model_zoo_logs/quantization/int8_schemes.md). The choice and
the CPU it was made on are stored in the metadata; :func:`toolkit.deploy.load` warns when a
full-range graph is run on a CPU that saturates.

onnxruntime runs the result, and OpenVINO (the C++ and Java runners) reads the
same QDQ graph and runs it in u8. The returned report (also stored in the new
JSON under ``"quantization"``) holds fp32 and int8 latency and, when a labelled
validation set is given, both accuracies and their top-1 agreement.
"""
from __future__ import annotations

import contextlib
import copy
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .cpu import SCHEMES, resolve_scheme
from .export import metadata_path, onnx_path, sha256_file, write_json_atomic
from .preprocess import ImagePreprocessing, preprocess_image
from .runtime import ExportError, load

__all__ = ["quantize", "CALIB_MODES", "SCHEMES", "image_source", "labelled_source", "evaluate"]

CALIB_MODES = ("naive", "entropy", "percentile")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
#: dataset names -> (toolkit.cv.data class name, constructor kwargs per split)
_DATASETS = {
    "fashion-mnist": "FashionMNIST",
    "fashion_mnist": "FashionMNIST",
    "fashionmnist": "FashionMNIST",
    "mnist": "MNIST",
    "cifar10": "CIFAR10",
    "cifar-10": "CIFAR10",
    "cifar100": "CIFAR100",
    "cifar-100": "CIFAR100",
}


def _dataset(name: str, train: bool):
    """A toolkit.cv.data dataset by name (its own errors say which files are missing)."""
    try:
        from ..cv import data as cv_data
    except ModuleNotFoundError as err:
        raise ExportError(f"dataset {name!r} needs toolkit-cv: {err}") from err
    return getattr(cv_data, _DATASETS[name.lower()])(train=train)


def _dataset_pixels(ds, index: int) -> np.ndarray:
    image, _ = ds[index]
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4):  # CHW tensor -> HWC pixels
        array = array.transpose(1, 2, 0)
    return np.ascontiguousarray(array, dtype=np.uint8)


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ExportError(f"no image files ({', '.join(_IMAGE_SUFFIXES)}) under {folder}")
    return files


def image_source(spec: str, train: bool = True) -> tuple[int, Callable[[int], Any]]:
    """Unlabelled images for calibration: ``(count, get(i) -> path or uint8 pixels)``.

    ``spec`` is a folder (searched recursively for image files) or a dataset name
    (``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``; its training split).
    """
    if spec.lower() in _DATASETS:
        ds = _dataset(spec, train=train)
        return len(ds), lambda i: _dataset_pixels(ds, i)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ExportError(f"calibration data {spec!r} is neither a folder nor a known dataset ({', '.join(sorted(set(_DATASETS)))})")
    files = _image_files(folder)
    return len(files), lambda i: files[i]


def labelled_source(spec: str) -> tuple[int, Callable[[int], Any], np.ndarray]:
    """A labelled validation set: a dataset name (its test split) or a folder of class folders.

    Class folders are numbered in sorted order, the way the zoo's folder datasets number them.
    """
    if spec.lower() in _DATASETS:
        ds = _dataset(spec, train=False)
        labels = np.asarray(getattr(ds, "targets", [ds[i][1] for i in range(len(ds))]), dtype=np.int64)
        return len(ds), lambda i: _dataset_pixels(ds, i), labels
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ExportError(f"validation data {spec!r} is neither a folder of class folders nor a known dataset")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ExportError(f"validation folder {folder} has no class folders")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        for f in _image_files(folder / name):
            files.append(f)
            labels.append(index)
    return len(files), lambda i: files[i], np.asarray(labels, dtype=np.int64)


def _batches(
    count: int, get: Callable[[int], Any], pre: ImagePreprocessing, shape: Sequence[Any], batch_size: int, limit: int | None
) -> Iterator[np.ndarray]:
    total = count if limit is None else min(count, limit)
    for start in range(0, total, batch_size):
        yield np.stack([preprocess_image(get(i), pre, shape) for i in range(start, min(total, start + batch_size))])


def _node_names_to_exclude(model_path: Path) -> list[str]:
    """Names of the first and the last Conv/Gemm/MatMul nodes (graph order is topological)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    compute = [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    return sorted({compute[0], compute[-1]}) if compute else []


def _rewrite_for_uint8(path: Path) -> dict[str, int]:
    """Apply :func:`toolkit.deploy._int8_rewrite.uint8_friendly` to the prepared graph file, in place."""
    import onnx

    from ._int8_rewrite import uint8_friendly

    model = onnx.load(str(path))
    counts = uint8_friendly(model)
    if any(counts.values()):
        onnx.save(model, str(path))
    return counts


def _float_output_nodes(path: Path) -> list[str]:
    import onnx

    from ._int8_rewrite import float_output_nodes

    return float_output_nodes(onnx.load(str(path), load_external_data=False))


def _fuse_transformer(path: Path) -> dict[str, int]:
    """Fuse a transformer graph's float ops with onnxruntime's optimizer, in place; counts of fused ops."""
    from onnxruntime.transformers.optimizer import optimize_model

    # num_heads/hidden_size 0: detected from the graph where an attention pattern is recognised
    model = optimize_model(str(path), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    model.save_model_to_file(str(path))
    return {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}


def _session(path: Path, num_threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _latency_ms(sessions: dict[str, Any], feed: dict[str, np.ndarray], repeats: int = 20) -> dict[str, float]:
    """Median latency per session, runs interleaved so machine load hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for sess in sessions.values():  # warm-up
        sess.run(None, feed)
    for _ in range(repeats):
        for key, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, feed)
            times[key].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def evaluate(
    sessions: dict[str, Any],
    input_name: str,
    count: int,
    get: Callable[[int], Any],
    labels: np.ndarray,
    pre: ImagePreprocessing,
    shape: Sequence[Any],
    batch_size: int = 64,
    limit: int | None = None,
) -> dict[str, Any]:
    """Top-1 accuracy of each session on a labelled set, and how often each agrees with the first."""
    preds: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    for batch in _batches(count, get, pre, shape, batch_size, limit):
        for key, sess in sessions.items():
            preds[key].append(np.asarray(sess.run(None, {input_name: batch})[0]).argmax(axis=1))
    n = count if limit is None else min(count, limit)
    truth = labels[:n]
    result: dict[str, Any] = {"samples": int(n)}
    first = None
    for key, chunks in preds.items():
        p = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
        result[f"{key}_top1"] = float((p == truth).mean()) if n else float("nan")
        if first is None:
            first = p
        else:
            result[f"{key}_agreement"] = float((p == first).mean()) if n else float("nan")
    return result


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed image batches."""

    def __init__(self, input_name: str, batches: Iterator[np.ndarray]) -> None:
        self.input_name = input_name
        self.batches = batches
        self.seen = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        if batch is None:
            return None
        self.seen += 1
        return {self.input_name: batch}

    def rewind(self) -> None:  # single pass is all the calibrators need here
        pass


def quantize(
    prefix: str | os.PathLike,
    calib: str | None = None,
    num_calib_batches: int = 10,
    batch_size: int = 8,
    calib_mode: str = "naive",
    exclude_first_last: bool = False,
    out: str | os.PathLike | None = None,
    val: str | None = None,
    num_val: int | None = None,
    dynamic: bool | None = None,
    num_threads: int | None = None,
    scheme: str = "auto",
    latency_repeats: int = 20,
    reduce_range: bool | None = None,
    graph_rewrites: bool = True,
    text_fusion: bool = False,
    per_channel: bool = False,
) -> dict[str, Any]:
    """Quantize ``prefix.onnx`` to int8 and write ``out.onnx`` + ``out.json``.

    Parameters
    ----------
    prefix : path
        An export written by ``toolkit export`` / ``HybridBlock.export``.
    calib : str
        Calibration images: a folder or a dataset name (``fashion-mnist``). Needed
        for static quantization.
    num_calib_batches, batch_size : int
        How much calibration data to use.
    calib_mode : {"naive", "entropy", "percentile"}
        min/max, KL-divergence or 99.999th-percentile ranges for activations.
    exclude_first_last : bool
        Keep the first and last Conv/Gemm/MatMul in float.
    out : path, optional
        Output prefix; default ``PREFIX-int8``.
    val : str, optional
        Labelled validation set (dataset name or class folders) for fp32-vs-int8 accuracy.
    num_val : int, optional
        Only the first ``num_val`` validation samples.
    dynamic : bool, optional
        Force dynamic (True) or static (False) quantization; default by the input
        dtypes (integer token inputs -> dynamic).
    num_threads : int, optional
        onnxruntime threads for the latency and accuracy runs (same for both graphs).
    scheme : {"auto", "full-range", "reduced-range"}
        Weight range. ``auto`` (default): 7-bit weights (onnxruntime's ``reduce_range``)
        when this CPU's u8 x s8 kernels saturate int16 (AVX2/AVX-512 without VNNI), else
        8-bit. Force ``reduced-range`` for a graph deployed to such CPUs, ``full-range``
        for one deployed only to VNNI/AMX CPUs.
    latency_repeats : int
        Interleaved batch-1 runs per graph for the latency figures.
    reduce_range : bool, optional
        Deprecated spelling of ``scheme="reduced-range"`` (True) / ``"full-range"`` (False).
    graph_rewrites : bool
        Static quantization only. Before calibrating, rewrite the float ops that onnxruntime has
        no uint8 kernel for into exact equivalents that have one (``HardSigmoid`` ->
        ``Clip(x * alpha + beta, 0, 1)``, a ``ReduceMean`` over H and W -> ``GlobalAveragePool``),
        so the graph stays in uint8 between convolutions, and keep the non-compute nodes that
        write the graph's outputs (a segmentation model's final ``Resize``) in float, so no
        full-size output is quantized and dequantized again (:mod:`toolkit.deploy._int8_rewrite`).
        Graphs without these ops are unchanged; MobileNetV3 graphs become faster on onnxruntime
        and OpenVINO (``benchmarks/results/int8_mobile.txt``). False: the recipe before.
    text_fusion : bool
        Dynamic quantization only. First run onnxruntime's transformer optimizer over the graph
        (``model_type="bert"``: GELU with its bias -> ``BiasGelu``, residual add + LayerNorm ->
        ``SkipLayerNormalization``), so what stays float between the int8 MatMuls runs as fused
        kernels. The result needs onnxruntime (contrib ops), not OpenVINO.
    per_channel : bool
        Dynamic quantization only: one weight scale per output column instead of per tensor.

    Returns
    -------
    dict
        The report: ``out``, ``method``, ``latency_ms`` (fp32/int8 at batch 1),
        ``speedup``, ``accuracy`` (when ``val`` is given) and a ``summary`` text.

    Raises
    ------
    ExportError
        Missing/corrupt export, missing calibration data, unknown calibration mode or scheme.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    if calib_mode not in CALIB_MODES:
        raise ExportError(f"calibration mode {calib_mode!r} is not one of {', '.join(CALIB_MODES)}")
    if num_calib_batches < 1 or batch_size < 1:
        raise ExportError("num_calib_batches and batch_size must be >= 1")
    if reduce_range is not None:
        import warnings

        warnings.warn("quantize(reduce_range=...) is deprecated: pass scheme='reduced-range' or 'full-range' "
                      "(default 'auto' picks for this CPU)", DeprecationWarning, stacklevel=2)
        scheme = "reduced-range" if reduce_range else "full-range"
    if scheme not in SCHEMES:
        raise ExportError(f"int8 scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    chosen = resolve_scheme(scheme)
    reduce_range = chosen["reduce_range"]
    fp32 = load(prefix)  # checks the files and the sha256
    meta = copy.deepcopy(fp32.metadata)
    source = Path(prefix).parent / meta.get("onnx_file", onnx_path(prefix).name)
    out_prefix = Path(out) if out is not None else Path(f"{os.fspath(prefix)}-int8")
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    target = onnx_path(out_prefix)
    integer_inputs = any(not str(s.get("dtype", "float32")).startswith(("float", "bfloat")) for s in meta["inputs"])
    use_dynamic = integer_inputs if dynamic is None else bool(dynamic)

    info: dict[str, Any] = {
        "method": "dynamic" if use_dynamic else "static",
        "format": "QOperator/dynamic" if use_dynamic else "QDQ",
        "weights": "int8 per-channel" if not use_dynamic else "int8",
        "activations": "uint8" + (" (dynamic ranges)" if use_dynamic else ""),
        **chosen,
        "source_sha256": meta["sha256"],
    }
    pre: ImagePreprocessing | None = None
    shape = meta["inputs"][0]["shape"]
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph optimisation (BatchNorm folded into Conv...) before quantizing.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=not use_dynamic)
        written = Path(tmp) / "int8.onnx"
        if (text_fusion or per_channel) and not use_dynamic:
            raise ExportError("text_fusion and per_channel apply to dynamic (token-input) quantization only")
        if use_dynamic:
            if text_fusion:
                info["text_fusion"] = _fuse_transformer(prepared)
            info["weights"] = "int8 per-channel" if per_channel else "int8"
            quantize_dynamic(str(prepared), str(written), weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=reduce_range)
        else:
            if not calib:
                raise ExportError("static quantization needs calibration data: pass calib (a folder or a dataset name)")
            if len(meta["inputs"]) != 1:
                raise ExportError("static quantization with image calibration needs a model with one input")
            if meta.get("task") == "detection":  # resize to [h, w]: the detector's own preprocessing (toolkit-cv)
                from ..cv.deploy import detection_batches

                batches = detection_batches(calib, meta, batch_size, num_calib_batches * batch_size)
            else:
                pre = ImagePreprocessing.from_metadata(meta)
                count, get = image_source(calib)
                batches = _batches(count, get, pre, shape[1:], batch_size, num_calib_batches * batch_size)
            reader = _Reader(meta["inputs"][0]["name"], batches)
            float_outputs: list[str] = []
            if graph_rewrites:  # before the node lists below: it renames what it replaces
                info["graph_rewrites"] = _rewrite_for_uint8(prepared)
                float_outputs = _float_output_nodes(prepared)
                info["float_output_nodes"] = float_outputs
            exclude = _node_names_to_exclude(prepared) if exclude_first_last else []
            float_post: list[str] = []
            if meta.get("task") == "detection":  # decoding/NMS stay float (toolkit-cv: why, which nodes)
                from ..cv.deploy import postprocessing_nodes

                float_post = postprocessing_nodes(prepared)
            method = {"naive": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                      "percentile": CalibrationMethod.Percentile}[calib_mode]
            # onnxruntime's calibrators print progress: keep stdout clean for --json
            with contextlib.redirect_stdout(sys.stderr):
                quantize_static(
                    str(prepared),
                    str(written),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=sorted(set(exclude + float_outputs + float_post)),
                    calibrate_method=method,
                )
            if reader.seen == 0:
                raise ExportError(f"calibration data {calib!r} gave no batches")
            info.update({"calib": calib, "calib_mode": calib_mode, "calib_batches": reader.seen,
                         "batch_size": batch_size, "excluded_nodes": exclude})
            if float_post:
                from ..cv.deploy import float_into_postprocessing

                info["float_postprocessing_nodes"] = len(float_post)
                float_into_postprocessing(written, float_post)
        os.replace(written, target)

    # latency at batch 1, both graphs, same thread count, interleaved
    sessions = {"fp32": _session(source, num_threads), "int8": _session(target, num_threads)}
    feed = _example_feed(meta)
    latency = _latency_ms(sessions, feed, repeats=latency_repeats)
    report: dict[str, Any] = {
        "out": str(out_prefix),
        **info,
        "latency_ms": {k: round(v, 4) for k, v in latency.items()},
        "speedup": round(latency["fp32"] / latency["int8"], 3) if latency["int8"] > 0 else None,
        "threads": num_threads,
    }
    if val and meta.get("task") == "segmentation":  # pixAcc/mIoU (toolkit-cv)
        try:
            from ..cv.deploy import evaluate_segmentation
        except ImportError as err:
            raise ExportError(f"segmentation validation needs toolkit-cv: {err}") from err
        report["segmentation"] = evaluate_segmentation(sessions, meta, val, batch_size=batch_size, limit=num_val)
    elif val and meta.get("task") == "detection":  # VOC07 mAP (toolkit-cv)
        from ..cv.deploy import evaluate_detection

        report["detection"] = evaluate_detection(sessions, meta, val, batch_size=batch_size, limit=num_val)
    elif val:
        if pre is None:
            pre = ImagePreprocessing.from_metadata(meta)
        count, get, labels = labelled_source(val)
        report["accuracy"] = evaluate(sessions, meta["inputs"][0]["name"], count, get, labels, pre, shape[1:],
                                      batch_size=max(batch_size, 64), limit=num_val)
        report["accuracy"]["val"] = val

    new_meta = dict(meta)
    if isinstance(meta.get("tokenizer"), dict) and meta["tokenizer"].get("file"):
        new_meta["tokenizer"] = _copy_tokenizer(Path(prefix), out_prefix, meta["tokenizer"])
    new_meta["onnx_file"] = target.name
    new_meta["sha256"] = sha256_file(target)
    new_meta["quantization"] = {k: v for k, v in report.items() if k not in ("out", "summary")}
    write_json_atomic(metadata_path(out_prefix), new_meta)
    report["summary"] = _summary(report)
    return report


def _copy_tokenizer(prefix: Path, out_prefix: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Put a text export's tokenizer file beside the int8 graph, named from the new prefix.

    The int8 export then stands on its own (another folder works too); the sha256 is the same.
    """
    source = prefix.parent / spec["file"]
    if not source.is_file() or sha256_file(source) != spec.get("sha256"):
        raise ExportError(f"tokenizer file {source} is missing or does not match the sha256 in the metadata")
    suffix = spec["file"][len(prefix.name):] if spec["file"].startswith(prefix.name) else "." + spec["file"]
    name = out_prefix.name + suffix
    dest = out_prefix.parent / name
    if dest.resolve() != source.resolve():
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=name, suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return {**spec, "file": name}


def _example_feed(meta: dict[str, Any]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feed = {}
    for spec in meta["inputs"]:
        dims = [1 if not isinstance(d, int) else d for d in spec["shape"]]
        dims = [8 if (i > 0 and not isinstance(spec["shape"][i], int)) else d for i, d in enumerate(dims)]
        dtype = np.dtype(spec.get("dtype", "float32"))
        if dtype.kind == "f":
            feed[spec["name"]] = rng.standard_normal(dims).astype(dtype)
        else:
            feed[spec["name"]] = rng.integers(0, 2, size=dims).astype(dtype)
    return feed


def _summary(r: dict[str, Any]) -> str:
    on = r["quantized_on"]
    lines = [f"wrote {r['out']}.onnx and {r['out']}.json ({r['method']} int8, {r['format']})",
             f"weights {r['scheme']} ({'7' if r['reduce_range'] else '8'}-bit, chosen by {r['chosen_by']}) on "
             f"{on['cpu']} ({'/'.join(on['isa']) or 'no AVX2'}; u8 x s8 kernels "
             f"{'saturate int16' if on['u8s8_saturates'] else 'exact'})"
             + ("; for AVX2 CPUs without VNNI (e.g. AMD EPYC before Zen 4) use --scheme reduced-range"
                if not r["reduce_range"] else "")]
    rewrites = {k: v for k, v in (r.get("graph_rewrites") or {}).items() if v}
    if rewrites or r.get("float_output_nodes"):
        lines.append("uint8 rewrites: " + (", ".join(f"{k} x{v}" for k, v in rewrites.items()) or "none")
                     + f"; float output nodes: {len(r.get('float_output_nodes') or [])}")
    if r.get("text_fusion") is not None:
        lines.append("fused before quantizing: " + (", ".join(f"{k} x{v}" for k, v in r["text_fusion"].items()) or "nothing"))
    lat = r["latency_ms"]
    lines.append(f"latency batch 1 (onnxruntime): fp32 {lat['fp32']:.3f} ms, int8 {lat['int8']:.3f} ms, speed-up {r['speedup']}x")
    seg = r.get("segmentation")
    if seg:
        lines.append(
            f"on {seg['val']} ({seg['samples']} images): pixAcc fp32 {seg['fp32_pixAcc'] * 100:.2f}%, int8 "
            f"{seg['int8_pixAcc'] * 100:.2f}%; mIoU fp32 {seg['fp32_mIoU'] * 100:.2f}%, int8 {seg['int8_mIoU'] * 100:.2f}%; "
            f"int8 class map equals fp32's on {seg['int8_pixel_agreement'] * 100:.2f}% of pixels"
        )
    det = r.get("detection")
    if det:
        lines.append(f"VOC07 mAP@0.5 on {det['val']} ({det['samples']} images): fp32 {det['fp32_mAP'] * 100:.2f}%, "
                     f"int8 {det['int8_mAP'] * 100:.2f}%")
    acc = r.get("accuracy")
    if acc:
        lines.append(
            f"top-1 on {acc['val']} ({acc['samples']} samples): fp32 {acc['fp32_top1'] * 100:.2f}%, "
            f"int8 {acc['int8_top1'] * 100:.2f}%, int8 agrees with fp32 on {acc['int8_agreement'] * 100:.2f}%"
        )
    return "\n".join(lines)
