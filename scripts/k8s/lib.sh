# shellcheck shell=bash
# Helpers shared by scripts/k8s/cluster.sh and scripts/k8s/node.sh (sourced, not run).

STATE="${K8S_STATE_DIR:-${TMPDIR:-/tmp}/currency-nodes-k8s}"
K8S_BIN_DIR="${K8S_BIN_DIR:-${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/k8s/bin}"
START_TIMEOUT="${K8S_START_TIMEOUT:-90}"
# Virtual Service IPs (kube-proxy's iptables rules; nothing listens there) and their first IP.
SERVICE_CIDR="10.96.0.0/24"
SERVICE_IP_API="10.96.0.1"

log() { printf 'k8s: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

need_bin() {
  local name="$1" p
  if [ -x "$K8S_BIN_DIR/$name" ]; then
    p="$K8S_BIN_DIR/$name"
  else
    p="$(command -v "$name" 2>/dev/null)" || die "$name not found in $K8S_BIN_DIR or on PATH: run scripts/setup/k8s.sh first"
  fi
  printf '%s\n' "$p"
}

# A TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

openssl_quiet() {
  local out
  out="$(openssl "$@" 2>&1)" || {
    printf '%s\n' "$out" >&2
    die "openssl $1 failed"
  }
}

# issue_cert NAME SUBJECT EXTENSIONS(, separated; may be empty) USAGE(serverAuth|clientAuth|both)
issue_cert() {
  local name="$1" subj="$2" san="$3" usage="$4" pki="$STATE/pki" ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    case "$usage" in
      serverAuth) echo "extendedKeyUsage=serverAuth" ;;
      clientAuth) echo "extendedKeyUsage=clientAuth" ;;
      both) echo "extendedKeyUsage=serverAuth,clientAuth" ;;
    esac
    [ -z "$san" ] || echo "$san"
  } >"$ext"
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$pki/$name.key" -out "$pki/$name.csr"
  openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$pki/$name.crt"
  rm -f "$ext" "$pki/$name.csr"
}

# write_kubeconfig FILE CERT_NAME SERVER
write_kubeconfig() {
  local file="$1" name="$2" server="$3" pki="$STATE/pki"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: currency-nodes-test
    cluster:
      server: $server
      certificate-authority: $pki/ca.crt
users:
  - name: $name
    user:
      client-certificate: $pki/$name.crt
      client-key: $pki/$name.key
contexts:
  - name: currency-nodes-test
    context: { cluster: currency-nodes-test, user: $name }
current-context: currency-nodes-test
EOF
  chmod 600 "$file"
}

kubectl_quiet() {
  "$(need_bin kubectl)" --kubeconfig="$STATE/kubeconfig" --request-timeout=5s "$@" >/dev/null 2>&1
}

kubectl_admin() {
  "$(need_bin kubectl)" --kubeconfig="$STATE/kubeconfig" --request-timeout=30s "$@"
}

# spawn NAME BINARY ARGS... : start a long-running component in its own session; its output
# goes to $STATE/logs/NAME.log and its pid to $STATE/pids/NAME.pid.
spawn() {
  local name="$1"
  shift
  mkdir -p "$STATE/logs" "$STATE/pids"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name.pid"
  # Creation order, so `down` stops in reverse.
  echo "$name" >>"$STATE/pids/order"
}

# wait_for WHAT PROCESS_NAME COMMAND... : until COMMAND succeeds, at most START_TIMEOUT s;
# fails at once if the process died.
wait_for() {
  local what="$1" name="$2" deadline t0
  shift 2
  t0=$(date +%s)
  deadline=$((t0 + START_TIMEOUT))
  while :; do
    if "$@" >/dev/null 2>&1; then
      log "$what ready in $(($(date +%s) - t0)) s"
      return 0
    fi
    if [ -n "$name" ] && ! kill -0 "$(cat "$STATE/pids/$name.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
      log "$what exited; the end of its log:"
      tail -n 40 "$STATE/logs/$name.log" >&2 || true
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "$what not ready after ${START_TIMEOUT} s; the end of its log:"
      [ -z "$name" ] || tail -n 40 "$STATE/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

ensure_default_serviceaccount() {
  local ns="$1"
  kubectl_quiet -n "$ns" get serviceaccount default ||
    kubectl_admin -n "$ns" create serviceaccount default >/dev/null
}

# stop_one NAME: SIGTERM to what spawn started as NAME (its whole session), SIGKILL after 10 s.
stop_one() {
  local name="$1" pid
  pid="$(cat "$STATE/pids/$name.pid" 2>/dev/null)" || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  log "$name did not stop in 10 s: SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# Stop everything spawn started, newest first.
stop_all() {
  local order="$STATE/pids/order" name
  [ -f "$order" ] || return 0
  for name in $(tac "$order"); do stop_one "$name"; done
  rm -f "$order"
}

umount_under() {
  local dir="$1" m
  # Deepest first.
  for m in $(awk -v d="$dir" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

on_failure() {
  local code=$?
  trap - ERR
  log "start-up failed (exit $code); stopping what started and removing $STATE"
  if declare -F stop_node >/dev/null; then stop_node || true; fi
  stop_all || true
  umount_under "$STATE"
  rm -rf "$STATE"
  exit 1
}
