#!/usr/bin/env bash
# ringbolt demo (release) with the archiver stalled (SIGSTOP) from r+12, the collector killed at
# r+20 (its take-over waits <= 5 s for the stalled archiver, then starts a new epoch) and the
# stalled archiver killed at r+35; then replay parity over the archive and the gaps table
# (DuckDB from the setup's .venv). Build first: cargo build --release --bin ringbolt --bin ringbolt-lab.
# usage: OUT (a directory to create; OUT.stdout, OUT.stderr, OUT.replay.* beside it)
set -uo pipefail
out=$1
rm -rf "$out" "$out".stdout "$out".stderr "$out".replay.*
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$root/target/release
now=$(date +%s); R=$(( (now/300+1)*300 ))
if (( R - now < 40 )); then R=$(( R + 300 )); fi
secs=$(( R - now + 100 ))
echo "start $(date -u +%T) rollover $(date -u -d @$R +%T) seconds $secs"
"$bin/ringbolt-lab" demo --quiet --out "$out" --seconds $secs \
  --fault r+20:kill:feeds --fault r+35:kill:archive > "$out.stdout" 2> "$out.stderr" &
demo=$!
wait_s=$(( R + 12 - $(date +%s) ))
(( wait_s > 0 )) && sleep "$wait_s"
apid=$(python3 -c "import json;print(json.load(open('$out/pids.json'))['children']['archive'])")
kill -STOP "$apid"; echo "SIGSTOP archive $apid at $(date -u +%T)"
wait $demo; echo "demo exit $? at $(date -u +%T)"
grep -E "gaps|archive holds|restarts" "$out.stdout" | head
"$bin/ringbolt" replay --no-progress --check-parity --archive "$out/archive" > "$out.replay.json" 2> "$out.replay.stderr"
echo "replay exit $?"
tail -1 "$out.replay.json" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print('parity', r['parity']); print('paper', r.get('paper_parity'))"
"$root/.venv/bin/python" - "$out/archive" <<'PY'
import duckdb,sys
con=duckdb.connect()
try:
    print(con.execute(f"select kind, sum(count) from read_parquet('{sys.argv[1]}/gaps/**/*.parquet', hive_partitioning=1) group by kind").fetchall())
except Exception as e: print('gaps query:', e)
PY
