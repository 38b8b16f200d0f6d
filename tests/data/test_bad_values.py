"""Issue 11: bad values given to toolkit.data, toolkit.zoo.store and the image folder reader get clear errors."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.data import FixedBucketSampler, Pad, SortedBucketSampler
from toolkit.zoo import store

NAN = float("nan")


@pytest.mark.parametrize("val", [-1, 300, 256, -0.5, NAN, float("inf")])
def test_pad_value_that_does_not_fit_uint8(val):
    samples = [np.array([1, 2], np.uint8), np.array([3], np.uint8)]
    with pytest.raises(ValueError, match="uint8"):
        Pad(val=val)(samples)


def test_pad_values_that_fit_still_pad():
    samples = [np.array([1, 2], np.uint8), np.array([3], np.uint8)]
    assert Pad(val=255)(samples).tolist() == [[1, 2], [3, 255]]
    assert Pad(val=-1)([[1, 2], [3]]).tolist() == [[1, 2], [3, -1]]  # int64: -1 fits
    with pytest.raises(ValueError, match="int8"):
        Pad(val=200, dtype=torch.int8)([[1, 2], [3]])


@pytest.mark.parametrize("kwargs,flag", [
    (dict(batch_size=1.5), "batch_size"), (dict(batch_size=NAN), "batch_size"), (dict(batch_size=0), "batch_size"),
    (dict(batch_size=True), "batch_size"), (dict(batch_size=2, ratio=NAN), "ratio"),
    (dict(batch_size=2, num_buckets=2.5), "num_buckets"),
])
def test_fixed_bucket_sampler_names_the_bad_argument(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        FixedBucketSampler([3, 4, 5, 6], **kwargs)


def test_fixed_bucket_sampler_refuses_nan_lengths():
    with pytest.raises(ValueError, match="sample 1 has length NaN"):
        FixedBucketSampler([3.0, NAN, 5.0], batch_size=2)


@pytest.mark.parametrize("keys", [[3, NAN, 1], [(1, 2), (NAN, 1)], [np.float32(1), np.float32(NAN)]])
def test_sorted_bucket_sampler_refuses_nan_keys(keys):
    with pytest.raises(ValueError, match="NaN"):
        SortedBucketSampler(keys, batch_size=2)


def test_sorted_bucket_sampler_bad_batch_size_and_mult():
    with pytest.raises(ValueError, match="batch_size"):
        SortedBucketSampler([1, 2, 3], batch_size=1.5)
    with pytest.raises(ValueError, match="mult"):
        SortedBucketSampler([1, 2, 3], batch_size=1, mult=NAN)
    assert len(list(SortedBucketSampler([3.0, 1.0, 2.0], batch_size=2))) == 2


@pytest.mark.parametrize("digest", ["", "abc", "1234567", "zzzzzzzz", None])
def test_store_refuses_short_or_bad_digests(tmp_path, digest):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"weights")
    with pytest.raises(ValueError, match="sha256"):
        store.verify(f, digest)
    with pytest.raises(ValueError, match="sha256"):
        store.fetch("w.safetensors", digest, root=tmp_path)


def test_store_accepts_eight_digit_prefixes(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"weights")
    full = store._sha256(f)
    assert store.verify(f, full) and store.verify(f, full[:8].upper())
    assert not store.verify(f, "0" * 8 if not full.startswith("0" * 8) else "1" * 8)
    assert store.fetch("w.safetensors", full[:8], root=tmp_path) == f


def _png_header(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("size", [(50000, 50000), (20000, 5000)])  # over 2x and over 1x Pillow's limit
def test_read_image_refuses_decompression_bombs(tmp_path, size):
    from toolkit.cv.data.folder import ImageDecodeError, read_image

    with pytest.raises(ImageDecodeError, match="too large"):
        read_image(_png_header(tmp_path / "bomb.png", *size))


def test_read_image_names_a_directory(tmp_path):
    from toolkit.cv.data.folder import ImageDecodeError, read_image

    with pytest.raises(ImageDecodeError, match="directory"):
        read_image(tmp_path)
    with pytest.raises(ImageDecodeError, match="no such file"):
        read_image(tmp_path / "absent.png")
