# shellcheck shell=bash
# Stage net: ENA queue count and interrupt coalescing (ethtool), RPS/XPS masks.
# Interfaces: [net] interfaces = "ens5,ens6", or every interface whose driver is ena.

net_ifaces() {
  local list; list="$(cfg net.interfaces)"
  if [[ -n "$list" ]]; then printf '%s\n' "${list//,/$'\n'}"; return 0; fi
  local d drv
  for d in "$(rp /sys/class/net)"/*; do
    [[ -e "$d/device/driver" || -L "$d/device/driver" ]] || continue
    drv="$(basename "$(readlink "$d/device/driver")")"
    [[ "$drv" == ena ]] && basename "$d"
  done
  return 0
}

# ethtool output readers (stdin)
eth_combined() {  # $1 = max|current
  awk -v want="$1" '/^Pre-set maximums/ { s = "max" } /^Current hardware settings/ { s = "current" }
    /^Combined:/ && s == want { print $2 }'
}
eth_coalesce() {  # $1 = adaptive-rx|rx-usecs|tx-usecs
  awk -v k="$1" 'k == "adaptive-rx" && /^Adaptive RX:/ { print $3 } $1 == k ":" { print $2 }'
}

net_want_queues() {  # $1 = max queues
  local q; q="$(cfg net.queues housekeeping)"
  case "$q" in
    keep) printf '' ;;
    housekeeping) q="$(cpulist_count "$HK")" ;;
  esac
  [[ -z "$q" ]] && return 0
  if [[ -n "$1" ]] && ((q > $1)); then q="$1"; fi
  printf '%s' "$q"
}

net_rps_mask() { if [[ "$(cfg net.rps housekeeping)" == off ]]; then printf '0'; else cpulist_to_mask "$HK"; fi; }
# XPS: every online cpu gets exactly one tx queue (cpu mod nqueues), so a hot
# thread on an isolated core never shares a queue lock with housekeeping by hash.
net_xps_list() {  # QUEUE_INDEX NQUEUES
  local c out=()
  for c in $(cpulist_expand "$ONLINE"); do ((c % $2 == $1)) && out+=("$c"); done
  cpulist_compress "${out[*]}"
}

net_ethtool_save() {  # IF KEY VALUE (first apply wins)
  local sf; sf="$(state_dir)/net.ethtool"
  mkdir -p "$(state_dir)"
  grep -q "^$1	$2	" "$sf" 2>/dev/null || printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$sf"
}

net_apply() {
  local ifs; mapfile -t ifs < <(net_ifaces)
  if ((${#ifs[@]} == 0)); then say net "no ENA interface found: nothing to do"; return 0; fi
  local i out max cur want ar rx tx q n
  for i in "${ifs[@]}"; do
    [[ -d "$(rp "/sys/class/net/$i")" ]] || { warn "net: interface $i not present"; continue; }
    if out="$(query_cmd ethtool -l "$i")"; then
      max="$(eth_combined max <<<"$out")"; cur="$(eth_combined current <<<"$out")"
      want="$(net_want_queues "$max")"
      if [[ -n "$want" && "$want" != "$cur" ]]; then
        [[ "$DRY_RUN" == 1 ]] || net_ethtool_save "$i" combined "$cur"
        run_cmd net ethtool -L "$i" combined "$want"
      else
        say net "$i: combined queues ${cur:-?} (unchanged)"
      fi
    else
      say net "$i: ethtool unavailable: queue count not applied"
    fi
    if out="$(query_cmd ethtool -c "$i")"; then
      ar="$(eth_coalesce adaptive-rx <<<"$out")"; rx="$(eth_coalesce rx-usecs <<<"$out")"; tx="$(eth_coalesce tx-usecs <<<"$out")"
      local wa wr wt args=()
      wa="$(cfg net.adaptive_rx off)"; wr="$(cfg net.rx_usecs 0)"; wt="$(cfg net.tx_usecs 0)"
      [[ "$ar" != "$wa" ]] && args+=(adaptive-rx "$wa")
      [[ "$rx" != "$wr" ]] && args+=(rx-usecs "$wr")
      [[ "$tx" != "$wt" ]] && args+=(tx-usecs "$wt")
      if ((${#args[@]})); then
        if [[ "$DRY_RUN" != 1 ]]; then
          net_ethtool_save "$i" adaptive-rx "$ar"; net_ethtool_save "$i" rx-usecs "$rx"; net_ethtool_save "$i" tx-usecs "$tx"
        fi
        run_cmd net ethtool -C "$i" "${args[@]}"
      else
        say net "$i: coalescing adaptive-rx $ar rx-usecs $rx tx-usecs $tx (unchanged)"
      fi
    else
      say net "$i: ethtool unavailable: coalescing not applied"
    fi
    for q in "$(rp "/sys/class/net/$i/queues")"/rx-*; do
      [[ -e "$q/rps_cpus" ]] && knob_write net "/sys/class/net/$i/queues/${q##*/}/rps_cpus" "$(net_rps_mask)" mask
    done
    n="$(find "$(rp "/sys/class/net/$i/queues")" -maxdepth 1 -name 'tx-*' | wc -l)"
    for q in "$(rp "/sys/class/net/$i/queues")"/tx-*; do
      [[ -e "$q/xps_cpus" ]] || continue
      local idx="${q##*tx-}"
      knob_write net "/sys/class/net/$i/queues/tx-$idx/xps_cpus" "$(cpulist_to_mask "$(net_xps_list "$idx" "$n")")" mask
    done
  done
}

net_check() {
  local ifs; mapfile -t ifs < <(net_ifaces)
  if ((${#ifs[@]} == 0)); then record net "ENA interfaces" /sys/class/net "ena" "(none)" n/a "no ENA interface on this machine"; return 0; fi
  local i out max cur want q n p a e
  for i in "${ifs[@]}"; do
    if ! [[ -d "$(rp "/sys/class/net/$i")" ]]; then record net "$i" "/sys/class/net/$i" present absent differs "configured interface missing"; continue; fi
    if out="$(query_cmd ethtool -l "$i")"; then
      max="$(eth_combined max <<<"$out")"; cur="$(eth_combined current <<<"$out")"
      want="$(net_want_queues "$max")"
      if [[ -n "$want" ]]; then compare net "$i combined queues" "ethtool -l $i" "$want" "$cur" "max $max"
      else record net "$i combined queues" "ethtool -l $i" keep "$cur" n/a "[net] queues = keep"; fi
    else
      record net "$i combined queues" "ethtool -l $i" "" "" n/a "ethtool not available"
    fi
    if out="$(query_cmd ethtool -c "$i")"; then
      compare net "$i adaptive-rx" "ethtool -c $i" "$(cfg net.adaptive_rx off)" "$(eth_coalesce adaptive-rx <<<"$out")"
      compare net "$i rx-usecs" "ethtool -c $i" "$(cfg net.rx_usecs 0)" "$(eth_coalesce rx-usecs <<<"$out")"
      compare net "$i tx-usecs" "ethtool -c $i" "$(cfg net.tx_usecs 0)" "$(eth_coalesce tx-usecs <<<"$out")"
    else
      record net "$i coalescing" "ethtool -c $i" "" "" n/a "ethtool not available"
    fi
    for q in "$(rp "/sys/class/net/$i/queues")"/rx-*; do
      p="/sys/class/net/$i/queues/${q##*/}/rps_cpus"
      [[ -e "$(rp "$p")" ]] || continue
      e="$(mask_to_cpulist "$(net_rps_mask)")"; a="$(mask_to_cpulist "$(rread "$p")")"
      compare net "$i ${q##*/} rps cpus" "$p" "${e:-none}" "${a:-none}"
    done
    n="$(find "$(rp "/sys/class/net/$i/queues")" -maxdepth 1 -name 'tx-*' | wc -l)"
    for q in "$(rp "/sys/class/net/$i/queues")"/tx-*; do
      p="/sys/class/net/$i/queues/${q##*/}/xps_cpus"
      [[ -e "$(rp "$p")" ]] || continue
      e="$(net_xps_list "${q##*tx-}" "$n")"; a="$(mask_to_cpulist "$(rread "$p")")"
      compare net "$i ${q##*/} xps cpus" "$p" "${e:-none}" "${a:-none}"
    done
  done
}

net_revert() {
  local sf; sf="$(state_dir)/net.ethtool"
  if [[ -f "$sf" ]]; then
    local i k v
    # queue count first: changing it resets per-queue settings
    while IFS=$'\t' read -r i k v; do
      [[ "$k" == combined && -n "$v" ]] && run_cmd net ethtool -L "$i" combined "$v"
    done <"$sf"
    local args=() last=""
    while IFS=$'\t' read -r i k v; do
      [[ "$k" == combined || -z "$v" ]] && continue
      if [[ -n "$last" && "$i" != "$last" ]]; then run_cmd net ethtool -C "$last" "${args[@]}"; args=(); fi
      last="$i"; args+=("$k" "$v")
    done <"$sf"
    [[ -n "$last" ]] && run_cmd net ethtool -C "$last" "${args[@]}"
    [[ "$DRY_RUN" == 1 ]] || rm -f "$sf"
  fi
  revert_generic net
}
