#!/usr/bin/env bash
# Development credentials for compose.secure.yaml: a CA, the controller's certificate
# (SANs DNS:controller, DNS:localhost, IP:127.0.0.1), a client certificate per role for
# mutual TLS (OU=currency-node, OU=currency-cli) and two bearer tokens (nodes, CLI), made
# with openssl only. NOT for production: the CA key stays beside the certificates.
#
#   ./make-dev-secrets.sh            # writes ./secrets/ (kept if it is already complete)
#   ./make-dev-secrets.sh --force    # replaces them
#   ./make-dev-secrets.sh DIR        # writes DIR instead (compose: CURRENCY_SECRETS_DIR=DIR)
#
# Files: ca.crt, ca.key, controller.crt, controller.key, node.crt, node.key, cli.crt,
# cli.key, node.token, cli.token. An incomplete set (e.g. one made before the client
# certificates existed) is replaced as a whole, CA and tokens included.
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
      sed -n '2,17p' "$0"
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
files=(ca.crt ca.key controller.crt controller.key node.crt node.key cli.crt cli.key node.token cli.token)

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

for f in "${files[@]}"; do
  rm -f "$dir/$f"
  cp "$work/$f" "$dir/$f"
  chmod 0444 "$dir/$f"
done
chmod 0400 "$dir/ca.key" # signs certificates; mounted nowhere
echo "make-dev-secrets.sh: wrote ${files[*]} to $dir"
