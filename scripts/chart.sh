#!/usr/bin/env bash
# `npm run chart`: packages deploy/helm/currency-nodes with `helm package`, chart version and
# appVersion both package.json's version (so the chart's default image tag is the tag
# `npm run images` builds), into dist/chart/; with --push, pushes it to an OCI registry.
#
#   npm run chart                                        # dist/chart/currency-nodes-<version>.tgz
#   npm run chart -- --push oci://registry.example.com/charts
#   helm install cn oci://registry.example.com/charts/currency-nodes --version <version> \
#     --set image.registry=<the IMAGE_PREFIX of npm run images>
#
# Options:
#   --push oci://HOST/PATH   helm push the package there (log in first: helm registry login HOST)
#   --plain-http             registry without TLS (a local test registry), for helm push
#   --destination DIR        where the package goes (default: dist/chart)
# Environment: HELM_BIN (default: helm on PATH, else the pinned one of `npm run setup:helm`).
#
# Exit codes: 0 done, 1 helm failed or the chart's copied assets are stale, 2 bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/deploy/helm/currency-nodes"

log() { printf 'chart: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
usage_error() {
  log "ERROR: $*"
  log "usage: npm run chart -- [--push oci://HOST/PATH] [--plain-http] [--destination DIR]"
  exit 2
}

push=''
plain_http=()
dest="$ROOT/dist/chart"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --push)
      [ "$#" -ge 2 ] || usage_error "--push needs an oci:// reference"
      push="$2"
      shift 2
      ;;
    --plain-http)
      plain_http=(--plain-http)
      shift
      ;;
    --destination)
      [ "$#" -ge 2 ] || usage_error "--destination needs a directory"
      dest="$2"
      shift 2
      ;;
    -h | --help)
      sed -n '/^# `npm run/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p'
      exit 0
      ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done
# helm push wants the repository without the chart's name or a tag: oci://host[:port][/path].
if [ -n "$push" ] && ! [[ "$push" =~ ^oci://[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$ ]]; then
  usage_error "--push '$push' is not an OCI repository like oci://registry.example.com/charts"
fi

if [ -n "${HELM_BIN:-}" ]; then
  helm="$HELM_BIN"
elif command -v helm >/dev/null 2>&1; then
  helm="$(command -v helm)"
else
  helm="${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}/bin/helm"
fi
[ -x "$helm" ] || die "helm not found: install Helm 3.8+ (or run: npm run setup:helm, or set HELM_BIN)"

version="$(cd "$ROOT" && node -p 'require("./package.json").version')" || die "cannot read the version from package.json"
# The chart ships copies of the dashboards and rules: never package stale ones.
bash "$ROOT/scripts/sync-chart-assets.sh" --check >&2 ||
  die "the chart's copies of deploy/observability are stale: run scripts/sync-chart-assets.sh"

mkdir -p "$dest" || die "cannot create $dest"
pkg="$dest/currency-nodes-$version.tgz"
"$helm" package "$CHART" --version "$version" --app-version "$version" --destination "$dest" >&2 ||
  die "helm package failed"
[ -s "$pkg" ] || die "helm package did not write $pkg"
log "packaged $pkg (chart $version, app $version)"

if [ -n "$push" ]; then
  "$helm" push "$pkg" "$push" "${plain_http[@]}" >&2 ||
    die "helm push to $push failed (log in first: helm registry login ${push#oci://})"
  log "pushed; install with: helm install cn $push/currency-nodes --version $version"
  echo "$push/currency-nodes:$version"
else
  echo "$pkg"
fi
