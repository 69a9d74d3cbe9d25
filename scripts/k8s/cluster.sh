#!/usr/bin/env bash
# A disposable, single-machine Kubernetes built from upstream sources, for tests.
#
#   scripts/k8s/cluster.sh up [--stage 1|2]   start it; prints `export KUBECONFIG=...`
#   scripts/k8s/cluster.sh down               stop every process and delete all state
#   scripts/k8s/cluster.sh status             what runs, and where
#   scripts/k8s/cluster.sh env                the export line again
#   scripts/k8s/cluster.sh load-image IMAGE...  (stage 2) copy images from the Docker engine
#
# Stage 1 is a control plane without a node: etcd (Debian's etcd-server) and kube-apiserver,
# both on loopback only. Enough for `kubectl apply --dry-run=server` and `helm install /
# upgrade / uninstall` (objects are stored and validated; no pod ever runs).
# Stage 2 adds a working node: kube-controller-manager, kube-scheduler, containerd (Debian),
# kubelet with the bridge CNI plugin, kube-proxy and CoreDNS - see scripts/k8s/node.sh.
#
# The binaries come from scripts/setup/k8s.sh (built from the Go module proxy and cached).
# Nothing here listens on anything but 127.0.0.1 (and, in stage 2, the pod bridge the
# cluster creates itself). Every wait is bounded; a failure prints the log tail and exits 1.
#
# Environment:
#   K8S_STATE_DIR   where certificates, data, logs and pid files live
#                   (default: ${TMPDIR:-/tmp}/currency-nodes-k8s); `down` deletes it
#   K8S_BIN_DIR     the binaries (default: ${CURRENCY_NODES_CACHE:-~/.cache/currency-nodes}/k8s/bin)
#   K8S_API_PORT    the API server's port on 127.0.0.1 (default: a free port)
#   K8S_START_TIMEOUT  seconds to wait for each component to be ready (default 90)
set -Eeuo pipefail # -E: the ERR trap (clean-up on a failed start) fires inside functions too

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/k8s/lib.sh
source "$HERE/lib.sh"

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---- stage 1: etcd + kube-apiserver --------------------------------------------------------
make_pki() {
  local pki="$STATE/pki"
  mkdir -p "$pki"
  [ -f "$pki/ca.crt" ] && return 0
  log "creating certificates in $pki"
  openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=currency-nodes-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt"
  # The API server: loopback, the `kubernetes` Service's first IP, and its DNS names.
  issue_cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP_API,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    serverAuth
  issue_cert admin "/O=system:masters/CN=kubernetes-admin" "" clientAuth
  # The API server's client identity towards kubelets (logs, exec).
  issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "" clientAuth
  openssl_quiet genrsa -out "$pki/sa.key" 2048
  openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

start_etcd() {
  local client peer
  client="$(free_port)"
  peer="$(free_port)"
  echo "$client" >"$STATE/etcd.port"
  mkdir -p "$STATE/etcd"
  # Debian's etcd-server (3.4). Loopback only, plain HTTP: nothing else can reach it.
  spawn etcd "$(need_bin etcd)" \
    --name=currency-nodes-test --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$client" --advertise-client-urls="http://127.0.0.1:$client" \
    --listen-peer-urls="http://127.0.0.1:$peer" --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
    --initial-cluster="currency-nodes-test=http://127.0.0.1:$peer" \
    --quota-backend-bytes=1073741824 --log-level=warn
  wait_for "etcd" etcd curl -fsS --max-time 2 "http://127.0.0.1:$client/health"
}

start_apiserver() {
  local pki="$STATE/pki" port etcd_port
  port="${K8S_API_PORT:-$(free_port)}"
  etcd_port="$(cat "$STATE/etcd.port")"
  echo "$port" >"$STATE/apiserver.port"
  # --endpoint-reconciler-type=none: the `kubernetes` Service would otherwise point at the
  # loopback advertise address, which Endpoints reject; stage 2 writes its own endpoint.
  spawn kube-apiserver "$(need_bin kube-apiserver)" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
    --endpoint-reconciler-type=none \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --anonymous-auth=false \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --allow-privileged=true --profiling=false \
    --storage-media-type=application/vnd.kubernetes.protobuf \
    --v=1
  write_kubeconfig "$STATE/kubeconfig" admin "https://127.0.0.1:$port"
  wait_for "kube-apiserver" kube-apiserver kubectl_quiet get --raw=/readyz
  # Without kube-controller-manager nobody creates the `default` ServiceAccount, which
  # admission needs before a Pod can even be dry-run in a namespace.
  ensure_default_serviceaccount default
}

cmd_up() {
  local stage=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage) stage="${2:-}"; shift 2 ;;
      --stage=*) stage="${1#--stage=}"; shift ;;
      *) usage ;;
    esac
  done
  case "$stage" in 1 | 2) ;; *)
    log "ERROR: --stage must be 1 or 2, got '$stage'"
    exit 2
    ;;
  esac
  if [ -e "$STATE" ]; then
    die "$STATE already exists (a cluster is up, or a previous one was not taken down): run '$0 down' first"
  fi
  mkdir -p "$STATE/logs" "$STATE/pids"
  trap 'on_failure' ERR
  local t0
  t0=$(date +%s)
  make_pki
  start_etcd
  start_apiserver
  if [ "$stage" = 2 ]; then
    # shellcheck source=scripts/k8s/node.sh
    source "$HERE/node.sh"
    start_node
  fi
  echo "$stage" >"$STATE/stage"
  trap - ERR
  log "stage $stage up in $(($(date +%s) - t0)) s (API server https://127.0.0.1:$(cat "$STATE/apiserver.port"))"
  cmd_env
}

cmd_env() {
  [ -f "$STATE/kubeconfig" ] || die "no cluster in $STATE"
  echo "export KUBECONFIG=$STATE/kubeconfig"
}

cmd_status() {
  [ -d "$STATE/pids" ] || {
    log "no cluster in $STATE"
    return 1
  }
  log "stage $(cat "$STATE/stage" 2>/dev/null || echo '?') in $STATE"
  local f name pid
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then log "  $name: running (pid $pid)"; else log "  $name: NOT running"; fi
  done
}

cmd_down() {
  if [ -f "$HERE/node.sh" ] && [ -f "$STATE/stage" ] && [ "$(cat "$STATE/stage")" = 2 ]; then
    # shellcheck source=scripts/k8s/node.sh
    source "$HERE/node.sh"
    stop_node || true
  fi
  stop_all
  if [ -n "$STATE" ] && [ -d "$STATE" ]; then
    # kubelet may leave mounts behind (projected tokens, emptyDirs): unmount before deleting.
    umount_under "$STATE"
    rm -rf "$STATE"
  fi
  log "down: $STATE removed"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  load-image)
    shift
    [ "$(cat "$STATE/stage" 2>/dev/null)" = 2 ] || die "load-image needs a stage 2 cluster in $STATE"
    # shellcheck source=scripts/k8s/node.sh
    source "$HERE/node.sh"
    load_images "$@"
    ;;
  *) usage ;;
esac
