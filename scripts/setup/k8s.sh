#!/usr/bin/env bash
# Installs and builds what the disposable test cluster (scripts/k8s/cluster.sh) needs, for
# the k8s tier (tests/k8s):
#   stage 1: Debian's etcd-server; kube-apiserver and kubectl built from k8s.io/kubernetes
#   stage 2: also kube-controller-manager, kube-scheduler, kubelet, kube-proxy (same module),
#            CoreDNS (its own module), Debian's containerd, runc, CNI plugins, conntrack,
#            iptables
# No release binary or cluster image can be downloaded here, so every Kubernetes binary is
# built from the Go module proxy through tools/k8s-cluster (a module that requires
# k8s.io/kubernetes and maps its staging modules to their published k8s.io/* versions).
#
# Idempotent: binaries are cached in ${CURRENCY_NODES_CACHE:-~/.cache/currency-nodes}/k8s/bin
# with a stamp of the tools/k8s-cluster sources; a warm run only checks. Fails loudly.
#
# Usage: scripts/setup/k8s.sh [1|2]    (default: $K8S_STAGE, else 2)
set -euo pipefail

STAGE="${1:-${K8S_STAGE:-2}}"
case "$STAGE" in 1 | 2) ;; *)
  echo "setup/k8s: stage must be 1 or 2, got '$STAGE'" >&2
  exit 2
  ;;
esac

log() { printf 'setup/k8s: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}"
BIN="$CACHE/k8s/bin"
TOOL="$ROOT/tools/k8s-cluster"
mkdir -p "$BIN" || die "cannot create $BIN"

SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo -n)
# Scratch directories, removed on exit.
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

# ---- Debian packages ----------------------------------------------------------------------
pkgs=(etcd-server openssl curl python3)
cmds=(etcd openssl curl python3)
if [ "$STAGE" = 2 ]; then
  pkgs+=(containerd runc containernetworking-plugins conntrack iptables iproute2 socat ethtool)
  cmds+=(containerd runc /usr/lib/cni/bridge conntrack iptables ip socat ethtool)
fi
missing=()
for i in "${!cmds[@]}"; do
  c="${cmds[$i]}"
  if [[ "$c" == /* ]]; then [ -e "$c" ] || missing+=("${pkgs[$i]}"); else command -v "$c" >/dev/null 2>&1 || missing+=("${pkgs[$i]}"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand"
  log "installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
# The package's unit would start a system etcd on the default ports where systemd runs;
# the cluster starts its own on free loopback ports, so that one is not needed.

# ---- Kubernetes binaries --------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not on PATH: the Go toolchain builds the Kubernetes binaries"
export GOFLAGS="-mod=mod" GOWORK=off CGO_ENABLED=0

bins=(kube-apiserver kubectl)
[ "$STAGE" = 1 ] || bins+=(kube-controller-manager kube-scheduler kubelet kube-proxy)
# CoreDNS' own go.mod has no replace directives: `go install` builds it as released. Pinned.
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"

stamp="$(cd "$TOOL" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
todo=()
for b in "${bins[@]}"; do
  if [ -x "$BIN/$b" ] && [ "$(cat "$BIN/$b.stamp" 2>/dev/null)" = "$stamp" ]; then continue; fi
  todo+=("$b")
done

if [ "${#todo[@]}" -eq 0 ]; then
  log "stage $STAGE binaries already built from these sources: $BIN (${bins[*]})"
else
  # The version every component reports (kubectl version, helm's .Capabilities.KubeVersion),
  # stamped the way Kubernetes' own build does.
  kver="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$TOOL/go.mod")"
  [[ "$kver" =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "cannot read the k8s.io/kubernetes version from $TOOL/go.mod (got '$kver')"
  minor="${BASH_REMATCH[1]}"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ldflags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  pkgs=()
  for b in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  start=$(date +%s)
  log "building ${todo[*]} ($kver) from the Go module proxy (cold: several minutes per binary on 2 cores)"
  tmp="$(mktemp -d)"
  scratch+=("$tmp")
  (cd "$TOOL" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") ||
    die "go build ${pkgs[*]} failed"
  for b in "${todo[@]}"; do
    [ -x "$tmp/$b" ] || die "go build did not produce $b"
    mv -f "$tmp/$b" "$BIN/$b"
    printf '%s\n' "$stamp" >"$BIN/$b.stamp"
  done
  log "built ${todo[*]} in $(($(date +%s) - start)) s: $BIN"
fi

if [ "$STAGE" = 2 ]; then
  if [ -x "$BIN/coredns" ] && [ "$(cat "$BIN/coredns.stamp" 2>/dev/null)" = "$COREDNS_VERSION" ]; then
    log "coredns $COREDNS_VERSION already built: $BIN/coredns"
  else
    start=$(date +%s)
    log "building coredns $COREDNS_VERSION from the Go module proxy"
    tmp="$(mktemp -d)"
    scratch+=("$tmp")
    (cd "$tmp" && GOBIN="$tmp" go install -trimpath -ldflags '-s -w' "github.com/coredns/coredns@$COREDNS_VERSION") ||
      die "go install github.com/coredns/coredns@$COREDNS_VERSION failed"
    mv -f "$tmp/coredns" "$BIN/coredns"
    printf '%s\n' "$COREDNS_VERSION" >"$BIN/coredns.stamp"
    log "built coredns in $(($(date +%s) - start)) s: $BIN/coredns"
  fi
fi

# The pod sandbox ("pause") image: Kubernetes' own pause.c (in the k8s.io/kubernetes module),
# compiled static, in an image FROM scratch, saved as a tarball that containerd imports.
if [ "$STAGE" = 2 ]; then
  IMAGES="$CACHE/k8s/images"
  mkdir -p "$IMAGES"
  kdir="$(cd "$TOOL" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)" || die "cannot locate k8s.io/kubernetes in the module cache"
  src="$kdir/build/pause/linux/pause.c"
  [ -f "$src" ] || die "$src not found"
  pstamp="$(sha256sum "$src" | cut -c1-16)"
  if [ -f "$IMAGES/pause.tar" ] && [ "$(cat "$IMAGES/pause.stamp" 2>/dev/null)" = "$pstamp" ]; then
    log "pause image already built: $IMAGES/pause.tar"
  else
    command -v gcc >/dev/null 2>&1 || die "gcc not found: it compiles the pause binary"
    bash "$ROOT/scripts/setup/docker/engine.sh" >&2 || die "no Docker engine to build the pause image"
    tmp="$(mktemp -d)"
    scratch+=("$tmp")
    gcc -Os -static -DVERSION=v3.10-currency-nodes -o "$tmp/pause" "$src" || die "compiling pause.c failed"
    strip "$tmp/pause" 2>/dev/null || true
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$tmp/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t localhost/currency-nodes-test/pause:3.10 "$tmp" >/dev/null ||
      die "docker build of the pause image failed"
    docker save -o "$IMAGES/pause.tar" localhost/currency-nodes-test/pause:3.10 || die "docker save of the pause image failed"
    printf '%s\n' "$pstamp" >"$IMAGES/pause.stamp"
    log "built the pause image: $IMAGES/pause.tar"
  fi
fi

got="$("$BIN/kubectl" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | sed -n 1p)"
[ -n "$got" ] || die "$BIN/kubectl does not report a version"
log "stage $STAGE ready: Kubernetes $got, etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')"
echo "$BIN"
