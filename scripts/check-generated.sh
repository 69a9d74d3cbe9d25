#!/usr/bin/env bash
# Fails when services/gen or tools/interop-peer/gen is stale: regenerates into a scratch copy and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed "s#out: services/gen#out: $scratch/gen#" buf.gen.yaml > "$scratch/buf.gen.yaml"
npx --no-install buf generate --template "$scratch/buf.gen.yaml"
if ! diff -r services/gen "$scratch/gen" >/dev/null; then
  { diff -ru services/gen "$scratch/gen" || true; } | sed -n 1,40p
  echo "services/gen is stale: run 'npm run gen' and commit the result" >&2
  exit 1
fi
# The interop peer's Go code (tools/interop-peer/gen), from the same proto/ with the pinned
# Go plugins (built by scripts/setup/interop.sh, which needs Go).
mkdir -p "$scratch/go"
bash tools/interop-peer/gen.sh "$scratch/go"
if ! diff -r tools/interop-peer/gen "$scratch/go/tools/interop-peer/gen" >/dev/null; then
  { diff -ru tools/interop-peer/gen "$scratch/go/tools/interop-peer/gen" || true; } | sed -n 1,40p
  echo "tools/interop-peer/gen is stale: run tools/interop-peer/gen.sh and commit the result" >&2
  exit 1
fi
echo "generated code is up to date"
