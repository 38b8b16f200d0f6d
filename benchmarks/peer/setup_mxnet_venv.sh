#!/usr/bin/env bash
# Build the peer environment for benchmarks/vs_mxnet.py: MXNet 1.9.1 (oneDNN build) with
# GluonCV 0.10.5.post0 and GluonNLP 0.10.0, in a virtual environment of its own OUTSIDE the
# repository. Benchmarks only: no test, no setup.py extra and no toolkit module imports it.
#
#   bash benchmarks/peer/setup_mxnet_venv.sh [VENV_DIR]     # default $TOOLKIT_HOME/peer-venv or ~/.toolkit/peer-venv
#
# PYTHON picks the interpreter (default python3.9 when present: MXNet 1.9.1 was released for
# Python 3.6-3.9 and numpy 1.23.5 is the last numpy with the aliases (np.bool ...) it uses).
set -euo pipefail

VENV="${1:-${TOOLKIT_HOME:-$HOME/.toolkit}/peer-venv}"
if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.9 >/dev/null 2>&1 && python3.9 -c 'import venv' 2>/dev/null; then PYTHON=python3.9; else PYTHON=python3; fi
fi
case "$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/" in
  "$(cd "$(dirname "$0")/../.." && pwd)/"*) echo "refusing to build the peer venv inside the repository: $VENV" >&2; exit 2;;
esac

echo "peer venv: $VENV (interpreter: $PYTHON, $($PYTHON --version 2>&1))"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip<25" "setuptools<70" wheel
# numpy first and pinned everywhere: gluonnlp 0.10.0 ships as a source package whose build
# (Cython extension) needs numpy and Cython present, without build isolation.
CONSTRAINTS="$(mktemp)"; trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'numpy==1.23.5\n' >"$CONSTRAINTS"
"${PIP[@]}" install -q -c "$CONSTRAINTS" numpy==1.23.5 "cython<3" packaging
"${PIP[@]}" install -q -c "$CONSTRAINTS" mxnet==1.9.1 "onnx<=1.18" "scipy<1.12"
"${PIP[@]}" install -q -c "$CONSTRAINTS" gluoncv==0.10.5.post0 "opencv-python-headless<4.9" "matplotlib<3.9" "pandas<2.1"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-build-isolation gluonnlp==0.10.0
"$VENV/bin/python" - <<'PY'
import mxnet as mx, gluoncv, gluonnlp, numpy
print("mxnet", mx.__version__, "gluoncv", gluoncv.__version__, "gluonnlp", gluonnlp.__version__, "numpy", numpy.__version__)
print("mxnet features:", [f.name for f in mx.runtime.Features().values() if f.enabled and f.name in ("MKLDNN", "ONEDNN", "OPENMP", "BLAS_MKL", "BLAS_OPEN")])
PY
echo "ok: $VENV/bin/python"
