# shellcheck shell=bash
# Stage 2 of scripts/k8s/cluster.sh (sourced by it): one working node on this machine.
#
#   kube-controller-manager, kube-scheduler   on 127.0.0.1, admin credentials
#   containerd (Debian's, its CRI plugin)      a private instance: own socket, root and state
#                                              under $STATE, so a Docker engine beside it is
#                                              untouched
#   pod network                                a bridge the cluster creates (cn-k8s0,
#                                              10.244.0.1/24) with Debian's CNI plugins
#                                              (bridge + host-local + portmap + loopback); the
#                                              node's address is the bridge's
#   kubelet                                    cgroupfs driver, listening on the bridge only
#   kube-proxy                                 iptables mode, masquerading service traffic
#   CoreDNS                                    a host process on the bridge address, port 53,
#                                              serving cluster.local from the API
#
# Images: the pause image is built locally (scripts/setup/k8s.sh) and imported; project
# images are imported with `cluster.sh load-image IMAGE...` (from the Docker engine).

NODE_NAME="cn-test-node"
BRIDGE="cn-k8s0"
POD_CIDR="10.244.0.0/24"
NODE_IP="10.244.0.1"
PAUSE_IMAGE="localhost/currency-nodes-test/pause:3.10"
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
K8S_IMAGES_DIR="${K8S_IMAGES_DIR:-$(dirname "$K8S_BIN_DIR")/images}"

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

make_node_pki() {
  local pki="$STATE/pki"
  issue_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "" clientAuth
  issue_cert kubelet-server "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME" serverAuth
  write_kubeconfig "$STATE/kubelet.kubeconfig" kubelet-client "https://127.0.0.1:$(cat "$STATE/apiserver.port")"
  [ -f "$pki/kubelet-client.crt" ]
}

start_control_plane_controllers() {
  local pki="$STATE/pki"
  spawn kube-controller-manager "$(need_bin kube-controller-manager)" \
    --kubeconfig="$STATE/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$(free_port)" --leader-elect=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=false --cluster-name=currency-nodes-test \
    --controllers='*,-node-ipam-controller' \
    --v=1
  spawn kube-scheduler "$(need_bin kube-scheduler)" \
    --kubeconfig="$STATE/kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$(free_port)" --leader-elect=false --v=1
  # The ServiceAccount controller makes the `default` accounts (stage 1 made one by hand).
  wait_for "kube-controller-manager (default ServiceAccount in kube-system)" kube-controller-manager \
    kubectl_quiet -n kube-system get serviceaccount default
}

make_pod_network() {
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  # The bridge exists before the kubelet starts, so the node has its address from the start.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  echo "$BRIDGE" >"$STATE/bridge"
  # Service traffic comes back through the host (kube-proxy masquerades it); an engine's
  # FORWARD policy of DROP must not stop pod-to-pod traffic on this bridge.
  iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  cat >"$STATE/cni/net.d/10-currency-nodes.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "currency-nodes-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "rangeStart": "10.244.0.10", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

start_containerd() {
  local d="$STATE/containerd"
  mkdir -p "$d/root" "$d/state" "$d/opt"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score (the kubelet
  # asks -998 for sandboxes): clamp to containerd's own score instead of failing every pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
EOF
  spawn containerd "$(need_bin containerd)" --config "$d/config.toml" --log-level warn
  wait_for "containerd" containerd ctr --address "$CONTAINERD_SOCK" version
  [ -f "$K8S_IMAGES_DIR/pause.tar" ] || die "$K8S_IMAGES_DIR/pause.tar not found: run scripts/setup/k8s.sh 2"
  ctr_k8s images import --no-unpack "$K8S_IMAGES_DIR/pause.tar" >/dev/null
  # Read the whole list before matching: `ctr ... | grep -q` under pipefail fails with SIGPIPE
  # whenever grep stops at the first line while ctr still writes (the list has name and digest).
  local images
  images="$(ctr_k8s images ls -q)"
  grep -qxF "$PAUSE_IMAGE" <<<"$images" || die "the pause image did not import as $PAUSE_IMAGE"
}

start_kubelet() {
  local pki="$STATE/pki" healthz
  healthz="$(free_port)"
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  : >"$STATE/resolv.conf" # pods resolve through CoreDNS only; no upstream exists here
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $pki/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $pki/kubelet-server.crt
tlsPrivateKeyFile: $pki/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
maxPods: 60
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
  spawn kubelet "$(need_bin kubelet)" \
    --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  wait_for "kubelet (node $NODE_NAME Ready)" kubelet \
    kubectl_quiet wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
}

start_kube_proxy() {
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $STATE/kubeconfig }
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: [$NODE_IP/32]
iptables: { masqueradeAll: true }
conntrack: { maxPerCore: 0 }
EOF
  spawn kube-proxy "$(need_bin kube-proxy)" --config="$STATE/kube-proxy.yaml" --v=1
  wait_for "kube-proxy (service rules in iptables)" kube-proxy iptables -t nat -n -L KUBE-SERVICES
}

start_coredns() {
  local ready
  ready="$(free_port)"
  cat >"$STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:$ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kubeconfig currency-nodes-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
EOF
  spawn coredns "$(need_bin coredns)" -conf "$STATE/Corefile"
  wait_for "CoreDNS" coredns curl -fsS --max-time 2 "http://127.0.0.1:$ready/ready"
}

start_node() {
  command -v ctr >/dev/null 2>&1 || die "ctr not found (Debian's containerd): run scripts/setup/k8s.sh 2"
  make_node_pki
  start_control_plane_controllers
  make_pod_network
  start_containerd
  start_kubelet
  start_kube_proxy
  start_coredns
}

# cluster.sh load-image IMAGE... : copies images from the Docker engine into the node.
load_images() {
  local img
  for img in "$@"; do
    docker image inspect "$img" >/dev/null 2>&1 || die "image $img is not in the Docker engine"
    docker save "$img" | ctr_k8s images import --no-unpack - >/dev/null || die "importing $img failed"
    log "loaded $img"
  done
}

# What kube-proxy --cleanup leaves: the kubelet's own chains (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, ...) and the jumps to them, in IPv4 and IPv6, every table.
remove_kube_iptables() {
  local cmd t rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null 2>&1 || continue
    for t in filter nat mangle; do
      "$cmd" -t "$t" -S >/dev/null 2>&1 || continue
      # Jumps from built-in chains (-A INPUT ... -j KUBE-X) become deletions (-D INPUT ...).
      "$cmd" -t "$t" -S | grep -E '^-A [A-Z]+ .*-j KUBE-' | sed 's/^-A /-D /' |
        while read -r rule; do eval "$cmd -t $t $rule" 2>/dev/null || true; done
      for chain in $("$cmd" -t "$t" -S | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do "$cmd" -t "$t" -F "$chain" 2>/dev/null || true; done
      for chain in $("$cmd" -t "$t" -S | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do "$cmd" -t "$t" -X "$chain" 2>/dev/null || true; done
    done
  done
}

stop_node() {
  # The kubelet first, or it restarts what is stopped next; then every container.
  stop_one kubelet
  if [ -S "$CONTAINERD_SOCK" ]; then
    local t
    for t in $(ctr_k8s tasks ls -q 2>/dev/null); do
      ctr_k8s tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for _ in $(seq 1 40); do
      [ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ] && break
      for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true; done
      sleep 0.25
    done
  fi
  stop_one containerd
  # Shims outlive containerd by design; theirs name our socket.
  pkill -KILL -f -- "-address $CONTAINERD_SOCK" 2>/dev/null || true
  stop_one kube-proxy
  [ -f "$STATE/kube-proxy.yaml" ] && "$(need_bin kube-proxy)" --cleanup >/dev/null 2>&1 || true
  iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || true
  remove_kube_iptables
  if [ -f "$STATE/bridge" ]; then ip link del "$BRIDGE" 2>/dev/null || true; fi
  # The kubelet's pod cgroups (cgroupfs driver), deepest first.
  local cg
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
