#!/usr/bin/env bash
# Builds the Java runner: deploy/java/build/{toolkit-deploy.jar, libtoolkit_jni.so, libtoolkit_spm_jni.so}.
#
# Needs JDK 17 (javac, jar; Debian openjdk-17-jdk-headless), a C compiler and the
# openvino pip wheel, whose C headers and libopenvino_c the JNI library uses.
# SentencePiece models (translation) also need a C++ compiler and libsentencepiece
# (Debian libsentencepiece-dev, found with pkg-config); without it the SentencePiece
# JNI library is skipped with a warning, and only those models cannot be run.
# Environment overrides:
#   TOOLKIT_PYTHON  interpreter to ask where openvino is (default python3)
#   OPENVINO_ROOT   the wheel's openvino/ folder (skips asking python)
#   JAVA_HOME       JDK folder (default: from javac on PATH)
#   BUILD_DIR       output folder (default deploy/java/build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="${BUILD_DIR:-$HERE/build}"
PYTHON="${TOOLKIT_PYTHON:-python3}"
if [[ -z "${OPENVINO_ROOT:-}" ]]; then
  OPENVINO_ROOT="$("$PYTHON" -c 'import openvino, os; print(os.path.dirname(openvino.__file__))' 2>/dev/null)" || {
    echo "build.sh: error: cannot import openvino with $PYTHON (pip install openvino, or set OPENVINO_ROOT)" >&2
    exit 1
  }
fi
if [[ -z "${JAVA_HOME:-}" ]]; then
  command -v javac >/dev/null || { echo "build.sh: error: javac not found (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
  JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
fi
OV_C_LIB="$(cd "$OPENVINO_ROOT/libs" && ls libopenvino_c.so* 2>/dev/null | head -n 1)"
[[ -n "$OV_C_LIB" && -f "$OPENVINO_ROOT/include/openvino/c/openvino.h" ]] || {
  echo "build.sh: error: no OpenVINO C headers/library under $OPENVINO_ROOT" >&2
  exit 1
}
mkdir -p "$BUILD/classes"
"${CC:-cc}" -O2 -fPIC -shared -Wall -Wextra \
  -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" -I"$OPENVINO_ROOT/include" \
  "$HERE/jni/toolkit_jni.c" -o "$BUILD/libtoolkit_jni.so" \
  -L"$OPENVINO_ROOT/libs" -l:"$OV_C_LIB" -Wl,-rpath,"$OPENVINO_ROOT/libs"
if pkg-config --exists sentencepiece 2>/dev/null; then
  # shellcheck disable=SC2046  # pkg-config prints several words on purpose
  "${CXX:-g++}" -std=c++17 -O2 -fPIC -shared -Wall -Wextra \
    -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" $(pkg-config --cflags sentencepiece) \
    "$HERE/jni/toolkit_spm_jni.cpp" -o "$BUILD/libtoolkit_spm_jni.so" $(pkg-config --libs-only-L sentencepiece) -lsentencepiece
else
  rm -f "$BUILD/libtoolkit_spm_jni.so"
  echo "build.sh: warning: libsentencepiece not found by pkg-config (apt-get install libsentencepiece-dev);" \
    "built without SentencePiece support (translation models cannot be run)" >&2
fi
rm -rf "$BUILD/classes" && mkdir -p "$BUILD/classes"
"$JAVA_HOME/bin/javac" -Xlint:all -Werror --release 17 -d "$BUILD/classes" "$HERE"/src/toolkit/deploy/*.java
"$JAVA_HOME/bin/jar" --create --file "$BUILD/toolkit-deploy.jar" --main-class toolkit.deploy.Main -C "$BUILD/classes" .
echo "built $BUILD/toolkit-deploy.jar and $BUILD/libtoolkit_jni.so$([[ -f "$BUILD/libtoolkit_spm_jni.so" ]] && echo " and $BUILD/libtoolkit_spm_jni.so")"
