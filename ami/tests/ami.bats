#!/usr/bin/env bats
# ami/: Packer template (offline), plugin-only keys (HCL parser), systemd units,
# shellcheck of every shell script, shipped config and core maps.

setup() {
  AMI="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
  REPO="$(cd "$AMI/.." && pwd)"
  W="$BATS_TEST_TMPDIR"
  PY="${RINGBOLT_OPS_PYTHON:-python3}"   # needs python-hcl2 (scripts/test-ops provides a venv)
  : >"$W/src.tar.gz"
  PVARS=(-var "repo_root=$REPO" -var "ringbolt_src=$W/src.tar.gz")
}

# every shell script we own: bash/sh shebang or a shellcheck shell= directive
shell_scripts() {
  local f
  while IFS= read -r f; do
    case "$f" in *.bats|*.py|*.toml|*.hcl|*.json|*.txt|*.log|*.md|*.service|*.target) continue ;; esac
    if head -n1 "$f" | grep -qE '^#!.*\b(bash|sh)\b' || head -n3 "$f" | grep -q '^# shellcheck shell='; then
      printf '%s\n' "$f"
    fi
  done < <(find "$REPO/tuning" "$REPO/ami" "$REPO/scripts/test-ops" -type f ! -path '*/golden/*' | sort)
}

@test "shellcheck: every shell script in tuning/, ami/ and scripts/test-ops is clean" {
  mapfile -t files < <(shell_scripts)
  [ "${#files[@]}" -ge 15 ]
  run shellcheck -x -P SCRIPTDIR "${files[@]}"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "packer fmt -check: core template and plugin-only keys are canonically formatted" {
  run packer fmt -check "$AMI/packer"
  echo "$output"
  [ "$status" -eq 0 ]
  # packer only formats *.pkr.hcl: check plugin-only.hcl under that name
  cp "$AMI/packer/plugin-only.hcl" "$W/plugin-only.pkr.hcl"
  run packer fmt -check "$W/plugin-only.pkr.hcl"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "packer validate (Debian's 1.6.6 field set, offline) passes for both distros" {
  run packer validate "${PVARS[@]}" "$AMI/packer"
  echo "$output"
  [ "$status" -eq 0 ]
  run packer validate "${PVARS[@]}" -var distro=al2023 "$AMI/packer"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "packer validate catches a bad distro and a missing provisioning file" {
  run packer validate "${PVARS[@]}" -var distro=centos7 "$AMI/packer"
  [ "$status" -ne 0 ]
  run packer validate -var "repo_root=$W" -var "ringbolt_src=$W/src.tar.gz" "$AMI/packer"
  [ "$status" -ne 0 ]
  [[ "$output" == *"10-packages.sh"* ]]
}

@test "plugin-only keys: HCL parser check of the split and of the merged template" {
  "$AMI/bake" --merge-only "$W/merged"
  run "$PY" "$BATS_TEST_DIRNAME/check_plugin_only.py" "$AMI/packer/ringbolt.pkr.hcl" "$AMI/packer/plugin-only.hcl" "$W/merged"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = $'imds_support\nmetadata_options' ]
  # the merged template is still well-formed HCL2 for packer
  mkdir "$W/mo"; cp "$W/merged/ringbolt.pkr.hcl" "$W/mo/"
  run packer validate -syntax-only "$W/mo"
  [ "$status" -eq 0 ]
  run packer fmt -check "$W/mo"
  [ "$status" -eq 0 ]
}

@test "plugin-only keys really are unknown to the old field set (so they must stay split)" {
  "$AMI/bake" --merge-only "$W/merged"
  mkdir "$W/mo"; cp "$W/merged/ringbolt.pkr.hcl" "$W/mo/"
  run packer validate "${PVARS[@]}" "$W/mo"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *'An argument named "imds_support" is not expected here'* ]]
  [[ "$output" == *'Blocks of type "metadata_options" are not expected here'* ]]
  run packer validate "${PVARS[@]}" "$W/merged"
  [[ "$output" == *'Blocks of type "required_plugins" are not expected here'* ]]
}

# Units + the CPUAffinity drop-ins ringbolt-tune writes from the shipped 8-cpu core map.
render_units() {
  rm -rf "$W/root" "$W/units"
  "$REPO/tuning/tests/fixtures/mkroot" m8g-ubuntu "$W/root"
  cp "$AMI/config/core-maps/8cpu.toml" "$W/root/etc/ringbolt/core-map.toml"
  RINGBOLT_SYSTEMCTL=true "$REPO/tuning/ringbolt-tune" apply --stage affinity --root "$W/root" >/dev/null
  mkdir -p "$W/units"
  cp "$AMI/systemd/"* "$W/units/"
  cp -r "$W/root/etc/systemd/system/"ringbolt-*.service.d "$W/units/"
}
# systemd-analyze verify, stderr filtered. The ONLY lines removed are systemd's
# complaint that an ExecStart/ExecStartPre binary does not exist on this test
# machine, for exactly the paths the image installs (/opt/ringbolt/current/bin/ringbolt,
# /usr/local/sbin/ringbolt-tune, /opt/ringbolt-ops/ami/select-core-map). Anything else
# (unknown keys, bad values, bad dependencies) is a real error and fails the test.
verify_units() {
  (cd "$W/units" && systemd-analyze verify --man=no "$W/units"/*.service "$W/units/ringbolt.target") 2>"$W/verify.err" >/dev/null || true
  grep -v -E '^ringbolt-[a-z]+\.service: Command (/opt/ringbolt/current/bin/ringbolt|/usr/local/sbin/ringbolt-tune|/opt/ringbolt-ops/ami/select-core-map) is not executable: No such file or directory$' \
    "$W/verify.err" || true
}

@test "systemd-analyze verify: units and affinity drop-ins have no real errors" {
  render_units
  run verify_units
  echo "$output"
  [ -z "$output" ]
  # the filter only hid the missing-binary lines (which must be there: verify ran)
  grep -q 'ringbolt-feeds.service: Command /opt/ringbolt/current/bin/ringbolt is not executable' "$W/verify.err"
}

@test "systemd-analyze verify: the stderr check catches a bad drop-in and an unknown key" {
  render_units
  sed -i 's/^CPUAffinity=0-3$/CPUAffinity=banana/' "$W/units/ringbolt-feeds.service.d/50-cpu-affinity.conf"
  run verify_units
  [[ "$output" == *"Failed to parse CPU affinity 'banana'"* ]]
  render_units
  sed -i 's/^WatchdogSec=/WatchdogSecs=/' "$W/units/ringbolt-trade.service"
  run verify_units
  [[ "$output" == *"Unknown key 'WatchdogSecs' in section [Service]"* ]]
}

unit_prop() { awk -F= -v k="$2" '$1 == k { sub(/^[^=]*=/, ""); print }' "$AMI/systemd/$1"; }

@test "units: notify+watchdog, memlock, restart with start limits, process names, ordering" {
  for r in archive feeds trade; do
    u="ringbolt-$r.service"
    [ "$(unit_prop "$u" Type)" = notify ]
    [ -n "$(unit_prop "$u" WatchdogSec)" ]
    [ "$(unit_prop "$u" LimitMEMLOCK)" = infinity ]
    [ "$(unit_prop "$u" Restart)" = on-failure ]
    [ -n "$(unit_prop "$u" StartLimitBurst)" ] && [ -n "$(unit_prop "$u" StartLimitIntervalSec)" ]
    [ "$(unit_prop "$u" ExecStart)" = "/opt/ringbolt/current/bin/ringbolt $r --config /etc/ringbolt/ringbolt.toml" ]
    [[ " $(unit_prop "$u" After) " == *" ringbolt-tune.service "* ]]
  done
  # producers first: the archiver maps the feeds' and trade's segments at start-up
  [[ " $(unit_prop ringbolt-trade.service After) " == *" ringbolt-feeds.service "* ]]
  [[ " $(unit_prop ringbolt-archive.service After) " == *" ringbolt-feeds.service "* ]]
  [[ " $(unit_prop ringbolt-archive.service After) " == *" ringbolt-trade.service "* ]]
  [[ " $(unit_prop ringbolt-feeds.service After) " != *" ringbolt-archive.service "* ]]
  render_units
  grep -qx 'CPUAffinity=0-3' "$W/units/ringbolt-feeds.service.d/50-cpu-affinity.conf"
  grep -qx 'CPUAffinity=0-1 4-6' "$W/units/ringbolt-trade.service.d/50-cpu-affinity.conf"
  grep -qx 'CPUAffinity=0-1' "$W/units/ringbolt-archive.service.d/50-cpu-affinity.conf"
}

@test "shipped core maps are valid for their cpu counts; select-core-map picks by cpu count" {
  "$REPO/tuning/tests/fixtures/mkroot" m8g-ubuntu "$W/r8"
  "$REPO/tuning/tests/fixtures/mkroot" c8g-al2023 "$W/r4"
  cp -a "$W/r8" "$W/r16"; echo 0-15 >"$W/r16/sys/devices/system/cpu/online"
  cp -a "$W/r4" "$W/r2"; echo 0-1 >"$W/r2/sys/devices/system/cpu/online"
  for n in 2 4 8 16; do
    # the core map is validated against the machine before any stage runs
    run "$REPO/tuning/ringbolt-tune" check --stage affinity --config "$AMI/config/core-maps/${n}cpu.toml" --root "$W/r$n" --json "$W/c$n.json"
    echo "$output" | head -3
    [ "$status" -eq 2 ]   # a verdict (not configured yet), not a core-map error (64)
  done
  for n in 2 4 8 16; do
    rm -f "$W/r$n/etc/ringbolt/core-map.toml"
    mkdir -p "$W/r$n/etc/ringbolt/core-maps"; cp "$AMI/config/core-maps/"*.toml "$W/r$n/etc/ringbolt/core-maps/"
    "$AMI/select-core-map" --root "$W/r$n"
    [ "$(readlink "$W/r$n/etc/ringbolt/core-map.toml")" = "core-maps/${n}cpu.toml" ]
  done
  # the operator's own file is left alone; an unknown size is an error
  printf 'mine\n' >"$W/r8/etc/ringbolt/core-map.toml.own"; mv "$W/r8/etc/ringbolt/core-map.toml.own" "$W/r8/etc/ringbolt/core-map.toml"
  "$AMI/select-core-map" --root "$W/r8"
  [ "$(cat "$W/r8/etc/ringbolt/core-map.toml")" = mine ]
  echo 0-5 >"$W/r4/sys/devices/system/cpu/online"
  run "$AMI/select-core-map" --root "$W/r4"
  [ "$status" -eq 1 ]
}

@test "health ports: ringbolt.toml, deploy and the runbook agree (feeds 9101, trade 9102, archive 9103)" {
  for pair in feeds:9101 trade:9102 archive:9103; do
    r="${pair%:*}"; p="${pair#*:}"
    run awk -v want="$r" '/^\[/ { s = $0; gsub(/[][ \t]/, "", s); next } s == want && /^health_addr/ { print }' "$AMI/config/ringbolt.toml"
    [ "$output" = "health_addr = \"127.0.0.1:$p\"" ]
    grep -q "ringbolt $r .*127.0.0.1:$p" "$REPO/docs/runbook.md"
  done
}
