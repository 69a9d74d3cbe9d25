#!/usr/bin/env bash
# Fails when services/gen is stale: regenerates into a scratch copy and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed "s#out: services/gen#out: $scratch/gen#" buf.gen.yaml > "$scratch/buf.gen.yaml"
npx --no-install buf generate --template "$scratch/buf.gen.yaml"
if ! diff -r services/gen "$scratch/gen" >/dev/null; then
  diff -ru services/gen "$scratch/gen" | head -40
  echo "services/gen is stale: run 'npm run gen' and commit the result" >&2
  exit 1
fi
echo "generated code is up to date"
