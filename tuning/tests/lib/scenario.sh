# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR/..
# run_scenario PROFILE ROOT OUT: the golden scenario, shared by update-goldens and
# the bats suite so goldens are always what the tool really prints.
#   fresh fake root -> apply --dry-run -> check (json) -> apply -> check (json)
#   -> revert --dry-run; plus the external commands apply ran (fake call log).
TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TUNE="$TESTS_DIR/../ringbolt-tune"
# shellcheck source=fakes/env.sh
source "$TESTS_DIR/fakes/env.sh"

run_scenario() {
  local profile="$1" root="$2" out="$3"
  rm -rf "$root"; mkdir -p "$out"
  "$TESTS_DIR/fixtures/mkroot" "$profile" "$root"
  fake_env "$root"
  "$TUNE" apply --dry-run --root "$root" >"$out/$profile.apply-dry-run.txt" 2>&1
  "$TUNE" check --root "$root" --json "$out/$profile.check-before.json" >/dev/null 2>&1 || true
  : >"$FAKE_LOG"
  "$TUNE" apply --root "$root" >/dev/null 2>&1
  cp "$FAKE_LOG" "$out/$profile.apply-calls.log"
  "$TUNE" check --root "$root" --json "$out/$profile.check-after.json" >/dev/null 2>&1 || true
  "$TUNE" revert --dry-run --root "$root" >"$out/$profile.revert-dry-run.txt" 2>&1
}
# shellcheck disable=SC2034 # used by update-goldens and the bats suite
PROFILES=(m8g-ubuntu c8g-al2023 x86-cpufreq)
