#!/usr/bin/env bash
# Development credentials for compose.secure.yaml: a CA, the controller's certificate
# (SANs DNS:controller, DNS:localhost, IP:127.0.0.1), a client certificate per role for
# mutual TLS (OU=currency-node, OU=currency-cli), bearer tokens (nodes, CLI), bound node
# identities for node-fx and node-crypto, and the metrics ports' protection. Made with
# openssl; the bcrypt hash with htpasswd, or Node.js and this repository's bcryptjs, or
# python3's bcrypt (the first found). NOT for production: the CA key stays beside the
# certificates.
#
#   ./make-dev-secrets.sh            # writes ./secrets/ (kept if it is already complete)
#   ./make-dev-secrets.sh --force    # replaces them
#   ./make-dev-secrets.sh DIR        # writes DIR instead (compose: CURRENCY_SECRETS_DIR=DIR)
#
# Files: ca.crt, ca.key, controller.crt, controller.key, node.crt, node.key, cli.crt,
# cli.key, node.token, cli.token; node-fx.{crt,key,token}, node-crypto.{crt,key,token}
# (certificates with URI SAN spiffe://currency-nodes/node/<uuid>, tokens bound to that UUID
# in node.tokens, the controller's node tokens file); metrics.crt, metrics.key (the metrics
# ports' server certificate, DNS:metrics), prometheus.crt, prometheus.key (Prometheus's
# client certificate), metrics.password and metrics-web.yml (METRICS_WEB_CONFIG_FILE: TLS,
# client certificates from the CA, basic auth user prometheus with the password's bcrypt
# hash). The bound UUIDs are NODE_FX_UUID / NODE_CRYPTO_UUID (defaults below, the same as
# compose.secure.yaml's). An incomplete set (e.g. one made before a file was added) is
# replaced as a whole, CA and tokens included.
# Permissions: the directory 0700 (only you reach it on the host), the files 0444 (ca.key
# 0400, mounted nowhere): compose bind-mounts file secrets with their host owner and mode
# (it cannot change them outside Swarm), and the programs run as uid 1000 in the images,
# so they must be world-readable inside the private directory.
set -euo pipefail

force=0
dir=''
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,27p' "$0"
      exit 0
      ;;
    -*)
      echo "make-dev-secrets.sh: unknown option $arg" >&2
      exit 2
      ;;
    *) dir="$arg" ;;
  esac
done
dir="${dir:-$(cd "$(dirname "$0")" && pwd)/secrets}"
files=(ca.crt ca.key controller.crt controller.key node.crt node.key cli.crt cli.key node.token cli.token
  node-fx.crt node-fx.key node-fx.token node-crypto.crt node-crypto.key node-crypto.token node.tokens
  metrics.crt metrics.key prometheus.crt prometheus.key metrics.password metrics-web.yml)
fx_uuid="${NODE_FX_UUID:-6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e01}"
crypto_uuid="${NODE_CRYPTO_UUID:-6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e02}"

missing=()
for f in "${files[@]}"; do [ -s "$dir/$f" ] || missing+=("$f"); done
if [ "${#missing[@]}" = 0 ] && [ "$force" = 0 ]; then
  echo "make-dev-secrets.sh: $dir is complete, kept (--force to replace)"
  exit 0
fi
if [ "$force" = 0 ] && [ "${#missing[@]}" -lt "${#files[@]}" ]; then
  echo "make-dev-secrets.sh: $dir lacks ${missing[*]}: making a new set (CA and tokens too)"
fi

command -v openssl > /dev/null || {
  echo "make-dev-secrets.sh: openssl not found" >&2
  exit 2
}
mkdir -p "$dir"
chmod 0700 "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The CA (EC P-256, 825 days).
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$work/ca.key" -out "$work/ca.crt" -days 825 -subj '/CN=currency-nodes dev CA' \
  -addext 'basicConstraints=critical,CA:TRUE' \
  -addext 'keyUsage=critical,keyCertSign,cRLSign' 2> /dev/null

# A key and a certificate signed by the CA: issue NAME SUBJECT EXTENSION-LINES...
issue() {
  local name="$1" subj="$2"
  shift 2
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$work/$name.key" -out "$work/$name.csr" -subj "$subj" 2> /dev/null
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' "$@" > "$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -extfile "$work/$name.ext" \
    -out "$work/$name.crt" 2> /dev/null
  openssl verify -CAfile "$work/ca.crt" "$work/$name.crt" > /dev/null
}

# The controller's certificate: the names clients dial.
issue controller '/CN=controller' \
  'keyUsage=critical,digitalSignature,keyEncipherment' \
  'extendedKeyUsage=serverAuth' \
  'subjectAltName=DNS:controller,DNS:localhost,IP:127.0.0.1'

# Client certificates for mutual TLS; the OU is the role the controller reads
# (CONTROLLER_TLS_CLIENT_CERT_ROLES=true): currency-node is a node, currency-cli a CLI.
for role in node cli; do
  issue "$role" "/OU=currency-$role/CN=currency-$role" \
    'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=clientAuth'
done

# One token per role (64 hex characters).
openssl rand -hex 32 > "$work/node.token"
openssl rand -hex 32 > "$work/cli.token"

# Bound node identities: node-fx and node-crypto may claim only their own UUID, by
# certificate (URI SAN) and by token (a `TOKEN UUID` line). The scalable `node` service's
# replicas share one certificate and one bare token: any UUID that no token line binds (the
# weaker choice; replicas made by --scale have no identity of their own to bind). They cannot
# take node-fx's or node-crypto's UUID: a UUID bound in node.tokens is reserved for its token.
for svc in "node-fx:$fx_uuid" "node-crypto:$crypto_uuid"; do
  name="${svc%%:*}" uuid="${svc#*:}"
  issue "$name" "/OU=currency-node/CN=$name" \
    'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=clientAuth' \
    "subjectAltName=URI:spiffe://currency-nodes/node/$uuid"
  openssl rand -hex 32 > "$work/$name.token"
done
{
  echo '# TOKEN (any node UUID) or TOKEN UUID[,UUID...] (only those): docs/security.md'
  cat "$work/node.token"
  echo "$(cat "$work/node-fx.token") $fx_uuid"
  echo "$(cat "$work/node-crypto.token") $crypto_uuid"
} > "$work/node.tokens"

# The metrics ports (controller and nodes): one server certificate with a name Prometheus
# verifies (tls_config.server_name: metrics), a client certificate for Prometheus, and a
# password whose bcrypt hash goes into the exporter-toolkit web config.
issue metrics '/CN=metrics' \
  'keyUsage=critical,digitalSignature,keyEncipherment' \
  'extendedKeyUsage=serverAuth' \
  'subjectAltName=DNS:metrics,DNS:localhost,IP:127.0.0.1'
issue prometheus '/OU=prometheus/CN=prometheus' \
  'keyUsage=critical,digitalSignature' \
  'extendedKeyUsage=clientAuth'
openssl rand -hex 24 | tr -d '\n' > "$work/metrics.password"

# bcrypt (cost 10) of the password on stdin, by the first tool found.
bcrypt_hash() {
  local repo
  repo="$(cd "$(dirname "$0")/../.." && pwd)"
  if command -v htpasswd > /dev/null; then
    htpasswd -niBC 10 prometheus | cut -d: -f2-
  elif command -v node > /dev/null && [ -d "$repo/node_modules/bcryptjs" ]; then
    NODE_PATH="$repo/node_modules" node -e \
      "process.stdout.write(require('bcryptjs').hashSync(require('fs').readFileSync(0, 'utf8'), 10))"
  elif python3 -c 'import bcrypt' 2> /dev/null; then
    python3 -c 'import bcrypt, sys; print(bcrypt.hashpw(sys.stdin.buffer.read(), bcrypt.gensalt(10)).decode())'
  else
    echo "make-dev-secrets.sh: no bcrypt tool found: install htpasswd (apache2-utils), run npm ci in the repository, or pip install bcrypt" >&2
    return 2
  fi
}
hash="$(bcrypt_hash < "$work/metrics.password" | tr -d '\n')"
cat > "$work/metrics-web.yml" << EOF_WEB
# METRICS_WEB_CONFIG_FILE (Prometheus exporter-toolkit format) of the controller and nodes.
tls_server_config:
  cert_file: /run/secrets/metrics.crt
  key_file: /run/secrets/metrics.key
  client_ca_file: /run/secrets/ca.crt
  client_auth_type: RequireAndVerifyClientCert
basic_auth_users:
  prometheus: '$hash'
EOF_WEB

for f in "${files[@]}"; do
  rm -f "$dir/$f"
  cp "$work/$f" "$dir/$f"
  chmod 0444 "$dir/$f"
done
chmod 0400 "$dir/ca.key" # signs certificates; mounted nowhere
echo "make-dev-secrets.sh: wrote ${files[*]} to $dir"
