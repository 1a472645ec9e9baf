# Sourced by ringbolt's scripts: environment every test and tool run shares.
# shellcheck shell=bash
ringbolt_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export RINGBOLT_ROOT="$ringbolt_root"
if [ -x "$ringbolt_root/.venv/bin/python" ]; then
  export RINGBOLT_PYTHON="${RINGBOLT_PYTHON:-$ringbolt_root/.venv/bin/python}"
  # ONNX Runtime shared library from the PyPI onnxruntime wheel (ort's load-dynamic feature).
  if [ -z "${ORT_DYLIB_PATH:-}" ]; then
    for lib in "$ringbolt_root"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*; do
      [ -f "$lib" ] && export ORT_DYLIB_PATH="$lib" && break
    done
  fi
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
