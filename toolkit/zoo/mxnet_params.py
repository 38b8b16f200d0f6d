"""Read MXNet ``.params`` files (the NDArray list format) with numpy alone.

GluonCV's ``net.save_parameters(path)`` and ``mx.nd.save(path, dict)`` write
this little-endian binary layout (MXNet 1.x, ``src/ndarray/ndarray.cc``):

File::

    uint64  magic 0x112                    (kMXAPINDArrayListMagic)
    uint64  reserved, 0
    uint64  number of arrays N
    N x     NDArray record (below)
    uint64  number of names (N, or 0 for an unnamed list)
    names:  uint64 byte length + UTF-8 bytes, each

NDArray record (V2, magic 0xF993FAC9; V3, magic 0xF993FACA, is the same
layout written under NumPy shape semantics)::

    uint32  magic
    int32   storage type (0 dense; 1 row_sparse and 2 csr are not read here)
    int32   ndim, then ndim x int64 dims     (TShape; ndim 0 = empty array, ends the record)
    int32   device type, int32 device id     (Context; irrelevant on load)
    int32   dtype flag (mshadow: 0 float32, 1 float64, 2 float16, 3 uint8,
            4 int32, 5 int8, 6 int64, 7 bool, 12 bfloat16)
    raw     prod(dims) elements, C order

Older records (MXNet < 0.9) have no magic: V1 (magic 0xF993FAC8) then a
TShape with int64 dims, or none at all, the first uint32 being ``ndim``
followed by uint32 dims; both are read too.

Parameter names from ``save_parameters`` are structural (``features.0.weight``,
``layer1.0.bn1.gamma``); ``export()``/Module checkpoints prefix them with
``arg:``/``aux:`` and use symbol names instead.

Written by hand because no maintained package reads this format without
importing MXNet itself.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["ParamsFormatError", "read_params"]

_LIST_MAGIC = 0x112
_V1_MAGIC = 0xF993FAC8
_V2_MAGIC = 0xF993FAC9
_V3_MAGIC = 0xF993FACA
_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
}
_BFLOAT16 = 12


class ParamsFormatError(ValueError):
    """The file is not an MXNet NDArray list, is truncated, or holds what this reader does not take."""


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ParamsFormatError(
                f"{self.path}: truncated while reading {what} at byte {self.pos} "
                f"(needs {n} bytes, {len(self.data) - self.pos} left)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))


def _read_shape(r: _Reader, int64_dims: bool, first: int | None = None) -> tuple[int, ...]:
    ndim = first if first is not None else r.unpack("<i", "ndim")[0]
    if ndim < 0:  # NumPy-semantics "unknown shape": nothing stored
        return ()
    if ndim > 32:
        raise ParamsFormatError(f"{r.path}: implausible ndim {ndim} at byte {r.pos} (corrupt file?)")
    fmt = f"<{ndim}q" if int64_dims else f"<{ndim}I"
    dims = r.unpack(fmt, "shape")
    if any(d < 0 for d in dims):
        raise ParamsFormatError(f"{r.path}: negative dimension in shape {dims} (corrupt file?)")
    return tuple(int(d) for d in dims)


def _read_array(r: _Reader, index: int) -> np.ndarray:
    magic = r.unpack("<I", "array magic")[0]
    if magic in (_V2_MAGIC, _V3_MAGIC):
        stype = r.unpack("<i", "storage type")[0]
        if stype != 0:
            raise ParamsFormatError(f"{r.path}: array {index} is sparse (storage type {stype}); only dense arrays are read")
        shape = _read_shape(r, int64_dims=True)
    elif magic == _V1_MAGIC:
        shape = _read_shape(r, int64_dims=True)
    else:  # legacy: the "magic" was ndim, dims are uint32
        shape = _read_shape(r, int64_dims=False, first=magic)
    if len(shape) == 0:
        return np.zeros((0,), dtype=np.float32)
    r.unpack("<ii", "context")
    flag = r.unpack("<i", "dtype")[0]
    count = int(np.prod(shape, dtype=np.int64))
    if flag == _BFLOAT16:
        raw = np.frombuffer(r.take(2 * count, f"data of array {index}"), dtype="<u2")
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if flag not in _DTYPES:
        raise ParamsFormatError(f"{r.path}: array {index} has unknown dtype flag {flag}")
    dtype = _DTYPES[flag]
    raw = r.take(dtype.itemsize * count, f"data of array {index} (shape {shape})")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def read_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an MXNet ``.params`` file into an ordered ``{name: array}`` dict.

    Parameters
    ----------
    path : str or path
        File written by ``save_parameters`` / ``mx.nd.save`` with a dict.

    Returns
    -------
    dict
        Names in file order, numpy arrays (float16/bfloat16 kept as stored
        dtype except bfloat16, which becomes float32).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ParamsFormatError
        If it is not an NDArray list, is truncated, has trailing bytes,
        holds sparse arrays or has no names.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"MXNet params file {p} not found")
    r = _Reader(p.read_bytes(), str(p))
    if len(r.data) < 24:
        raise ParamsFormatError(f"{p}: {len(r.data)} bytes is too short for an MXNet .params file")
    magic, _reserved = r.unpack("<QQ", "header")
    if magic != _LIST_MAGIC:
        raise ParamsFormatError(
            f"{p}: not an MXNet NDArray list (header 0x{magic:x}, expected 0x{_LIST_MAGIC:x}); "
            "is it a PyTorch/safetensors file?"
        )
    count = r.unpack("<Q", "array count")[0]
    if count > 1_000_000:
        raise ParamsFormatError(f"{p}: implausible array count {count} (corrupt file?)")
    arrays = [_read_array(r, i) for i in range(count)]
    num_names = r.unpack("<Q", "name count")[0]
    if num_names == 0:
        raise ParamsFormatError(f"{p}: the arrays have no names (saved as a list); names are needed to map them")
    if num_names != count:
        raise ParamsFormatError(f"{p}: {count} arrays but {num_names} names")
    names = []
    for i in range(num_names):
        length = r.unpack("<Q", "name length")[0]
        names.append(r.take(length, f"name {i}").decode("utf-8"))
    if r.pos != len(r.data):
        raise ParamsFormatError(f"{p}: {len(r.data) - r.pos} unexpected trailing bytes (corrupt file?)")
    return dict(zip(names, arrays))
