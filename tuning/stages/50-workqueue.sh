# shellcheck shell=bash
# Stage workqueue: unbound workqueues and writeback flusher threads on housekeeping.

workqueue_knobs() {
  printf '/sys/devices/virtual/workqueue/cpumask\n'
  printf '/sys/bus/workqueue/devices/writeback/cpumask\n'
}
workqueue_apply() {
  local p
  while read -r p; do
    if rexists "$p"; then knob_write workqueue "$p" "$(cpulist_to_mask "$HK")" mask
    else say workqueue "$p: not present (not applicable)"; fi
  done < <(workqueue_knobs)
}
workqueue_check() {
  local p
  while read -r p; do
    if rexists "$p"; then compare workqueue "$(basename "$(dirname "$p")") cpumask" "$p" "$HK" "$(mask_to_cpulist "$(rread "$p")")"
    else record workqueue "$(basename "$(dirname "$p")") cpumask" "$p" "$HK" "(absent)" n/a "not present in this kernel"; fi
  done < <(workqueue_knobs)
}
workqueue_revert() { revert_generic workqueue; }
