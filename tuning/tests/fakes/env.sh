# shellcheck shell=bash
# fake_env ROOT: point ringbolt-tune's external commands at the fakes for a fake root.
FAKES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fake_env() {
  export RINGBOLT_ETHTOOL="$FAKES_DIR/ethtool" RINGBOLT_SYSTEMCTL="$FAKES_DIR/systemctl"
  export RINGBOLT_UPDATE_GRUB="$FAKES_DIR/update-grub" RINGBOLT_GRUBBY="$FAKES_DIR/grubby"
  export FAKE_ETHTOOL_DIR="$1/.fake/ethtool" FAKE_SYSFS_NET="$1/sys/class/net" FAKE_LOG="$1/.fake/calls.log"
  export RINGBOLT_TUNE_NOW="2026-01-01T00:00:00Z"
}
