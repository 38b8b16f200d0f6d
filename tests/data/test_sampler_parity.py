"""FixedBucketSampler against GluonNLP 0.10, replaying recorded fixtures.

The fixtures come from ``tools/legacy/gluonnlp_sampler_fixtures.py`` run under
MXNet 1.9.1 / gluonnlp 0.10.0; see ``versions`` in the JSON file.
"""
import json
from pathlib import Path

import pytest

from toolkit.data import ConstWidthBucket, ExpWidthBucket, FixedBucketSampler, LinearWidthBucket

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "gluonnlp_fixed_bucket.json").read_text())
SCHEMES = {"const": ConstWidthBucket(), "linear": LinearWidthBucket(),
           "exp": ExpWidthBucket(bucket_len_step=1.1), "exp1.5": ExpWidthBucket(bucket_len_step=1.5)}


def _tuplify(x):
    return tuple(x) if isinstance(x, list) else x


def test_fixture_provenance():
    assert FIXTURE["versions"]["gluonnlp"] == "0.10.0"
    assert FIXTURE["versions"]["mxnet"] == "1.9.1"
    assert len(FIXTURE["cases"]) >= 12


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["name"] for c in FIXTURE["cases"]])
def test_fixed_bucket_sampler_matches_gluonnlp(case):
    kwargs = dict(case["kwargs"])
    scheme = SCHEMES[kwargs.pop("bucket_scheme")]
    lengths = [_tuplify(x) for x in case["lengths"]]
    if kwargs.get("bucket_keys") is not None:
        kwargs["bucket_keys"] = [_tuplify(k) for k in kwargs["bucket_keys"]]
    sampler = FixedBucketSampler(lengths, shuffle=False, bucket_scheme=scheme, **kwargs)
    assert [list(k) if isinstance(k, tuple) else k for k in sampler.bucket_keys] == case["bucket_keys"]
    assert sampler.bucket_batch_sizes == case["bucket_batch_sizes"]
    assert sampler.bucket_counts == case["bucket_counts"]
    assert len(sampler) == case["len"]
    assert list(sampler) == case["batches"]
    # The stats text keeps GluonNLP's layout (tuple keys print the same way).
    assert sampler.stats() == case["stats"]
