"""Samplers: which samples go together, and in which order.

Batch samplers (:class:`FixedBucketSampler`, :class:`SortedBucketSampler`,
:class:`MultiScaleSampler`, :class:`VariableBatchSampler`) yield lists of
indices and go to ``DataLoader(batch_sampler=...)``; :class:`SplitSampler`
yields single indices and goes to ``DataLoader(sampler=..., batch_size=...)``.

Randomness. Every sampler takes ``seed``; the order of a pass is a pure function
of ``(seed, epoch)``. Each pass uses the current epoch and then advances it by
one, so successive passes differ even without :meth:`set_epoch`; call
``set_epoch(e)`` before a pass to pin it (as with
``torch.utils.data.DistributedSampler``, which exact resume needs). ``seed=None``
draws a seed once, at construction.

Distributed training. ``num_parts``/``part_index`` (one part per rank) split
every pass into disjoint parts of equal length (the last part wraps around to
the start when the count does not divide), so all ranks run the same number of
steps. All ranks must use the same ``seed``.

All samplers are picklable and their ``len()`` equals the number of items the
next pass yields.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Sized
from typing import Any

import numpy as np
import torch.utils.data

__all__ = [
    "BucketScheme", "ConstWidthBucket", "LinearWidthBucket", "ExpWidthBucket",
    "FixedBucketSampler", "SortedBucketSampler", "SplitSampler",
    "MultiScaleSampler", "VariableBatchSampler", "round_to_multiple",
]

Key = int | tuple[int, ...]


# --------------------------------------------------------------------------- bucket schemes
class BucketScheme:
    """Generates bucket keys from the largest/smallest lengths and the bucket count."""

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        """Return ``num_buckets`` keys (possibly with repeats; the sampler dedups).

        Parameters
        ----------
        max_lengths, min_lengths : int or tuple of int
            Per-attribute maximum and minimum of the sequence lengths.
        num_buckets : int
            Number of buckets.
        """
        if isinstance(max_lengths, tuple):
            per_attr = [self._keys(mx, mn, num_buckets) for mx, mn in zip(max_lengths, min_lengths)]
            return [tuple(col[i] for col in per_attr) for i in range(num_buckets)]
        return self._keys(max_lengths, min_lengths, num_buckets)

    def _keys(self, max_len: int, min_len: int, num_buckets: int) -> list[int]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConstWidthBucket(BucketScheme):
    """Buckets of equal width ``max((1 + max - min) // num_buckets, 1)``, counted down from the max."""

    def _keys(self, max_len: int, min_len: int, num_buckets: int) -> list[int]:
        width = max((1 + max_len - min_len) // num_buckets, 1)
        return [max(max_len - i * width, min_len) for i in range(num_buckets)]


class LinearWidthBucket(BucketScheme):
    r"""Bucket widths grow linearly: :math:`w_i = \alpha i + 1`; the last key covers the max."""

    def _keys(self, max_len: int, min_len: int, num_buckets: int) -> list[int]:
        alpha = 2 * float(max_len - min_len - num_buckets) / (num_buckets * (num_buckets + 1))
        # Same float evaluation order as GluonNLP 0.10, so keys match to the unit.
        keys = [int(round(min_len + alpha * (((i + 1) * (i + 2)) / 2) + i + 1)) for i in range(num_buckets)]
        keys[-1] = max(keys[-1], max_len)
        return keys


class ExpWidthBucket(BucketScheme):
    r"""Bucket widths grow geometrically: :math:`w_i = s\,w_{i-1}` with ``s = bucket_len_step``.

    Parameters
    ----------
    bucket_len_step : float, default 1.1
        Growth factor of the bucket width (> 1).
    """

    def __init__(self, bucket_len_step: float = 1.1) -> None:
        if bucket_len_step <= 1:
            raise ValueError(f"bucket_len_step must be > 1, got {bucket_len_step}")
        self.bucket_len_step = bucket_len_step

    def _keys(self, max_len: int, min_len: int, num_buckets: int) -> list[int]:
        step = self.bucket_len_step
        first = (max_len - min_len) * (step - 1) / (math.pow(step, num_buckets) - 1)
        keys = [int(round(min_len + first * (math.pow(step, i + 1) - 1) / (step - 1)))
                for i in range(num_buckets)]
        keys[-1] = max(keys[-1], max_len)
        return keys

    def __repr__(self) -> str:
        return f"ExpWidthBucket(bucket_len_step={self.bucket_len_step})"


# --------------------------------------------------------------------------- shared machinery
def _positive_int(value: Any, name: str, owner: str) -> int:
    """``value`` as an int > 0 (an integral numpy int is accepted); ``name`` is named in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def _finite_at_least(value: Any, low: float, name: str, owner: str) -> float:
    """``value`` as a finite float >= ``low`` (NaN compares false with everything, so check it first)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < low:
        raise ValueError(f"{owner}: {name} must be a finite number >= {low}, got {value!r}")
    return float(value)


def _has_nan(key: Any) -> bool:
    if isinstance(key, (tuple, list)):
        return any(_has_nan(k) for k in key)
    return isinstance(key, (float, np.floating)) and math.isnan(key)


class _SeededSampler(torch.utils.data.Sampler):
    """Seed/epoch bookkeeping and the distributed split shared by all samplers."""

    def __init__(self, seed: int | None, num_parts: int, part_index: int) -> None:
        if not isinstance(num_parts, (int, np.integer)) or num_parts < 1:
            raise ValueError(f"num_parts must be a positive int, got {num_parts!r}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index must be in [0, {num_parts}), got {part_index!r}")
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.epoch = 0
        self.num_parts = int(num_parts)
        self.part_index = int(part_index)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the one of ``epoch`` (the same on every rank)."""
        self.epoch = int(epoch)

    def _rng(self, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, stream])

    def _part(self, items: list) -> list:
        """This rank's share of ``items``: strided, padded by wrapping to equal size."""
        if self.num_parts == 1:
            return items
        if not items:
            return []
        per_part = math.ceil(len(items) / self.num_parts)
        total = per_part * self.num_parts
        padded = (items * math.ceil(total / len(items)))[:total]
        return padded[self.part_index:total:self.num_parts]

    def _part_len(self, n: int) -> int:
        return n if self.num_parts == 1 or n == 0 else math.ceil(n / self.num_parts)

    def _dist_text(self) -> str:
        return f", part {self.part_index}/{self.num_parts}" if self.num_parts > 1 else ""


def _as_key(key: Any) -> Key:
    if isinstance(key, (tuple, list, np.ndarray)):
        return tuple(int(k) for k in key)
    return int(key)


# --------------------------------------------------------------------------- FixedBucketSampler
class FixedBucketSampler(_SeededSampler):
    r"""Group samples into fixed length buckets and batch within each bucket.

    Same arguments, bucket keys, batch sizes and (with ``shuffle=False``) the same
    batches in the same order as GluonNLP 0.10's ``FixedBucketSampler``.

    Parameters
    ----------
    lengths : sequence of int or of tuples of int
        Length of each sample; tuples (e.g. ``(src_len, tgt_len)``) bucket on all
        attributes at once. All lengths must be positive.
    batch_size : int
        Samples per batch, or the token budget when ``use_average_length``.
    num_buckets : int, default 10
        Number of buckets generated by ``bucket_scheme`` (ignored with ``bucket_keys``).
    bucket_keys : sequence of int or tuples, optional
        Explicit bucket upper bounds. A sample goes to the fitting bucket with the
        least padding (the smallest key; for tuples the least summed padding).
    ratio : float, default 0
        Scales up the batch size of short buckets:
        :math:`B_i = \max(\lfloor \alpha B \max_j K_j / K_i \rfloor, B)` with
        :math:`K_i` the key (or the sum of a tuple key).
    shuffle : bool, default False
        Shuffle the samples inside each bucket and the order of the batches.
    use_average_length : bool, default False
        Treat ``batch_size`` as a token budget: bucket ``i`` gets
        ``max(int(batch_size / (mean_i + std_i)), 1)`` samples, with the mean and
        standard deviation of the lengths in the bucket. ``ratio`` is ignored.
    num_shards : int, default 0
        If > 0, yield groups of ``num_shards`` batches (a list of index lists),
        one per device; the last group is filled up with earlier batches.
    bucket_scheme : BucketScheme, default ConstWidthBucket()
        ``ConstWidthBucket()``, ``LinearWidthBucket()`` or ``ExpWidthBucket(1.1)``.
    seed : int, optional
        Seed of the shuffling (see the module notes on epochs).
    num_parts, part_index : int, default 1, 0
        Distributed split of the batches (each rank gets every ``num_parts``-th batch).

    Examples
    --------
    >>> s = FixedBucketSampler([3, 5, 9, 2, 7, 4], batch_size=2, num_buckets=2)
    >>> list(s)
    [[2, 4], [0, 1], [3, 5]]
    """

    def __init__(self, lengths: Sequence[int] | Sequence[Sequence[int]], batch_size: int,
                 num_buckets: int | None = 10, bucket_keys: Sequence[Key] | None = None,
                 ratio: float = 0, shuffle: bool = False, use_average_length: bool = False,
                 num_shards: int = 0, bucket_scheme: BucketScheme | None = None,
                 seed: int | None = None, num_parts: int = 1, part_index: int = 0) -> None:
        super().__init__(seed, num_parts, part_index)
        if len(lengths) == 0:
            raise ValueError("FixedBucketSampler: lengths is empty")
        batch_size = _positive_int(batch_size, "batch_size", "FixedBucketSampler")
        ratio = _finite_at_least(ratio, 0, "ratio", "FixedBucketSampler")
        if isinstance(num_shards, bool) or not isinstance(num_shards, (int, np.integer)) or num_shards < 0:
            raise ValueError(f"FixedBucketSampler: num_shards must be an int >= 0, got {num_shards!r}")
        arr = np.asarray(lengths)
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            bad = int(np.nonzero(np.isnan(arr).reshape(len(arr), -1).any(axis=1))[0][0])
            raise ValueError(f"FixedBucketSampler: lengths must be ints; sample {bad} has length NaN")
        if arr.dtype.kind not in "iu" or arr.ndim not in (1, 2):
            raise ValueError("FixedBucketSampler: lengths must be ints or equal-size tuples of ints")
        arr = arr.astype(np.int32)  # GluonNLP's dtype: its statistics are computed on it
        if (arr <= 0).any():
            bad = int(np.nonzero((arr <= 0).reshape(len(arr), -1).any(axis=1))[0][0])
            raise ValueError(f"FixedBucketSampler: lengths must be > 0; sample {bad} has length "
                             f"{_as_key(arr[bad])}")
        self._lengths = arr
        single = arr.ndim == 1
        self._batch_size = batch_size
        self._ratio = ratio
        self._shuffle = shuffle
        self._use_average_length = use_average_length
        self._num_shards = num_shards
        self._bucket_scheme = ConstWidthBucket() if bucket_scheme is None else bucket_scheme

        if bucket_keys is None:
            if num_buckets is None:
                raise ValueError("FixedBucketSampler: num_buckets must be > 0 when bucket_keys is None")
            num_buckets = _positive_int(num_buckets, "num_buckets", "FixedBucketSampler")
            mx, mn = _as_key(arr.max(axis=0)), _as_key(arr.min(axis=0))
            keys = [_as_key(k) for k in self._bucket_scheme(mx, mn, num_buckets)]
        else:
            keys = [_as_key(k) for k in bucket_keys]
            if not keys:
                raise ValueError("FixedBucketSampler: bucket_keys is empty")
            for k in keys:
                if single != isinstance(k, int) or (not single and len(k) != arr.shape[1]):
                    raise ValueError(f"FixedBucketSampler: bucket key {k!r} does not match the "
                                     f"lengths' structure ({'int' if single else f'{arr.shape[1]}-tuple'})")
        keys = sorted(set(keys))
        sample_ids = self._assign(keys, arr)
        # Empty buckets are dropped, as in GluonNLP.
        self._bucket_keys: list[Key] = [k for k, ids in zip(keys, sample_ids) if ids]
        self._bucket_sample_ids: list[np.ndarray] = [np.asarray(ids, dtype=np.int64)
                                                     for ids in sample_ids if ids]
        if not use_average_length:
            scale = [k if single else sum(k) for k in self._bucket_keys]
            top = max(scale)
            self._bucket_batch_sizes = [max(int(top / float(s) * ratio * batch_size), batch_size)
                                        for s in scale]
        else:
            sizes = []
            for ids in self._bucket_sample_ids:
                sel = arr[ids]
                sizes.append(max(int(batch_size / (np.mean(sel) + np.std(sel))), 1))
            self._bucket_batch_sizes = sizes
        # (bucket, start) of every batch: longest bucket first, as GluonNLP.
        self._batch_infos = [(b, start)
                             for b in range(len(self._bucket_keys) - 1, -1, -1)
                             for start in range(0, len(self._bucket_sample_ids[b]), self._bucket_batch_sizes[b])]

    @staticmethod
    def _assign(keys: list[Key], arr: np.ndarray) -> list[list[int]]:
        key_arr = np.asarray(keys, dtype=np.int64)
        out: list[list[int]] = [[] for _ in keys]
        chunk = 8192  # bounds the (chunk, num_keys[, attrs]) temporary
        for begin in range(0, len(arr), chunk):
            block = arr[begin:begin + chunk].astype(np.int64)
            diff = key_arr[None] - block[:, None]
            if diff.ndim == 3:
                fits = (diff >= 0).all(axis=2)
                pad = diff.sum(axis=2)
            else:
                fits = diff >= 0
                pad = diff
            unfit = np.nonzero(~fits.any(axis=1))[0]
            if len(unfit):
                i = int(unfit[0]) + begin
                raise ValueError(
                    f"FixedBucketSampler: sample {i} has length {_as_key(arr[i])}, which fits no bucket "
                    f"(largest key {keys[-1]!r}); {len(unfit)} sample(s) in this block are too long. "
                    "Add a larger bucket key or filter them out")
            # Least padding among fitting keys; ties go to the first (smallest) key.
            best = np.where(fits, pad, np.iinfo(np.int64).max).argmin(axis=1)
            for j, b in enumerate(best.tolist()):
                out[b].append(begin + j)
        return out

    # -- iteration
    def _epoch_batches(self) -> list[list[int]]:
        """All batches of this pass, before the distributed split and sharding."""
        if not self._shuffle:
            return [self._bucket_sample_ids[b][s:s + self._bucket_batch_sizes[b]].tolist()
                    for b, s in self._batch_infos]
        rng = self._rng()
        ids = [rng.permutation(x) for x in self._bucket_sample_ids]
        order = rng.permutation(len(self._batch_infos))
        return [ids[b][s:s + self._bucket_batch_sizes[b]].tolist()
                for b, s in (self._batch_infos[k] for k in order)]

    def _groups(self, n: int) -> list[tuple[int, int]]:
        """Index ranges of the shards, GluonNLP-style: the last group is shifted back."""
        out = []
        for start in range(0, n, self._num_shards):
            if start + self._num_shards > n:
                start = max(n - self._num_shards, 0)
            out.append((start, start + self._num_shards))
        return out

    def __iter__(self) -> Iterator[list[int] | list[list[int]]]:
        batches = self._part(self._epoch_batches())
        self.epoch += 1
        if self._num_shards > 0:
            for a, b in self._groups(len(batches)):
                yield batches[a:b]
        else:
            yield from batches

    def __len__(self) -> int:
        n = self._part_len(len(self._batch_infos))
        return math.ceil(n / self._num_shards) if self._num_shards > 0 else n

    # -- introspection
    @property
    def bucket_keys(self) -> list[Key]:
        """Keys of the non-empty buckets, ascending."""
        return list(self._bucket_keys)

    @property
    def bucket_batch_sizes(self) -> list[int]:
        """Batch size of each bucket, aligned with :attr:`bucket_keys`."""
        return list(self._bucket_batch_sizes)

    @property
    def bucket_counts(self) -> list[int]:
        """Number of samples in each bucket."""
        return [len(x) for x in self._bucket_sample_ids]

    def stats(self) -> str:
        """Readable summary: sample and batch counts, and per bucket its key,
        sample count and batch size (GluonNLP 0.x layout)."""
        return (f"{type(self).__name__}:\n"
                f"  sample_num={len(self._lengths)}, batch_num={len(self._batch_infos)}{self._dist_text()}\n"
                f"  key={self._bucket_keys}\n"
                f"  cnt={self.bucket_counts}\n"
                f"  batch_size={self._bucket_batch_sizes}")


# --------------------------------------------------------------------------- SortedBucketSampler
class SortedBucketSampler(_SeededSampler):
    """Cut the (optionally shuffled) samples into chunks of ``batch_size * mult``,
    sort each chunk by key and batch it: batches of similar length, but random.

    Parameters
    ----------
    sort_keys : sequence
        Sort key of each sample (e.g. its length).
    batch_size : int
        Samples per batch.
    mult : int or float, default 100
        Chunk size multiplier (>= 1).
    reverse : bool, default True
        Sort in descending order.
    shuffle : bool, default False
        Shuffle the samples before chunking and the batches within each chunk.
    seed, num_parts, part_index
        See the module notes.
    """

    def __init__(self, sort_keys: Sequence[Any], batch_size: int, mult: float = 100,
                 reverse: bool = True, shuffle: bool = False, seed: int | None = None,
                 num_parts: int = 1, part_index: int = 0) -> None:
        super().__init__(seed, num_parts, part_index)
        if len(sort_keys) == 0:
            raise ValueError("SortedBucketSampler: sort_keys is empty")
        batch_size = _positive_int(batch_size, "batch_size", "SortedBucketSampler")
        mult = _finite_at_least(mult, 1, "mult", "SortedBucketSampler")
        nan_at = next((i for i, k in enumerate(sort_keys) if _has_nan(k)), None)
        if nan_at is not None:  # NaN compares false with everything: the sort order would be arbitrary
            raise ValueError(f"SortedBucketSampler: sort key {nan_at} is NaN; keys must be comparable")
        self._sort_keys = list(sort_keys)
        self._batch_size = batch_size
        self._mult = mult
        self._reverse = reverse
        self._shuffle = shuffle
        n, chunk = len(self._sort_keys), int(mult * batch_size)
        self._num_batches = sum(math.ceil(min(chunk, n - b) / batch_size) for b in range(0, n, chunk))

    def _epoch_batches(self) -> list[list[int]]:
        n = len(self._sort_keys)
        rng = self._rng()
        ids = rng.permutation(n).tolist() if self._shuffle else list(range(n))
        chunk = int(self._mult * self._batch_size)
        out = []
        for c in range(0, n, chunk):
            # sorted() is stable, so equal keys keep their (shuffled) order.
            part = sorted(ids[c:c + chunk], key=self._sort_keys.__getitem__, reverse=self._reverse)
            starts = list(range(0, len(part), self._batch_size))
            if self._shuffle:
                starts = [starts[k] for k in rng.permutation(len(starts))]
            out.extend(part[s:s + self._batch_size] for s in starts)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._part(self._epoch_batches())
        self.epoch += 1
        yield from batches

    def __len__(self) -> int:
        return self._part_len(self._num_batches)

    def stats(self) -> str:
        """Readable summary of the sampler's configuration."""
        n = len(self._sort_keys)
        return (f"{type(self).__name__}:\n"
                f"  sample_num={n}, batch_num={self._num_batches}{self._dist_text()}\n"
                f"  batch_size={self._batch_size}, chunk_size={int(self._mult * self._batch_size)}, "
                f"reverse={self._reverse}, shuffle={self._shuffle}\n"
                f"  key range=[{min(self._sort_keys)}, {max(self._sort_keys)}]")


# --------------------------------------------------------------------------- SplitSampler
class SplitSampler(_SeededSampler):
    """Split ``range(length)`` into ``num_parts`` contiguous parts and yield the
    indices of part ``part_index`` (shuffled within the part). An index sampler:
    use ``DataLoader(sampler=..., batch_size=...)``.

    Parameters
    ----------
    length : int
        Number of samples in the dataset.
    num_parts : int, default 1
        Number of parts (e.g. the world size).
    part_index : int, default 0
        The part to read (e.g. the rank).
    even_size : bool, default False
        Give every part ``ceil(length / num_parts)`` samples, topping short parts
        up with samples drawn from the whole dataset.
    repeat : int, default 1
        Yield the part this many times per pass (reshuffled each time).
    shuffle : bool, default True
        Shuffle within the part.
    seed : int, optional
        See the module notes.
    """

    def __init__(self, length: int, num_parts: int = 1, part_index: int = 0, even_size: bool = False,
                 repeat: int = 1, shuffle: bool = True, seed: int | None = None) -> None:
        super().__init__(seed, 1, 0)
        if not 1 <= num_parts <= length:
            raise ValueError(f"SplitSampler: need 1 <= num_parts <= length, got num_parts={num_parts}, "
                             f"length={length}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"SplitSampler: part_index must be in [0, {num_parts}), got {part_index}")
        if repeat < 1:
            raise ValueError(f"SplitSampler: repeat must be >= 1, got {repeat}")
        self._length = length
        self._split_parts = num_parts
        self._split_index = part_index
        self._even_size = even_size
        self._repeat = repeat
        self._shuffle = shuffle
        if not even_size:
            size, extra = divmod(length, num_parts)
            self._start = size * part_index + min(part_index, extra)
            self._end = self._start + size + (part_index < extra)
            self._len = self._end - self._start
        else:
            size = math.ceil(length / num_parts)
            self._start = min(size * part_index, length)
            self._end = min(self._start + size, length)
            self._len = size

    def __iter__(self) -> Iterator[int]:
        rng = self._rng()
        self.epoch += 1
        out: list[int] = []
        for _ in range(self._repeat):
            ids = np.arange(self._start, self._end)
            if len(ids) < self._len:
                ids = np.concatenate([ids, rng.choice(self._length, self._len - len(ids), replace=False)])
            if self._shuffle:
                ids = rng.permutation(ids)
            out.extend(ids.tolist())
        return iter(out)

    def __len__(self) -> int:
        return self._len * self._repeat

    def stats(self) -> str:
        """Readable summary: the part's index range and size."""
        return (f"{type(self).__name__}:\n"
                f"  sample_num={self._length}, part {self._split_index}/{self._split_parts}: "
                f"[{self._start}, {self._end}), part_size={self._len}, repeat={self._repeat}, "
                f"even_size={self._even_size}, shuffle={self._shuffle}")


# --------------------------------------------------------------------------- multi-scale (CVNets)
def round_to_multiple(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (at least ``min_value``,
    default ``divisor``) without going more than 10% below ``v``.

    (Not :func:`toolkit.cv.models.mobilenetv3.make_divisible`, which rounds up.)"""
    min_value = divisor if min_value is None else min_value
    out = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if out < 0.9 * v:
        out += divisor
    return int(out)


def _pair(x: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(x, (int, np.integer)):
        return int(x), int(x)
    if len(x) != 2:
        raise ValueError(f"{name} must be an int or (height, width), got {x!r}")
    return int(x[0]), int(x[1])


class MultiScaleSampler(_SeededSampler):
    """Multi-scale batches with a fixed batch size (Apple CVNets' ``MultiScaleSampler``).

    Each batch draws one crop size ``(h, w)`` from :attr:`scales`; every item of
    the batch is the tuple ``(h, w, index)``.

    Output contract (shared with :class:`VariableBatchSampler`):

    * use it as ``DataLoader(dataset, batch_sampler=sampler, collate_fn=...)``;
      the loader then calls ``dataset[(h, w, index)]`` for each item, so the
      dataset must accept such a tuple: crop/resize sample ``index`` to height
      ``h`` and width ``w``. :class:`toolkit.data.MultiScaleDataset` adapts a
      plain dataset plus a ``fn(sample, (h, w))`` transform to this;
    * every item of one batch has the same ``(h, w)``, so samples stack;
    * all parts (ranks) draw the same crop sizes in the same order for a given
      ``(seed, epoch)``, so a step has one resolution across ranks.

    Parameters
    ----------
    num_samples : int or Sized
        Dataset size (or the dataset).
    batch_size : int
        Samples per batch.
    crop_size : int or (h, w), default 224
        Base crop size; always one of the scales.
    min_crop_size, max_crop_size : int or (h, w), default 160, 320
        Range of the scales (CVNets defaults).
    num_scales : int, default 5
        Number of scales spread linearly over the range (before dedup).
    divisor : int, default 32
        Every scale is rounded to a multiple of this (network stride).
    shuffle : bool, default True
        Shuffle the samples each pass.
    drop_last : bool, default False
        Drop a final batch smaller than its batch size.
    seed, num_parts, part_index
        See the module notes.
    """

    _variable = False

    def __init__(self, num_samples: int | Sized, batch_size: int, crop_size: int | Sequence[int] = 224,
                 min_crop_size: int | Sequence[int] = 160, max_crop_size: int | Sequence[int] = 320,
                 num_scales: int = 5, divisor: int = 32, shuffle: bool = True, drop_last: bool = False,
                 seed: int | None = None, num_parts: int = 1, part_index: int = 0) -> None:
        super().__init__(seed, num_parts, part_index)
        n = num_samples if isinstance(num_samples, (int, np.integer)) else len(num_samples)
        if n <= 0:
            raise ValueError(f"{type(self).__name__}: the dataset is empty")
        if batch_size <= 0:
            raise ValueError(f"{type(self).__name__}: batch_size must be > 0, got {batch_size}")
        if num_scales < 1:
            raise ValueError(f"{type(self).__name__}: num_scales must be >= 1, got {num_scales}")
        self._num_samples = int(n)
        self._batch_size = batch_size
        self._crop = _pair(crop_size, "crop_size")
        lo, hi = _pair(min_crop_size, "min_crop_size"), _pair(max_crop_size, "max_crop_size")
        if lo[0] > hi[0] or lo[1] > hi[1]:
            raise ValueError(f"{type(self).__name__}: min_crop_size {lo} exceeds max_crop_size {hi}")
        self._shuffle = shuffle
        self._drop_last = drop_last
        hs = np.linspace(lo[0], hi[0], num_scales).tolist() + [self._crop[0]]
        ws = np.linspace(lo[1], hi[1], num_scales).tolist() + [self._crop[1]]
        sizes = sorted({(round_to_multiple(h, divisor), round_to_multiple(w, divisor)) for h, w in zip(hs, ws)})
        base = self._crop[0] * self._crop[1] * batch_size
        # Variable batch: same pixels per batch as the base crop at batch_size (CVNets).
        self.scales: list[tuple[int, int, int]] = [
            (h, w, max(1, int(base / (h * w))) if self._variable else batch_size) for h, w in sizes]
        self._plan_cache: tuple[int, list[tuple[int, int]]] | None = None

    def _plan(self) -> list[tuple[int, int]]:
        """(scale index, batch length) of every batch of this pass; identical on all parts."""
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        n = self._part_len(self._num_samples)
        rng = self._rng(stream=1)
        plan, used = [], 0
        while used < n:
            k = int(rng.integers(len(self.scales)))
            size = min(self.scales[k][2], n - used)
            if self._drop_last and size < self.scales[k][2]:
                break
            plan.append((k, size))
            used += size
        self._plan_cache = (self.epoch, plan)
        return plan

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        ids = np.arange(self._num_samples)
        if self._shuffle:
            ids = self._rng().permutation(ids)
        ids = self._part(ids.tolist())
        plan = self._plan()
        self.epoch += 1
        pos = 0
        for k, size in plan:
            h, w, _ = self.scales[k]
            yield [(h, w, i) for i in ids[pos:pos + size]]
            pos += size

    def __len__(self) -> int:
        return len(self._plan())

    def stats(self) -> str:
        """Readable summary: the scales with their batch sizes, and the batch count."""
        rows = ", ".join(f"{h}x{w}:{b}" for h, w, b in self.scales)
        return (f"{type(self).__name__}:\n"
                f"  sample_num={self._num_samples}, batch_num={len(self)} (epoch {self.epoch})"
                f"{self._dist_text()}\n"
                f"  base crop={self._crop[0]}x{self._crop[1]}, batch_size={self._batch_size}\n"
                f"  scales (h x w: batch size)=[{rows}]")


class VariableBatchSampler(MultiScaleSampler):
    """Multi-scale batches whose size scales with the inverse of the crop area
    (Apple CVNets' ``VariableBatchSampler``).

    A crop ``(h, w)`` gets ``max(1, int(H * W * batch_size / (h * w)))`` samples,
    ``(H, W)`` being ``crop_size``: every batch holds about as many pixels as a
    base batch. Arguments and output contract are those of
    :class:`MultiScaleSampler`; :attr:`scales` lists ``(h, w, batch_size)``.
    """

    _variable = True
