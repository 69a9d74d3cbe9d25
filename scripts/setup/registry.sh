#!/usr/bin/env bash
# An OCI registry for the tests of `npm run images -- --push` and `npm run chart -- --push`
# (tests-e2e/registry.test.ts): the CNCF Distribution registry, built from the Go module proxy
# (`go install github.com/distribution/distribution/v3/cmd/registry@<pinned>`) into
# ${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/bin/registry-<version>. No daemon is
# started here: each test starts its own on 127.0.0.1 with a throw-away storage directory.
#
# Why not Debian's docker-registry package: it is Distribution 2.8 and its postinst starts a
# system service listening on :5000. The Go build is pinned across Debian releases and cached.
#
# Idempotent: a second run only checks the version of the cached binary. Prints its path.
# Fails (exit 1, with the reason) when it cannot be built; never skips.
#
# Environment: CURRENCY_NODES_CACHE (cache root), REGISTRY_VERSION (override the pin).
set -euo pipefail

# Pinned. Bump deliberately; the binary is cached under this version.
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
MODULE=github.com/distribution/distribution/v3

log() { printf 'setup/registry: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

BIN="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/bin"
target="$BIN/registry-$REGISTRY_VERSION"
mkdir -p "$BIN" || die "cannot create $BIN"

# `registry --version` prints "<argv0> <module> <version>".
version_ok() { local v; v="$("$1" --version 2>/dev/null)" && grep -qF " $MODULE $REGISTRY_VERSION" <<<"$v"; }

if [ -x "$target" ] && version_ok "$target"; then
  log "registry $REGISTRY_VERSION already built: $target"
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null 2>&1 || die "go is not on PATH: the Go toolchain builds the registry (go install $MODULE/cmd/registry@$REGISTRY_VERSION)"
# Module mode regardless of any surrounding go.work/vendor settings; a static binary.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOWORK=off CGO_ENABLED=0

start=$(date +%s)
log "building registry $REGISTRY_VERSION from the Go module proxy (cold: a few minutes)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -trimpath -ldflags "-s -w -X $MODULE/version.version=$REGISTRY_VERSION" \
  "$MODULE/cmd/registry@$REGISTRY_VERSION" || die "go install $MODULE/cmd/registry@$REGISTRY_VERSION failed"
version_ok "$tmp/registry" || die "the built registry does not report $REGISTRY_VERSION: $("$tmp/registry" --version 2>&1 || true)"
mv -f "$tmp/registry" "$target"
log "built registry $REGISTRY_VERSION in $(($(date +%s) - start)) s: $target"
echo "$target"
