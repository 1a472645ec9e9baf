#!/usr/bin/env bats
# ami/deploy against fake units: the fake systemctl really (re)starts the binary
# that `current` points at, which serves /healthz on a free loopback port. Releases
# are directories (fakes/make-release: bin/ringbolt, models/, config/, MANIFEST);
# the config the units read is a symlink into `current`, as on the appliance.

setup() {
  HERE="$BATS_TEST_DIRNAME"
  DEPLOY="$HERE/../deploy"
  W="$BATS_TEST_TMPDIR"
  export FAKE_PREFIX="$W/opt/ringbolt" FAKE_CONFIG="$W/etc/ringbolt.toml" FAKE_SYSTEMD_DIR="$W/systemd"
  export RINGBOLT_SYSTEMCTL="$HERE/fakes/systemctl"
  read -r p1 p2 p3 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
  printf '[archive]\nhealth_addr = "127.0.0.1:%s"\n[feeds]\nhealth_addr = "127.0.0.1:%s"\n[trade]\nhealth_addr = "127.0.0.1:%s"\n' \
    "$p1" "$p2" "$p3" >"$W/base.toml"
  mkdir -p "$W/etc"
  ln -s "$FAKE_PREFIX/current/config/ringbolt.toml" "$FAKE_CONFIG"
  mk() { "$HERE/fakes/make-release" "$W/$1" "$W/base.toml" "model of $1" "${@:2}"; }
  deploy() { "$DEPLOY" --prefix "$FAKE_PREFIX" --config "$FAKE_CONFIG" --interval 0.2 "$@"; }
}

teardown() {
  local pf
  for pf in "$FAKE_SYSTEMD_DIR"/*.pid; do
    [[ -f "$pf" ]] && kill "$(cat "$pf")" 2>/dev/null || true
  done
}

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/healthz" || true; }
current() { readlink "$FAKE_PREFIX/current"; }

@test "first deploy: release installed, current swapped, units restarted archive -> feeds -> trade, healthy" {
  mk good1 200
  run deploy --timeout 15 --release-id r1 "$W/good1"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/r1 ]
  [ -L "$FAKE_PREFIX/current" ]
  [ "$(cat "$FAKE_SYSTEMD_DIR/calls.log")" = "$(printf 'restart ringbolt-%s.service\n' archive feeds trade)" ]
  (cd "$FAKE_PREFIX/releases/r1" && sha256sum --check --quiet MANIFEST)
  [ "$(cat "$FAKE_PREFIX/current/models/model.json")" = "model of good1" ]
  [ "$(code "$p2")" = 200 ]
  [ -z "$(find "$FAKE_PREFIX" -name '.current.tmp.*' -o -name '*.partial')" ]
}

@test "unhealthy release (500) is rolled back to the previous one, which is healthy again" {
  mk good1 200; mk bad2 500
  deploy --timeout 15 --release-id r1 "$W/good1"
  start=$SECONDS
  run deploy --timeout 3 --rollback-timeout 30 --release-id r2 "$W/bad2"
  echo "$output"
  [ "$status" -eq 2 ]
  [ $((SECONDS - start)) -lt 60 ]
  [[ "$output" == *"unhealthy after 3s"* ]]
  [[ "$output" == *"rolling back to r1"* ]]
  [ "$(current)" = releases/r1 ]
  [ -d "$FAKE_PREFIX/releases/r2.failed" ]
  # units were restarted for the new release and again for the rollback
  [ "$(grep -c '^restart ringbolt-feeds.service$' "$FAKE_SYSTEMD_DIR/calls.log")" -eq 3 ]
  for p in "$p1" "$p2" "$p3"; do [ "$(code "$p")" = 200 ]; done
}

@test "a release that needs a few seconds to become healthy is kept (polling, not a single probe)" {
  mk good1 200; mk slow2 200 2
  deploy --timeout 15 --release-id r1 "$W/good1"
  run deploy --timeout 20 --release-id r2 "$W/slow2"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/r2 ]
  [ "$(code "$p3")" = 200 ]
}

@test "health timeout comes from RINGBOLT_HEALTH_TIMEOUT when --timeout is not given" {
  mk good1 200; mk bad2 500
  deploy --timeout 15 --release-id r1 "$W/good1"
  start=$SECONDS
  RINGBOLT_HEALTH_TIMEOUT=2 run deploy --rollback-timeout 30 --release-id r2 "$W/bad2"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"unhealthy after 2s"* ]]
  [ $((SECONDS - start)) -lt 60 ]
}

@test "a binary that cannot run --version is refused before anything is swapped or restarted" {
  mk good1 200; mk broken 200 0 0
  deploy --timeout 15 --release-id r1 "$W/good1"
  run deploy --timeout 3 --release-id r2 "$W/broken"
  [ "$status" -eq 1 ]
  [[ "$output" == *"refusing"* ]]
  [ "$(current)" = releases/r1 ]
  [ ! -e "$FAKE_PREFIX/releases/r2" ]
  [ "$(wc -l <"$FAKE_SYSTEMD_DIR/calls.log")" -eq 3 ]
}

@test "first deploy that is unhealthy has nothing to roll back to: exit 3" {
  mk bad1 500
  run deploy --timeout 2 --release-id r1 "$W/bad1"
  [ "$status" -eq 3 ]
  [[ "$output" == *"no previous release"* ]]
}

@test "old releases are pruned to --keep, never the current or previous one" {
  for i in 1 2 3 4; do
    mk "g$i" 200
    deploy --timeout 15 --keep 2 --release-id "r$i" "$W/g$i"
    sleep 1.1   # distinct mtimes
  done
  [ "$(current)" = releases/r4 ]
  [ "$(cd "$FAKE_PREFIX/releases" && ls | sort | tr '\n' ' ')" = "r3 r4 " ]
}

@test "a concurrent deploy is refused by the lock" {
  mk good1 200
  mkdir -p "$FAKE_PREFIX/releases"
  exec 8>"$FAKE_PREFIX/.deploy.lock"
  flock -n 8
  run deploy --timeout 3 --release-id r1 "$W/good1"
  exec 8>&-
  [ "$status" -eq 1 ]
  [[ "$output" == *"another deploy is running"* ]]
  [ ! -e "$FAKE_PREFIX/current" ]
}

@test "a release that crashes at start (restart fails) is rolled back without waiting for the timeout" {
  mk good1 200; mk crash2 crash
  deploy --timeout 15 --release-id r1 "$W/good1"
  start=$SECONDS
  run deploy --timeout 120 --release-id r2 "$W/crash2"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"restart of ringbolt-archive.service failed"* ]]
  [ $((SECONDS - start)) -lt 60 ]
  [ "$(current)" = releases/r1 ]
  for p in "$p1" "$p2" "$p3"; do [ "$(code "$p")" = 200 ]; done
}

@test "a release that does not match its MANIFEST is refused before anything changes" {
  mk good1 200; mk bad2 200
  deploy --timeout 15 --release-id r1 "$W/good1"
  echo tampered >>"$W/bad2/models/model.json"
  run deploy --timeout 3 --release-id r2 "$W/bad2"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"does not match its MANIFEST"* ]]
  [ "$(current)" = releases/r1 ]
  [ ! -e "$FAKE_PREFIX/releases/r2" ]
  [ "$(wc -l <"$FAKE_SYSTEMD_DIR/calls.log")" -eq 3 ]
}

@test "a file the MANIFEST does not list is refused; so is a directory without MANIFEST" {
  mk good1 200; mk extra2 200; mk nomanifest3 200
  echo x >"$W/extra2/models/unlisted.onnx"
  run deploy --timeout 3 --release-id r2 "$W/extra2"
  [ "$status" -eq 1 ]
  [[ "$output" == *"not in its MANIFEST: models/unlisted.onnx"* ]]
  rm "$W/nomanifest3/MANIFEST"
  run deploy --timeout 3 --release-id r3 "$W/nomanifest3"
  [ "$status" -eq 1 ]
  [[ "$output" == *"has no MANIFEST"* ]]
  [ ! -e "$FAKE_PREFIX/current" ]
}

@test "a rollback restores binary, model and config together; the release id comes from RELEASE" {
  mk good1 200; mk bad2 500
  deploy --timeout 15 "$W/good1"
  [ "$(current)" = releases/good1 ]
  # the broken release also ships another config (a comment) and model
  printf '# config of bad2\n' >>"$W/bad2/config/ringbolt.toml"
  "$HERE/../make-release" --manifest-only "$W/bad2"
  run deploy --timeout 3 --rollback-timeout 30 "$W/bad2"
  echo "$output"
  [ "$status" -eq 2 ]
  [ "$(current)" = releases/good1 ]
  [ "$(cat "$FAKE_PREFIX/current/models/model.json")" = "model of good1" ]
  ! grep -q 'config of bad2' "$FAKE_CONFIG"
  grep -q 'config of bad2' "$FAKE_PREFIX/releases/bad2.failed/config/ringbolt.toml"
  "$FAKE_PREFIX/current/bin/ringbolt" --version | grep -q 'status 200'
}

@test "ami/make-release: the release directory holds binary, models, ONNX Runtime, config, core maps and a MANIFEST that deploy accepts" {
  mkdir -p "$W/target/release"
  "$HERE/fakes/make-ringbolt" "$W/target/release/ringbolt" 200
  printf 'not really onnxruntime\n' >"$W/libonnxruntime.so.1.31.1"
  run "$HERE/../make-release" --target-dir "$W/target" --ort-lib "$W/libonnxruntime.so.1.31.1" \
    --config "$W/base.toml" --release-id made1 "$W/made1"
  echo "$output"
  [ "$status" -eq 0 ]
  for f in bin/ringbolt models/model.json models/xgboost.onnx models/catboost.onnx models/model_card.json \
    models/MODEL_CARD.md lib/libonnxruntime.so.1.31.1 config/ringbolt.toml config/core-maps/8cpu.toml RELEASE; do
    grep -q "  $f\$" "$W/made1/MANIFEST" || { echo "MANIFEST lacks $f"; false; }
  done
  [ "$(readlink "$W/made1/lib/libonnxruntime.so")" = libonnxruntime.so.1.31.1 ]
  cmp "$W/made1/models/model.json" "$HERE/../../decide/models/model.json"
  grep -q '^release=made1$' "$W/made1/RELEASE"
  # refuses to overwrite, and a missing build is named
  run "$HERE/../make-release" --target-dir "$W/target" --ort-lib "$W/libonnxruntime.so.1.31.1" "$W/made1"
  [ "$status" -eq 1 ]
  run "$HERE/../make-release" --target-dir "$W/none" --ort-lib "$W/libonnxruntime.so.1.31.1" "$W/made2"
  [ "$status" -eq 1 ]
  [[ "$output" == *"cargo build --release first"* ]]
  run deploy --timeout 15 "$W/made1"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(current)" = releases/made1 ]
}
