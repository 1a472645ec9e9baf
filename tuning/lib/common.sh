# shellcheck shell=bash
# Common helpers for ringbolt-tune: fake-root aware file access, cpu lists and
# masks, the restricted TOML reader, change/record bookkeeping.
#
# Conventions
#   ROOT     prefix for every /proc, /sys, /etc, /boot, /var path ("" = real /)
#   DRY_RUN  1 = print the exact changes, touch nothing (not even the state dir)
#   STATE    state dir (inside ROOT) that remembers original values for revert
#   RECORDS  temp file, one TAB-separated line per checked knob:
#            stage knob path expected actual verdict note
#
# Knob verdicts: ok | differs | n/a. Stage/overall verdicts are derived:
#   "fully configured" | "partially configured" | "not configured" | "not applicable"

ROOT="${ROOT:-}"
DRY_RUN="${DRY_RUN:-0}"
APPLY_ERRORS=0
FILES_CHANGED=0   # file_put counts files it (would) rewrite: callers skip no-op reloads
STATE_REL="/var/lib/ringbolt-tune"

die() { printf 'ringbolt-tune: error: %s\n' "$*" >&2; exit 64; }
warn() { printf 'ringbolt-tune: warning: %s\n' "$*" >&2; }

# say STAGE MESSAGE: one line of apply/revert output (this is what goldens pin).
say() { printf '[%s] %s\n' "$1" "$2"; }

rp() { printf '%s%s' "$ROOT" "$1"; }            # real path of a system path
rexists() { [[ -e "$(rp "$1")" ]]; }
rread() {                                        # first line, trimmed, or "" if absent
  local f; f="$(rp "$1")"
  [[ -r "$f" ]] || { printf ''; return 1; }
  local line=""
  IFS= read -r line <"$f" || true
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  printf '%s' "$line"
}

# ---------------------------------------------------------------- cpu lists
# Pure bash (no forks): these run hundreds of times per check.
# cpulist_expand "0-2,5" -> "0 1 2 5" (sorted, unique); non-zero on a malformed list
cpulist_expand() {
  local list="${1//[[:space:]]/}" part a b
  local -a set=()
  [[ -z "$list" ]] && { printf ''; return 0; }
  local IFS=','
  for part in $list; do
    [[ -z "$part" ]] && continue
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=$((10#${BASH_REMATCH[1]})); b=$((10#${BASH_REMATCH[2]}))
      ((a <= b)) || return 1
      while ((a <= b)); do set[a]=1; a=$((a + 1)); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      set[10#$part]=1
    else
      return 1
    fi
  done
  IFS=' '
  printf '%s' "${!set[*]}"
}

# cpulist_compress "0 1 2 5" -> "0-2,5"
cpulist_compress() {
  local -a set=()
  local c items
  read -r -a items <<<"$*"
  for c in "${items[@]}"; do set[c]=1; done
  ((${#set[@]} == 0)) && { printf ''; return 0; }
  local res="" start=-1 prev=-1
  for c in "${!set[@]}"; do
    if ((start >= 0 && c == prev + 1)); then prev=$c; continue; fi
    if ((start >= 0)); then
      [[ -n "$res" ]] && res+=","
      if ((start == prev)); then res+="$start"; else res+="$start-$prev"; fi
    fi
    start=$c; prev=$c
  done
  [[ -n "$res" ]] && res+=","
  if ((start == prev)); then res+="$start"; else res+="$start-$prev"; fi
  printf '%s' "$res"
}

cpulist_norm() { cpulist_compress "$(cpulist_expand "$1")"; }

# cpulist_to_mask "0-1" -> "3"; >32 cpus gives kernel style comma groups.
cpulist_to_mask() {
  local -a words=() ; local c w i res=""
  for c in $(cpulist_expand "$1"); do
    w=$((c / 32))
    while ((${#words[@]} <= w)); do words+=(0); done
    words[w]=$((words[w] | (1 << (c % 32))))
  done
  ((${#words[@]} == 0)) && { printf '0'; return 0; }
  for ((i = ${#words[@]} - 1; i >= 0; i--)); do
    if [[ -z "$res" ]]; then res="$(printf '%x' "${words[i]}")"
    else res+=",$(printf '%08x' "${words[i]}")"; fi
  done
  printf '%s' "$res"
}

# mask_to_cpulist "ff" / "00000000,00000003" -> "0-7" / "0-1"
mask_to_cpulist() {
  local mask="${1//,/}" cpus=() bit=0 i nib
  mask="${mask#0x}"
  for ((i = ${#mask} - 1; i >= 0; i--)); do
    nib=$((16#${mask:i:1}))
    ((nib & 1)) && cpus+=("$bit")
    ((nib & 2)) && cpus+=("$((bit + 1))")
    ((nib & 4)) && cpus+=("$((bit + 2))")
    ((nib & 8)) && cpus+=("$((bit + 3))")
    bit=$((bit + 4))
  done
  cpulist_compress "${cpus[*]}"
}

# cpulist_minus A B -> cpus of A not in B
cpulist_minus() {
  local a b out=() c
  a=" $(cpulist_expand "$1") "; b=" $(cpulist_expand "$2") "
  for c in $a; do [[ "$b" == *" $c "* ]] || out+=("$c"); done
  cpulist_compress "${out[*]}"
}
# cpulist_intersect A B
cpulist_intersect() {
  local b out=() c
  b=" $(cpulist_expand "$2") "
  for c in $(cpulist_expand "$1"); do [[ "$b" == *" $c "* ]] && out+=("$c"); done
  cpulist_compress "${out[*]}"
}
cpulist_union() { cpulist_compress "$(cpulist_expand "$1") $(cpulist_expand "$2")"; }
cpulist_count() { local a; read -r -a a <<<"$(cpulist_expand "$1")"; printf '%s' "${#a[@]}"; }

# ------------------------------------------------------------ core-map TOML
# A deliberately small TOML subset: [section] / [a.b] headers, key = "str" |
# integer | true/false, full-line and trailing comments. Anything else is an
# error (fail loudly rather than mis-read a core map). Output: section.key=value
toml_flatten() {
  awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    { line = $0 }
    /^[ \t]*(#.*)?$/ { next }
    /^[ \t]*\[[A-Za-z0-9_.-]+\][ \t]*(#.*)?$/ {
      s = line; sub(/^[ \t]*\[/, "", s); sub(/\].*$/, "", s); sect = s; next }
    {
      eq = index(line, "=")
      if (eq == 0) { printf "toml: line %d: expected key = value\n", NR > "/dev/stderr"; bad = 1; next }
      key = trim(substr(line, 1, eq - 1)); val = trim(substr(line, eq + 1))
      if (key !~ /^[A-Za-z0-9_-]+$/) { printf "toml: line %d: bad key %s\n", NR, key > "/dev/stderr"; bad = 1; next }
      if (val ~ /^"/) {
        rest = substr(val, 2); q = index(rest, "\"")
        if (q == 0) { printf "toml: line %d: unterminated string\n", NR > "/dev/stderr"; bad = 1; next }
        v = substr(rest, 1, q - 1); tail = trim(substr(rest, q + 1))
        if (tail != "" && tail !~ /^#/) { printf "toml: line %d: junk after value\n", NR > "/dev/stderr"; bad = 1; next }
      } else {
        v = val; sub(/[ \t]*#.*$/, "", v)
        if (v !~ /^(-?[0-9]+|true|false)$/) { printf "toml: line %d: unsupported value %s\n", NR, v > "/dev/stderr"; bad = 1; next }
      }
      print (sect == "" ? "" : sect ".") key "=" v
    }
    END { exit bad }
  ' "$1"
}

declare -gA CFG=()
load_config() {
  local file="$1" k v flat
  [[ -r "$file" ]] || die "core map not readable: $file"
  flat="$(toml_flatten "$file")" || die "cannot parse core map $file"
  while IFS='=' read -r k v; do
    [[ -z "$k" ]] && continue
    CFG["$k"]="$v"
  done <<<"$flat"
}
cfg() { local v="${CFG[$1]-}"; [[ -n "$v" ]] && { printf '%s' "$v"; return 0; }; printf '%s' "${2-}"; }

# ------------------------------------------------------------ change helpers
state_dir() { rp "$STATE_REL"; }

# state_save STAGE PATH VALUE: remember the original value once (first apply wins,
# so re-applying never overwrites the true original).
state_save() {
  local sf; sf="$(state_dir)/$1.orig"
  mkdir -p "$(state_dir)"
  if [[ -f "$sf" ]] && awk -F'\t' -v p="$2" '$1 == p { f = 1 } END { exit !f }' "$sf"; then
    return 0
  fi
  printf '%s\t%s\n' "$2" "$3" >>"$sf"
}

# knob_value KIND RAW -> the value as we compare/restore it.
#   plain: as read; bracket: the [selected] word of "always [madvise] never";
#   mask/cpulist: as read (compared as cpu sets by knob_same).
knob_value() {
  case "$1" in
    bracket) if [[ "$2" =~ \[([^]]+)\] ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '%s' "$2"; fi ;;
    *) printf '%s' "$2" ;;
  esac
}
knob_same() {  # KIND A B
  case "$1" in
    mask) [[ "$(mask_to_cpulist "$2")" == "$(mask_to_cpulist "$3")" ]] ;;
    cpulist) [[ "$(cpulist_norm "$2")" == "$(cpulist_norm "$3")" ]] ;;
    *) [[ "$2" == "$3" ]] ;;
  esac
}

# knob_write STAGE PATH NEW [KIND]: write a /proc or /sys knob, remembering the
# original (normalised by KIND) for revert.
knob_write() {
  local stage="$1" path="$2" new="$3" kind="${4:-plain}" cur
  cur="$(knob_value "$kind" "$(rread "$path" || true)")"
  if knob_same "$kind" "$cur" "$new"; then
    say "$stage" "$path: $cur (unchanged)"
    return 0
  fi
  say "$stage" "$path: $cur -> $new"
  [[ "$DRY_RUN" == 1 ]] && return 0
  state_save "$stage" "$path" "$cur"
  if ! printf '%s\n' "$new" >"$(rp "$path")" 2>/dev/null; then
    # KNOB_SOFT=1: the caller handles a refusal itself (return 1, not an error)
    [[ "${KNOB_SOFT:-0}" == 1 ]] && return 1
    # not fatal: the remaining knobs still get applied; apply exits 1 at the end
    warn "$path: write failed (kernel refused $new)"
    APPLY_ERRORS=$((APPLY_ERRORS + 1))
  fi
  return 0
}

# file_put STAGE PATH CONTENT: install a file we own (backed up if one existed).
file_put() {
  local stage="$1" path="$2" content="$3" f
  f="$(rp "$path")"
  if [[ -f "$f" ]] && [[ "$(cat "$f")" == "$content" ]]; then
    say "$stage" "$path: up to date"
    return 0
  fi
  FILES_CHANGED=$((FILES_CHANGED + 1))
  say "$stage" "write $path:"
  printf '%s\n' "$content" | sed 's/^/    | /'
  [[ "$DRY_RUN" == 1 ]] && return 0
  mkdir -p "$(state_dir)/files"
  local sf; sf="$(state_dir)/$stage.files"
  # remember directories we create so revert can remove them again
  local d made=()
  d="$(dirname "$path")"
  while [[ "$d" != / && ! -d "$(rp "$d")" ]]; do made=("$d" "${made[@]}"); d="$(dirname "$d")"; done
  for d in "${made[@]}"; do mkdir "$(rp "$d")"; printf '%s\n' "$d" >>"$(state_dir)/$stage.dirs"; done
  if ! grep -qxF "$path" "$sf" 2>/dev/null; then
    printf '%s\n' "$path" >>"$sf"
    if [[ -f "$f" ]]; then cp -p "$f" "$(state_dir)/files/$(printf '%s' "$path" | tr '/' '%')"; fi
  fi
  printf '%s\n' "$content" >"$f"
}

# run_cmd STAGE NAME ARGS...: run an external command. NAME is the logical tool
# name printed in output; the binary comes from RINGBOLT_<NAME> if set (tests
# inject fakes that way), else NAME from PATH.
run_cmd() {
  local stage="$1" name="$2"; shift 2
  local shown="$name" a
  for a in "$@"; do
    if [[ "$a" == *[[:space:]]* ]]; then shown+=" '$a'"; else shown+=" $a"; fi
  done
  say "$stage" "run: $shown"
  [[ "$DRY_RUN" == 1 ]] && return 0
  local var="RINGBOLT_${name^^}"; var="${var//-/_}"
  local bin="${!var:-$name}"
  if [[ -n "$ROOT" && -z "${!var:-}" ]]; then
    say "$stage" "skipped: fake root and no $var given"
    return 0
  fi
  local rc=0
  "$bin" "$@" || rc=$?
  if ((rc != 0)); then
    # not fatal: later stages still run; apply/revert exit 1 at the end
    warn "$name failed (exit $rc)$([[ $rc == 127 ]] && printf ': not installed')"
    APPLY_ERRORS=$((APPLY_ERRORS + 1))
  fi
  return 0
}
# systemctl_live STAGE ARGS...: systemctl calls that need a running systemd (daemon-reload,
# try-restart). In a chroot or image build there is none: skip them, the units are
# read fresh at boot. (Fake roots always "have" one: the tests inject a fake systemctl.)
systemctl_live() {
  local stage="$1"; shift
  if [[ -z "$ROOT" && ! -d /run/systemd/system ]]; then
    say "$stage" "systemd is not running (chroot or image build): skipped systemctl $*"
    return 0
  fi
  run_cmd "$stage" systemctl "$@"
}

# query_cmd NAME ARGS...: read-only command (ethtool -c, systemctl is-active)
query_cmd() {
  local name="$1"; shift
  local var="RINGBOLT_${name^^}"; var="${var//-/_}"
  local bin="${!var:-$name}"
  if [[ -n "$ROOT" && -z "${!var:-}" ]]; then return 127; fi
  command -v "$bin" >/dev/null 2>&1 || return 127
  "$bin" "$@" 2>/dev/null
}

# revert_generic STAGE: restore saved knob values (in reverse order) and owned files.
revert_generic() {
  local stage="$1" sd sf path val
  sd="$(state_dir)"; sf="$sd/$stage.orig"
  if [[ -f "$sf" ]]; then
    while IFS=$'\t' read -r path val; do
      local cur; cur="$(rread "$path" || true)"
      if [[ "$cur" == "$val" ]]; then say "$stage" "$path: $val (unchanged)"; continue; fi
      say "$stage" "$path: $cur -> $val"
      [[ "$DRY_RUN" == 1 ]] && continue
      printf '%s\n' "$val" >"$(rp "$path")" 2>/dev/null || { warn "$path: restore failed"; APPLY_ERRORS=$((APPLY_ERRORS + 1)); }
    done < <(tac "$sf")
    [[ "$DRY_RUN" == 1 ]] || rm -f "$sf"
  fi
  sf="$sd/$stage.files"
  if [[ -f "$sf" ]]; then
    while IFS= read -r path; do
      local bk; bk="$sd/files/$(printf '%s' "$path" | tr '/' '%')"
      if [[ -f "$bk" ]]; then
        say "$stage" "restore $path"
        [[ "$DRY_RUN" == 1 ]] || mv -f "$bk" "$(rp "$path")"
      else
        say "$stage" "remove $path"
        [[ "$DRY_RUN" == 1 ]] || rm -f "$(rp "$path")"
      fi
    done < <(tac "$sf")
    [[ "$DRY_RUN" == 1 ]] || rm -f "$sf"
  fi
  sf="$sd/$stage.dirs"
  if [[ -f "$sf" ]]; then
    while IFS= read -r path; do
      [[ "$DRY_RUN" == 1 ]] || rmdir "$(rp "$path")" 2>/dev/null || true
    done < <(tac "$sf")
    [[ "$DRY_RUN" == 1 ]] || rm -f "$sf"
  fi
}
stage_has_state() { [[ -f "$(state_dir)/$1.orig" || -f "$(state_dir)/$1.files" ]]; }

# ------------------------------------------------------------ check records
# record STAGE KNOB PATH EXPECTED ACTUAL VERDICT [NOTE] (tabs/newlines in values become spaces)
record() {
  local -a f=("$1" "$2" "$3" "$4" "$5" "$6" "${7-}")
  f=("${f[@]//$'\t'/ }")
  f=("${f[@]//$'\n'/ }")
  local IFS=$'\t'
  printf '%s\n' "${f[*]}" >>"$RECORDS"
}
# compare STAGE KNOB PATH EXPECTED ACTUAL [NOTE]: record ok/differs (n/a if actual absent and NOTE given)
compare() {
  local v=differs
  [[ "$4" == "$5" ]] && v=ok
  record "$1" "$2" "$3" "$4" "$5" "$v" "${6-}"
}
