# shellcheck shell=bash
# Stage irq: every device IRQ (ENA queues and mgmt included) onto housekeeping
# cores, default_smp_affinity to housekeeping, and irqbalance kept off the
# isolated cores (banned via a systemd drop-in, or stopped).
# [irq] skip = regex of IRQ names left alone (per-cpu timers/IPIs cannot move;
# NVMe queue IRQs are kernel-managed: isolcpus=managed_irq keeps them off).

IRQBALANCE_DROPIN=/etc/systemd/system/irqbalance.service.d/90-ringbolt.conf

irq_list() {  # "N<TAB>name" for every movable IRQ
  local skip; skip="$(cfg irq.skip 'arch_timer|IPI|nvme[0-9]+q[0-9]+')"
  [[ -r "$(rp /proc/interrupts)" ]] || return 0
  awk -v skip="$skip" '$1 ~ /^[0-9]+:$/ { n = $1; sub(":", "", n); name = $NF
      if (skip != "" && name ~ skip) next; print n "\t" name }' "$(rp /proc/interrupts)" |
  while IFS=$'\t' read -r n name; do
    [[ -e "$(rp "/proc/irq/$n/smp_affinity_list")" ]] && printf '%s\t%s\n' "$n" "$name"
  done
}

irqbalance_present() {
  local d
  for d in /lib/systemd/system /usr/lib/systemd/system /etc/systemd/system; do
    [[ -e "$(rp "$d/irqbalance.service")" ]] && return 0
  done
  return 1
}

irq_apply() {
  local n name
  while IFS=$'\t' read -r n name; do
    say irq "irq $n ($name)"
    if ! KNOB_SOFT=1 knob_write irq "/proc/irq/$n/smp_affinity_list" "$HK" cpulist; then
      # EIO from the kernel: a per-cpu or kernel-managed IRQ. A fact, not a failure:
      # remembered so check reports it as not applicable.
      say irq "irq $n ($name): the kernel refuses to move it (per-cpu or managed): left alone"
      mkdir -p "$(state_dir)"
      grep -qx "$n" "$(state_dir)/irq.unmovable" 2>/dev/null || printf '%s\n' "$n" >>"$(state_dir)/irq.unmovable"
    fi
  done < <(irq_list)
  rexists /proc/irq/default_smp_affinity && knob_write irq /proc/irq/default_smp_affinity "$(cpulist_to_mask "$HK")" mask
  if ! irqbalance_present; then say irq "irqbalance not installed"; return 0; fi
  case "$(cfg irq.balancer ban)" in
    ban)
      file_put irq "$IRQBALANCE_DROPIN" "# Written by ringbolt-tune (stage irq): keep irqbalance off the isolated cores.
[Service]
Environment=IRQBALANCE_BANNED_CPULIST=$ISO"
      systemctl_live irq daemon-reload
      systemctl_live irq try-restart irqbalance.service ;;
    stop)
      if [[ "$DRY_RUN" != 1 && ! -f "$(state_dir)/irq.svc" ]]; then
        mkdir -p "$(state_dir)"
        query_cmd systemctl is-enabled irqbalance.service >"$(state_dir)/irq.svc" || true
      fi
      run_cmd irq systemctl disable --now irqbalance.service ;;
    *) die "core map: [irq] balancer must be ban or stop" ;;
  esac
}

irq_check() {
  local n name a
  while IFS=$'\t' read -r n name; do
    a="$(cpulist_norm "$(rread "/proc/irq/$n/smp_affinity_list")")"
    if grep -qx "$n" "$(state_dir)/irq.unmovable" 2>/dev/null; then
      record irq "irq $n ($name)" "/proc/irq/$n/smp_affinity_list" "$HK" "$a" n/a "the kernel refused to move it (per-cpu or managed IRQ)"
    elif [[ -z "$(cpulist_intersect "$a" "$ISO")" ]]; then
      record irq "irq $n ($name)" "/proc/irq/$n/smp_affinity_list" "$HK" "$a" ok
    else
      record irq "irq $n ($name)" "/proc/irq/$n/smp_affinity_list" "$HK" "$a" differs "on isolated cpus $(cpulist_intersect "$a" "$ISO")"
    fi
  done < <(irq_list)
  if rexists /proc/irq/default_smp_affinity; then
    compare irq default_smp_affinity /proc/irq/default_smp_affinity "$HK" "$(mask_to_cpulist "$(rread /proc/irq/default_smp_affinity)")"
  fi
  if ! irqbalance_present; then record irq irqbalance irqbalance.service "" "not installed" n/a; return 0; fi
  case "$(cfg irq.balancer ban)" in
    ban)
      local got; got="$(awk -F= '/^Environment=IRQBALANCE_BANNED_CPULIST=/ { print $3 }' "$(rp "$IRQBALANCE_DROPIN")" 2>/dev/null || true)"
      compare irq "irqbalance banned cpus" "$IRQBALANCE_DROPIN" "$ISO" "${got:-(no drop-in)}" ;;
    stop)
      local st; st="$(query_cmd systemctl is-active irqbalance.service || true)"
      if [[ -z "$st" ]]; then record irq "irqbalance state" "systemctl is-active" inactive unknown n/a "systemctl not available"
      else compare irq "irqbalance state" "systemctl is-active" inactive "$st"; fi ;;
  esac
}

irq_revert() {
  if ! stage_has_state irq && ! [[ -f "$(state_dir)/irq.svc" ]]; then say irq "nothing to revert"; return 0; fi
  revert_generic irq
  [[ "$DRY_RUN" == 1 ]] || rm -f "$(state_dir)/irq.unmovable"
  if [[ -f "$(state_dir)/irq.svc" ]]; then
    if grep -qx enabled "$(state_dir)/irq.svc"; then run_cmd irq systemctl enable --now irqbalance.service; fi
    [[ "$DRY_RUN" == 1 ]] || rm -f "$(state_dir)/irq.svc"
  elif irqbalance_present && [[ "$(cfg irq.balancer ban)" == ban ]]; then
    systemctl_live irq daemon-reload
    systemctl_live irq try-restart irqbalance.service
  fi
}
