"""Dataset base classes with Gluon's ``transform`` / ``transform_first``.

They are ``torch.utils.data.Dataset`` subclasses, loaded with a plain
``torch.utils.data.DataLoader``. Transforms are stored as objects, so a
transformed dataset pickles (DataLoader workers) whenever ``fn`` does: use
module-level functions or callable objects, not lambdas, with ``num_workers > 0``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.utils.data

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "MultiScaleDataset"]


class Dataset(torch.utils.data.Dataset):
    """Base class: implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, idx: Any) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def transform(self, fn: Callable, lazy: bool = True) -> Dataset:
        """Return a dataset whose samples are ``fn(sample)``.

        A tuple sample is unpacked: ``fn(*sample)``, as in Gluon.

        Parameters
        ----------
        fn : callable
            The transform.
        lazy : bool, default True
            Apply ``fn`` on access; ``False`` applies it to every sample now and
            returns a :class:`SimpleDataset` of the results.
        """
        out = _LazyTransformDataset(self, fn)
        if lazy:
            return out
        return SimpleDataset([out[i] for i in range(len(out))])

    def transform_first(self, fn: Callable, lazy: bool = True) -> Dataset:
        """Like :meth:`transform` but ``fn`` only touches the first field of
        tuple samples (e.g. the image of ``(image, label)``); a non-tuple sample
        is passed whole."""
        return self.transform(_TransformFirst(fn), lazy)


class _LazyTransformDataset(Dataset):
    def __init__(self, data: Dataset, fn: Callable) -> None:
        self._data = data
        self._fn = fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: Any) -> Any:
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)


class _TransformFirst:
    """Picklable closure for :meth:`Dataset.transform_first`."""

    def __init__(self, fn: Callable) -> None:
        self._fn = fn

    def __call__(self, first: Any, *rest: Any) -> Any:
        if rest:
            return (self._fn(first), *rest)
        return self._fn(first)


class SimpleDataset(Dataset):
    """Wrap any indexable sequence (list, array, tensor) as a :class:`Dataset`.

    Parameters
    ----------
    data : Sequence
        The samples.
    """

    def __init__(self, data: Sequence[Any]) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: Any) -> Any:
        return self._data[idx]


class ArrayDataset(Dataset):
    """Zip several equally long sequences: sample ``i`` is ``(a[i], b[i], ...)``.

    With a single sequence, sample ``i`` is ``a[i]`` itself (as in Gluon).

    Parameters
    ----------
    *args : Sequence
        Lists, numpy arrays, tensors or datasets of the same length.

    Raises
    ------
    ValueError
        If no sequence is given or their lengths differ.
    """

    def __init__(self, *args: Sequence[Any]) -> None:
        if not args:
            raise ValueError("ArrayDataset needs at least one array")
        n = len(args[0])
        for i, a in enumerate(args):
            if len(a) != n:
                raise ValueError(f"ArrayDataset: all arrays must have the same length; array 0 has "
                                 f"{n} items but array {i} has {len(a)}")
        self._length = n
        self._data = args

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, idx: int) -> Any:
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple(a[idx] for a in self._data)


class MultiScaleDataset(Dataset):
    """Adapter for the multi-scale batch samplers' ``(h, w, index)`` items.

    ``dataset[(h, w, i)]`` returns ``fn(base[i], (h, w))``; a plain integer
    index returns ``fn(base[i], default_size)`` (evaluation without a
    multi-scale sampler).

    Parameters
    ----------
    base : Sequence
        The underlying dataset.
    fn : callable
        ``fn(sample, (height, width))``: crop/resize the sample to that size.
    default_size : (int, int)
        Size for plain integer indices.
    """

    def __init__(self, base: Sequence[Any], fn: Callable[[Any, tuple[int, int]], Any],
                 default_size: tuple[int, int]) -> None:
        self._base = base
        self._fn = fn
        self._default = (int(default_size[0]), int(default_size[1]))

    def __len__(self) -> int:
        return len(self._base)

    def __getitem__(self, key: int | tuple[int, int, int]) -> Any:
        if isinstance(key, tuple):
            h, w, idx = key
            return self._fn(self._base[idx], (h, w))
        return self._fn(self._base[key], self._default)
