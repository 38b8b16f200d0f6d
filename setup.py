"""One setup.py, three distributions.

``TOOLKIT_PART`` picks what is built:

* ``core`` -> ``toolkit-core``: ``toolkit`` without ``toolkit.cv`` and ``toolkit.nlp``
* ``cv``   -> ``toolkit-cv``:   ``toolkit.cv`` (needs toolkit-core, torchvision, pillow)
* ``nlp``  -> ``toolkit-nlp``:  ``toolkit.nlp`` (needs toolkit-core, sentencepiece, tokenizers)
* unset    -> ``toolkit``: all three together, the development install
  (``pip install -e .[dev]``).

``toolkit`` is a regular package owned by toolkit-core; the cv and nlp wheels
add their sub-packages to it.
"""
import os
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "toolkit" / "version.py").read_text()).group(1)

CORE_REQUIRES = [
    "torch>=2.9",
    "numpy>=1.24",
    "safetensors>=0.4",
    "onnx>=1.16",
    "onnxscript>=0.3",
    "onnxruntime>=1.18",
    "tqdm>=4.60",
]
CV_REQUIRES = ["torchvision>=0.24", "pillow>=9", "pycocotools>=2.0.7"]
NLP_REQUIRES = ["sentencepiece>=0.2", "tokenizers>=0.19", "sacrebleu>=2.3", "scipy>=1.10"]
EXTRAS = {
    # OpenVINO runs exported graphs natively and ships the C/C++ headers the
    # deploy/cpp and deploy/java runners build against.
    "deploy": ["openvino>=2024.0", "pillow>=9"],
    "plot": ["matplotlib>=3.6"],
    "test": [
        "pytest>=7",
        "hypothesis>=6",
        "matplotlib>=3.6",
        "scikit-image>=0.21",
        "transformers>=4.40",
        "gensim>=4.3",
        "openvino>=2024.0",
        "build",
        "wheel",
    ],
}
EXTRAS["dev"] = sorted({r for reqs in EXTRAS.values() for r in reqs})

PART = os.environ.get("TOOLKIT_PART", "").strip().lower()
ALL = find_packages(include=["toolkit", "toolkit.*"])
HALVES = ("toolkit.cv", "toolkit.nlp")


def _in(pkg: str, root: str) -> bool:
    return pkg == root or pkg.startswith(root + ".")


COMMON = dict(
    version=VERSION,
    python_requires=">=3.10",
    include_package_data=True,
    package_data={"": ["*.json", "*.txt"]},
    license="Apache-2.0",
    zip_safe=False,
)

if PART == "core":
    setup(
        name="toolkit-core",
        description="Gluon-style hybrid deep learning on PyTorch: core (nn, data, zoo, deploy)",
        packages=[p for p in ALL if not any(_in(p, h) for h in HALVES)],
        install_requires=CORE_REQUIRES,
        extras_require={k: v for k, v in EXTRAS.items() if k in ("deploy", "plot")},
        entry_points={"console_scripts": ["toolkit=toolkit.deploy.cli:main"]},
        **COMMON,
    )
elif PART == "cv":
    setup(
        name="toolkit-cv",
        description="Gluon-style hybrid deep learning on PyTorch: computer vision",
        packages=[p for p in ALL if _in(p, "toolkit.cv")],
        install_requires=[f"toolkit-core=={VERSION}", *CV_REQUIRES],
        **COMMON,
    )
elif PART == "nlp":
    setup(
        name="toolkit-nlp",
        description="Gluon-style hybrid deep learning on PyTorch: natural language processing",
        packages=[p for p in ALL if _in(p, "toolkit.nlp")],
        install_requires=[f"toolkit-core=={VERSION}", *NLP_REQUIRES],
        **COMMON,
    )
elif PART == "":
    setup(
        name="toolkit",
        description="Gluon-style hybrid deep learning on PyTorch: core, vision and text",
        packages=ALL,
        install_requires=CORE_REQUIRES + CV_REQUIRES + NLP_REQUIRES,
        extras_require=EXTRAS,
        entry_points={"console_scripts": ["toolkit=toolkit.deploy.cli:main"]},
        **COMMON,
    )
else:
    raise SystemExit(f"TOOLKIT_PART must be core, cv, nlp or unset, not {PART!r}")
