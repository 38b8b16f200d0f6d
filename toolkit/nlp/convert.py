"""Import Hugging Face BERT checkpoints into the toolkit's BERT blocks.

:func:`from_huggingface` reads a checkpoint folder as ``save_pretrained``
writes it (``config.json`` + ``model.safetensors``, or ``pytorch_model.bin``
read with ``torch.load(weights_only=True)``, which refuses pickled code) and
its tokenizer files (``vocab.txt`` / ``tokenizer.json``). It needs neither
``transformers`` nor network access.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..zoo import WeightsError, register_source
from .models.bert import _HEADS, bert_cfg_reg
from .models.config import Config

__all__ = ["from_gluonnlp", "from_huggingface", "hf_bert_config", "hf_bert_state_dict", "hf_snapshot",
           "load_huggingface_weights"]

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}

# Hugging Face BertModel name (after stripping "bert.") -> toolkit BertModel name.
_LAYER_RULES = [
    (r"attention\.self\.(query|key|value)\.", r"attention.\1."),
    (r"attention\.output\.dense\.", "attention.out."),
    (r"attention\.output\.LayerNorm\.", "attention_norm."),
    (r"intermediate\.dense\.", "ffn.ffn_1."),
    (r"output\.dense\.", "ffn.ffn_2."),
    (r"output\.LayerNorm\.", "ffn_norm."),
]
_FIXED = {
    "embeddings.word_embeddings.weight": "word_embed.weight",
    "embeddings.position_embeddings.weight": "position_embed.weight",
    "embeddings.token_type_embeddings.weight": "token_type_embed.weight",
    "embeddings.LayerNorm.weight": "embed_norm.weight",
    "embeddings.LayerNorm.bias": "embed_norm.bias",
    "pooler.dense.weight": "pooler.weight",
    "pooler.dense.bias": "pooler.bias",
}
# Head names: HF name -> toolkit name (relative to the head model).
_HEAD_NAMES = {
    "cls.predictions.transform.dense.weight": "mlm.dense.weight",
    "cls.predictions.transform.dense.bias": "mlm.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "mlm.norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "mlm.norm.bias",
    "cls.predictions.bias": "mlm.decoder.bias",
    "cls.predictions.decoder.bias": "mlm.decoder.bias",
    "cls.seq_relationship.weight": "nsp.weight",
    "cls.seq_relationship.bias": "nsp.bias",
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
    "qa_outputs.weight": "span.weight",
    "qa_outputs.bias": "span.bias",
}
# Ignored: tied decoder weight (it is the word embedding) and buffers.
_IGNORED = re.compile(r"(cls\.predictions\.decoder\.weight|position_ids|embeddings\.token_type_ids)$")


def hf_bert_config(config: dict[str, Any]) -> Config:
    """Toolkit BERT config from a Hugging Face ``config.json`` dict."""
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"only BERT checkpoints are supported, this one has model_type={model_type!r}")
    act = config.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ValueError(f"unsupported hidden_act {act!r}; supported: {sorted(_ACTIVATIONS)}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    try:
        return Config(
            vocab_size=int(config["vocab_size"]),
            units=int(config["hidden_size"]),
            hidden_size=int(config["intermediate_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=int(config["num_attention_heads"]),
            max_length=int(config.get("max_position_embeddings", 512)),
            num_token_types=int(config.get("type_vocab_size", 2)),
            dropout=float(config.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(config.get("attention_probs_dropout_prob", 0.1)),
            activation=_ACTIVATIONS[act],
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            pad_id=int(config.get("pad_token_id") or 0),
            initializer_range=float(config.get("initializer_range", 0.02)),
        ).freeze()
    except KeyError as err:
        raise ValueError(f"config.json lacks {err.args[0]!r}") from None


def _rename(key: str) -> str | None:
    key = key.replace(".gamma", ".weight").replace(".beta", ".bias")  # TF-era LayerNorm names
    if key in _HEAD_NAMES:
        return _HEAD_NAMES[key]
    if key.startswith("bert."):
        key = key[len("bert."):]
    if _IGNORED.search(key):
        return None
    if key in _FIXED:
        return "backbone." + _FIXED[key]
    m = re.match(r"encoder\.layer\.(\d+)\.(.*)$", key)
    if m:
        rest = m.group(2)
        for pattern, repl in _LAYER_RULES:
            new, n = re.subn("^" + pattern, repl, rest)
            if n:
                return f"backbone.layers.{m.group(1)}.{new}"
    return "?" + key


def hf_bert_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a Hugging Face BERT state dict; returns ``(renamed, unknown_keys)``.

    Backbone names get a ``backbone.`` prefix (strip it for a bare :class:`BertModel`).
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        new = _rename(key)
        if new is None:
            continue
        if new.startswith("?"):
            unknown.append(key)
            continue
        out[new] = value
    return out, unknown


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    safetensors_file = path / "model.safetensors"
    bin_file = path / "pytorch_model.bin"
    if safetensors_file.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(safetensors_file))
        except (SafetensorError, OSError, ValueError) as err:
            raise WeightsError(f"{safetensors_file} is corrupt or truncated: {err}") from err
    if bin_file.is_file():
        try:
            return torch.load(bin_file, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises several types for bad files
            raise WeightsError(f"{bin_file} cannot be read as a weights-only checkpoint: {err}") from err
    if (path / "model.safetensors.index.json").is_file():
        raise WeightsError(f"{path} holds a sharded checkpoint; sharded BERT checkpoints are not supported")
    raise WeightsError(f"no model.safetensors or pytorch_model.bin in {path}")


def _tokenizer_options(path: Path) -> dict[str, Any]:
    """Normaliser options from tokenizer.json (authoritative) or tokenizer_config.json."""
    options: dict[str, Any] = {"lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True}
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.is_file():
        data = json.loads(tok_cfg.read_text(encoding="utf-8"))
        options["lowercase"] = bool(data.get("do_lower_case", True))
        options["strip_accents"] = data.get("strip_accents")
        options["tokenize_chinese_chars"] = bool(data.get("tokenize_chinese_chars", True))
    tok_json = path / "tokenizer.json"
    if tok_json.is_file():
        norm = json.loads(tok_json.read_text(encoding="utf-8")).get("normalizer") or {}
        if norm.get("type") == "BertNormalizer":
            options.update(lowercase=bool(norm.get("lowercase", True)), strip_accents=norm.get("strip_accents"),
                           tokenize_chinese_chars=bool(norm.get("handle_chinese_chars", True)))
    return options


def _wordpiece_vocab_file(path: Path, tmp: Path) -> Path | None:
    """``vocab.txt``, or one written from tokenizer.json's WordPiece vocabulary (transformers >= 5 saves only that)."""
    if (path / "vocab.txt").is_file():
        return path / "vocab.txt"
    tok_json = path / "tokenizer.json"
    if not tok_json.is_file():
        return None
    model = json.loads(tok_json.read_text(encoding="utf-8")).get("model") or {}
    if model.get("type") != "WordPiece":
        raise ValueError(f"{tok_json} holds a {model.get('type')!r} model; a BERT WordPiece model was expected")
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError(f"{tok_json}: the WordPiece ids are not 0..{len(by_id) - 1}")
    out = tmp / "vocab.txt"
    out.write_text("".join(t + "\n" for t, _ in by_id), encoding="utf-8")
    return out


def _load_tokenizer(path: Path):
    import tempfile

    from .tokenizers import BertWordPieceTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = _wordpiece_vocab_file(path, Path(tmp))
        if vocab_file is None:
            return None
        return BertWordPieceTokenizer.from_vocab_file(str(vocab_file), **_tokenizer_options(path))


def _config_name(cfg: Config) -> str | None:
    keys = ("units", "hidden_size", "num_layers", "num_heads")
    for name in bert_cfg_reg.list():
        ref = bert_cfg_reg.get(name)
        if all(ref[k] == cfg[k] for k in keys):
            return name
    return None


def from_huggingface(
    path: str | os.PathLike, name: str | None = None, head: str | None = None, **head_kwargs: Any
):
    """Load a Hugging Face BERT checkpoint folder as ``(model, tokenizer)``.

    Parameters
    ----------
    path : str or path
        Folder with ``config.json`` and ``model.safetensors`` (or
        ``pytorch_model.bin``), and optionally ``vocab.txt`` or
        ``tokenizer.json`` (plus ``tokenizer_config.json``) for the tokenizer.
    name : str, optional
        Name written to ``model.metadata["name"]``; default the zoo name whose
        sizes match (``bert_12_768_12`` ...) or ``"bert_custom"``.
    head : {None, "pretrain", "mlm", "classification", "qa"}
        Which toolkit block to build. ``None`` gives :class:`~toolkit.nlp.models.BertModel`
        (``model(input_ids, token_type_ids=None, attention_mask=None)`` returns
        ``(sequence_output, pooled_output)``, equal to ``transformers``'
        ``last_hidden_state`` and ``pooler_output``). A head's weights must be
        in the checkpoint.
    **head_kwargs
        ``num_classes`` for ``head="classification"`` (default: the checkpoint's).

    Returns
    -------
    (HybridBlock, BertWordPieceTokenizer or None)
        The model in eval mode, and the WordPiece tokenizer (``None`` when
        the folder has neither ``vocab.txt`` nor ``tokenizer.json``).

    Raises
    ------
    FileNotFoundError
        If the folder or its ``config.json`` is missing.
    ValueError
        For a config that is not a supported BERT.
    WeightsError
        For missing, corrupt or unexpected weights.
    """
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file} not found: expected a Hugging Face checkpoint folder")
    try:
        hf_cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg_file} is not valid JSON: {err}") from err
    cfg = hf_bert_config(hf_cfg)
    renamed, unknown = hf_bert_state_dict(_read_state(path))
    if unknown:
        raise WeightsError(f"checkpoint {path} has weights this converter does not know: {unknown[:5]}")
    if head not in _HEADS:
        raise ValueError(f"unknown BERT head {head!r}; choose from {list(_HEADS)}")
    if head == "classification" and "num_classes" not in head_kwargs and "classifier.weight" in renamed:
        head_kwargs["num_classes"] = renamed["classifier.weight"].shape[0]
    model = _HEADS[head](cfg, **head_kwargs)
    if head is None:
        renamed = {k[len("backbone."):]: v for k, v in renamed.items() if k.startswith("backbone.")}
    else:
        # Head weights absent from the model (e.g. NSP of a pretraining checkpoint) are dropped.
        own_heads = {k for k in model.state_dict() if not k.startswith("backbone.")}
        renamed = {k: v for k, v in renamed.items() if k.startswith("backbone.") or k in own_heads}
    own = model.state_dict()
    tied = {"mlm.decoder.weight"}
    missing = [k for k in own if k not in renamed and k not in tied]
    if missing:
        raise WeightsError(f"checkpoint {path} lacks weights for {type(model).__name__}: {missing[:5]}")
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in renamed.items() if own[k].shape != v.shape]
    if bad:
        raise WeightsError(f"checkpoint {path} does not fit config.json: {bad[:5]}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in renamed.items()}, strict=False)
    model.eval()
    tokenizer = _load_tokenizer(path)
    model.metadata["name"] = name or _config_name(cfg) or "bert_custom"
    model.metadata["source"] = "huggingface"
    if tokenizer is not None:
        vocab = tokenizer.vocab
        for token_name in ("unk", "pad", "cls", "sep", "mask"):
            idx = getattr(vocab, f"{token_name}_id", None)
            if idx is not None:
                model.metadata[f"{token_name}_id"] = int(idx)
        model.metadata["lowercase"] = bool(_tokenizer_options(path)["lowercase"])
    return model, tokenizer


# ----------------------------------------------------------------------------- pretrained="<hub id>"
#: Default Hugging Face checkpoint per zoo config (Google's BERT and its miniatures, all uncased).
HF_DEFAULTS = {
    "bert_12_768_12": "google-bert/bert-base-uncased",
    "bert_24_1024_16": "google-bert/bert-large-uncased",
    "bert_4_256_4": "google/bert_uncased_L-4_H-256_A-4",
    "bert_2_128_2": "google/bert_uncased_L-2_H-128_A-2",
}
_HF_FILES = ["config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json"]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hf_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """Local folder of Hugging Face checkpoint ``repo_id`` in the Hugging Face cache.

    Uses ``huggingface_hub`` (installed with ``tokenizers``) and its cache:
    ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (default ``~/.cache/huggingface/hub``),
    read when called. With ``HF_HUB_OFFLINE=1`` only the cache is used;
    otherwise a missing checkpoint is downloaded into it by ``huggingface_hub``.

    Raises
    ------
    WeightsError
        If the checkpoint is neither cached nor downloadable.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - tokenizers depends on it
        raise WeightsError("pretrained=<Hugging Face id> needs huggingface_hub (pip install huggingface_hub)") from err
    cache = os.environ.get("HF_HUB_CACHE") or str(
        Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser() / "hub")
    offline = _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE")
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=offline,
                                      allow_patterns=_HF_FILES))
    except Exception as err:  # huggingface_hub raises several types for "not cached" / "not reachable"
        where = "cached" if offline else "cached nor downloadable"
        raise WeightsError(f"Hugging Face checkpoint {repo_id!r} is not {where} (cache {cache}): {err}") from err


def load_huggingface_weights(name: str, spec: str, head: str | None = None, **kwargs: Any):
    """Zoo BERT ``name`` with the weights of Hugging Face checkpoint ``spec`` (``"org/model"`` or ``"org/model@rev"``).

    The loader behind ``get_model("bert_12_768_12", pretrained="google-bert/bert-base-uncased")``:
    the checkpoint comes from the Hugging Face cache (:func:`hf_snapshot`) and
    is converted by :func:`from_huggingface`; its sizes must be the zoo
    config's. A ``head`` whose weights the checkpoint lacks (a classifier to
    fine-tune) is newly initialised on top of the loaded encoder, with a warning.

    Returns
    -------
    (HybridBlock, dict)
        The model in training mode (as ``get_model`` returns) with its
        WordPiece tokenizer as ``model.tokenizer``, and the weights record.
    """
    import warnings

    repo_id, _, revision = spec.partition("@")
    if not repo_id:
        raise WeightsError(f"no Hugging Face checkpoint named for {name!r}: pass pretrained='org/model'")
    path = hf_snapshot(repo_id, revision or None)
    cfg = hf_bert_config(json.loads((path / "config.json").read_text()))
    want = bert_cfg_reg.get(name)
    keys = ("units", "hidden_size", "num_layers", "num_heads")
    if any(cfg[k] != want[k] for k in keys):
        fits = _config_name(cfg)
        raise WeightsError(
            f"{repo_id} is a BERT with {', '.join(f'{k}={cfg[k]}' for k in keys)}, not {name}"
            + (f"; load it as {fits!r}" if fits else "; no zoo config has these sizes"))
    try:
        model, tokenizer = from_huggingface(path, name=name, head=head, **kwargs)
    except WeightsError as err:
        if head is None or "lacks weights" not in str(err):
            raise
        bare, tokenizer = from_huggingface(path, name=name)
        model = _HEADS[head](bare.cfg, **kwargs)
        model.backbone.load_state_dict(bare.state_dict())
        model.metadata.update({k: v for k, v in bare.metadata.items() if k not in model.metadata or k == "name"})
        new = sorted({k.split(".")[0] for k in model.state_dict() if not k.startswith("backbone.")})
        warnings.warn(f"{repo_id} has no {head!r} head: loaded the encoder, {', '.join(new)} newly initialised",
                      stacklevel=3)
    model.tokenizer = tokenizer
    model.train()
    info = {"name": repo_id, "revision": path.name, "path": str(path)}
    return model, info


def huggingface_catalog(name: str) -> list[dict[str, Any]]:
    """The default Hugging Face checkpoint of ``name`` (no accuracy is published with it)."""
    repo_id = HF_DEFAULTS.get(name.lower())
    return [{"pretrained": repo_id, "default": True, "dataset": "", "metrics": {}, "source": repo_id}] if repo_id else []


for _name in bert_cfg_reg.list():
    register_source("huggingface", _name, load_huggingface_weights, default=HF_DEFAULTS.get(_name),
                    catalog=huggingface_catalog)


# ----------------------------------------------------------------------------- GluonNLP 0.x
_GLUONNLP_LAYER = [
    (r"attention_cell\.proj_(query|key|value)\.", r"attention.\1."),
    (r"proj\.", "attention.out."),
    (r"layer_norm\.", "attention_norm."),
    (r"ffn\.ffn_1\.", "ffn.ffn_1."),
    (r"ffn\.ffn_2\.", "ffn.ffn_2."),
    (r"ffn\.layer_norm\.", "ffn_norm."),
]
_GLUONNLP_FIXED = {
    "word_embed.0.weight": "backbone.word_embed.weight",
    "token_type_embed.0.weight": "backbone.token_type_embed.weight",
    "encoder.position_weight": "backbone.position_embed.weight",
    "encoder.layer_norm.weight": "backbone.embed_norm.weight",
    "encoder.layer_norm.bias": "backbone.embed_norm.bias",
    "pooler.weight": "backbone.pooler.weight",
    "pooler.bias": "backbone.pooler.bias",
    "classifier.weight": "nsp.weight",
    "classifier.bias": "nsp.bias",
    "decoder.0.weight": "mlm.dense.weight",
    "decoder.0.bias": "mlm.dense.bias",
    "decoder.2.weight": "mlm.norm.weight",
    "decoder.2.bias": "mlm.norm.bias",
    "decoder.3.bias": "mlm.decoder.bias",
}


def _gluonnlp_rename(key: str) -> str | None:
    key = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", key))
    if key == "decoder.3.weight":  # tied to the word embedding
        return None
    if key in _GLUONNLP_FIXED:
        return _GLUONNLP_FIXED[key]
    m = re.match(r"encoder\.transformer_cells\.(\d+)\.(.*)$", key)
    if m:
        for pattern, repl in _GLUONNLP_LAYER:
            new, n = re.subn("^" + pattern, repl, m.group(2))
            if n:
                return f"backbone.layers.{m.group(1)}.{new}"
    return "?" + key


def from_gluonnlp(path: str | os.PathLike, name: str = "bert_12_768_12", head: str | None = None,
                  num_heads: int | None = None):
    """Load a GluonNLP 0.x BERT ``.params`` file (``BERTModel.save_parameters``) into a toolkit BERT.

    Parameters
    ----------
    path : str or path
        The ``.params`` file, read without MXNet.
    name : str
        Zoo config the file was trained with; sizes (vocabulary, layers,
        units, hidden size, max length) are taken from the file, the number of
        heads (which the file cannot tell) from this config unless ``num_heads`` is given.
    head : {None, "pretrain", "mlm"}
        ``None``: the bare :class:`~toolkit.nlp.models.BertModel`; ``"pretrain"``
        needs the file's decoder and classifier (``use_decoder``/``use_classifier``).

    Returns
    -------
    HybridBlock
        In eval mode. GluonNLP's ``valid_length`` becomes ``attention_mask``
        (1 for the first ``valid_length`` positions). Outputs agree with
        GluonNLP at the valid positions; at padded positions GluonNLP masks the
        queries too, so the (unused) sequence outputs there differ.
    """
    # The reader lives with the vision converters; imported here so that toolkit.nlp
    # does not load it (nor torchvision) unless GluonNLP files are converted.
    from ..zoo.mxnet_params import read_params

    if head not in (None, "pretrain", "mlm"):
        raise ValueError(f"GluonNLP BERT files carry no {head!r} head; use head=None, 'pretrain' or 'mlm'")
    arrays = read_params(path)
    renamed: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in arrays.items():
        new = _gluonnlp_rename(key)
        if new is None:
            continue
        if new.startswith("?"):
            unknown.append(key)
            continue
        renamed[new] = torch.from_numpy(value.copy())
    if unknown:
        raise WeightsError(f"{path} has parameters this converter does not know: {unknown[:5]}")
    try:
        vocab_size, units = renamed["backbone.word_embed.weight"].shape
        max_length = renamed["backbone.position_embed.weight"].shape[0]
        hidden = renamed["backbone.layers.0.ffn.ffn_1.weight"].shape[0]
    except KeyError as err:
        raise WeightsError(f"{path} is not a GluonNLP BERT file: no {err.args[0]}") from None
    num_layers = len({k.split(".")[2] for k in renamed if k.startswith("backbone.layers.")})
    types = renamed["backbone.token_type_embed.weight"].shape[0] if "backbone.token_type_embed.weight" in renamed else 2
    cfg = bert_cfg_reg.get(name).clone(vocab_size=int(vocab_size), units=int(units), hidden_size=int(hidden),
                                       num_layers=num_layers, max_length=int(max_length), num_token_types=int(types),
                                       num_heads=int(num_heads or bert_cfg_reg.get(name).num_heads))
    model = _HEADS[head](cfg)
    if head is None:
        renamed = {k[len("backbone."):]: v for k, v in renamed.items() if k.startswith("backbone.")}
    own = model.state_dict()
    renamed = {k: v for k, v in renamed.items() if k in own}
    missing = [k for k in own if k not in renamed and k != "mlm.decoder.weight"]
    if missing:
        raise WeightsError(f"{path} lacks weights for {type(model).__name__}: {missing[:5]}")
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in renamed.items() if own[k].shape != v.shape]
    if bad:
        raise WeightsError(f"{path} does not fit {name} with {cfg.num_heads} heads: {bad[:5]}")
    model.load_state_dict(renamed, strict=False)
    model.metadata.update(name=name, source="gluonnlp")
    return model.eval()
