# shellcheck shell=bash
# Stage memory: transparent huge pages ([kernel] thp = never | madvise) and the
# memlock limit for the ringbolt user (the units also set LimitMEMLOCK=infinity).

THP_DIR=/sys/kernel/mm/transparent_hugepage
LIMITS_FILE=/etc/security/limits.d/90-ringbolt.conf

memory_thp() { local t; t="$(cfg kernel.thp never)"; [[ "$t" == never || "$t" == madvise ]] || die "core map: [kernel] thp must be never or madvise"; printf '%s' "$t"; }
memory_thp_defrag() { if [[ "$(memory_thp)" == never ]]; then printf 'never'; else printf 'madvise'; fi; }
memory_limits() {
  local u; u="$(cfg memory.user ringbolt)"
  printf '# Written by ringbolt-tune (stage memory): ringbolt locks its rings and model in RAM.\n'
  printf '%s soft memlock unlimited\n%s hard memlock unlimited\n' "$u" "$u"
}

memory_apply() {
  if rexists "$THP_DIR/enabled"; then
    knob_write memory "$THP_DIR/enabled" "$(memory_thp)" bracket
    knob_write memory "$THP_DIR/defrag" "$(memory_thp_defrag)" bracket
  else
    say memory "transparent hugepages not built into this kernel (not applicable)"
  fi
  file_put memory "$LIMITS_FILE" "$(memory_limits)"
}
memory_check() {
  local f
  if rexists "$THP_DIR/enabled"; then
    compare memory "thp enabled" "$THP_DIR/enabled" "$(memory_thp)" "$(knob_value bracket "$(rread "$THP_DIR/enabled")")"
    compare memory "thp defrag" "$THP_DIR/defrag" "$(memory_thp_defrag)" "$(knob_value bracket "$(rread "$THP_DIR/defrag")")"
  else
    record memory "thp enabled" "$THP_DIR/enabled" "$(memory_thp)" "(absent)" n/a "kernel without transparent hugepages"
  fi
  f="$(rp "$LIMITS_FILE")"
  if [[ -f "$f" && "$(cat "$f")" == "$(memory_limits)" ]]; then
    record memory "memlock limit" "$LIMITS_FILE" "$(cfg memory.user ringbolt) memlock unlimited" "matches" ok
  else
    record memory "memlock limit" "$LIMITS_FILE" "$(cfg memory.user ringbolt) memlock unlimited" "$([[ -f "$f" ]] && echo differs || echo '(absent)')" differs
  fi
}
memory_revert() { revert_generic memory; }
