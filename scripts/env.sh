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

# Why a demo-like run failed, on stderr: its own stderr without backtrace frames (an anyhow report
# puts its message first, and a full backtrace pushed it out of a plain `tail`), then the last
# lines of every child's log. Usage: ringbolt_failure_report STDERR_FILE LOG_DIR
ringbolt_failure_report() {
  local stderr=$1 logs=$2 log
  grep -vE '^ +([0-9]+: |at )' "$stderr" | tail -40 >&2
  for log in "$logs"/*.log; do
    [ -f "$log" ] || continue
    printf -- '--- %s (last lines)\n' "$log" >&2
    grep -vE '^ +([0-9]+: |at )' "$log" | tail -12 | cut -c1-400 >&2
  done
}
