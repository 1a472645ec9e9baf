#!/usr/bin/env bash
# Final A/B across a rollover (default demo length: until the next rollover + 75 s). usage: OUT RUN...
# The floors: cc -O2 -pthread -o /tmp/probe/futex lab/probes/futex-wake.c (args: iterations, 1 = other vCPU / 2 = same vCPU).
set -uo pipefail
out=$1; shift
bin=/work/main/target/release/ringbolt-lab
mkdir -p "$out"
for run in "$@"; do
  d="$out/$run"; rm -rf "$d"
  echo "== $run $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/summary.log"
  /tmp/probe/futex 2000 2 | sed 's/^/floor same-cpu: /' | tee -a "$out/summary.log"
  /tmp/probe/futex 2000 1 | sed 's/^/floor cross-cpu: /' | tee -a "$out/summary.log"
  case $run in
    base*) "$bin" demo --quiet --out "$d" > "$d.log" 2>&1 ;;
    rt*)   "$bin" demo --quiet --rt-priority 20 --out "$d" > "$d.log" 2>&1 ;;
  esac
  echo "exit $? end $(date -u +%T)" | tee -a "$out/summary.log"
  python3 - "$d/report.json" <<'PY' | tee -a "$out/summary.log"
import json,sys
r=json.load(open(sys.argv[1]))
lat=r['latency_ns']
for k in ['emulator_write_to_recv','recv_to_bus','bus_to_decision','bus_to_order_wire','submit_to_clob_recv','tick_to_order','order_round_trip']:
    v=lat.get(k) or {}
    if v.get('p50_ns'): print(f"  {k} p50 {v['p50_ns']/1000:.1f}us p90 {v['p90_ns']/1000:.1f}us p99 {v['p99_ns']/1000:.1f}us n={v.get('samples')}")
c=r['cpu']; print('  cpu', {k:((round(v['core_pct'],1), v.get('sched')) if isinstance(v,dict) else v) for k,v in c.items()})
PY
done
