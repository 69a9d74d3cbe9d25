#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the pinned Jaeger v2 binary from the Go module proxy into
# $CURRENCY_NODES_CACHE/bin/jaeger-<module version>, for the stand-in images (standins.sh).
# Separate from standins.sh so that e2e.sh can run it alongside the other builds.
LOG_NAME=jaeger-bin
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jaeger_bin="$CACHE/bin/jaeger-$JAEGER_MODULE_VERSION"
if [ -x "$jaeger_bin" ]; then
  log "jaeger $JAEGER_VERSION already built: $jaeger_bin"
  exit 0
fi
go_env
mkdir -p "$CACHE/bin"
start=$(now)
log "building jaeger $JAEGER_VERSION (module $JAEGER_MODULE_VERSION) from the Go module proxy (cold: several minutes)"
src="$(go_module_dir "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Its go.mod has a replace directive, which `go install pkg@version` refuses: build the
# module's own source as the main module.
cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
(cd "$work/src" && go build -trimpath -ldflags "-s -w" -o "$jaeger_bin.new" ./cmd/jaeger) >"$work/build.log" 2>&1 || {
  grep -v '^go: downloading' "$work/build.log" | tail -n 50 >&2
  die "building jaeger $JAEGER_MODULE_VERSION failed (last lines above)"
}
mv -f "$jaeger_bin.new" "$jaeger_bin"
log "built jaeger in $(($(now) - start)) s: $jaeger_bin"
