#!/usr/bin/env bash
# Bake step 3: build ringbolt natively on the Graviton builder (there is no cross
# toolchain), assemble the release directory (ami/make-release: binary, models,
# ONNX Runtime, default config, core maps, MANIFEST) and install it as the first
# release under /opt/ringbolt (ringbolt-deploy --no-restart: MANIFEST verified,
# current -> releases/<id>). The toolchain and build tree are not shipped.
set -euo pipefail
build=/tmp/ringbolt-build
export RUSTUP_HOME="$build/rustup" CARGO_HOME="$build/cargo"
# Graviton4 (m8g/c8g) is Neoverse V2. Set RINGBOLT_TARGET_CPU=neoverse-v1 to also run on Graviton3.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=${RINGBOLT_TARGET_CPU:-neoverse-v2}"

id ringbolt >/dev/null 2>&1 ||
  useradd --system --home-dir /var/lib/ringbolt --shell /usr/sbin/nologin ringbolt

curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
  sh -s -- -y --profile minimal --default-toolchain "${RUST_TOOLCHAIN:-stable}" --no-modify-path
mkdir -p "$build/src"
tar -xzf "$build/ringbolt-src.tar.gz" -C "$build/src"
cd "$build/src"
"$CARGO_HOME/bin/cargo" build --release --locked --bin ringbolt
./target/release/ringbolt --version

release="$(date -u +%Y%m%dT%H%M%SZ)-baked"
ami/make-release --ort-lib "$(readlink -f "$build/libonnxruntime.so")" --release-id "$release" "$build/release"
/tmp/ringbolt-ops/ami/deploy --no-restart --prefix /opt/ringbolt "$build/release"
cd /
rm -rf "$build"
