#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Docker Compose v2 plugin, built from the Go module proxy (it is no Debian package here and
# no prebuilt binary can be downloaded) into ~/.docker/cli-plugins/docker-compose, so both
# `docker compose` and Testcontainers' compose support find it. Pinned: COMPOSE_VERSION in
# lib.sh. v2.40.3 negotiates the API down to Debian's engine 20.10 (API 1.41).
#
# `go install module/cmd@version` refuses modules whose go.mod has exclude directives, as
# Compose's does; so the module's source is taken from the module cache and built as the main
# module. The binary is cached under $CURRENCY_NODES_CACHE/bin, keyed by version.
LOG_NAME=compose
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
plugin="$plugin_dir/docker-compose"
cached="$CACHE/bin/docker-compose-$COMPOSE_VERSION"
mkdir -p "$plugin_dir" "$CACHE/bin"

version_of() { "$1" version --short 2>/dev/null | sed 's/^v//' || true; }

if [ -x "$plugin" ] && [ "$(version_of "$plugin")" = "${COMPOSE_VERSION#v}" ]; then
  log "compose $COMPOSE_VERSION already installed: $plugin"
  exit 0
fi

if [ ! -x "$cached" ] || [ "$(version_of "$cached")" != "${COMPOSE_VERSION#v}" ]; then
  go_env
  start=$(now)
  log "building compose $COMPOSE_VERSION from the Go module proxy (cold: about 3 minutes)"
  src="$(go_module_dir "github.com/docker/compose/v2@$COMPOSE_VERSION")"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
  (cd "$work/src" && go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
    -o "$cached.new" ./cmd) >"$work/build.log" 2>&1 || {
    grep -v '^go: downloading' "$work/build.log" | tail -n 50 >&2
    die "building compose $COMPOSE_VERSION failed (last lines above)"
  }
  mv -f "$cached.new" "$cached"
  log "built compose $COMPOSE_VERSION in $(($(now) - start)) s"
fi
install -m 0755 "$cached" "$plugin"
[ "$(version_of "$plugin")" = "${COMPOSE_VERSION#v}" ] || die "$plugin does not report version $COMPOSE_VERSION"
log "installed compose $COMPOSE_VERSION: $plugin"
