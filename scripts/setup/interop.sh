#!/usr/bin/env bash
# Builds what the interop tier (tests/interop, docs/interop.md) needs, from the Go module
# proxy, into ${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/interop:
#   - grpcurl (pinned), the stock gRPC command-line client;
#   - protoc-gen-go and protoc-gen-go-grpc (pinned), the plugins that generate
#     tools/interop-peer/gen from proto/ (tools/interop-peer/gen.sh, scripts/check-generated.sh);
#   - interop-peer (tools/interop-peer), our Go conformance peer on stock grpc-go.
# Each pinned tool lives in a directory named by its version, the peer in one named by a
# hash of its sources; bin/ holds links to the current ones. Idempotent: a tool already built
# is not rebuilt. Fails loudly on any error. Prints the bin directory.
#
# Usage: interop.sh [plugins]   ("plugins": only the protoc plugins, for code generation)
#
# Environment:
#   CURRENCY_NODES_CACHE  cache root (default: $HOME/.cache/currency-nodes)
set -euo pipefail

# Pinned. Bump deliberately; tools/interop-peer/go.mod pins grpc-go and protobuf-go itself.
GRPCURL_VERSION="v1.9.4"
PROTOC_GEN_GO_VERSION="v1.36.12"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"

log() { printf 'setup/interop: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/interop"
BIN="$CACHE/bin"
mkdir -p "$BIN" || die "cannot create $BIN"

command -v go >/dev/null 2>&1 || die "go is not on PATH: the Go toolchain is needed to build grpcurl and the interop peer"

# Module mode regardless of any surrounding go.work/vendor settings.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export GOWORK=off
export CGO_ENABLED=0

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# install NAME MODULE_PATH@VERSION [LDFLAGS]: go install into $CACHE/NAME-VERSION, link bin/NAME.
install_pinned() {
  local name="$1" pkg="$2" ldflags="${3:--s -w}"
  local version="${pkg##*@}"
  local dir="$CACHE/$name-$version"
  if [ -x "$dir/$name" ]; then
    log "$name $version already built: $dir/$name"
  else
    local start
    start=$(date +%s)
    log "building $name $version from the Go module proxy"
    # Outside any module, so that the tool's own go.mod decides its dependencies.
    (cd "$tmp" && GOBIN="$tmp/out" go install -trimpath -ldflags "$ldflags" "$pkg") ||
      die "go install $pkg failed"
    [ -x "$tmp/out/$name" ] || die "go install $pkg did not produce $name"
    mkdir -p "$dir"
    mv -f "$tmp/out/$name" "$dir/$name"
    log "built $name $version in $(($(date +%s) - start)) s: $dir/$name"
  fi
  ln -sfn "$dir/$name" "$BIN/$name"
}

install_pinned protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install_pinned protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
if [ "${1:-}" = "plugins" ]; then
  echo "$BIN"
  exit 0
fi
[ -z "${1:-}" ] || die "unknown argument '$1' (usage: interop.sh [plugins])"

# grpcurl's own build stamps its version the same way.
install_pinned grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" \
  "-s -w -X main.version=$GRPCURL_VERSION"
grpcurl_says="$("$BIN/grpcurl" -version 2>&1)" || true
grep -qF -- "$GRPCURL_VERSION" <<<"$grpcurl_says" || die "$BIN/grpcurl does not report $GRPCURL_VERSION"

# ---- interop-peer: rebuilt when its sources change --------------------------------------
TOOL="$ROOT/tools/interop-peer"
stamp="$(cd "$TOOL" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
dir="$CACHE/interop-peer-$stamp"
if [ -x "$dir/interop-peer" ]; then
  log "interop-peer already built from these sources: $dir/interop-peer"
else
  start=$(date +%s)
  log "building interop-peer (tools/interop-peer)"
  (cd "$TOOL" && go build -trimpath -ldflags '-s -w' -o "$tmp/interop-peer" .) ||
    die "building tools/interop-peer failed"
  mkdir -p "$dir"
  mv -f "$tmp/interop-peer" "$dir/interop-peer"
  log "built interop-peer in $(($(date +%s) - start)) s: $dir/interop-peer"
fi
ln -sfn "$dir/interop-peer" "$BIN/interop-peer"

echo "$BIN"
