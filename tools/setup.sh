#!/usr/bin/env bash
# Installs everything the toolkit, its tests, its main job and its native runners need
# on a fresh Debian 12 / Python 3.11 machine of this project's kind. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # real data sets installed from Debian
  dataset-fashion-mnist diatheke sword-text-web sword-text-sparv
  # native runners: C++ (OpenCV for images, nlohmann-json for metadata) and Java (JDK 17);
  # text models: SentencePiece's C++ library, ICU for WordPiece's Unicode normalisation
  cmake g++ make pkg-config libopencv-dev nlohmann-json3-dev libssl-dev openjdk-17-jdk-headless
  libsentencepiece-dev libicu-dev
  # C++ runner: indexed (palette) PNGs of segmentation class maps (OpenCV cannot write them)
  libpng-dev
  # int8 tests run onnxruntime as an AVX2 CPU without VNNI (AMD EPYC) would, under QEMU user-mode emulation
  qemu-user
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# torchvision 0.29.1 imports only next to torch 2.14.1 here; pin both so pip takes
# the releases that lie on this machine's disk instead of downloading others.
"$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore "torch==2.14.1" "torchvision==0.29.1"
"$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[dev]"
echo "[setup] done: $("$PY" -c 'import toolkit, torch; print("toolkit", toolkit.__version__, "torch", torch.__version__)')"
