#!/usr/bin/env bash
# Installs and builds what the disposable test cluster (scripts/k8s/cluster.sh) needs, for
# the k8s tier (tests/k8s):
#   stage 1: Debian's etcd-server; kube-apiserver and kubectl built from k8s.io/kubernetes
#   stage 2: also kube-controller-manager, kube-scheduler, kubelet, kube-proxy (same module),
#            CoreDNS, Debian's containerd, runc, CNI plugins, conntrack, iptables
# No release binary or cluster image can be downloaded here, so every Kubernetes binary is
# built from the Go module proxy through tools/k8s-cluster (a module that requires
# k8s.io/kubernetes and maps its staging modules to their published k8s.io/* versions).
#
# Idempotent: binaries are cached in ${CURRENCY_NODES_CACHE:-~/.cache/currency-nodes}/k8s/bin
# with a stamp of the tools/k8s-cluster sources; a warm run only checks. Fails loudly.
#
# Usage: scripts/setup/k8s.sh [1|2]    (default: $K8S_STAGE, else 1)
set -euo pipefail

STAGE="${1:-${K8S_STAGE:-1}}"
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
[ "$STAGE" = 1 ] || bins+=(kube-controller-manager kube-scheduler kubelet kube-proxy coredns)

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
  for b in "${todo[@]}"; do
    case "$b" in
      coredns) pkgs+=(github.com/coredns/coredns) ;;
      *) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
    esac
  done
  start=$(date +%s)
  log "building ${todo[*]} ($kver) from the Go module proxy (cold: several minutes per binary on 2 cores)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$TOOL" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") ||
    die "go build ${pkgs[*]} failed"
  for b in "${todo[@]}"; do
    [ -x "$tmp/$b" ] || die "go build did not produce $b"
    mv -f "$tmp/$b" "$BIN/$b"
    printf '%s\n' "$stamp" >"$BIN/$b.stamp"
  done
  log "built ${todo[*]} in $(($(date +%s) - start)) s: $BIN"
fi

got="$("$BIN/kubectl" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n 1)"
[ -n "$got" ] || die "$BIN/kubectl does not report a version"
log "stage $STAGE ready: Kubernetes $got, etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')"
echo "$BIN"
