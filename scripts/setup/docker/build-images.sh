#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the project's three images from the repository root, the way a user would
# (`docker build -f Dockerfile.<role> .`), plus what this machine needs:
#   --build-arg NODE_IMAGE=local/node:24-bookworm-slim   (no registry to pull node:24 from)
#   --secret npmrc/npm_ca                                  (npm through a TLS-inspecting proxy)
# Tags: ${IMAGE_PREFIX:-currency-nodes}/{controller,node,cli}:${IMAGE_TAG:-e2e}.
# Cheap when nothing changed (BuildKit's cache); the e2e tests run it before they start.
#
# Environment: NODE_IMAGE (base image; default the local one, built by base-images.sh),
# IMAGE_PREFIX, IMAGE_TAG, IMAGE_SOURCE (org.opencontainers.image.source label).
LOG_NAME=build-images
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

docker_up || die "the Docker engine is not running (run: npm run setup:e2e)"
base="${NODE_IMAGE:-$NODE_BASE_IMAGE}"
image_exists "$base" || die "base image $base not found (run: npm run setup:e2e)"
prefix="${IMAGE_PREFIX:-currency-nodes}"
tag="${IMAGE_TAG:-e2e}"

cd "$REPO_ROOT" || die "cannot cd to $REPO_ROOT"
version="$(node -p 'require("./package.json").version')" || die "cannot read the version from package.json"
# Read-only git: GIT_OPTIONAL_LOCKS=0 keeps `git status` from refreshing the index file.
export GIT_OPTIONAL_LOCKS=0
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then revision="$revision-dirty"; fi
source_url="${IMAGE_SOURCE:-}"

# npm settings for the build, as BuildKit secrets (never in a layer): this machine's CA bundle
# and an .npmrc pointing at it, plus this machine's registry setting. Written to a temp dir
# at run time only.
secrets=()
ca=/etc/ssl/certs/ca-certificates.crt
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -s "$ca" ]; then
  {
    echo "cafile=/run/secrets/npm_ca"
    reg="$(npm config get registry 2>/dev/null || true)"
    if [ -n "$reg" ]; then echo "registry=$reg"; fi
  } >"$work/npmrc"
  secrets=(--secret "id=npmrc,src=$work/npmrc" --secret "id=npm_ca,src=$ca")
fi

for role in controller node cli; do
  start=$(now)
  log "building $prefix/$role:$tag (Dockerfile.$role, base $base)"
  docker_build -f "Dockerfile.$role" -t "$prefix/$role:$tag" \
    --build-arg "NODE_IMAGE=$base" --build-arg "VERSION=$version" \
    --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url" \
    "${secrets[@]}" . >"$work/build-$role.log" 2>&1 || {
    tail -n 60 "$work/build-$role.log" >&2
    die "docker build -f Dockerfile.$role failed (last lines above)"
  }
  log "built $prefix/$role:$tag in $(($(now) - start)) s"
done
# Earlier builds of these images, now untagged, would pile up run after run.
for role in controller node cli; do
  "$DOCKER" image prune -f --filter "label=org.opencontainers.image.title=currency-$role" >/dev/null || true
done
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$prefix/*:$tag" >&2
