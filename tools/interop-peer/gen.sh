#!/usr/bin/env bash
# Regenerates tools/interop-peer/gen from proto/ with the pinned Go plugins.
# Usage: gen.sh [OUT_ROOT]  (OUT_ROOT replaces the repository root as the output root:
# scripts/check-generated.sh generates into a scratch copy and compares).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
plugins="$(bash scripts/setup/interop.sh plugins)"
template="$ROOT/tools/interop-peer/buf.gen.yaml"
if [ -n "${1:-}" ]; then
  sed "s#out: tools/interop-peer#out: $1/tools/interop-peer#" "$template" >"$1/buf.gen.go.yaml"
  template="$1/buf.gen.go.yaml"
else
  rm -rf tools/interop-peer/gen
fi
PATH="$plugins:$PATH" npx --no-install buf generate --template "$template"
