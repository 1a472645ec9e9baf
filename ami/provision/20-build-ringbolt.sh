#!/usr/bin/env bash
# Bake step 2: build ringbolt natively on the Graviton builder (there is no cross
# toolchain) and install it as the first release under /opt/ringbolt.
# The Rust toolchain lives under /tmp/ringbolt-build and is not shipped.
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
install -D -m 0755 target/release/ringbolt "/opt/ringbolt/releases/$release/bin/ringbolt"
printf 'release=%s\nsha256=%s\n' "$release" "$(sha256sum target/release/ringbolt | cut -d' ' -f1)" \
  >"/opt/ringbolt/releases/$release/RELEASE"
ln -sfn "releases/$release" /opt/ringbolt/.current.tmp
mv -T /opt/ringbolt/.current.tmp /opt/ringbolt/current
cd /
rm -rf "$build"
