"""Data utilities: batchify functions, samplers, dataset base classes, data root.

Loading uses a plain ``torch.utils.data.DataLoader``::

    from torch.utils.data import DataLoader
    from toolkit.data import ArrayDataset, FixedBucketSampler, Pad, Stack, Tuple

    ds = ArrayDataset(token_ids, labels)
    sampler = FixedBucketSampler([len(t) for t in token_ids], batch_size=32, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=Tuple(Pad(val=pad_id), Stack()))
"""
from . import batchify
from .batchify import Dict, List, NamedTuple, Pad, Stack, Tuple
from .dataset import ArrayDataset, Dataset, MultiScaleDataset, SimpleDataset
from .root import MissingDatasetError, data_root
from .sampler import (
    BucketScheme,
    ConstWidthBucket,
    ExpWidthBucket,
    FixedBucketSampler,
    LinearWidthBucket,
    MultiScaleSampler,
    SortedBucketSampler,
    SplitSampler,
    VariableBatchSampler,
    round_to_multiple,
)

__all__ = [
    "batchify", "Stack", "Pad", "Tuple", "List", "Dict", "NamedTuple",
    "Dataset", "SimpleDataset", "ArrayDataset", "MultiScaleDataset",
    "data_root", "MissingDatasetError",
    "BucketScheme", "ConstWidthBucket", "LinearWidthBucket", "ExpWidthBucket",
    "FixedBucketSampler", "SortedBucketSampler", "SplitSampler",
    "MultiScaleSampler", "VariableBatchSampler", "round_to_multiple",
]
