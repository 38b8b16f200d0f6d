"""Record GluonNLP 0.10 FixedBucketSampler behaviour as JSON test fixtures.

Runs under the legacy environment (MXNet 1.9.1, numpy 1.23.5, gluonnlp 0.10.0)::

    /opt/legacy/bin/python tools/legacy/gluonnlp_sampler_fixtures.py \
        tests/data/fixtures/gluonnlp_fixed_bucket.json

For each case it stores the sampler arguments, the lengths (with the seed and
recipe that generated them), and GluonNLP's bucket keys, per-bucket batch sizes
and the exact batch list of one pass with ``shuffle=False``. The test
``tests/data/test_sampler_parity.py`` replays the cases on
``toolkit.data.FixedBucketSampler``.
"""
import json
import platform
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")  # scipy/mxnet import noise and empty-bucket warnings

import gluonnlp  # noqa: E402
import mxnet  # noqa: E402
from gluonnlp.data import sampler as nlp_sampler  # noqa: E402


def make_lengths(seed, n, kind, low, high, attrs=1):
    """Deterministic lengths; the recipe is stored next to the values."""
    rng = np.random.RandomState(seed)
    if kind == "uniform":
        vals = rng.randint(low, high + 1, size=(n, attrs))
    elif kind == "lognormal":  # sentence-like: many short, a long tail
        vals = np.clip(np.round(rng.lognormal(np.log((low + high) / 4), 0.6, size=(n, attrs))), low, high)
    else:
        raise ValueError(kind)
    vals = vals.astype(int)
    if attrs == 1:
        return vals[:, 0].tolist()
    return [tuple(int(v) for v in row) for row in vals]


SCHEMES = {
    "const": lambda: nlp_sampler.ConstWidthBucket(),
    "linear": lambda: nlp_sampler.LinearWidthBucket(),
    "exp": lambda: nlp_sampler.ExpWidthBucket(bucket_len_step=1.1),
    "exp1.5": lambda: nlp_sampler.ExpWidthBucket(bucket_len_step=1.5),
}

# name, lengths recipe, sampler kwargs (bucket_scheme given by name)
CASES = [
    ("int_const_default", (1, 300, "uniform", 1, 100, 1), dict(batch_size=8)),
    ("int_const_nb5", (2, 250, "lognormal", 2, 80, 1), dict(batch_size=16, num_buckets=5)),
    ("int_const_nb20_ratio", (3, 400, "lognormal", 1, 120, 1), dict(batch_size=8, num_buckets=20, ratio=0.5)),
    ("int_linear", (4, 300, "uniform", 3, 90, 1), dict(batch_size=12, bucket_scheme="linear")),
    ("int_exp", (5, 300, "lognormal", 1, 150, 1), dict(batch_size=10, num_buckets=8, bucket_scheme="exp")),
    ("int_exp15_ratio", (6, 350, "uniform", 5, 60, 1),
     dict(batch_size=6, num_buckets=6, ratio=1.3, bucket_scheme="exp1.5")),
    ("int_avglen", (7, 400, "lognormal", 1, 100, 1), dict(batch_size=200, use_average_length=True)),
    ("int_avglen_linear", (8, 300, "uniform", 2, 70, 1),
     dict(batch_size=150, num_buckets=7, use_average_length=True, bucket_scheme="linear")),
    ("int_keys", (9, 300, "uniform", 1, 50, 1), dict(batch_size=7, bucket_keys=[10, 20, 35, 50, 64])),
    ("int_keys_unused", (10, 200, "uniform", 5, 30, 1),
     dict(batch_size=9, bucket_keys=[3, 12, 18, 30, 40, 100], ratio=0.8)),
    ("int_many_buckets", (11, 250, "uniform", 1, 12, 1), dict(batch_size=5, num_buckets=30)),
    ("int_shards", (12, 300, "uniform", 1, 40, 1), dict(batch_size=8, num_buckets=6, num_shards=3)),
    ("tuple_const", (13, 300, "uniform", 1, 60, 2), dict(batch_size=8, num_buckets=6)),
    ("tuple_linear_ratio", (14, 300, "lognormal", 1, 90, 2),
     dict(batch_size=8, num_buckets=5, ratio=0.5, bucket_scheme="linear")),
    ("tuple_exp", (15, 300, "uniform", 2, 50, 2), dict(batch_size=10, num_buckets=7, bucket_scheme="exp")),
    ("tuple_avglen", (16, 300, "lognormal", 1, 80, 2), dict(batch_size=300, use_average_length=True)),
    ("tuple_keys", (17, 300, "uniform", 1, 30, 2),
     dict(batch_size=6, bucket_keys=[(10, 10), (10, 30), (30, 10), (20, 20), (30, 30)])),
    ("triple_const", (18, 200, "uniform", 1, 25, 3), dict(batch_size=4, num_buckets=4)),
]


def run_case(name, recipe, kwargs):
    seed, n, kind, low, high, attrs = recipe
    lengths = make_lengths(seed, n, kind, low, high, attrs)
    call = dict(kwargs)
    scheme = call.pop("bucket_scheme", "const")
    keys_arg = call.get("bucket_keys")
    if keys_arg is not None:
        call["num_buckets"] = None
        if attrs > 1:
            call["bucket_keys"] = [tuple(k) for k in keys_arg]
    sampler = nlp_sampler.FixedBucketSampler(lengths, shuffle=False, bucket_scheme=SCHEMES[scheme](), **call)

    def plain(x):
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return int(x)

    batches = [plain(b) for b in sampler]
    return {
        "name": name,
        "lengths_recipe": {"seed": seed, "n": n, "kind": kind, "low": low, "high": high, "attrs": attrs,
                           "generator": "numpy.random.RandomState"},
        "lengths": lengths if attrs == 1 else [list(t) for t in lengths],
        "kwargs": dict(kwargs, bucket_scheme=scheme),
        "bucket_keys": plain(sampler._bucket_keys),
        "bucket_batch_sizes": plain(sampler._bucket_batch_sizes),
        "bucket_counts": [len(x) for x in sampler._bucket_sample_ids],
        "len": len(sampler),
        "batches": batches,
        "stats": sampler.stats(),
    }


def main(out_path):
    fixture = {
        "generator": "tools/legacy/gluonnlp_sampler_fixtures.py",
        "versions": {"python": platform.python_version(), "gluonnlp": gluonnlp.__version__,
                     "mxnet": mxnet.__version__, "numpy": np.__version__},
        "schemes": {"const": "ConstWidthBucket()", "linear": "LinearWidthBucket()",
                    "exp": "ExpWidthBucket(bucket_len_step=1.1)", "exp1.5": "ExpWidthBucket(bucket_len_step=1.5)"},
        "cases": [run_case(*c) for c in CASES],
    }
    with open(out_path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(fixture['cases'])} cases to {out_path} ({fixture['versions']})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/fixtures/gluonnlp_fixed_bucket.json")
