# shellcheck shell=bash
# Stage sysctl: runtime values under /proc/sys plus /etc/sysctl.d/90-ringbolt.conf
# so they survive a reboot. Knobs absent from this kernel are "not applicable"
# (e.g. kernel.nmi_watchdog without a hardlockup detector, numa_balancing on
# kernels built without CONFIG_NUMA_BALANCING).

SYSCTL_FILE=/etc/sysctl.d/90-ringbolt.conf

sysctl_knobs() {  # "name value"
  printf 'kernel.timer_migration 0\n'
  printf 'vm.stat_interval %s\n' "$(cfg kernel.stat_interval 10)"
  printf 'kernel.nmi_watchdog 0\n'
  printf 'kernel.numa_balancing 0\n'
  printf 'net.core.busy_poll %s\n' "$(cfg net.busy_poll_us 50)"
  printf 'net.core.busy_read %s\n' "$(cfg net.busy_read_us 50)"
}
sysctl_path() { printf '/proc/sys/%s' "${1//.//}"; }

sysctl_file_content() {
  local k v
  printf '# Written by ringbolt-tune (stage sysctl) from the core map.\n'
  printf '# A leading "-" makes systemd-sysctl ignore keys this kernel lacks.\n'
  while read -r k v; do printf -- '-%s = %s\n' "$k" "$v"; done < <(sysctl_knobs)
}

sysctl_apply() {
  local k v
  while read -r k v; do
    if rexists "$(sysctl_path "$k")"; then knob_write sysctl "$(sysctl_path "$k")" "$v"
    else say sysctl "$k: not present in this kernel (not applicable)"; fi
  done < <(sysctl_knobs)
  file_put sysctl "$SYSCTL_FILE" "$(sysctl_file_content)"
}

sysctl_check() {
  local k v
  while read -r k v; do
    if rexists "$(sysctl_path "$k")"; then compare sysctl "$k" "$(sysctl_path "$k")" "$v" "$(rread "$(sysctl_path "$k")")"
    else record sysctl "$k" "$(sysctl_path "$k")" "$v" "(absent)" n/a "not present in this kernel"; fi
  done < <(sysctl_knobs)
  if [[ "$(cat "$(rp "$SYSCTL_FILE")" 2>/dev/null)" == "$(sysctl_file_content)" ]]; then
    record sysctl "persisted" "$SYSCTL_FILE" "generated content" "matches" ok
  elif rexists "$SYSCTL_FILE"; then
    record sysctl "persisted" "$SYSCTL_FILE" "generated content" "differs" differs "values will not survive a reboot as expected"
  else
    record sysctl "persisted" "$SYSCTL_FILE" "generated content" "(absent)" differs "values will not survive a reboot"
  fi
}

sysctl_revert() { revert_generic sysctl; }
