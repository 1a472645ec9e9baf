#!/usr/bin/env bash
# Bake step 4: tuning stages, deploy tool, config, core maps and systemd units.
# Stages that persist across reboots (kernel command line, sysctl.d, limits,
# unit affinity drop-ins) are applied now; runtime stages (IRQs, ENA, masks)
# are applied at every boot by ringbolt-tune.service.
set -euo pipefail
src=/tmp/ringbolt-ops
ops=/opt/ringbolt-ops
rm -rf "$ops"
mkdir -p "$ops"
cp -a "$src/tuning" "$src/ami" "$src/docs" "$ops/"
rm -rf "$ops/tuning/tests" "$ops/ami/tests" "$ops/ami/packer"
ln -sfn "$ops/tuning/ringbolt-tune" /usr/local/sbin/ringbolt-tune
ln -sfn "$ops/ami/deploy" /usr/local/sbin/ringbolt-deploy

install -d -m 0755 /etc/ringbolt/core-maps
install -m 0644 "$src/ami/config/core-maps/"*.toml /etc/ringbolt/core-maps/
# The config follows the current release (it changes and rolls back with ringbolt-deploy);
# an operator's own regular file is left alone.
[[ -e /etc/ringbolt/ringbolt.toml ]] || ln -s /opt/ringbolt/current/config/ringbolt.toml /etc/ringbolt/ringbolt.toml
[[ -e /opt/ringbolt/current/bin/ringbolt ]] || { echo "40-install: no release installed under /opt/ringbolt/current" >&2; exit 1; }
"$ops/ami/select-core-map"

install -d -o ringbolt -g ringbolt -m 0750 /var/lib/ringbolt
install -m 0644 "$src/ami/systemd/"*.service "$src/ami/systemd/"*.target /etc/systemd/system/
[[ -d /run/systemd/system ]] && systemctl daemon-reload   # not in a chroot
systemctl enable ringbolt-tune.service ringbolt.target \
  ringbolt-archive.service ringbolt-feeds.service ringbolt-trade.service

# RINGBOLT_BAKE_STAGES: the qemu boot test narrows this to chroot-safe stages
stages=()
for s in ${RINGBOLT_BAKE_STAGES:-cmdline sysctl memory affinity}; do stages+=(--stage "$s"); done
ringbolt-tune apply "${stages[@]}"
systemd-analyze verify /etc/systemd/system/ringbolt-*.service /etc/systemd/system/ringbolt.target
rm -rf "$src"
