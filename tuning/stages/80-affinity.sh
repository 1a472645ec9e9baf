# shellcheck shell=bash
# Stage affinity: systemd drop-ins giving each ringbolt unit its CPUAffinity= from
# the core map. A unit may run on housekeeping plus its own role cores; the
# process pins its hot threads (feed rings, reflex, model) to the role cores
# itself, from the RINGBOLT_*_CPUS variables set here, and leaves the rest on
# housekeeping.

AFFINITY_UNITS=(ringbolt-archive ringbolt-feeds ringbolt-trade)

affinity_cpus() {
  case "$1" in
    ringbolt-feeds) cpulist_union "$HK" "$FEED" ;;
    ringbolt-trade) cpulist_union "$HK" "$(cpulist_union "$REFLEX" "$MODEL")" ;;
    ringbolt-archive) cpulist_union "$HK" "$ARCHIVER" ;;
  esac
}
affinity_dropin() { printf '/etc/systemd/system/%s.service.d/50-cpu-affinity.conf' "$1"; }
affinity_content() {
  printf '# Written by ringbolt-tune (stage affinity) from the core map; do not edit.\n'
  printf '[Service]\n'
  printf '# an empty assignment first: CPUAffinity= lines merge, this resets any earlier value\n'
  printf 'CPUAffinity=\n'
  printf 'CPUAffinity=%s\n' "$(affinity_cpus "$1" | tr ',' ' ')"
  printf 'Environment=RINGBOLT_HOUSEKEEPING_CPUS=%s RINGBOLT_FEED_CPUS=%s RINGBOLT_REFLEX_CPUS=%s RINGBOLT_MODEL_CPUS=%s RINGBOLT_ARCHIVER_CPUS=%s\n' \
    "$HK" "$FEED" "$REFLEX" "$MODEL" "$ARCHIVER"
}

affinity_apply() {
  local u before="$FILES_CHANGED"
  for u in "${AFFINITY_UNITS[@]}"; do file_put affinity "$(affinity_dropin "$u")" "$(affinity_content "$u")"; done
  if ((FILES_CHANGED > before)); then
    systemctl_live affinity daemon-reload
    say affinity "NOTE: running ringbolt units pick up the new CPUAffinity on their next restart"
  fi
}
affinity_check() {
  local u f got
  for u in "${AFFINITY_UNITS[@]}"; do
    f="$(rp "$(affinity_dropin "$u")")"
    got="$(awk -F= '$1 == "CPUAffinity" && $2 != "" { print $2 }' "$f" 2>/dev/null | tr ' ' ',' || true)"
    [[ -n "$got" ]] && got="$(cpulist_norm "$got")"
    if [[ -f "$f" && "$(cat "$f")" != "$(affinity_content "$u")" ]]; then
      record affinity "$u CPUAffinity" "$(affinity_dropin "$u")" "$(affinity_cpus "$u")" "${got:-(none)}" differs "drop-in differs from the core map"
    else
      compare affinity "$u CPUAffinity" "$(affinity_dropin "$u")" "$(affinity_cpus "$u")" "${got:-(no drop-in)}"
    fi
  done
}
affinity_revert() {
  stage_has_state affinity || { say affinity "nothing to revert"; return 0; }
  revert_generic affinity
  systemctl_live affinity daemon-reload
}
