#!/usr/bin/env bash
# The Grafana dashboards are generated: TypeScript sources in deploy/observability/grafana/src
# (built with @grafana/grafana-foundation-sdk) -> deploy/observability/grafana/dashboards/*.json,
# which the Helm chart copies (scripts/sync-chart-assets.sh). Edit the sources, never the JSON.
#
#   scripts/dashboards.sh          compile the sources, write the JSON, sync the chart's copies
#   scripts/dashboards.sh --check  exit 1 when the JSON or the chart's copies of it differ from
#                                  what the sources give (writes nothing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SRC=deploy/observability/grafana/src
OUT=deploy/observability/grafana/dashboards
CHART_COPIES=deploy/helm/currency-nodes/files/dashboards
mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

# Compiled inside the repository so that the generator finds node_modules.
mkdir -p .tools
scratch="$(mktemp -d "$ROOT/.tools/dashboards.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
npx --no-install tsc -p "$SRC/tsconfig.json" --outDir "$scratch/js"

if [ "$mode" = write ]; then
  node "$scratch/js/generate.js" "$OUT"
  echo "generated $OUT/*.json from $SRC"
  bash scripts/sync-chart-assets.sh
  exit 0
fi

node "$scratch/js/generate.js" "$scratch/json"
stale=0
if ! diff -r "$OUT" "$scratch/json" >/dev/null; then
  { diff -ru "$OUT" "$scratch/json" || true; } | sed -n 1,40p
  echo "$OUT is stale or hand-edited: change $SRC, then run 'npm run dashboards'" >&2
  stale=1
fi
for f in "$scratch"/json/*.json; do
  if ! cmp -s "$f" "$CHART_COPIES/$(basename "$f")"; then
    echo "stale   $CHART_COPIES/$(basename "$f")" >&2
    stale=1
  fi
done
[ "$stale" -eq 0 ] || {
  echo "dashboards are stale: run 'npm run dashboards' and commit the result" >&2
  exit 1
}
echo "dashboards are up to date"
