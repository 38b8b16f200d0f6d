"""Batchify functions: turn a list of samples into a batch of torch tensors.

They follow GluonNLP 0.10's ``gluonnlp.data.batchify`` and plug straight into
``torch.utils.data.DataLoader(collate_fn=...)``; every one of them is a plain
picklable object, so ``num_workers > 0`` works.

Inputs may be torch tensors, numpy arrays, numpy scalars, python scalars or
(nested) python lists. Dtypes follow torch rather than MXNet:

* tensors and numpy arrays keep their dtype ("strong" dtype);
* python data is "weak": ints become ``int64``, floats the default float dtype
  (``float32``), bools ``bool``; an empty list takes the dtype of the batch.
  Weak samples adopt the strong dtype of the others when that loses nothing
  (python ints into a float32 batch), as torch does with python scalars.

Two samples with different strong dtypes (``float32`` next to ``float64``) are
an error unless ``dtype=`` is given, in which case everything is cast to it.
"""
from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Stack", "Pad", "Tuple", "List", "Dict", "NamedTuple"]

DTypeLike = torch.dtype | np.dtype | type | str | None

_DTYPE = operator.attrgetter("dtype")

# Order of the weak kinds; a weak sample may join a batch whose kind is >= its own.
_KIND_RANK = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def _torch_dtype(dtype: DTypeLike) -> torch.dtype | None:
    """Normalise a torch/numpy/string dtype to a ``torch.dtype``."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and hasattr(torch, dtype) and isinstance(getattr(torch, dtype), torch.dtype):
        return getattr(torch, dtype)
    try:
        return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
    except TypeError as err:
        raise TypeError(f"dtype {dtype!r} has no torch equivalent") from err


def _check_pad_value(val: int | float | bool, dtype: torch.dtype) -> None:
    """Refuse a padding value the batch dtype cannot hold (``Pad(val=-1)`` on uint8 would wrap to 255)."""
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        return
    if isinstance(val, float) and not math.isfinite(val):
        raise ValueError(f"Pad: val={val!r} does not fit the {dtype} batch")
    info = torch.iinfo(dtype)
    if not info.min <= val <= info.max:
        raise ValueError(f"Pad: val={val!r} does not fit the {dtype} batch (range {info.min}..{info.max})")


def _weak_dtype(kind: str) -> torch.dtype:
    if kind == "b":
        return torch.bool
    if kind in "iu":
        return torch.int64
    if kind == "f":
        return torch.get_default_dtype()
    return torch.complex64 if torch.get_default_dtype() == torch.float32 else torch.complex128


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "b"
    if dtype.is_complex:
        return "c"
    if dtype.is_floating_point:
        return "f"
    return "i"


def _numpy_to_tensor(arr: np.ndarray, who: str, i: int) -> torch.Tensor:
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"{who}: sample {i} has numpy dtype {arr.dtype}, which is not numeric")
    # torch.from_numpy warns on read-only arrays (e.g. memory maps) and refuses
    # negative strides and swapped byte order; a native copy fixes all three.
    if arr.flags.writeable:
        try:
            return torch.from_numpy(arr)
        except (ValueError, TypeError):
            pass
    return torch.from_numpy(np.array(arr, dtype=arr.dtype.newbyteorder("=")))


def _convert(x: Any, who: str, i: int) -> tuple[torch.Tensor, str | None]:
    """Return ``(tensor, weak_kind)``; ``weak_kind`` is None for strongly typed data
    and ``""`` for an empty python list (no kind at all)."""
    if isinstance(x, torch.Tensor):
        return x, None
    if isinstance(x, np.ndarray):
        return _numpy_to_tensor(x, who, i), None
    if isinstance(x, np.generic):
        return _numpy_to_tensor(np.asarray(x), who, i), None
    if isinstance(x, (bool, int, float, complex, list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as err:  # ragged nesting
            raise ValueError(f"{who}: sample {i} is a ragged nested list ({err})") from None
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"{who}: sample {i} holds non-numeric values (numpy dtype {arr.dtype})")
        if arr.size == 0:
            return torch.from_numpy(arr), ""
        kind = arr.dtype.kind
        return torch.from_numpy(arr).to(_weak_dtype(kind)), kind
    raise TypeError(
        f"{who}: sample {i} has type {type(x).__name__}; expected a torch.Tensor, numpy array, "
        "python scalar or list"
    )


def _convert_all(data: Sequence[Any], who: str) -> tuple[list[torch.Tensor], list[str | None]]:
    if len(data) == 0:
        raise ValueError(f"{who}: received an empty list of samples")
    types = set(map(type, data))
    if types == {torch.Tensor}:  # common cases: skip the per-sample dispatch
        return list(data), [None] * len(data)
    if types == {np.ndarray} and all(d.kind in "biufc" and d.isnative for d in set(map(_DTYPE, data))):
        try:
            if all(a.flags.writeable for a in data):
                return list(map(torch.from_numpy, data)), [None] * len(data)
        except ValueError:  # negative strides: take the careful path below
            pass
    tensors, kinds = [], []
    for i, x in enumerate(data):
        t, k = _convert(x, who, i)
        tensors.append(t)
        kinds.append(k)
    return tensors, kinds


def _resolve_dtype(tensors: list[torch.Tensor], kinds: list[str | None], dtype: torch.dtype | None,
                   who: str) -> torch.dtype:
    """Pick the batch dtype, raising TypeError on a strong mismatch."""
    if dtype is not None:
        return dtype
    if kinds.count(None) == len(kinds):
        dtypes = set(map(_DTYPE, tensors))
        if len(dtypes) == 1:  # fast path: one strong dtype
            return dtypes.pop()
    strong: torch.dtype | None = None
    strong_at = -1
    for i, (t, k) in enumerate(zip(tensors, kinds)):
        if k is None:
            if strong is None:
                strong, strong_at = t.dtype, i
            elif t.dtype != strong:
                raise TypeError(
                    f"{who}: mismatched dtypes: sample {strong_at} is {strong} but sample {i} is "
                    f"{t.dtype}; convert the samples or pass dtype= to cast them all"
                )
    weak = [(i, k) for i, k in enumerate(kinds) if k]
    if strong is not None:
        rank = _KIND_RANK[_kind(strong)]
        for i, k in weak:
            if _KIND_RANK[k] > rank:
                raise TypeError(
                    f"{who}: sample {i} holds python {_weak_dtype(k)} values but sample {strong_at} "
                    f"is {strong}; pass dtype= to cast them all"
                )
        return strong
    if not weak:  # only empty lists
        return torch.get_default_dtype()
    return _weak_dtype(max((k for _, k in weak), key=_KIND_RANK.__getitem__))


def _check_rank(tensors: list[torch.Tensor], who: str) -> int:
    ndim = tensors[0].dim()
    if len(set(map(torch.Tensor.dim, tensors))) == 1:
        return ndim
    for i, t in enumerate(tensors):
        if t.dim() != ndim:
            raise ValueError(
                f"{who}: mismatched rank: sample 0 has {ndim} dimension(s) {tuple(tensors[0].shape)} "
                f"but sample {i} has {t.dim()} {tuple(t.shape)}"
            )
    return ndim


class Stack:
    """Stack samples of identical shape into a batch (a new leading axis).

    Parameters
    ----------
    dtype : torch.dtype, numpy dtype or str, optional
        Output dtype. ``None`` keeps the samples' dtype (see the module notes).

    Examples
    --------
    >>> Stack()([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    """

    def __init__(self, dtype: DTypeLike = None) -> None:
        self._dtype = _torch_dtype(dtype)

    def __call__(self, data: Sequence[Any]) -> torch.Tensor:
        tensors, kinds = _convert_all(data, "Stack")
        _check_rank(tensors, "Stack")
        shape = tensors[0].shape
        for i, t in enumerate(tensors):
            if t.shape != shape:
                raise ValueError(
                    f"Stack: mismatched shapes: sample 0 has shape {tuple(shape)} but sample {i} has "
                    f"{tuple(t.shape)}; use Pad for variable-length samples"
                )
        dtype = _resolve_dtype(tensors, kinds, self._dtype, "Stack")
        if any(t.dtype != dtype for t in tensors):
            tensors = [t.to(dtype) for t in tensors]
        return torch.stack(tensors)

    def __repr__(self) -> str:
        return f"Stack(dtype={self._dtype})"


class Pad:
    """Pad samples along one axis to the longest one, then stack them.

    Parameters
    ----------
    axis : int, default 0
        Axis of each sample to pad (negative values count from the end). All other
        dimensions must agree across samples.
    val : int or float, default 0
        Padding value (e.g. the vocabulary's padding index, or -1 for box lists).
    dtype : torch.dtype, numpy dtype or str, optional
        Output dtype; ``None`` keeps the samples' dtype.
    round_to : int, optional
        Round the padded length up to a multiple of this (e.g. 8 for tensor cores).
    ret_length : bool, default False
        Also return the original lengths along ``axis`` as an ``int64`` tensor
        (the dtype ``pack_padded_sequence`` wants; GluonNLP returned int32).

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        The batch of shape ``(N, ..., L, ...)`` with ``L`` at ``axis + 1``, and
        the lengths of shape ``(N,)`` if ``ret_length``.

    Examples
    --------
    >>> Pad(val=-1)([[1, 2, 3], [4]])
    tensor([[ 1,  2,  3],
            [ 4, -1, -1]])
    """

    def __init__(self, axis: int = 0, val: int | float = 0, dtype: DTypeLike = None,
                 round_to: int | None = None, ret_length: bool = False) -> None:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"Pad: axis must be an int, got {axis!r}")
        if round_to is not None and (not isinstance(round_to, (int, np.integer)) or round_to < 1):
            raise ValueError(f"Pad: round_to must be a positive int or None, got {round_to!r}")
        if not isinstance(val, (bool, int, float, np.number)):
            raise TypeError(f"Pad: val must be a number, got {val!r}")
        self._axis = int(axis)
        self._val = val.item() if isinstance(val, np.generic) else val
        self._dtype = _torch_dtype(dtype)
        self._round_to = None if round_to is None else int(round_to)
        self._ret_length = bool(ret_length)

    def __call__(self, data: Sequence[Any]) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        tensors, kinds = _convert_all(data, "Pad")
        ndim = _check_rank(tensors, "Pad")
        if ndim == 0:
            raise ValueError("Pad: samples are scalars (0-d); there is no axis to pad, use Stack")
        if not -ndim <= self._axis < ndim:
            raise ValueError(f"Pad: axis={self._axis} is out of range for samples with {ndim} dimension(s)")
        axis = self._axis % ndim
        ref = list(tensors[0].shape)
        del ref[axis]
        for i, t in enumerate(tensors if ndim > 1 else ()):  # 1-d samples: nothing else to agree on
            other = list(t.shape)
            del other[axis]
            if other != ref:
                raise ValueError(
                    f"Pad: samples differ outside the padded axis {axis}: sample 0 has shape "
                    f"{tuple(tensors[0].shape)} but sample {i} has {tuple(t.shape)}"
                )
        dtype = _resolve_dtype(tensors, kinds, self._dtype, "Pad")
        if (not (dtype.is_floating_point or dtype.is_complex) and isinstance(self._val, float)
                and not self._val.is_integer()):
            raise ValueError(f"Pad: val={self._val!r} cannot be stored in a {dtype} batch")
        _check_pad_value(self._val, dtype)
        lengths = list(map(torch.Tensor.size, tensors, itertools.repeat(axis)))  # C-level loop
        longest = max(lengths)
        target = longest
        if self._round_to is not None:
            target = self._round_to * math.ceil(longest / self._round_to)
        if tensors[0].dtype != dtype or len(set(map(_DTYPE, tensors))) > 1:
            tensors = [t.to(dtype) for t in tensors]
        if axis != 0:
            tensors = [t.movedim(axis, 0) for t in tensors]  # pad dim 0, move back at the end
        # One concatenation and one masked scatter instead of a copy per sample:
        # torch's pad_sequence dispatches ~3 ops per sample, which dominates for
        # batches of short sequences.
        rest = tuple(tensors[0].shape[1:])
        # numpy builds the small index arrays several times faster than torch.tensor/arange.
        length_np = np.array(lengths, dtype=np.int64)
        length_t = torch.from_numpy(length_np)
        mask = torch.from_numpy(np.arange(target) < length_np[:, None])
        out = torch.full((len(tensors), target, *rest), self._val, dtype=dtype)
        out.masked_scatter_(mask.view(len(tensors), target, *([1] * len(rest))), torch.cat(tensors))
        if axis != 0:
            out = out.movedim(1, axis + 1).contiguous()
        if self._ret_length:
            return out, length_t
        return out

    def __repr__(self) -> str:
        return (f"Pad(axis={self._axis}, val={self._val!r}, dtype={self._dtype}, "
                f"round_to={self._round_to}, ret_length={self._ret_length})")


def _check_callable(fns: Sequence[Any], who: str) -> None:
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"{who}: batchify function {i} is not callable: {fn!r}")


class Tuple:
    """Apply one batchify function per field of tuple-like samples.

    ``Tuple(Pad(), Stack())`` or ``Tuple([Pad(), Stack()])``: the i-th function
    gets the list of the samples' i-th fields; the result is a tuple.

    Parameters
    ----------
    fn : callable or sequence of callables
        The first function, or all of them.
    *args : callable
        The remaining functions when ``fn`` is a single callable.
    """

    def __init__(self, fn: Callable | Sequence[Callable], *args: Callable) -> None:
        if isinstance(fn, (list, tuple)):
            if args:
                raise ValueError("Tuple: pass either Tuple(f1, f2, ...) or Tuple([f1, f2, ...]), not both")
            fns = tuple(fn)
        else:
            fns = (fn, *args)
        if not fns:
            raise ValueError("Tuple: needs at least one batchify function")
        _check_callable(fns, "Tuple")
        self._fn = fns

    def __call__(self, data: Sequence[Sequence[Any]]) -> tuple:
        if len(data) == 0:
            raise ValueError("Tuple: received an empty list of samples")
        n = len(self._fn)
        for i, sample in enumerate(data):
            if not isinstance(sample, Sequence) or isinstance(sample, str) or len(sample) != n:
                got = f"{len(sample)} field(s)" if isinstance(sample, Sequence) else type(sample).__name__
                raise ValueError(f"Tuple: has {n} batchify functions but sample {i} has {got}")
        return tuple(fn([sample[i] for sample in data]) for i, fn in enumerate(self._fn))

    def __repr__(self) -> str:
        return f"Tuple({', '.join(map(repr, self._fn))})"


class List:
    """Return the samples unchanged as a python list (e.g. raw strings next to tensors)."""

    def __call__(self, data: Sequence[Any]) -> list:
        if len(data) == 0:
            raise ValueError("List: received an empty list of samples")
        return list(data)

    def __repr__(self) -> str:
        return "List()"


class Dict:
    """Apply one batchify function per key of dict samples; returns a dict.

    Parameters
    ----------
    fn_dict : Mapping[str, callable]
        Key -> batchify function. Keys of the samples not listed are dropped.
    """

    def __init__(self, fn_dict: Mapping[Any, Callable]) -> None:
        if not isinstance(fn_dict, Mapping):
            raise TypeError(f"Dict: expected a mapping of key -> batchify function, got {type(fn_dict).__name__}")
        _check_callable(list(fn_dict.values()), "Dict")
        self._fn_dict = dict(fn_dict)

    def __call__(self, data: Sequence[Mapping[Any, Any]]) -> dict:
        if len(data) == 0:
            raise ValueError("Dict: received an empty list of samples")
        for i, sample in enumerate(data):
            if not isinstance(sample, Mapping):
                raise TypeError(f"Dict: sample {i} is a {type(sample).__name__}, not a mapping")
            missing = [k for k in self._fn_dict if k not in sample]
            if missing:
                raise ValueError(f"Dict: sample {i} lacks key(s) {missing}")
        return {k: fn([sample[k] for sample in data]) for k, fn in self._fn_dict.items()}

    def __repr__(self) -> str:
        return f"Dict({self._fn_dict!r})"


class NamedTuple:
    """Apply one batchify function per field of namedtuple samples.

    Parameters
    ----------
    container : type
        The namedtuple class of the samples (define it at module level so the
        batchify function pickles for DataLoader workers).
    fn_info : sequence of callables or Mapping[str, callable]
        One function per field, in field order or keyed by field name.
    """

    def __init__(self, container: type, fn_info: Sequence[Callable] | Mapping[str, Callable]) -> None:
        fields = getattr(container, "_fields", None)
        if fields is None:
            raise TypeError(f"NamedTuple: {container!r} is not a namedtuple class")
        if isinstance(fn_info, Mapping):
            missing = [f for f in fields if f not in fn_info]
            extra = [k for k in fn_info if k not in fields]
            if missing or extra:
                raise ValueError(f"NamedTuple: fields {list(fields)}; missing functions for {missing}, "
                                 f"unknown keys {extra}")
            fns = [fn_info[f] for f in fields]
        else:
            fns = list(fn_info)
            if len(fns) != len(fields):
                raise ValueError(f"NamedTuple: {container.__name__} has {len(fields)} fields {list(fields)} "
                                 f"but {len(fns)} batchify functions were given")
        _check_callable(fns, "NamedTuple")
        self._container = container
        self._fns = fns

    def __call__(self, data: Sequence[Any]) -> Any:
        if len(data) == 0:
            raise ValueError("NamedTuple: received an empty list of samples")
        for i, sample in enumerate(data):
            if not isinstance(sample, self._container):
                raise TypeError(f"NamedTuple: sample {i} is a {type(sample).__name__}, "
                                f"expected {self._container.__name__}")
        return self._container(*(fn([s[i] for s in data]) for i, fn in enumerate(self._fns)))

    def __repr__(self) -> str:
        return f"NamedTuple({self._container.__name__}, {self._fns!r})"
