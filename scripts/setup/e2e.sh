#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Everything the e2e tier (tests-e2e/, `npm run test:e2e`) needs on a fresh machine with no
# container registry, and nothing a machine with Docker already has:
#   1. engine:       Debian's docker.io + debootstrap (apt), dockerd started in the background
#   2. base images:  local/debian:bookworm-minbase (debootstrap) and local/node:24-bookworm-slim
#   3. compose:      the Compose v2 plugin, built from the Go module proxy
#   4. stand-ins:    Prometheus (Debian package), Jaeger / OpenTelemetry Collector (Go build)
#   5. writes $CURRENCY_NODES_CACHE/docker/e2e-images.env: the image tags the tests use
# The project's own images are built by the tests (scripts/setup/docker/build-images.sh), so
# they always match the sources under test.
#
# Idempotent and cached under ${CURRENCY_NODES_CACHE:-$HOME/.cache/currency-nodes}, keyed by
# the versions pinned in scripts/setup/docker/lib.sh: a second run only checks. Fails (exit 1,
# with the reason) when anything cannot be installed or built; never skips a step silently.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/docker" && pwd)"
LOG_NAME=e2e
# shellcheck source=docker/lib.sh
source "$DIR/lib.sh"

t0=$(now)
bash "$DIR/engine.sh"

# The Go builds (Compose, Jaeger) are CPU work, the base images mostly network and disk:
# run the Go builds in the background meanwhile. Each writes its own log, shown at the end.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
bash "$DIR/compose.sh" >"$logs/compose.log" 2>&1 &
compose_pid=$!
bash "$DIR/jaeger-bin.sh" >"$logs/jaeger.log" 2>&1 &
jaeger_pid=$!
base_rc=0
bash "$DIR/base-images.sh" || base_rc=$?
compose_rc=0
wait "$compose_pid" || compose_rc=$?
jaeger_rc=0
wait "$jaeger_pid" || jaeger_rc=$?
cat "$logs/compose.log" "$logs/jaeger.log" >&2
[ "$base_rc" -eq 0 ] || die "base images failed (exit $base_rc)"
[ "$compose_rc" -eq 0 ] || die "the compose plugin failed (exit $compose_rc; log above)"
[ "$jaeger_rc" -eq 0 ] || die "the jaeger build failed (exit $jaeger_rc; log above)"

bash "$DIR/standins.sh"

# Earlier versions of the local images, now untagged, would pile up.
"$DOCKER" image prune -f --filter "label=io.currency-nodes.setup-key" >/dev/null || true

env_file="$DOCKER_CACHE/e2e-images.env"
cat >"$env_file.tmp" <<ENV
# Written by scripts/setup/e2e.sh: local image tags for the e2e tests (deploy/compose variables).
NODE_BASE_IMAGE=$NODE_BASE_IMAGE
CONTROLLER_IMAGE=${IMAGE_PREFIX:-currency-nodes}/controller:${IMAGE_TAG:-e2e}
NODE_IMAGE=${IMAGE_PREFIX:-currency-nodes}/node:${IMAGE_TAG:-e2e}
CLI_IMAGE=${IMAGE_PREFIX:-currency-nodes}/cli:${IMAGE_TAG:-e2e}
PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE
OTEL_COLLECTOR_IMAGE=$OTELCOL_IMAGE
JAEGER_IMAGE=$JAEGER_IMAGE
ENV
mv -f "$env_file.tmp" "$env_file"

docker compose version >/dev/null 2>&1 || die "'docker compose' does not run (plugin in ~/.docker/cli-plugins)"
log "ready in $(($(now) - t0)) s: engine $("$DOCKER" version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /'), images in $env_file"
