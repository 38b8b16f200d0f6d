import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.data import (
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

SCHEMES = [ConstWidthBucket(), LinearWidthBucket(), ExpWidthBucket(1.2)]


def _flat(batches):
    return [i for b in batches for i in b]


# ----------------------------------------------------------------------------- FixedBucketSampler
def test_fixed_bucket_errors():
    with pytest.raises(ValueError, match="lengths is empty"):
        FixedBucketSampler([], 4)
    with pytest.raises(ValueError, match="sample 3 has length 40, which fits no bucket"):
        FixedBucketSampler([5, 10, 3, 40, 2], 2, bucket_keys=[10, 20])
    with pytest.raises(ValueError, match=r"sample 1 has length \(9, 30\)"):
        FixedBucketSampler([(1, 2), (9, 30)], 2, bucket_keys=[(10, 10), (20, 20)])
    with pytest.raises(ValueError, match="must be > 0; sample 2"):
        FixedBucketSampler([1, 2, 0], 2)
    with pytest.raises(ValueError, match="does not match"):
        FixedBucketSampler([1, 2], 2, bucket_keys=[(3, 3)])
    with pytest.raises(ValueError, match="batch_size"):
        FixedBucketSampler([1, 2], 0)


def test_fixed_bucket_stats_text():
    s = FixedBucketSampler(list(range(1, 101)), 8, num_buckets=4, ratio=0.5)
    text = s.stats()
    assert text.splitlines()[0] == "FixedBucketSampler:"
    assert "key=[25, 50, 75, 100]" in text and "cnt=[25, 25, 25, 25]" in text
    assert "batch_size=[16, 8, 8, 8]" in text


def test_fixed_bucket_num_shards_and_parts():
    lengths = list(np.random.RandomState(0).randint(1, 50, size=101))
    s = FixedBucketSampler(lengths, 8, num_buckets=5, num_shards=3)
    groups = list(s)
    assert len(groups) == len(s) and all(len(g) == 3 for g in groups)
    parts = [FixedBucketSampler(lengths, 8, num_buckets=5, shuffle=True, seed=3, num_parts=3, part_index=r)
             for r in range(3)]
    outs = [list(p) for p in parts]
    assert len({len(o) for o in outs}) == 1 and all(len(o) == len(p) for o, p in zip(outs, parts))
    # Every sample is seen; batches only repeat to even out the parts (wrap-around).
    assert set(_flat(_flat(outs))) == set(range(101))


@st.composite
def _lengths(draw):
    attrs = draw(st.sampled_from([0, 2]))
    n = draw(st.integers(1, 120))
    if attrs == 0:
        return draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    return draw(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=n, max_size=n))


@given(_lengths(), st.integers(1, 16), st.integers(1, 12), st.sampled_from([0, 0.5, 2.0]),
       st.booleans(), st.sampled_from(range(3)), st.booleans(), st.integers(0, 2**31))
def test_fixed_bucket_property(lengths, batch_size, num_buckets, ratio, avg, scheme, shuffle, seed):
    if avg:
        batch_size *= 20  # a token budget
    s = FixedBucketSampler(lengths, batch_size, num_buckets=num_buckets, ratio=ratio, shuffle=shuffle,
                           use_average_length=avg, bucket_scheme=SCHEMES[scheme], seed=seed)
    n = len(s)
    batches = list(s)
    assert len(batches) == n
    assert sorted(_flat(batches)) == list(range(len(lengths)))  # each index exactly once
    key_of = {}
    for k, ids in zip(s.bucket_keys, s._bucket_sample_ids):
        key_of.update({int(i): k for i in ids})
    sizes = dict(zip(s.bucket_keys, s.bucket_batch_sizes))
    for b in batches:
        keys = {key_of[i] for i in b}
        assert len(keys) == 1  # a batch never mixes buckets
        assert 1 <= len(b) <= sizes[keys.pop()]
        for i in b:
            k, ln = key_of[i], lengths[i]
            assert all(a <= c for a, c in zip(np.atleast_1d(ln), np.atleast_1d(k)))  # fits its bucket
    # determinism: same seed and epoch -> same batches; pickling keeps the state.
    twin = FixedBucketSampler(lengths, batch_size, num_buckets=num_buckets, ratio=ratio, shuffle=shuffle,
                              use_average_length=avg, bucket_scheme=SCHEMES[scheme], seed=seed)
    assert list(twin) == batches
    clone = pickle.loads(pickle.dumps(s))
    s.set_epoch(7)
    clone.set_epoch(7)
    assert list(clone) == list(s)


def test_fixed_bucket_epochs_differ_and_reproduce():
    lengths = list(np.random.RandomState(1).randint(1, 80, size=500))
    s = FixedBucketSampler(lengths, 16, shuffle=True, seed=11)
    e0, e1 = list(s), list(s)
    assert e0 != e1
    s.set_epoch(0)
    assert list(s) == e0
    assert list(FixedBucketSampler(lengths, 16, shuffle=True, seed=12)) != e0


# ----------------------------------------------------------------------------- SortedBucketSampler
@given(st.lists(st.integers(0, 100), min_size=1, max_size=150), st.integers(1, 10),
       st.sampled_from([1, 2.5, 10]), st.booleans(), st.integers(0, 1000))
def test_sorted_bucket_property(keys, batch_size, mult, shuffle, seed):
    s = SortedBucketSampler(keys, batch_size, mult=mult, shuffle=shuffle, seed=seed)
    n = len(s)
    batches = list(s)
    assert len(batches) == n
    assert sorted(_flat(batches)) == list(range(len(keys)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert all([keys[i] for i in b] == sorted((keys[i] for i in b), reverse=True) for b in batches)
    s.set_epoch(0)
    assert list(pickle.loads(pickle.dumps(s))) == batches


def test_sorted_bucket_gluon_order_without_shuffle():
    keys = [3, 1, 4, 1, 5, 9, 2, 6]
    assert list(SortedBucketSampler(keys, 3, mult=1)) == [[2, 0, 1], [5, 4, 3], [7, 6]]
    assert "batch_num=3" in SortedBucketSampler(keys, 3, mult=1).stats()


# ----------------------------------------------------------------------------- SplitSampler
@given(st.integers(1, 200), st.integers(1, 8), st.booleans(), st.integers(1, 3), st.integers(0, 99))
def test_split_sampler_property(length, num_parts, even, repeat, seed):
    num_parts = min(num_parts, length)
    parts = [SplitSampler(length, num_parts, r, even_size=even, repeat=repeat, seed=seed) for r in range(num_parts)]
    outs = [list(p) for p in parts]
    assert all(len(o) == len(p) for o, p in zip(outs, parts))
    if not even:
        once = [sorted(o[: len(o) // repeat]) for o in outs]
        assert sorted(_flat(once)) == list(range(length))  # disjoint cover
    else:
        assert len({len(o) for o in outs}) == 1
        assert set(_flat(outs)) == set(range(length))
    p = parts[0]
    p.set_epoch(3)
    clone = pickle.loads(pickle.dumps(p))
    assert list(clone) == list(p)


def test_split_sampler_ranges_and_stats():
    s = SplitSampler(10, num_parts=3, part_index=0, shuffle=False)
    assert list(s) == [0, 1, 2, 3]
    assert list(SplitSampler(10, 3, 2, shuffle=False)) == [7, 8, 9]
    assert "[0, 4)" in s.stats()
    with pytest.raises(ValueError, match="num_parts"):
        SplitSampler(2, num_parts=3)


# ----------------------------------------------------------------------------- multi-scale
def test_round_to_multiple():
    assert round_to_multiple(200, 32) == 192 and round_to_multiple(224, 32) == 224 and round_to_multiple(20, 32) == 32


def test_variable_batch_scales_follow_inverse_area():
    s = VariableBatchSampler(1000, batch_size=32, crop_size=256, min_crop_size=128, max_crop_size=320,
                             num_scales=5, divisor=32, seed=0)
    assert (256, 256, 32) in s.scales
    for h, w, b in s.scales:
        assert b == max(1, int(256 * 256 * 32 / (h * w)))
    assert s.scales[0] == (128, 128, 128)
    fixed = MultiScaleSampler(1000, batch_size=32, crop_size=256, min_crop_size=128, max_crop_size=320, seed=0)
    assert {b for _, _, b in fixed.scales} == {32}
    assert "256x256:32" in s.stats()


@given(st.sampled_from([MultiScaleSampler, VariableBatchSampler]), st.integers(1, 300), st.integers(1, 16),
       st.integers(1, 4), st.booleans(), st.integers(0, 99))
def test_multiscale_property(cls, n, batch_size, num_parts, drop_last, seed):
    parts = [cls(n, batch_size, crop_size=(224, 192), min_crop_size=(128, 96), max_crop_size=(320, 288),
                 drop_last=drop_last, seed=seed, num_parts=num_parts, part_index=r) for r in range(num_parts)]
    lens = [len(p) for p in parts]
    outs = [list(p) for p in parts]
    assert [len(o) for o in outs] == lens
    # Same crop sizes and batch sizes at every step on every part (DDP-safe).
    shapes = [[(b[0][0], b[0][1], len(b)) for b in o] for o in outs]
    assert all(sh == shapes[0] for sh in shapes)
    sizes = {(h, w): b for h, w, b in parts[0].scales}
    for o in outs:
        for b in o:
            assert len({(h, w) for h, w, _ in b}) == 1
            assert 1 <= len(b) <= sizes[(b[0][0], b[0][1])]
            if drop_last:
                assert len(b) == sizes[(b[0][0], b[0][1])]
    seen = [i for o in outs for b in o for _, _, i in b]
    if not drop_last:
        assert set(seen) == set(range(n))
        if n % num_parts == 0:
            assert sorted(seen) == list(range(n))  # exactly once when parts divide evenly
    # reproducible across pickling and set_epoch
    p = parts[0]
    p.set_epoch(5)
    clone = pickle.loads(pickle.dumps(p))
    assert list(clone) == list(p)


def test_multiscale_epochs_differ():
    s = VariableBatchSampler(500, 16, seed=1)
    assert list(s) != list(s)
