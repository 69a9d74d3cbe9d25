#!/usr/bin/env bash
# Development credentials for compose.secure.yaml: a CA, the controller's certificate
# (SANs DNS:controller, DNS:localhost, IP:127.0.0.1) and two bearer tokens (nodes, CLI),
# made with openssl only. NOT for production: the CA key stays beside the certificates.
#
#   ./make-dev-secrets.sh            # writes ./secrets/ (kept if it is already complete)
#   ./make-dev-secrets.sh --force    # replaces them
#   ./make-dev-secrets.sh DIR        # writes DIR instead (compose: CURRENCY_SECRETS_DIR=DIR)
#
# Files: ca.crt, ca.key, controller.crt, controller.key, node.token, cli.token.
# Permissions: the directory 0700 (only you reach it on the host), the files 0444 (ca.key
# 0400, mounted nowhere): compose
# bind-mounts file secrets with their host owner and mode (it cannot change them outside
# Swarm), and the programs run as uid 1000 in the images, so they must be world-readable
# inside the private directory.
set -euo pipefail

force=0
dir=''
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,14p' "$0"
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
files=(ca.crt ca.key controller.crt controller.key node.token cli.token)

complete=1
for f in "${files[@]}"; do [ -s "$dir/$f" ] || complete=0; done
if [ "$complete" = 1 ] && [ "$force" = 0 ]; then
  echo "make-dev-secrets.sh: $dir is complete, kept (--force to replace)"
  exit 0
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

# The controller's key and certificate, signed by the CA.
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$work/controller.key" -out "$work/controller.csr" -subj '/CN=controller' 2> /dev/null
printf '%s\n' \
  'basicConstraints=critical,CA:FALSE' \
  'keyUsage=critical,digitalSignature,keyEncipherment' \
  'extendedKeyUsage=serverAuth' \
  'subjectAltName=DNS:controller,DNS:localhost,IP:127.0.0.1' > "$work/controller.ext"
openssl x509 -req -in "$work/controller.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 825 -extfile "$work/controller.ext" \
  -out "$work/controller.crt" 2> /dev/null
openssl verify -CAfile "$work/ca.crt" "$work/controller.crt" > /dev/null

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
