#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local stand-ins for the third-party images of deploy/compose, for machines that reach no
# container registry (users with one get the official images named in deploy/compose/.env):
#   local/prometheus:debian-bookworm   Debian's `prometheus` package on the debootstrap base
#   local/jaeger:2.13.0                Jaeger v2 built from the Go module proxy
#   local/otelcol:0.140.0              the same binary: Jaeger v2 is an OpenTelemetry Collector
#                                      distribution with the Collector's v0.140.0 components
# Grafana has no Debian package and no source build that fits here: not built (see
# deploy/compose/README.md). Idempotent; the Go binary is cached in $CURRENCY_NODES_CACHE/bin.
LOG_NAME=standins
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

docker_up || die "the Docker engine is not running (run scripts/setup/docker/engine.sh)"
image_exists "$DEBIAN_IMAGE" || die "$DEBIAN_IMAGE not found (run scripts/setup/docker/base-images.sh)"
debian_id="$("$DOCKER" image inspect -f '{{.Id}}' "$DEBIAN_IMAGE" | cut -c8-19)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- Prometheus ----------------------------------------------------------------------------
prom_key="prometheus-debian-${DEBIAN_SUITE}-r${RECIPE_REV}-$debian_id-$(sha256sum "$SETUP_DOCKER_DIR/prometheus.Dockerfile" | cut -c1-12)"
if [ "$(image_key "$PROMETHEUS_IMAGE")" = "$prom_key" ]; then
  log "$PROMETHEUS_IMAGE is up to date"
else
  start=$(now)
  log "building $PROMETHEUS_IMAGE (apt-get install prometheus on $DEBIAN_IMAGE)"
  mkdir -p "$work/prometheus"
  cp "$SETUP_DOCKER_DIR/prometheus.Dockerfile" "$work/prometheus/Dockerfile"
  docker_build -t "$PROMETHEUS_IMAGE" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    --build-arg "SETUP_KEY=$prom_key" "$work/prometheus" >"$work/prometheus.log" 2>&1 || {
    tail -n 40 "$work/prometheus.log" >&2
    die "building $PROMETHEUS_IMAGE failed (last lines above)"
  }
  log "built $PROMETHEUS_IMAGE in $(($(now) - start)) s"
fi

# ---- Jaeger (and the Collector stand-in) ---------------------------------------------------
jaeger_bin="$CACHE/bin/jaeger-$JAEGER_MODULE_VERSION"
jaeger_key="jaeger-$JAEGER_VERSION-$JAEGER_MODULE_VERSION-r${RECIPE_REV}-$debian_id-$(sha256sum "$SETUP_DOCKER_DIR/jaeger.Dockerfile" | cut -c1-12)"
if [ "$(image_key "$JAEGER_IMAGE")" = "$jaeger_key" ] && [ "$(image_key "$OTELCOL_IMAGE")" = "$jaeger_key" ]; then
  log "$JAEGER_IMAGE and $OTELCOL_IMAGE are up to date"
  exit 0
fi
[ -x "$jaeger_bin" ] || bash "$SETUP_DOCKER_DIR/jaeger-bin.sh"
[ -x "$jaeger_bin" ] || die "$jaeger_bin missing after jaeger-bin.sh"
start=$(now)
mkdir -p "$work/jaeger"
cp "$jaeger_bin" "$work/jaeger/jaeger"
cp "$SETUP_DOCKER_DIR/jaeger.Dockerfile" "$work/jaeger/Dockerfile"
docker_build -t "$JAEGER_IMAGE" -t "$OTELCOL_IMAGE" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
  --build-arg "SETUP_KEY=$jaeger_key" "$work/jaeger" >"$work/jaeger.log" 2>&1 || {
  tail -n 40 "$work/jaeger.log" >&2
  die "building $JAEGER_IMAGE failed (last lines above)"
}
log "built $JAEGER_IMAGE and $OTELCOL_IMAGE in $(($(now) - start)) s"
