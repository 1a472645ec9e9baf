#!/usr/bin/env bats
# ringbolt-tune: goldens, semantics of apply/check/revert on fake roots, jitter shape.

setup() {
  load lib/scenario.sh
  # shellcheck source=../lib/common.sh
  source "$TESTS_DIR/../lib/common.sh"
  W="$BATS_TEST_TMPDIR"
}

# json_get FILE PYEXPR: evaluate a python expression with d = the parsed JSON
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
fresh() { "$TESTS_DIR/fixtures/mkroot" "$1" "$W/root"; fake_env "$W/root"; }

@test "cpu list helpers: expand, compress, masks round-trip" {
  [ "$(cpulist_expand '0-2,5,7-8')" = "0 1 2 5 7 8" ]
  [ "$(cpulist_compress '8 0 1 2 5 7')" = "0-2,5,7-8" ]
  [ "$(cpulist_to_mask 0-1)" = "3" ]
  [ "$(cpulist_to_mask 2-7)" = "fc" ]
  [ "$(cpulist_to_mask 0,33)" = "2,00000001" ]
  [ "$(mask_to_cpulist 00000002,00000001)" = "0,33" ]
  [ "$(mask_to_cpulist 00)" = "" ]
  [ "$(cpulist_minus 0-7 0-1)" = "2-7" ]
  [ "$(cpulist_intersect 0-3 2-7)" = "2-3" ]
  run cpulist_expand "3-1"
  [ "$status" -ne 0 ]
}

@test "core-map TOML reader accepts the subset and rejects the rest" {
  printf '[a]\nx = "0-1" # c\ny = 5\n[b.c]\nz = true\n' >"$W/ok.toml"
  run toml_flatten "$W/ok.toml"
  [ "$status" -eq 0 ]
  [ "$output" = $'a.x=0-1\na.y=5\nb.c.z=true' ]
  printf '[a]\nx = [1, 2]\n' >"$W/bad.toml"
  run toml_flatten "$W/bad.toml"
  [ "$status" -ne 0 ]
}

@test "goldens: every profile's dry-run, check JSON and call log match the committed goldens" {
  for p in "${PROFILES[@]}"; do
    run_scenario "$p" "$W/root-$p" "$W/out"
  done
  run diff -ru "$TESTS_DIR/golden" "$W/out"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "apply --dry-run changes nothing in the fake root" {
  fresh m8g-ubuntu
  sums() { (cd "$W/root" && find . -type f ! -name calls.log -exec md5sum {} + | sort); }
  before="$(sums)"
  run "$TUNE" apply --dry-run --root "$W/root"
  [ "$status" -eq 0 ]
  [[ "$output" == *"/proc/irq/37/smp_affinity_list: 0-7 -> 0-1"* ]]
  [ "$before" = "$(sums)" ]
  # only read-only queries reached the (fake) external tools
  run grep -v -E '^ethtool -[lc] ' "$W/root/.fake/calls.log"
  [ "$status" -eq 1 ]
}

@test "m8g: after apply no ENA IRQ's smp_affinity_list contains an isolated core" {
  fresh m8g-ubuntu
  "$TUNE" apply --root "$W/root" >/dev/null
  n=0
  while read -r irq; do
    aff="$(cat "$W/root/proc/irq/$irq/smp_affinity_list")"
    [ -z "$(cpulist_intersect "$aff" 2-7)" ]
    n=$((n + 1))
  done < <(awk '$NF ~ /^(ena-|ens5-)/ { sub(":", "", $1); print $1 }' "$W/root/proc/interrupts")
  [ "$n" -eq 9 ]
  # the per-cpu timer and the managed NVMe queues are left alone
  [ "$(cat "$W/root/proc/irq/11/smp_affinity_list")" = "0-7" ]
  grep -qx 'Environment=IRQBALANCE_BANNED_CPULIST=2-7' "$W/root/etc/systemd/system/irqbalance.service.d/90-ringbolt.conf"
}

@test "m8g: apply sets ENA coalescing, queue count, RPS/XPS, sysctls, masks, THP" {
  fresh m8g-ubuntu
  "$TUNE" apply --root "$W/root" >/dev/null
  e="$W/root/.fake/ethtool/ens5"
  [ "$(cat "$e/adaptive-rx")" = off ] && [ "$(cat "$e/rx-usecs")" = 0 ] && [ "$(cat "$e/tx-usecs")" = 0 ]
  [ "$(cat "$e/combined")" = 2 ]   # one queue per housekeeping core
  [ "$(mask_to_cpulist "$(cat "$W/root/sys/class/net/ens5/queues/rx-0/rps_cpus")")" = 0-1 ]
  [ "$(mask_to_cpulist "$(cat "$W/root/sys/class/net/ens5/queues/tx-1/xps_cpus")")" = 1,3,5,7 ]
  [ "$(cat "$W/root/proc/sys/kernel/timer_migration")" = 0 ]
  [ "$(cat "$W/root/proc/sys/net/core/busy_poll")" = 50 ]
  [ "$(cat "$W/root/sys/devices/virtual/workqueue/cpumask")" = 3 ]
  [ "$(cat "$W/root/sys/bus/workqueue/devices/writeback/cpumask")" = 3 ]
  [ "$(cat "$W/root/sys/kernel/mm/transparent_hugepage/enabled")" = never ]
  grep -q 'isolcpus=managed_irq,domain,2-7 nohz_full=2-7 rcu_nocbs=2-7 irqaffinity=0-1 nosoftlockup skew_tick=1' \
    "$W/root/etc/default/grub.d/99-ringbolt.cfg"
  grep -qx 'update-grub' "$FAKE_LOG"
  grep -qx 'CPUAffinity=0-3' "$W/root/etc/systemd/system/ringbolt-feeds.service.d/50-cpu-affinity.conf"
}

@test "m8g: check is partial before reboot, fully configured once the kernel runs the new cmdline" {
  fresh m8g-ubuntu
  run "$TUNE" check --root "$W/root" --json "$W/c0.json"
  [ "$status" -eq 1 ]
  "$TUNE" apply --root "$W/root" >/dev/null
  run "$TUNE" check --root "$W/root" --json "$W/c1.json"
  [ "$status" -eq 1 ]
  [[ "$output" == *"reboot pending"* ]]
  [ "$(json_get "$W/c1.json" '[s["verdict"] for s in d["stages"] if s["name"]=="irq"][0]')" = "fully configured" ]
  # simulate the reboot: the kernel now runs with the generated parameters
  printf '%s %s\n' "$(cat "$W/root/proc/cmdline")" "$(cat "$W/root/var/lib/ringbolt-tune/cmdline.args")" >"$W/root/proc/cmdline.new"
  mv "$W/root/proc/cmdline.new" "$W/root/proc/cmdline"
  run "$TUNE" check --root "$W/root" --json "$W/c2.json"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(json_get "$W/c2.json" 'd["verdict"]')" = "fully configured" ]
}

@test "check JSON: machine, kernel, cmdline and every knob with expected/actual/verdict" {
  fresh m8g-ubuntu
  "$TUNE" check --root "$W/root" --json "$W/c.json" >/dev/null || true
  run python3 - "$W/c.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["machine"]["arch"] == "aarch64" and d["machine"]["instance_type"] == "m8g.2xlarge"
assert d["kernel"]["release"] == "6.8.0-1021-aws" and d["kernel"]["rcu_nocb_cpu"] == "y"
assert d["cmdline"].startswith("BOOT_IMAGE=")
names = [s["name"] for s in d["stages"]]
assert names == ["cmdline", "net", "irq", "sysctl", "workqueue", "memory", "cpu", "affinity", "jitter"], names
stage_verdicts = {"fully configured", "partially configured", "not configured", "not applicable"}
for s in d["stages"]:
    assert s["verdict"] in stage_verdicts
    assert s["knobs"], s["name"]
    for k in s["knobs"]:
        assert set(k) == {"knob", "path", "expected", "actual", "verdict", "note"}, k
        assert k["verdict"] in {"ok", "differs", "n/a"}, k
    vs = [k["verdict"] for k in s["knobs"] if k["verdict"] != "n/a"]
    want = ("not applicable" if not vs else "fully configured" if all(v == "ok" for v in vs)
            else "not configured" if not any(v == "ok" for v in vs) else "partially configured")
    assert s["verdict"] == want, (s["name"], s["verdict"], want)
cpu = [s for s in d["stages"] if s["name"] == "cpu"][0]
assert cpu["verdict"] == "not applicable"
print("ok")
PY
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "revert restores every original value (files and check actuals), even after a second apply" {
  fresh m8g-ubuntu
  cp -a "$W/root" "$W/orig"
  "$TUNE" check --root "$W/root" --json "$W/before.json" >/dev/null || true
  "$TUNE" apply --root "$W/root" >/dev/null
  : >"$FAKE_LOG"
  run "$TUNE" apply --root "$W/root"     # idempotent: the saved originals must not be overwritten
  [[ "$output" == *"/proc/sys/kernel/timer_migration: 0 (unchanged)"* ]]
  [[ "$output" == *"kernel command line already installed"* ]]
  run grep -c -E '^(update-grub|systemctl daemon-reload)' "$FAKE_LOG"   # no needless reloads
  [ "$output" = 1 ]   # only irqbalance's daemon-reload (its try-restart is harmless)
  "$TUNE" revert --root "$W/root" >/dev/null
  "$TUNE" check --root "$W/root" --json "$W/after.json" >/dev/null || true
  run python3 -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ka = [(s["name"], k["knob"], k["actual"], k["verdict"]) for s in a["stages"] for k in s["knobs"]]
kb = [(s["name"], k["knob"], k["actual"], k["verdict"]) for s in b["stages"] for k in s["knobs"]]
assert ka == kb, [x for x in zip(ka, kb) if x[0] != x[1]]
' "$W/before.json" "$W/after.json"
  echo "$output"
  [ "$status" -eq 0 ]
  # file-by-file: same files (ours removed), same contents except THP, which
  # (like the real sysfs) reads back as the bare word after restore
  lst() { (cd "$1" && find . -type f ! -path './.fake/*' ! -path './var/lib/ringbolt-tune/*' | sort); }
  [ "$(lst "$W/orig")" = "$(lst "$W/root")" ]
  run diff -r --no-dereference --exclude=transparent_hugepage --exclude=.fake --exclude=var "$W/orig" "$W/root"
  echo "$output"
  [ "$status" -eq 0 ]
  for p in "$W/root"/proc/irq/*/smp_affinity_list; do
    [ "$(cat "$p")" = "0-7" ]
  done
  [ "$(cat "$W/root/.fake/ethtool/ens5/combined")" = 8 ]
  [ "$(cat "$W/root/.fake/ethtool/ens5/adaptive-rx")" = on ]
  [ "$(cat "$W/root/.fake/ethtool/ens5/rx-usecs")" = 20 ]
  grep -qx 'update-grub' "$FAKE_LOG"
}

@test "al2023 kernel without RCU_NOCB_CPU: said clearly, rcu_nocbs not generated, grubby used" {
  fresh c8g-al2023
  run "$TUNE" apply --root "$W/root"
  [ "$status" -eq 0 ]
  [[ "$output" == *"lacks CONFIG_RCU_NOCB_CPU"* ]]
  run grep -c rcu_nocbs "$W/root/var/lib/ringbolt-tune/cmdline.args"
  [ "$output" = 0 ]
  grep -q '^grubby --update-kernel=ALL --args=isolcpus=managed_irq,domain,1-3 nohz_full=1-3 irqaffinity=0 ' "$FAKE_LOG"
  printf '%s %s\n' "$(cat "$W/root/proc/cmdline")" "$(cat "$W/root/var/lib/ringbolt-tune/cmdline.args")" >"$W/cl"
  cp "$W/cl" "$W/root/proc/cmdline"
  run "$TUNE" check --root "$W/root" --json "$W/c.json"
  [ "$status" -eq 1 ]     # never "fully configured" on such a kernel
  [ "$(json_get "$W/c.json" '[s["verdict"] for s in d["stages"] if s["name"]=="cmdline"][0]')" = "partially configured" ]
  [ "$(json_get "$W/c.json" '[k["verdict"] for s in d["stages"] for k in s["knobs"] if k["knob"]=="kernel CONFIG_RCU_NOCB_CPU"][0]')" = "differs" ]
  [ "$(json_get "$W/c.json" '[s["verdict"] for s in d["stages"] if s["name"]=="sysctl"][0]')" = "fully configured" ]   # nmi_watchdog absent = n/a
  "$TUNE" revert --root "$W/root" >/dev/null
  grep -q '^grubby --update-kernel=ALL --remove-args=isolcpus=managed_irq,domain,1-3 ' "$FAKE_LOG"
}

@test "x86 control box: cpufreq governor and deep idle states handled where they exist" {
  fresh x86-cpufreq
  "$TUNE" apply --root "$W/root" >/dev/null
  for c in 0 1 2 3; do [ "$(cat "$W/root/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor")" = performance ]; done
  [ "$(cat "$W/root/sys/devices/system/cpu/cpu0/cpuidle/state1/disable")" = 0 ]   # housekeeping keeps idle states
  for c in 1 2 3; do
    [ "$(cat "$W/root/sys/devices/system/cpu/cpu$c/cpuidle/state0/disable")" = 0 ]
    [ "$(cat "$W/root/sys/devices/system/cpu/cpu$c/cpuidle/state1/disable")" = 1 ]
    [ "$(cat "$W/root/sys/devices/system/cpu/cpu$c/cpuidle/state2/disable")" = 1 ]
  done
  "$TUNE" revert --root "$W/root" >/dev/null
  [ "$(cat "$W/root/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor")" = powersave ]
  [ "$(cat "$W/root/sys/devices/system/cpu/cpu1/cpuidle/state1/disable")" = 0 ]
}

@test "KVM guest with cpuidle-haltpoll: the governor goes to menu, which honours disabled states" {
  fresh x86-cpufreq
  echo haltpoll >"$W/root/sys/devices/system/cpu/cpuidle/current_driver"
  echo haltpoll >"$W/root/sys/devices/system/cpu/cpuidle/current_governor"
  run "$TUNE" check --root "$W/root" --json "$W/before.json"
  [ "$(json_get "$W/before.json" '[k["verdict"] for s in d["stages"] for k in s["knobs"] if k["knob"]=="cpuidle governor"][0]')" = "differs" ]
  "$TUNE" apply --root "$W/root" >/dev/null
  [ "$(cat "$W/root/sys/devices/system/cpu/cpuidle/current_governor")" = menu ]
  [ "$(cat "$W/root/sys/devices/system/cpu/cpu1/cpuidle/state1/disable")" = 1 ]
  run "$TUNE" check --root "$W/root" --json "$W/after.json"
  [ "$(json_get "$W/after.json" '[k["verdict"] for s in d["stages"] for k in s["knobs"] if k["knob"]=="cpuidle governor"][0]')" = "ok" ]
  "$TUNE" revert --root "$W/root" >/dev/null
  [ "$(cat "$W/root/sys/devices/system/cpu/cpuidle/current_governor")" = haltpoll ]
  # Another driver with the haltpoll governor file present: left alone.
  echo intel_idle >"$W/root/sys/devices/system/cpu/cpuidle/current_driver"
  "$TUNE" apply --root "$W/root" >/dev/null
  [ "$(cat "$W/root/sys/devices/system/cpu/cpuidle/current_governor")" = haltpoll ]
  "$TUNE" revert --root "$W/root" >/dev/null
}

@test "--stage limits the work; bad stages and core maps are refused" {
  fresh m8g-ubuntu
  run "$TUNE" apply --dry-run --stage sysctl --root "$W/root"
  [ "$status" -eq 0 ]
  [[ "$output" == *"[sysctl]"* && "$output" != *"[irq]"* ]]
  run "$TUNE" check --stage nope --root "$W/root"
  [ "$status" -eq 64 ]
  sed 's/^cpus = "0-7"/cpus = "0-15"/' "$W/root/etc/ringbolt/core-map.toml" >"$W/wrong.toml"
  run "$TUNE" check --config "$W/wrong.toml" --root "$W/root"
  [ "$status" -eq 64 ]
  [[ "$output" == *"pick the core map for this instance type"* ]]
  sed 's/^reflex = "4"/reflex = "3"/' "$W/root/etc/ringbolt/core-map.toml" >"$W/overlap.toml"
  run "$TUNE" check --config "$W/overlap.toml" --root "$W/root"
  [ "$status" -eq 64 ]
  [[ "$output" == *"share cores"* ]]
  sed 's/^feed_rings = "2-3"/feed_rings = "1-3"/' "$W/root/etc/ringbolt/core-map.toml" >"$W/hk.toml"
  run "$TUNE" check --config "$W/hk.toml" --root "$W/root"
  [ "$status" -eq 64 ]
  [[ "$output" == *"overlap housekeeping"* ]]
}

# Jitter runs for real on this machine (read-only: only the jitter stage), 1 s per tool.
jitter_map() {
  local online; online="$(cat /sys/devices/system/cpu/online)"
  local first; first="$(cpulist_expand "$online" | awk '{ print $1 }')"
  local rest; rest="$(cpulist_minus "$online" "$first")"
  printf '[machine]\ncpus = "%s"\n[cores]\nhousekeeping = "%s"\nfeed_rings = "%s"\nreflex = "%s"\nmodel = "%s"\narchiver = "%s"\nallow_shared = true\n[jitter]\ntool = "%s"\n' \
    "$online" "$first" "$rest" "$rest" "$rest" "$first" "$1" >"$W/jitter.toml"
}
jitter_shape() {
  python3 - "$W/j.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); tool = sys.argv[2]
st = [s for s in d["stages"] if s["name"] == "jitter"][0]
assert st["verdict"] == "fully configured", st
t = d["jitter"][tool]
assert t["duration_s"] == 1 and t["threads"], t
for th in t["threads"]:
    assert set(th) == {"cpu", "min_us", "avg_us", "max_us"}
    assert all(isinstance(th[k], (int, float)) and th[k] >= 0 for k in th)
    assert th["min_us"] <= th["max_us"]
print("ok")
PY
}

# One jitter tool end to end: `check --stage jitter` runs it for 1 s and its --json result has
# the expected shape per isolated core. Skips without 2 cpus or without the tool.
jitter_case() {
  [ "$(nproc)" -ge 2 ] || skip "needs 2 cpus"
  command -v "$1" >/dev/null || skip "rt-tests not installed"
  jitter_map "$1"
  run "$TUNE" check --stage jitter --jitter-seconds 1 --config "$W/jitter.toml" --json "$W/j.json"
  echo "$output"
  [ "$status" -eq 0 ]
  run jitter_shape "$1"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "jitter: oslat --json result is parsed per isolated core (shape only, 1 s)" {
  jitter_case oslat
}

@test "jitter: cyclictest --json result is parsed per isolated core (shape only, 1 s)" {
  jitter_case cyclictest
}

@test "a knob the kernel refuses is reported, the other knobs are still applied, apply exits 1" {
  fresh m8g-ubuntu
  # a directory in place of the file makes the write fail, like EIO from the kernel
  rm "$W/root/proc/sys/vm/stat_interval"; mkdir "$W/root/proc/sys/vm/stat_interval"
  run "$TUNE" apply --root "$W/root"
  [ "$status" -eq 1 ]
  [[ "$output" == *"/proc/sys/vm/stat_interval: write failed"* ]]
  [[ "$output" == *"1 knob(s) could not be written"* ]]
  [ "$(cat "$W/root/proc/irq/39/smp_affinity_list")" = 0-1 ]
  [ "$(cat "$W/root/proc/sys/kernel/timer_migration")" = 0 ]
  [ -f "$W/root/etc/systemd/system/ringbolt-trade.service.d/50-cpu-affinity.conf" ]
}

@test "an IRQ the kernel refuses to move (per-cpu/managed) is left alone and reported n/a, not an error" {
  fresh m8g-ubuntu
  rm "$W/root/proc/irq/38/smp_affinity_list"; mkdir "$W/root/proc/irq/38/smp_affinity_list"
  run "$TUNE" apply --root "$W/root"
  [ "$status" -eq 0 ]
  [[ "$output" == *"irq 38 (ens5-Tx-Rx-1): the kernel refuses to move it"* ]]
  [ "$(cat "$W/root/proc/irq/39/smp_affinity_list")" = 0-1 ]
  "$TUNE" check --stage irq --root "$W/root" --json "$W/c.json" >/dev/null
  [ "$(json_get "$W/c.json" '[k["verdict"] for s in d["stages"] for k in s["knobs"] if k["knob"].startswith("irq 38 ")][0]')" = "n/a" ]
  [ "$(json_get "$W/c.json" 'd["verdict"]')" = "fully configured" ]
}

@test "check runs read-only against this real machine's /proc and /sys" {
  [ "$(nproc)" -ge 2 ] || skip "needs 2 cpus"
  jitter_map oslat
  marker="$W/marker"; : >"$marker"
  run "$TUNE" check --no-jitter --config "$W/jitter.toml" --json "$W/real.json"
  echo "$output" | tail -3
  [ "$status" -le 2 ]
  [[ "$output" == *"verdict: "* ]]
  run python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["stages"] and d["kernel"]["release"]; print(d["verdict"])' "$W/real.json"
  [ "$status" -eq 0 ]
  # nothing written outside the JSON we asked for
  [ ! -e /var/lib/ringbolt-tune/cmdline.args ]
  [ -z "$(find /etc/sysctl.d /etc/systemd/system /etc/security/limits.d -newer "$marker" -name '*ringbolt*' 2>/dev/null)" ]
}

@test "a failing external command (missing update-grub) is reported, later stages still run, apply exits 1" {
  fresh m8g-ubuntu
  run env RINGBOLT_UPDATE_GRUB=/nonexistent/update-grub "$TUNE" apply --root "$W/root"
  [ "$status" -eq 1 ]
  [[ "$output" == *"update-grub failed (exit 127): not installed"* ]]
  [ "$(cat "$W/root/proc/sys/kernel/timer_migration")" = 0 ]
  [ -f "$W/root/etc/systemd/system/ringbolt-feeds.service.d/50-cpu-affinity.conf" ]
}
