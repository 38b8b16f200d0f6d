"""Write the GluonNLP reference fixtures for ``tests/nlp/test_convert.py``.

Builds a small GluonNLP 0.10 ``BERTModel`` (2 layers, 32 units, 4 heads,
vocabulary 50; pooler, decoder and NSP classifier), initialised from a fixed
seed with weights large enough for non-uniform attention, saves its parameters with ``net.save_parameters`` (xz-compressed) and its
outputs on fixed inputs (sequence, pooled, NSP and masked-LM at every
position), so the tests check ``toolkit.nlp.convert.from_gluonnlp`` against
GluonNLP without MXNet.

Run it with a legacy interpreter that is never part of setup or the tests, e.g.
a virtual environment outside the repository::

    python3.11 -m venv /work/wt/zoo-mxnet-venv
    /work/wt/zoo-mxnet-venv/bin/pip install mxnet==1.9.1 numpy==1.23.5 gluonnlp==0.10.0
    /work/wt/zoo-mxnet-venv/bin/python tools/legacy/make_gluonnlp_fixtures.py [OUT_DIR]

OUT_DIR defaults to ``tests/nlp/fixtures``.
"""
from __future__ import annotations

import json
import lzma
import os
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")

import gluonnlp
import mxnet as mx
import numpy as np
from gluonnlp.model.bert import BERTEncoder, BERTModel

SEED = 0
CONFIG = {"num_layers": 2, "units": 32, "hidden_size": 40, "max_length": 64, "num_heads": 4, "vocab_size": 50}
BATCH, LENGTH, VALID = 3, 9, [9, 6, 9]


def randomise(net, rng: np.random.RandomState) -> None:
    """Weights large enough that attention is far from uniform (so a wrong head split or a swapped
    query/key shows in the outputs), and non-trivial norm scales and biases."""
    for name, param in net.collect_params().items():
        shape = param.shape
        if name.endswith("gamma"):
            data = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "bias")):
            data = rng.uniform(-0.2, 0.2, shape)
        else:
            data = rng.normal(0.0, 0.25, shape)
        param.set_data(mx.nd.array(data.astype(np.float32)))


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    mx.random.seed(SEED)
    np.random.seed(SEED)
    c = CONFIG
    enc = BERTEncoder(num_layers=c["num_layers"], units=c["units"], hidden_size=c["hidden_size"],
                      max_length=c["max_length"], num_heads=c["num_heads"], dropout=0.0, output_attention=False,
                      output_all_encodings=False, activation="gelu", layer_norm_eps=1e-12)
    net = BERTModel(enc, vocab_size=c["vocab_size"], token_type_vocab_size=2, units=c["units"], embed_size=c["units"],
                    word_embed=None, use_pooler=True, use_decoder=True, use_classifier=True)
    net.initialize(init=mx.init.Normal(0.02))
    ids = mx.nd.array(np.random.randint(0, c["vocab_size"], (BATCH, LENGTH)))
    types = mx.nd.array((np.arange(LENGTH)[None] >= 5).repeat(BATCH, 0).astype("float32"))
    valid = mx.nd.array(VALID)
    positions = mx.nd.array(np.tile(np.arange(LENGTH), (BATCH, 1)))
    net(ids, types, valid, positions)  # finish deferred shape inference
    randomise(net, np.random.RandomState(SEED))
    seq, pooled, nsp, mlm = net(ids, types, valid, positions)  # no autograd.record(): inference mode
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "bert.params")
        net.save_parameters(raw)
        with open(raw, "rb") as src, lzma.open(os.path.join(out_dir, "gluonnlp_bert.params.xz"), "wb", preset=9) as dst:
            shutil.copyfileobj(src, dst)
    np.savez_compressed(os.path.join(out_dir, "gluonnlp_bert.npz"), ids=ids.asnumpy(), types=types.asnumpy(),
                        valid=valid.asnumpy(), positions=positions.asnumpy(), seq=seq.asnumpy(),
                        pooled=pooled.asnumpy(), nsp=nsp.asnumpy(), mlm=mlm.asnumpy())
    index = {"mxnet": mx.__version__, "gluonnlp": gluonnlp.__version__, "numpy": np.__version__,
             "python": sys.version.split()[0], "seed": SEED, "config": CONFIG,
             "params": "gluonnlp_bert.params.xz", "io": "gluonnlp_bert.npz",
             "output_std": {"seq": float(seq.asnumpy().std()), "mlm": float(mlm.asnumpy().std())}}
    with open(os.path.join(out_dir, "gluonnlp_fixtures.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    print(f"wrote {out_dir}: seq std {index['output_std']['seq']:.3g}, mlm std {index['output_std']['mlm']:.3g}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests", "nlp", "fixtures"))
