#!/usr/bin/env bash
# Bake step 2: the ONNX Runtime shared library from its PyPI wheel, into the build
# area. It is not installed on its own: step 3 puts it into the release
# (<release>/lib/libonnxruntime.so.<v>), where ringbolt finds it next to its binary.
set -euo pipefail
v="${ONNXRUNTIME_VERSION:?}"
build=/tmp/ringbolt-build
python3 -m venv "$build/ort-venv"
"$build/ort-venv/bin/pip" install --no-cache-dir "onnxruntime==$v"
lib="$(find "$build/ort-venv" -path '*/onnxruntime/capi/libonnxruntime.so*' -type f | head -n1)"
[[ -n "$lib" ]] || { echo "libonnxruntime.so not found in the onnxruntime wheel" >&2; exit 1; }
ln -sfn "$lib" "$build/libonnxruntime.so"
