"""Weight store: safetensors files verified by sha256, fetched atomically.

Files live in ``$TOOLKIT_HOME/models`` (default ``~/.toolkit/models``) and are
downloaded from ``$TOOLKIT_REPO`` (any URL urllib opens, ``file://`` included)
when missing. A download goes to a temporary file in the same folder and is
renamed into place only after its sha256 matched, so a killed download never
leaves a file that passes as complete. Weights are only ever read with
safetensors: no pickle from a download is loaded.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch

__all__ = [
    "WeightsError",
    "toolkit_home",
    "models_dir",
    "weights_filename",
    "fetch",
    "verify",
    "save_weights",
    "load_weights",
]


class WeightsError(RuntimeError):
    """A weight file is missing, corrupt, truncated or does not fit the model."""


def toolkit_home() -> Path:
    """``$TOOLKIT_HOME`` or ``~/.toolkit``."""
    return Path(os.environ.get("TOOLKIT_HOME", Path.home() / ".toolkit")).expanduser()


def models_dir() -> Path:
    return toolkit_home() / "models"


def weights_filename(name: str, sha256: str) -> str:
    """The store's file name for a model's weights: ``NAME-TAG.safetensors``."""
    return f"{name.lower()}-{sha256[:8]}.safetensors"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: The shortest digest prefix :func:`verify` and :func:`fetch` accept.
MIN_DIGEST_DIGITS = 8


def check_digest(sha256: object) -> str:
    """``sha256`` lower-cased, checked to be a hex digest or a prefix of at least 8 digits.

    Raises
    ------
    ValueError
        If it is not a string of 8 to 64 hex digits (an empty prefix would match any file).
    """
    if not isinstance(sha256, str):
        raise ValueError(f"sha256 must be a hex string, got {type(sha256).__name__}")
    digest = sha256.strip().lower()
    if not MIN_DIGEST_DIGITS <= len(digest) <= 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"sha256 must be {MIN_DIGEST_DIGITS} to 64 hex digits, got {sha256!r}")
    return digest


def verify(path: str | os.PathLike, sha256: str) -> bool:
    """Whether the file's sha256 starts with (or equals) ``sha256``.

    Raises
    ------
    ValueError
        If ``sha256`` has fewer than 8 hex digits (see :func:`check_digest`).
    """
    digest = check_digest(sha256)
    return _sha256(Path(path)).startswith(digest)


def _repo_url(repo: str | None) -> str:
    repo = repo or os.environ.get("TOOLKIT_REPO")
    if not repo:
        raise WeightsError(
            "no weight repository set: set TOOLKIT_REPO to a URL (file:// works) or put the file "
            f"in {models_dir()}"
        )
    if "://" not in repo:  # a plain local folder
        repo = Path(repo).expanduser().resolve().as_uri()
    return repo.rstrip("/") + "/"


def fetch(filename: str, sha256: str, repo: str | None = None, root: str | os.PathLike | None = None) -> Path:
    """Return the local path of a verified weight file, downloading it if needed.

    Parameters
    ----------
    filename : str
        File name in the store and in the repository.
    sha256 : str
        Expected hex digest (the full digest; a prefix of at least 8 digits is accepted).
    repo : str, optional
        Repository URL; default ``$TOOLKIT_REPO``.
    root : path, optional
        Store folder; default :func:`models_dir`.

    Raises
    ------
    WeightsError
        If the file cannot be downloaded or its digest does not match.
    ValueError
        If ``sha256`` has fewer than 8 hex digits.
    """
    sha256 = check_digest(sha256)
    root = Path(root) if root is not None else models_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / filename
    if target.is_file():
        if verify(target, sha256):
            return target
        # A file that fails its check is never loaded; a fresh copy replaces it.
        stale = target
    else:
        stale = None
    url = urllib.parse.urljoin(_repo_url(repo), urllib.parse.quote(filename))
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{filename}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as err:
                where = f" (the local copy {stale} failed its sha256 check)" if stale else ""
                raise WeightsError(f"cannot download {url}: {err}{where}") from err
        got = digest.hexdigest()
        if not got.startswith(sha256.lower()):
            raise WeightsError(
                f"downloaded {url} is corrupt or truncated: sha256 {got[:12]}..., expected {sha256[:12]}..."
            )
        os.replace(tmp, target)
        return target
    finally:
        Path(tmp).unlink(missing_ok=True)


def _unique_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors kept once, under their first name.

    safetensors' ``save_model`` records the dropped aliases as header metadata,
    whose map it writes in hash order: the bytes, and so the sha256, then
    differ between runs. :func:`load_weights` re-derives aliases from the model.
    """
    kept: dict[str, torch.Tensor] = {}
    seen: dict[tuple, str] = {}
    storages: set[int] = set()
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if key in seen:
            continue
        seen[key] = name
        ptr = tensor.untyped_storage().data_ptr()
        # views into one storage (rare in a state dict) must be written as separate tensors
        kept[name] = tensor.detach().clone() if ptr in storages else tensor.detach().contiguous()
        storages.add(ptr)
    return kept


def save_weights(model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> str:
    """Save ``model``'s state to a safetensors file atomically; return its sha256.

    Tied parameters (shared tensors) are stored once. The same tensors give the
    same bytes in every run as long as ``metadata`` has at most one key
    (safetensors writes its metadata map in hash order); the training scripts
    put everything under one ``"toolkit"`` key.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        save_file(_unique_tensors(model), tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _sha256(path)


def load_weights(model: torch.nn.Module, path: str | os.PathLike, strict: bool = True) -> torch.nn.Module:
    """Load a safetensors file into ``model`` with clear errors.

    Raises
    ------
    WeightsError
        If the file is missing, truncated or corrupt, or its tensors do not fit
        the model (missing/unexpected names, other shapes).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weight file {path} not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"weight file {path} is corrupt or truncated (not a readable safetensors file): {err}") from err
    own = model.state_dict()
    # safetensors stores tied tensors once: fill in their aliases from the stored name.
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items() if k in own and own[k].shape != v.shape]
    if shapes:
        raise WeightsError(f"weight file {path} does not fit {type(model).__name__}: " + "; ".join(shapes[:5]))
    if strict and (unexpected or _untied_missing(model, missing)):
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        raise WeightsError(f"weight file {path} does not fit {type(model).__name__}: " + ", ".join(parts))
    model.load_state_dict(state, strict=False)
    return model


def _untied_missing(model: torch.nn.Module, missing: list[str]) -> list[str]:
    """Names missing from a file that are not aliases of a stored (tied) tensor."""
    if not missing:
        return []
    state = model.state_dict(keep_vars=True)
    owners: dict[int, int] = {}
    for v in state.values():
        owners[v.data_ptr()] = owners.get(v.data_ptr(), 0) + 1
    return [k for k in missing if owners[state[k].data_ptr()] < 2]
