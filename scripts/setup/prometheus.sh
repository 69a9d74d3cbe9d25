#!/usr/bin/env bash
# Installs Debian's `prometheus` package, which provides `prometheus` and `promtool`, for the
# observability tests (tests/integration/observability-*.test.ts). Idempotent: does
# nothing when both binaries are already on PATH.
#
# The package's maintainer scripts would start a system Prometheus on :9090. The tests never
# use that port (they start their own Prometheus on a free loopback port), but a stray daemon
# is still unwanted on a developer machine or in CI, so service starts are refused during the
# install (policy-rc.d) and any service that did start is stopped and disabled afterwards.
set -euo pipefail

log() { printf 'setup/prometheus: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  log "already installed: $(prometheus --version 2>&1 | sed -n 1p)"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Debian's 'prometheus' package (prometheus + promtool) by hand"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (or with sudo available) to install packages"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive

# `apt-get update` only when the package is unknown to apt (no lists yet, or stale ones).
if ! apt-cache show prometheus >/dev/null 2>&1; then
  log "package lists do not know 'prometheus': running apt-get update"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update || die "apt-get update failed"
fi

# Refuse service starts during the install, unless a policy already exists (Docker images
# ship one that refuses everything); remove only the one this script created.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from scripts/setup/prometheus.sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 0755 "$POLICY"
  created_policy=1
fi
cleanup() {
  if [ "$created_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

install_prometheus() {
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus
}
log "installing prometheus (no recommends)"
if ! install_prometheus; then
  # Stale package lists name versions the mirror no longer has: refresh once and retry.
  log "install failed: running apt-get update and trying once more"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update || die "apt-get update failed"
  install_prometheus || die "apt-get install prometheus failed"
fi

# Belt and braces: stop and disable a system service if one was started anyway.
if command -v systemctl >/dev/null 2>&1; then
  # `disable` works without a running systemd (it removes the unit's symlinks); `--now`
  # also stops it where systemd runs.
  if [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    "${SUDO[@]}" systemctl disable prometheus.service >/dev/null 2>&1 || true
  fi
fi
if [ -x /etc/init.d/prometheus ]; then
  "${SUDO[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null 2>&1; then
    "${SUDO[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi

command -v prometheus >/dev/null 2>&1 || die "prometheus is not on PATH after the install"
command -v promtool >/dev/null 2>&1 || die "promtool is not on PATH after the install"
log "installed: $(prometheus --version 2>&1 | sed -n 1p)"
