# shellcheck shell=bash disable=SC2034
# (the variables here are used by the scripts that source this file)
# Shared helpers for scripts/setup/e2e.sh and scripts/setup/docker/*.sh. Source it; it sets
# `set -euo pipefail`, the cache root, and the pinned versions every step keys its cache on.
#
# Why all this exists: the development and CI machines reach package registries (npm, Debian,
# the Go module proxy) but no container registry, and start with no Docker engine. See
# deploy/compose/README.md, "Without a container registry", for the recipe these scripts follow.
set -euo pipefail

# ---- pinned versions (bump deliberately; every cache entry is keyed on them) --------------
# Debian suite of every local base image (the official node:24-bookworm-slim is bookworm too).
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
# Node.js in the local base image: the same version as the project's `node` devDependency.
NODE_VERSION="${NODE_VERSION:-24.21.0}"
NPM_VERSION="${NPM_VERSION:-11.21.2}"
# Compose v2: the last v2 line; its Docker client negotiates the API down to the engine's 1.41.
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
# Jaeger v2 is itself an OpenTelemetry Collector distribution (OTLP in, query API and UI out).
# Its Go module is still github.com/jaegertracing/jaeger, versioned v1.x: release 2.13.0 is
# module v1.76.0, built with the Collector's v0.140.0 components. One binary serves as the
# stand-in for both the Jaeger and the OpenTelemetry Collector images (standins.sh).
JAEGER_VERSION="${JAEGER_VERSION:-2.13.0}"
JAEGER_MODULE_VERSION="${JAEGER_MODULE_VERSION:-v1.76.0}"
OTELCOL_VERSION="${OTELCOL_VERSION:-0.140.0}"
# Bumped when a recipe below changes in a way that must invalidate cached images.
RECIPE_REV=1

# ---- local image tags (the tests and deploy/compose/.env.e2e use exactly these) ------------
DEBIAN_IMAGE="local/debian:${DEBIAN_SUITE}-minbase"
NODE_BASE_IMAGE="local/node:24-${DEBIAN_SUITE}-slim"
PROMETHEUS_IMAGE="local/prometheus:debian-${DEBIAN_SUITE}"
OTELCOL_IMAGE="local/otelcol:${OTELCOL_VERSION}"
JAEGER_IMAGE="local/jaeger:${JAEGER_VERSION}"

SETUP_DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SETUP_DOCKER_DIR/../../.." && pwd)"
CACHE="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}"
DOCKER_CACHE="$CACHE/docker"
mkdir -p "$DOCKER_CACHE"

# The engine's own client: a newer client earlier on PATH may refuse BuildKit without buildx.
DOCKER="${DOCKER:-/usr/bin/docker}"

_log_prefix="setup/${LOG_NAME:-e2e}"
log() { printf '%s: %s\n' "$_log_prefix" "$*" >&2; }
die() {
  printf '%s: ERROR: %s\n' "$_log_prefix" "$*" >&2
  exit 1
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (or with sudo available): installs packages and starts dockerd"
  SUDO=(sudo)
fi

# Seconds since the epoch, for "took N s" messages.
now() { date +%s; }

# The Debian archive this machine's apt uses, read from its sources at run time (never
# written into a file of the project). Prefers the entry for the host's own codename.
debian_mirror() {
  local codename files f uri
  codename="$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")"
  files=(/etc/apt/sources.list.d/*.sources)
  # deb822 stanzas: "URIs:" and "Suites:" lines; take the URI whose stanza lists the codename.
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    uri="$(awk -v want="$codename" '
      BEGIN { RS=""; FS="\n" }
      {
        u=""; s=""; t=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); split(u, us, /[ \t]+/); u = us[1] }
          if ($i ~ /^Suites:/) { s = " " $i " "; sub(/^ Suites:/, "", s) }
          if ($i ~ /^Types:/) { t = $i }
        }
        if (u != "" && t ~ /deb([ \t]|$)/ && (want == "" || s ~ ("[ \t]" want "[ \t]"))) { print u; exit }
      }' "$f")"
    if [ -n "$uri" ]; then
      printf '%s\n' "$uri"
      return 0
    fi
  done
  # One-line format: "deb [options] URI SUITE COMPONENTS".
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk -v want="$codename" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
        if (want == "" || $(i + 1) == want) { print $i; exit }
      }' "$f")"
    if [ -n "$uri" ]; then
      printf '%s\n' "$uri"
      return 0
    fi
  done
  return 1
}

# True when the engine answers.
docker_up() { "$DOCKER" info >/dev/null 2>&1; }

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# The recipe key of an image (label set when it was built), or empty.
image_key() { "$DOCKER" image inspect -f '{{ index .Config.Labels "io.currency-nodes.setup-key" }}' "$1" 2>/dev/null || true; }

# BuildKit build with the engine's own client. Extra arguments are passed through.
docker_build() {
  DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress plain "$@"
}

# Go builds: module mode from the module proxy, static binaries, nothing from a work file.
go_env() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
  command -v go >/dev/null 2>&1 || die "go is not on PATH: the Go toolchain builds Compose and the trace stand-ins from the Go module proxy (Go >= 1.24; Debian's golang-go is too old)"
  export GOFLAGS="-mod=mod" GOWORK=off CGO_ENABLED=0
}

# Directory of a downloaded Go module (module cache; read-only).
go_module_dir() {
  local json dir
  json="$(go mod download -json "$1")" || die "go mod download $1 failed"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | sed -n 1p)"
  [ -d "$dir" ] || die "go mod download $1 gave no source directory"
  printf '%s\n' "$dir"
}
