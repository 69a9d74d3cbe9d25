#!/usr/bin/env bash
# Copies the observability assets the Helm chart ships into the chart, because Helm can only
# read files inside the chart directory:
#   deploy/observability/grafana/dashboards/*.json  -> deploy/helm/currency-nodes/files/dashboards/
#   deploy/observability/prometheus/rules/*.rules.yml -> deploy/helm/currency-nodes/files/rules/
# (rule unit tests, *.rules.test.yml, stay behind). deploy/observability is the source of
# truth: edit there, then run this. tests/helm fails while the copies are stale. The
# dashboard JSON is generated from deploy/observability/grafana/src: `npm run dashboards`
# (scripts/dashboards.sh) writes it and then runs this.
#
#   scripts/sync-chart-assets.sh          copy (removes copies whose source is gone)
#   scripts/sync-chart-assets.sh --check  exit 1 and name the stale files, copy nothing
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/deploy/observability"
DST="$ROOT/deploy/helm/currency-nodes/files"
mode=copy
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

stale=0
# sync SRC_DIR GLOB DST_DIR
sync() {
  local from="$1" glob="$2" to="$3" f name
  mkdir -p "$to"
  shopt -s nullglob
  for f in "$from"/$glob; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$to/$name"; then
      stale=1
      if [ "$mode" = copy ]; then
        cp "$f" "$to/$name"
        echo "copied  ${f#"$ROOT"/} -> ${to#"$ROOT"/}/$name"
      else
        echo "stale   ${to#"$ROOT"/}/$name (differs from ${f#"$ROOT"/})"
      fi
    fi
  done
  for f in "$to"/$glob; do
    name="$(basename "$f")"
    if [ ! -e "$from/$name" ]; then
      stale=1
      if [ "$mode" = copy ]; then
        rm -f "$f"
        echo "removed ${f#"$ROOT"/} (no ${from#"$ROOT"/}/$name)"
      else
        echo "stale   ${f#"$ROOT"/} (no ${from#"$ROOT"/}/$name)"
      fi
    fi
  done
  shopt -u nullglob
}

[ -d "$SRC/grafana/dashboards" ] || { echo "missing $SRC/grafana/dashboards" >&2; exit 2; }
[ -d "$SRC/prometheus/rules" ] || { echo "missing $SRC/prometheus/rules" >&2; exit 2; }
sync "$SRC/grafana/dashboards" '*.json' "$DST/dashboards"
sync "$SRC/prometheus/rules" '*.rules.yml' "$DST/rules"

if [ "$mode" = check ] && [ "$stale" -ne 0 ]; then
  echo "chart assets are stale: run scripts/sync-chart-assets.sh" >&2
  exit 1
fi
[ "$stale" -eq 0 ] && echo "chart assets up to date"
exit 0
