# shellcheck shell=bash
# Stage cmdline: generate isolcpus/nohz_full/rcu_nocbs/irqaffinity/nosoftlockup/
# skew_tick (+ transparent_hugepage) from the core map, install them through the
# distro's bootloader tool, and check them against the running /proc/cmdline and
# the kernel's build config. Takes effect on the next boot only.

GRUB_DROPIN=/etc/default/grub.d/99-ringbolt.cfg
CMDLINE_ARGS_FILE=/var/lib/ringbolt-tune/cmdline.args

kconfig_source() {
  local rel; rel="$(rread /proc/sys/kernel/osrelease || true)"
  if [[ -r "$(rp "/boot/config-$rel")" ]]; then printf '/boot/config-%s' "$rel"
  elif [[ -r "$(rp /proc/config.gz)" ]]; then printf '/proc/config.gz'
  else printf 'none'; fi
}
# kconfig_get SYMBOL -> y | m | not set | unknown (cached: read once per run)
declare -gA KCONFIG_CACHE=()
kconfig_load() {
  local src line; src="$(kconfig_source)"
  KCONFIG_CACHE=([__source]="$src")
  [[ "$src" == none ]] && return 0
  while IFS= read -r line; do
    if [[ "$line" == CONFIG_*=* ]]; then KCONFIG_CACHE["${line%%=*}"]="${line#*=}"; fi
  done < <(if [[ "$src" == /proc/config.gz ]]; then zcat "$(rp "$src")"; else cat "$(rp "$src")"; fi)
  return 0
}
kconfig_get() {
  [[ -n "${KCONFIG_CACHE[__source]-}" ]] || kconfig_load
  if [[ "${KCONFIG_CACHE[__source]}" == none ]]; then printf 'unknown'; return 0; fi
  local v="${KCONFIG_CACHE[$1]-}"
  printf '%s' "${v:-not set}"
}

bootloader_kind() {
  case "$(os_id)" in
    ubuntu|debian) printf 'grub-dropin' ;;
    amzn|fedora|rhel|centos|rocky|almalinux) printf 'grubby' ;;
    *) printf 'unknown' ;;
  esac
}

# cmdline_params: one "key=value" or "flag" per line, derived from the core map.
cmdline_params() {
  printf 'isolcpus=managed_irq,domain,%s\n' "$ISO"
  [[ "$(kconfig_get CONFIG_NO_HZ_FULL)" == y ]] && printf 'nohz_full=%s\n' "$ISO"
  [[ "$(kconfig_get CONFIG_RCU_NOCB_CPU)" == y ]] && printf 'rcu_nocbs=%s\n' "$ISO"
  printf 'irqaffinity=%s\n' "$HK"
  printf 'nosoftlockup\n'
  printf 'skew_tick=1\n'
  printf 'transparent_hugepage=%s\n' "$(cfg kernel.thp never)"
}

cmdline_kernel_notes() {
  local sym v rel; rel="$(rread /proc/sys/kernel/osrelease || true)"
  for sym in CONFIG_NO_HZ_FULL CONFIG_RCU_NOCB_CPU; do
    v="$(kconfig_get "$sym")"
    case "$v" in
      y) ;;
      unknown) say cmdline "WARNING: no kernel config found (/boot/config-$rel or /proc/config.gz): cannot tell if $sym is built in" ;;
      *) say cmdline "WARNING: kernel $rel lacks $sym ($v): $(kernel_gap_text "$sym")" ;;
    esac
  done
}
kernel_gap_text() {
  case "$1" in
    CONFIG_NO_HZ_FULL) printf 'nohz_full= is not generated; the scheduler tick keeps interrupting isolated cores. Use a kernel built with CONFIG_NO_HZ_FULL=y' ;;
    CONFIG_RCU_NOCB_CPU) printf 'rcu_nocbs= is not generated; RCU callbacks keep running on isolated cores. Use a kernel built with CONFIG_RCU_NOCB_CPU=y (e.g. Ubuntu linux-aws)' ;;
  esac
}

cmdline_apply() {
  local params; params="$(cmdline_params | tr '\n' ' ' | sed 's/ $//')"
  cmdline_kernel_notes
  local before="$FILES_CHANGED"
  case "$(bootloader_kind)" in
    grub-dropin)
      file_put cmdline "$GRUB_DROPIN" "# Written by ringbolt-tune (stage cmdline) from the core map. Revert: ringbolt-tune revert --stage cmdline
GRUB_CMDLINE_LINUX_DEFAULT=\"\${GRUB_CMDLINE_LINUX_DEFAULT} $params\""
      file_put cmdline "$CMDLINE_ARGS_FILE" "$params"
      if ((FILES_CHANGED > before)); then run_cmd cmdline update-grub; fi ;;
    grubby)
      file_put cmdline "$CMDLINE_ARGS_FILE" "$params"
      if ((FILES_CHANGED > before)); then run_cmd cmdline grubby --update-kernel=ALL "--args=$params"; fi ;;
    *) die "cmdline: unknown distro '$(os_id)' (no bootloader tool): add the parameters by hand: $params" ;;
  esac
  if ((FILES_CHANGED > before)); then
    say cmdline "NOTE: kernel command line changes take effect after a reboot"
  else
    say cmdline "kernel command line already installed in the bootloader: nothing to do"
  fi
}

cmdline_check() {
  local running tok key actual pending
  running=" $(rread /proc/cmdline || true) "
  pending=" $(rread "$CMDLINE_ARGS_FILE" || true) "
  local sym v
  for sym in CONFIG_NO_HZ_FULL CONFIG_RCU_NOCB_CPU; do
    v="$(kconfig_get "$sym")"
    case "$v" in
      y) record cmdline "kernel $sym" "$(kconfig_source)" y y ok ;;
      unknown) record cmdline "kernel $sym" none y unknown n/a "no kernel config to inspect: cannot verify" ;;
      *) record cmdline "kernel $sym" "$(kconfig_source)" y "$v" differs "kernel lacks $sym: $(kernel_gap_text "$sym")" ;;
    esac
  done
  [[ "$(kconfig_get CONFIG_NO_HZ_FULL)" == y ]] || record cmdline nohz_full /proc/cmdline "" "" n/a "not generated: kernel lacks CONFIG_NO_HZ_FULL"
  [[ "$(kconfig_get CONFIG_RCU_NOCB_CPU)" == y ]] || record cmdline rcu_nocbs /proc/cmdline "" "" n/a "not generated: kernel lacks CONFIG_RCU_NOCB_CPU"
  while IFS= read -r tok; do
    key="${tok%%=*}"
    actual="$(tr ' ' '\n' <<<"$running" | awk -v k="$key" '{ split($0, a, "="); if (a[1] == k) v = $0 } END { print v }')"
    if [[ "$actual" == "$tok" ]]; then
      record cmdline "$key" /proc/cmdline "$tok" "$tok" ok
    elif [[ "$pending" == *" $tok "* ]]; then
      record cmdline "$key" /proc/cmdline "$tok" "${actual:-(absent)}" differs "configured for next boot: reboot pending"
    else
      record cmdline "$key" /proc/cmdline "$tok" "${actual:-(absent)}" differs "run: ringbolt-tune apply --stage cmdline, then reboot"
    fi
  done < <(cmdline_params)
}

cmdline_revert() {
  stage_has_state cmdline || { say cmdline "nothing to revert"; return 0; }
  local params; params="$(rread "$CMDLINE_ARGS_FILE" || true)"
  revert_generic cmdline
  case "$(bootloader_kind)" in
    grub-dropin) run_cmd cmdline update-grub ;;
    grubby) [[ -n "$params" ]] && run_cmd cmdline grubby --update-kernel=ALL "--remove-args=$params" ;;
  esac
  say cmdline "NOTE: the running kernel keeps its parameters until the next reboot"
}
