# shellcheck shell=bash
# Stage jitter (check only): run rt-tests' oslat (busy-loop latency, what a
# spinning feed ring sees) and/or cyclictest (timer wake-up latency) on the
# isolated cores for a short time and report min/avg/max per core.
# [jitter] tool = oslat | cyclictest | both, duration_s = 1, max_us = 0
# (0 = report only: any successful measurement is "ok"; >0 = max must not exceed it).

jitter_apply() { say jitter "check only: nothing to apply"; }
jitter_revert() { :; }

# rt-tests --json writes one object per thread: {"cpu": N, "min": .., "avg": .., "max": ..}
jitter_parse() {  # FILE -> "cpu min avg max" per thread
  awk '
    /"thread"[ \t]*:/ { inthreads = 1 }
    inthreads && /"cpu"[ \t]*:/ { gsub(/[^0-9]/, "", $2); cpu = $2 }
    inthreads && /"min"[ \t]*:/ { v = $2; gsub(/[^0-9.]/, "", v); mn = v }
    inthreads && /"avg"[ \t]*:/ { v = $2; gsub(/[^0-9.]/, "", v); av = v }
    inthreads && /"max"[ \t]*:/ { v = $2; gsub(/[^0-9.]/, "", v); mx = v }
    inthreads && /^[ \t]*}[ \t]*,?[ \t]*$/ && cpu != "" && mx != "" { print cpu, mn, av, mx; cpu = ""; mx = "" }
  ' "$1"
}

jitter_run() {  # TOOL SECONDS OUTFILE
  local hk0; hk0="$(cpulist_expand "$HK" | awk '{ print $1 }')"
  case "$1" in
    oslat) query_cmd oslat --quiet -D "$2" -c "$ISO" -C "$hk0" --json="$3" >/dev/null ;;
    cyclictest) query_cmd cyclictest --quiet -m -D "$2" -i 200 -p 95 -t "$(cpulist_count "$ISO")" -a "$ISO" --json="$3" >/dev/null ;;
  esac
}

jitter_check() {
  local tool secs max tools=() t tmp rc cpu mn av mx objs=() first
  secs="${JITTER_SECONDS:-$(cfg jitter.duration_s 1)}"
  max="$(cfg jitter.max_us 0)"
  case "$(cfg jitter.tool oslat)" in
    both) tools=(oslat cyclictest) ;;
    oslat|cyclictest) tools=("$(cfg jitter.tool oslat)") ;;
    *) die "core map: [jitter] tool must be oslat, cyclictest or both" ;;
  esac
  for tool in "${tools[@]}"; do
    if [[ -n "$ROOT" ]] && ! printenv "RINGBOLT_${tool^^}" >/dev/null; then
      record jitter "$tool" "$tool" measured "skipped" n/a "fake root: no measurement"
      continue
    fi
    tmp="$(mktemp)"
    rc=0; jitter_run "$tool" "$secs" "$tmp" || rc=$?
    if ((rc == 127)); then
      record jitter "$tool" "$tool" measured "not installed" n/a "install rt-tests to measure jitter"
      rm -f "$tmp"; continue
    fi
    if ((rc != 0)) || ! [[ -s "$tmp" ]]; then
      record jitter "$tool" "$tool" measured "failed (exit $rc)" differs "$tool did not produce a JSON result"
      rm -f "$tmp"; continue
    fi
    first=1; t="\"$tool\": {\"duration_s\": $secs, \"threads\": ["
    while read -r cpu mn av mx; do
      ((first)) || t+=", "
      first=0
      t+="{\"cpu\": $cpu, \"min_us\": $mn, \"avg_us\": $av, \"max_us\": $mx}"
      if ((max > 0)); then
        if awk -v a="$mx" -v b="$max" 'BEGIN { exit !(a <= b) }'; then
          record jitter "$tool cpu$cpu max latency" "$tool" "<= $max us" "$mx us" ok "min $mn avg $av"
        else
          record jitter "$tool cpu$cpu max latency" "$tool" "<= $max us" "$mx us" differs "min $mn avg $av"
        fi
      else
        record jitter "$tool cpu$cpu max latency" "$tool" "report only" "$mx us" ok "min $mn avg $av"
      fi
    done < <(jitter_parse "$tmp")
    t+="]}"
    ((first)) && record jitter "$tool" "$tool" measured "no threads in JSON" differs
    objs+=("$t")
    rm -f "$tmp"
  done
  if ((${#objs[@]})); then
    # shellcheck disable=SC2034 # read by report_json in ringbolt-tune
    JITTER_JSON="{$(IFS=,; printf '%s' "${objs[*]}")}"
  fi
}
