#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Docker engine for the e2e tier: installs Debian's docker.io (engine 20.10, API 1.41) and
# debootstrap when missing, and starts dockerd in the background when no engine answers.
# Idempotent. A machine with a working engine already (any version) is left alone.
LOG_NAME=engine
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need=()
[ -x /usr/bin/docker ] && command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)

if [ "${#need[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${need[*]} by hand"
  export DEBIAN_FRONTEND=noninteractive
  start=$(now)
  log "installing ${need[*]} with apt"
  # Other setup scripts may run apt at the same time: wait for the lock instead of failing.
  if ! apt-cache show "${need[@]}" >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q || die "apt-get update failed"
  fi
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" ||
    die "apt-get install ${need[*]} failed"
  log "installed ${need[*]} in $(($(now) - start)) s"
fi
[ -x /usr/bin/docker ] || die "/usr/bin/docker missing after installing docker.io"

if docker_up; then
  log "engine already running: $("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)"
  exit 0
fi

if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
else
  log "starting dockerd in the background (log: /var/log/currency-nodes-dockerd.log)"
  "${SUDO[@]}" mkdir -p /var/log
  # setsid + nohup: the daemon outlives this script and the npm process that ran it.
  "${SUDO[@]}" setsid nohup dockerd >/var/log/currency-nodes-dockerd.log 2>&1 </dev/null &
fi

# Bounded wait: 60 x 1 s.
for _ in $(seq 1 60); do
  if docker_up; then
    log "engine up: $("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})')"
    exit 0
  fi
  sleep 1
done
tail -n 30 /var/log/currency-nodes-dockerd.log >&2 || true
die "dockerd did not answer on /var/run/docker.sock within 60 s (log above)"
