"""The ``toolkit`` command: ``export``, ``predict`` and ``quantize`` over the Python API.

::

    toolkit export resnet18_v1 --pretrained --out build/r18
    toolkit predict build/r18 cat.png dog.png --json --topk 5
    toolkit export runs/transformer/transformer.safetensors --tokenizer runs/transformer/tokenizer --out build/mt
    toolkit predict build/mt sentences.txt --json
    toolkit quantize build/r18 --calib images/ --num-calib-batches 10 --calib-mode entropy

Every error a user can cause (unknown model, missing or corrupt files, an
unreadable image, a wrong shape) ends with one ``toolkit: error: ...`` line on
stderr and exit status 1; a bad command line exits with 2 (argparse).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "build_model"]


def _input_size(values: Sequence[int] | None) -> list[int] | None:
    if not values:
        return None
    if len(values) not in (1, 2, 3) or min(values) <= 0:
        raise SystemExit("toolkit export: error: --input-size takes S, H W or C H W (positive sizes)")
    return list(values)


def _kwargs_from_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Builder kwargs implied by a trained model's metadata (input channels, number of classes, vocabulary)."""
    kwargs: dict[str, Any] = {}
    task = meta.get("task")
    if task == "text_classification":  # BERT builders take a head and num_classes
        kwargs["head"] = "classification"
        n = len(meta["classes"]) if isinstance(meta.get("classes"), list) else meta.get("num_classes")
        if isinstance(n, int):
            kwargs["num_classes"] = n
        kwargs.update({k: meta[k] for k in ("vocab_size", "pad_id", "max_length") if isinstance(meta.get(k), int)})
        return kwargs
    if task == "translation":
        keys = ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id", "max_length")
        return {k: meta[k] for k in keys if isinstance(meta.get(k), int)}
    shape = meta.get("input_shape")
    if isinstance(shape, list) and len(shape) == 3:
        kwargs["in_channels"] = int(shape[0])
    if isinstance(meta.get("classes"), list):
        kwargs["classes"] = len(meta["classes"])
    elif isinstance(meta.get("num_classes"), int):
        kwargs["classes"] = meta["num_classes"]
    return kwargs


def _checkpoint_state(path: Path, model_name: str | None) -> tuple[str, dict[str, Any], Any, dict[str, Any]]:
    """Read a checkpoint file.

    Returns (zoo name, builder kwargs, state dict or safetensors path, metadata recorded
    with the weights). The training scripts write safetensors whose header holds
    ``model`` and the model's ``metadata`` (JSON); ``kwargs`` (JSON) in the header or
    in a ``metrics.json`` beside the file are used when present.
    """
    from ..zoo import WeightsError

    kwargs: dict[str, Any] = {}
    recorded: dict[str, Any] = {}
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"checkpoint {path} is not a readable safetensors file: {err}") from err
        try:
            if "toolkit" in header:  # the training script's single key: JSON {model, dataset, metadata}
                header = {**header, **json.loads(header["toolkit"])}
            name = model_name or header.get("model") or header.get("name")
            if header.get("metadata"):
                recorded = header["metadata"]
                recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
                kwargs.update(_kwargs_from_metadata(recorded))
            metrics = path.parent / "metrics.json"
            if metrics.is_file():
                kwargs.update(json.loads(metrics.read_text()).get("kwargs") or {})
            if header.get("kwargs"):
                kwargs.update(json.loads(header["kwargs"]))
        except (json.JSONDecodeError, AttributeError, TypeError) as err:
            raise WeightsError(f"checkpoint {path}: unreadable metadata/kwargs: {err}") from err
        state: Any = path
    else:
        import torch

        try:
            # weights_only: never unpickle arbitrary objects from a checkpoint.
            blob = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a bad file
            raise WeightsError(f"checkpoint {path} cannot be read as a torch checkpoint: {err}") from err
        if not isinstance(blob, dict):
            raise WeightsError(f"checkpoint {path} holds a {type(blob).__name__}, not a dict")
        name = model_name or blob.get("model_name") or blob.get("name")
        if isinstance(blob.get("model_kwargs"), dict):
            kwargs = dict(blob["model_kwargs"])
        if isinstance(blob.get("metadata"), dict):  # e.g. class names of a fine-tuned classifier
            recorded = dict(blob["metadata"])
        state = next((blob[k] for k in ("model", "state_dict", "model_state") if isinstance(blob.get(k), dict)), blob)
    if not name:
        raise WeightsError(
            f"checkpoint {path} does not record its model name; pass the zoo name with --model NAME"
        )
    return str(name), kwargs, state, recorded if isinstance(recorded, dict) else {}


def build_model(
    model: str,
    pretrained: bool | str = False,
    weights: str | None = None,
    classes: int | None = None,
    in_channels: int | None = None,
    model_name: str | None = None,
    input_size: Sequence[int] | None = None,
    tokenizer: Any = None,
):
    """Build the block ``toolkit export`` exports.

    Parameters
    ----------
    model : str
        A zoo name, or a checkpoint file: a ``.safetensors`` file as the training
        scripts write it (header key ``toolkit``: JSON with ``model`` and ``metadata``,
        or separate ``model``/``metadata`` keys; ``kwargs``
        from the header or a ``metrics.json`` beside it), or a torch checkpoint
        dict (``model``/``state_dict`` and optionally ``model_name``/``model_kwargs``/
        ``metadata``), read with ``weights_only=True``.
    pretrained : bool or str
        As in :func:`toolkit.zoo.get_model` (``True``, a tag or a path).
    weights : str, optional
        A local safetensors file loaded after building.
    classes, in_channels : int, optional
        Builder arguments (``classes`` becomes ``head="classification", num_classes=N``
        for a BERT zoo name).
    model_name : str, optional
        Zoo name of a checkpoint that does not record it.
    input_size : sequence of int, optional
        ``S``, ``H W`` or ``C H W``: the export's input size. The center crop
        follows it and the resize keeps its ratio to the crop.
    tokenizer : BaseTokenizer, optional
        Text models: the vocabulary size and special ids (pad, bos, eos) a
        Transformer or BERT is built with, unless the checkpoint records them
        (the training scripts save bare weights beside the tokenizer folder).
        Not used with ``pretrained``, whose published weights fix them.
    """
    from ..zoo import get_model, load_weights
    from ..zoo.registry import get_entry

    kwargs: dict[str, Any] = {}
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    path = Path(model)
    state: Any = None
    recorded: dict[str, Any] = {}
    if path.is_file():
        name, ck_kwargs, state, recorded = _checkpoint_state(path, model_name)
        kwargs = {**ck_kwargs, **kwargs}
    else:
        name = model
    if tokenizer is not None and pretrained is False:
        kwargs = {**_kwargs_from_tokenizer(get_entry(name).task, tokenizer), **kwargs}
    if classes is not None:
        if get_entry(name).task == "bert":
            kwargs.update(head="classification", num_classes=classes)
        else:
            kwargs["classes"] = classes
    block = get_model(name, pretrained=pretrained, **kwargs)
    if recorded and isinstance(getattr(block, "metadata", None), dict):
        # what the weights were trained with (preprocessing, class names) beats the builder's defaults
        block.metadata.update({k: v for k, v in recorded.items() if k != "weights"})
    if isinstance(state, Path):
        load_weights(block, state)
    elif isinstance(state, dict):
        from ..zoo import WeightsError

        try:
            block.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        except RuntimeError as err:
            raise WeightsError(f"checkpoint {path} does not fit {name}: {err}") from err
    if weights:
        load_weights(block, weights)
    if input_size:
        _set_input_size(block, list(input_size))
    return block.eval()


def _kwargs_from_tokenizer(task: str | None, tokenizer: Any) -> dict[str, Any]:
    """Builder kwargs a text model takes from its tokenizer's vocabulary."""
    vocab = tokenizer.vocab
    ids = {k: getattr(vocab, k) for k in ("pad_id", "bos_id", "eos_id")}
    if task == "translation":
        return {"src_vocab_size": len(vocab), "tgt_vocab_size": len(vocab),
                **{k: v for k, v in ids.items() if v is not None}}
    if task == "bert":
        return {"vocab_size": len(vocab), **({"pad_id": ids["pad_id"]} if ids["pad_id"] is not None else {})}
    return {}


def _set_input_size(block, size: list[int]) -> None:
    meta = block.metadata
    old = list(meta.get("input_shape") or [])
    if len(size) == 1:
        size = size * 2
    if len(size) == 2:
        if len(old) != 3:
            raise ValueError("--input-size H W needs a model whose metadata has input_shape [C, H, W]; give C H W")
        size = [old[0], *size]
    meta["input_shape"] = size
    pre = meta.get("preprocessing")
    if isinstance(pre, dict) and pre.get("crop"):
        old_crop = list(pre["crop"]) if not isinstance(pre["crop"], int) else [pre["crop"]] * 2
        if pre.get("resize"):
            # keep the resize/crop ratio the model was evaluated with (e.g. 256/224)
            pre["resize"] = int((2 * pre["resize"] * size[1] + old_crop[0]) // (2 * old_crop[0]))
        pre["crop"] = size[1:]


#: tasks whose export is prepared by toolkit.cv.deploy
_VISION_TASKS = ("segmentation", "detection")


def _cmd_export(args: argparse.Namespace) -> int:
    pretrained: bool | str = args.pretrained if args.pretrained is not None else False
    tokenizer = _load_text_tokenizer(args.tokenizer) if args.tokenizer else None
    block = build_model(
        args.model,
        pretrained=pretrained,
        weights=args.weights,
        classes=args.classes,
        in_channels=args.in_channels,
        model_name=args.model_name,
        input_size=_input_size(args.input_size),
        tokenizer=tokenizer,
    )
    task = (getattr(block, "metadata", None) or {}).get("task")
    if tokenizer is not None:
        meta = _export_text(block, tokenizer, args)
        tok = meta["tokenizer"]
        print(f"wrote {args.out}.onnx, {args.out}.json and {Path(args.out).parent / tok['file']} "
              f"(model {meta.get('model')}, {tok['type']} tokenizer, sha256 {meta['sha256'][:12]}...)")
        return 0
    if args.max_length is not None:
        raise ValueError("--max-length applies to text models exported with --tokenizer DIR")
    if task in _VISION_TASKS:  # segmentation: palette; detection: the NMS block (toolkit-cv)
        from ..cv.deploy import prepare_export

        block = prepare_export(block)
    # detectors skip the element-wise check: on random example inputs tied scores make the NMS order (and so
    # the padded outputs) differ between runtimes; tests/deploy/test_vision_detection.py compares on photos
    meta = block.export(args.out, check=not args.no_check and task != "detection")
    if task == "detection":
        from ..cv.deploy import check_nms_in_graph

        check_nms_in_graph(f"{args.out}.onnx")
    print(f"wrote {args.out}.onnx and {args.out}.json (model {meta.get('model')}, sha256 {meta['sha256'][:12]}...)")
    if task in ("text_classification", "translation"):
        print(f"note: {task} export without a tokenizer; `toolkit predict` needs one (--tokenizer DIR)",
              file=sys.stderr)
    return 0


def _load_text_tokenizer(directory: str):
    """The tokenizer of ``--tokenizer DIR`` (a folder written by ``tokenizer.save(DIR)``)."""
    try:
        from ..nlp.tokenizers import load_tokenizer
    except ImportError as err:
        raise ValueError(f"--tokenizer needs the toolkit-nlp distribution (pip install toolkit-nlp): {err}") from err
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"--tokenizer {folder} is not a folder (a tokenizer saved with tokenizer.save(DIR))")
    return load_tokenizer(folder)


def _export_text(block, tokenizer, args: argparse.Namespace) -> dict[str, Any]:
    """``toolkit export ... --tokenizer DIR``: the graph, the tokenizer file and its metadata block."""
    from ..nlp.deploy import export_text

    try:
        return export_text(block, tokenizer, args.out, max_length=args.max_length, check=not args.no_check)
    except TypeError as err:  # a tokenizer class that text deployment does not serve
        raise ValueError(str(err)) from err


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict

    extra: dict[str, Any] = {}
    if args.out is not None:
        extra["out"] = args.out
    if args.overlay:
        extra["overlay"] = True
    if args.threshold is not None:
        extra["threshold"] = args.threshold
    if args.draw is not None:
        extra["draw"] = args.draw
    results = predict(args.prefix, args.inputs, k=args.topk, with_logits=args.logits, runtime=args.runtime, **extra)
    if args.json:
        print(json.dumps(results, allow_nan=False))  # never bare NaN (not JSON); predict refuses non-finite logits
        return 0
    for item in results:
        if "topk" in item:
            best = "  ".join(f"{t['label']} ({t['index']}) {t['prob']:.6f}" for t in item["topk"])
            print(f"{item['input']}:  {best}")
        elif "mask" in item:  # segmentation
            found = ", ".join(f"{label} {n}" for label, n in item["classes"].items())
            print(f"{item['input']}:  {item['mask']}  ({found})")
        elif "detections" in item:
            found = "  ".join(f"{d['label']} {d['score']:.3f} [{', '.join(f'{v:.1f}' for v in d['box'])}]"
                              for d in item["detections"])
            print(f"{item['input']}:  {found or '(nothing)'}")
        elif "output" in item:  # translation
            print(f"{item['input']}\t=> {item['output']}")
        else:
            print(json.dumps(item))
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize

    report = quantize(
        args.prefix,
        calib=args.calib,
        num_calib_batches=args.num_calib_batches,
        batch_size=args.batch_size,
        calib_mode=args.calib_mode,
        exclude_first_last=args.exclude_first_last,
        out=args.out,
        val=args.val,
        num_val=args.num_val,
        dynamic=True if args.dynamic else None,  # unset: chosen by the input dtypes (token ids -> dynamic)
        num_threads=args.threads,
        scheme=args.scheme,
        text_fusion=args.text_fusion,
        per_channel=args.per_channel,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(report["summary"])
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the usage block first): exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toolkit", description="Export, quantize and run toolkit models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("export", help="write PREFIX.onnx + PREFIX.json from a zoo model or a checkpoint")
    p.add_argument("model", help="zoo name (see toolkit.zoo.list_models) or checkpoint file")
    p.add_argument("--out", required=True, help="output prefix (PREFIX.onnx, PREFIX.json)")
    p.add_argument("--input-size", type=int, nargs="+", metavar="N", help="S, H W or C H W of the exported input")
    p.add_argument("--pretrained", nargs="?", const=True, default=None, metavar="TAG",
                   help="load the published weights (optionally a weight tag or a file)")
    p.add_argument("--weights", help="local safetensors file to load after building")
    p.add_argument("--classes", type=int, help="number of output classes")
    p.add_argument("--in-channels", type=int, help="input channels (1 for grey images)")
    p.add_argument("--model", dest="model_name", help="zoo name of a checkpoint that does not record it")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-eager check")
    p.add_argument("--tokenizer", metavar="DIR",
                   help="text models: a saved toolkit tokenizer folder, written beside the graph for toolkit predict")
    p.add_argument("--max-length", type=int, metavar="N",
                   help="text models: longest id sequence fed to the graph (default: the model's max_length)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("predict", help="run an exported model on input files")
    p.add_argument("prefix", help="export prefix")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (classification) or UTF-8 text files, one input per non-blank line (text tasks)")
    p.add_argument("--json", action="store_true", help="print one JSON list, an object per input")
    p.add_argument("--topk", type=int, default=5, help="classes per input (default 5)")
    p.add_argument("--logits", action="store_true", help="also print the raw logits")
    p.add_argument("--runtime", choices=("onnxruntime", "openvino"), default="onnxruntime",
                   help="Python runtime; openvino is the engine of the C++ and Java runners (default onnxruntime)")
    p.add_argument("--out", metavar="DIR", help="segmentation: folder for the class maps (indexed PNG, <stem>.png)")
    p.add_argument("--overlay", action="store_true",
                   help="segmentation: also write <stem>_overlay.png (class colours over the cropped image)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="detection: keep detections scoring at least T, 0..1 (default 0.5)")
    p.add_argument("--draw", metavar="DIR", help="detection: save <stem>.png pictures with the boxes in DIR")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("quantize", help="post-training int8 quantization of an exported model")
    p.add_argument("prefix", help="export prefix (writes PREFIX-int8.onnx + .json)")
    p.add_argument("--calib", help="calibration data: a folder of images or a dataset name (fashion-mnist)")
    p.add_argument("--num-calib-batches", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8, help="calibration/validation batch size")
    p.add_argument("--calib-mode", choices=("naive", "entropy", "percentile"), default="naive")
    p.add_argument("--exclude-first-last", action="store_true", help="keep the first and last layer in float")
    p.add_argument("--val", help="validation set with labels (fashion-mnist; fashion-scenes for segmentation) "
                                 "to compare fp32 and int8 accuracy (pixAcc/mIoU for segmentation)")
    p.add_argument("--num-val", type=int, default=None, help="use only the first N validation samples")
    p.add_argument("--out", help="output prefix (default PREFIX-int8)")
    p.add_argument("--dynamic", action="store_true", help="dynamic quantization (default for token-input models)")
    p.add_argument("--scheme", choices=("auto", "full-range", "reduced-range"), default="auto",
                   help="int8 weight range: auto = 7-bit where this CPU lacks VNNI (AVX2 u8s8 kernels saturate), "
                        "else 8-bit; force reduced-range for graphs deployed to non-VNNI CPUs")
    p.add_argument("--text-fusion", action="store_true",
                   help="dynamic (text) only: fuse GELU+bias and residual+LayerNorm with onnxruntime's transformer "
                        "optimizer before quantizing (onnxruntime contrib ops: not for the OpenVINO runners)")
    p.add_argument("--per-channel", action="store_true", help="dynamic (text) only: per-output-channel weight scales")
    p.add_argument("--threads", type=int, default=None, help="threads for latency measurement")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_quantize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``toolkit`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "topk", 1) is not None and getattr(args, "topk", 1) < 1:
        parser.error("--topk must be >= 1")
    from ..zoo import WeightsError
    from .preprocess import ImageError
    from .runtime import ExportError

    try:
        return int(args.func(args) or 0)
    except (ExportError, ImageError, WeightsError, ValueError, OSError) as err:
        # one line: runtimes (onnxruntime, OpenVINO) raise multi-line messages
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        print(f"toolkit: error: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
