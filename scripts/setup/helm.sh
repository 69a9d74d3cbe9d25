#!/usr/bin/env bash
# Builds the pinned `helm` (and the chart's offline manifest validator, tools/k8s-validate)
# into ${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/bin, for the chart tests
# (tests/helm). Helm is not a Debian package here and no prebuilt binary can be downloaded,
# so it is built from the Go module proxy with `go install` (see docs in
# deploy/helm/currency-nodes/README.md, "Tests").
#
# Idempotent: skips a binary that is already there at the pinned version (helm) or built
# from the same sources (k8s-validate). Prints where both are. Fails loudly on any error.
#
# Environment:
#   CURRENCY_NODES_CACHE  cache root (default: $HOME/.cache/currency-nodes)
#   HELM_VERSION          override the pinned helm version (default below)
set -euo pipefail

# Pinned. Bump deliberately: the chart tests run against exactly this helm.
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

log() { printf 'setup/helm: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}"
BIN="$CACHE/bin"
mkdir -p "$BIN" || die "cannot create $BIN"

command -v go >/dev/null 2>&1 || die "go is not on PATH: the Go toolchain is needed to build helm (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION)"

# Module mode regardless of any surrounding go.work/vendor settings.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export GOWORK=off
export CGO_ENABLED=0

# ---- helm -------------------------------------------------------------------------------
helm_version_of() { "$1" version --template '{{.Version}}' 2>/dev/null || true; }

if [ -x "$BIN/helm" ] && [ "$(helm_version_of "$BIN/helm")" = "$HELM_VERSION" ]; then
  log "helm $HELM_VERSION already built: $BIN/helm"
else
  start=$(date +%s)
  log "building helm $HELM_VERSION from the Go module proxy (cold: a few minutes)"
  # helm's Makefile stamps its version and the Kubernetes version it was built against
  # (used as the default .Capabilities.KubeVersion and by `helm lint`'s deprecation
  # checks) with -ldflags; do the same so `go install` gives the same binary.
  gomod_json="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION")" ||
    die "go mod download helm.sh/helm/v3@$HELM_VERSION failed"
  gomod="$(printf '%s\n' "$gomod_json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | sed -n 1p)"
  [ -f "$gomod" ] || die "cannot find helm's go.mod in the module cache"
  cg="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")"
  [[ "$cg" =~ ^v0\.([0-9]+)\. ]] || die "cannot read the k8s.io/client-go version from $gomod (got '$cg')"
  k8s_minor="${BASH_REMATCH[1]}"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.metadata="
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ||
    die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed"
  got="$(helm_version_of "$tmp/helm")"
  [ "$got" = "$HELM_VERSION" ] || die "built helm reports version '$got', expected $HELM_VERSION"
  mv -f "$tmp/helm" "$BIN/helm"
  log "built helm $HELM_VERSION (Kubernetes 1.$k8s_minor) in $(($(date +%s) - start)) s: $BIN/helm"
fi

# ---- k8s-validate -------------------------------------------------------------------------
# Rebuilt when its sources change: the stamp is a hash of everything under tools/k8s-validate.
TOOL="$ROOT/tools/k8s-validate"
if [ -d "$TOOL" ]; then
  stamp="$(cd "$TOOL" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name '*.yaml' \) -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  if [ -x "$BIN/k8s-validate" ] && [ -f "$BIN/k8s-validate.stamp" ] && [ "$(cat "$BIN/k8s-validate.stamp")" = "$stamp" ]; then
    log "k8s-validate already built from these sources: $BIN/k8s-validate"
  else
    start=$(date +%s)
    log "building k8s-validate (tools/k8s-validate)"
    (cd "$TOOL" && go build -trimpath -ldflags '-s -w' -o "$BIN/k8s-validate.new" .) || die "building tools/k8s-validate failed"
    mv -f "$BIN/k8s-validate.new" "$BIN/k8s-validate"
    printf '%s\n' "$stamp" >"$BIN/k8s-validate.stamp"
    log "built k8s-validate in $(($(date +%s) - start)) s: $BIN/k8s-validate"
  fi
fi

echo "$BIN/helm"
