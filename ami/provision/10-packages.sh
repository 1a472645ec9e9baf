#!/usr/bin/env bash
# Bake step 1: packages to build ringbolt natively and to run the tuning stages.
set -euo pipefail
# shellcheck source=/dev/null
. /etc/os-release
case "$ID" in
  ubuntu|debian)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates curl git jq \
      ethtool irqbalance rt-tests util-linux python3 python3-venv
    ;;
  amzn)
    # rt-tests is not packaged for AL2023: `ringbolt-tune check` then reports the
    # jitter stage as not applicable ("install rt-tests to measure jitter").
    dnf install -y gcc gcc-c++ make pkgconf-pkg-config ca-certificates git jq \
      ethtool irqbalance util-linux python3 python3-pip tar gzip grubby
    ;;
  *) echo "unsupported distro $ID" >&2; exit 1 ;;
esac
