#!/usr/bin/env bash
# Bake step 3: the onnxruntime shared library (ringbolt loads it at run time via
# ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so, set in the units).
set -euo pipefail
v="${ONNXRUNTIME_VERSION:?}"
python3 -m venv /opt/onnxruntime/venv
/opt/onnxruntime/venv/bin/pip install --no-cache-dir "onnxruntime==$v"
lib="$(find /opt/onnxruntime/venv -path '*/onnxruntime/capi/libonnxruntime.so*' -type f | head -n1)"
[[ -n "$lib" ]] || { echo "libonnxruntime.so not found in the onnxruntime wheel" >&2; exit 1; }
mkdir -p /opt/onnxruntime/lib
ln -sfn "$lib" /opt/onnxruntime/lib/libonnxruntime.so
