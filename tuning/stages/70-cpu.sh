# shellcheck shell=bash
# Stage cpu: frequency governor and idle states, only where the platform exposes
# them. Graviton (Nitro) VMs expose neither cpufreq nor a cpuidle driver: the
# cores run at a fixed frequency and idle via WFI, so both are "not applicable".

CPU_SYS=/sys/devices/system/cpu

cpu_has_cpufreq() { rexists "$CPU_SYS/cpu$(cpulist_expand "$ONLINE" | awk '{ print $1 }')/cpufreq/scaling_governor"; }
cpu_idle_driver() { local d; d="$(rread "$CPU_SYS/cpuidle/current_driver" || true)"; printf '%s' "${d:-none}"; }
# KVM guests (cpuidle-haltpoll) idle through the haltpoll governor, which ignores a state's
# `disable`: there the deep states are only kept off by handing idle selection to `menu`. The
# governor is system-wide; housekeeping cpus keep their states enabled and still halt. Measured
# on a 2-vCPU KVM guest: a futex wake-up onto an idle vCPU 47-60 us p50 with the haltpoll
# governor and state1 disabled, 4.8 us with menu and state1 disabled.
CPU_IDLE_GOVERNOR="$CPU_SYS/cpuidle/current_governor"
cpu_idle_needs_menu() { [[ "$(cpu_idle_driver)" == haltpoll ]] && rexists "$CPU_IDLE_GOVERNOR"; }
cpu_idle_states() {  # CPU -> state dirs with index >= 1 (state0 is polling/WFI)
  local s
  for s in "$(rp "$CPU_SYS/cpu$1/cpuidle")"/state*; do
    [[ -e "$s/disable" ]] || continue
    [[ "${s##*state}" == 0 ]] && continue
    printf '%s\n' "${s#"$ROOT"}"
  done
}

cpu_apply() {
  local c s
  if cpu_has_cpufreq; then
    for c in $(cpulist_expand "$ONLINE"); do
      rexists "$CPU_SYS/cpu$c/cpufreq/scaling_governor" && knob_write cpu "$CPU_SYS/cpu$c/cpufreq/scaling_governor" performance
    done
  else
    say cpu "cpufreq: platform exposes no frequency control (not applicable)"
  fi
  if [[ "$(cpu_idle_driver)" == none ]]; then
    say cpu "cpuidle: no cpuidle driver (not applicable)"
  else
    for c in $(cpulist_expand "$ISO"); do
      while read -r s; do knob_write cpu "$s/disable" 1; done < <(cpu_idle_states "$c")
    done
    if cpu_idle_needs_menu; then knob_write cpu "$CPU_IDLE_GOVERNOR" menu; fi
  fi
}
cpu_check() {
  local c s
  if cpu_has_cpufreq; then
    for c in $(cpulist_expand "$ONLINE"); do
      rexists "$CPU_SYS/cpu$c/cpufreq/scaling_governor" &&
        compare cpu "cpu$c governor" "$CPU_SYS/cpu$c/cpufreq/scaling_governor" performance "$(rread "$CPU_SYS/cpu$c/cpufreq/scaling_governor")"
    done
  else
    record cpu "cpufreq governor" "$CPU_SYS/cpu*/cpufreq" performance "(no cpufreq)" n/a "platform exposes no frequency control (e.g. Graviton VM)"
  fi
  if [[ "$(cpu_idle_driver)" == none ]]; then
    record cpu "cpuidle deep states" "$CPU_SYS/cpuidle/current_driver" "disabled on $ISO" "(no driver)" n/a "platform exposes no cpuidle control (e.g. Graviton VM)"
  else
    for c in $(cpulist_expand "$ISO"); do
      while read -r s; do compare cpu "cpu$c $(basename "$s") disable" "$s/disable" 1 "$(rread "$s/disable")"; done < <(cpu_idle_states "$c")
    done
    if cpu_idle_needs_menu; then
      compare cpu "cpuidle governor" "$CPU_IDLE_GOVERNOR" menu "$(rread "$CPU_IDLE_GOVERNOR")"
    fi
  fi
}
cpu_revert() { revert_generic cpu; }
