#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# `npm run images`: builds the three images (Dockerfile.controller, Dockerfile.node,
# Dockerfile.cli, repository root as context) with the names the compose stack's .env and the
# Helm chart expect, and pushes them with --push.
#
#   npm run images                                                   # build
#   IMAGE_PREFIX=registry.example.com/team npm run images -- --push  # build, tag, push
#   npm run images -- --list                                         # print the names only
#
# Names: ${IMAGE_PREFIX:+$IMAGE_PREFIX/}currency-nodes/<role>:<tag>. The chart's image
# repositories are currency-nodes/<role> with `image.registry` in front, so the IMAGE_PREFIX
# you push with is the `image.registry` you install with. The tag is package.json's version
# (the chart's appVersion as `npm run chart` packages it); IMAGE_TAG overrides it.
#
# Environment:
#   IMAGE_PREFIX     registry (and path) in front of currency-nodes/<role>; required by --push
#   IMAGE_TAG        tag (default: package.json version)
#   NODE_IMAGE       base image, the Dockerfiles' build argument (default: their own,
#                    node:24-bookworm-slim; pin it by digest, docs/upgrading.md)
#   IMAGE_SOURCE     org.opencontainers.image.source label
#   IMAGES_OFFLINE=1 (or --offline) build the way the test machines must, with no container
#                    registry: scripts/setup/docker/build-images.sh (the local base image of
#                    `npm run setup:e2e` and the machine's npm settings as BuildKit secrets).
#                    Never for images you ship: their base is a local debootstrap build.
#   DOCKER           docker client (default: docker; offline: the engine's own /usr/bin/docker)
#
# Exit codes: 0 done, 1 a build or push failed, 2 bad flag or variable (named).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROLES=(controller node cli)

log() { printf 'images: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
usage_error() {
  log "ERROR: $*"
  log "usage: [IMAGE_PREFIX=host/path] npm run images -- [--push] [--offline] [--list]"
  exit 2
}

push=0
list=0
offline="${IMAGES_OFFLINE:-0}"
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    --list) list=1 ;;
    --offline) offline=1 ;;
    -h | --help)
      sed -n '/^# `npm run/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p'
      exit 0
      ;;
    *) usage_error "unknown argument '$arg'" ;;
  esac
done
case "$offline" in 0 | 1) ;; *) usage_error "IMAGES_OFFLINE must be 0 or 1, got '$offline'" ;; esac

cd "$ROOT"
version="$(node -p 'require("./package.json").version')" || die "cannot read the version from package.json"
prefix="${IMAGE_PREFIX:-}"
tag="${IMAGE_TAG:-$version}"
# Docker's reference grammar: host[:port][/path] or path; no tag, no trailing /.
component='[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*'
label='[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?'
if [ -n "$prefix" ] && ! [[ "$prefix" =~ ^($label(\.$label)*(:[0-9]+)?|$component)(/$component)*$ ]]; then
  usage_error "IMAGE_PREFIX '$prefix' is not a registry path like registry.example.com/team or 127.0.0.1:5000/team"
fi
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || usage_error "IMAGE_TAG '$tag' is not a valid image tag"
if [ "$push" = 1 ] && [ -z "$prefix" ]; then
  usage_error "--push needs IMAGE_PREFIX (the registry to push to, e.g. IMAGE_PREFIX=registry.example.com/team)"
fi

repo="${prefix:+$prefix/}currency-nodes"
if [ "$list" = 1 ]; then
  for role in "${ROLES[@]}"; do echo "$repo/$role:$tag"; done
  exit 0
fi

if [ "$offline" = 1 ]; then
  # The test machines' recipe, not a copy of it: the same script the e2e tests build with.
  # shellcheck source=setup/docker/lib.sh
  LOG_NAME=images source "$ROOT/scripts/setup/docker/lib.sh"
  log "offline build (scripts/setup/docker/build-images.sh, base ${NODE_IMAGE:-$NODE_BASE_IMAGE})"
  IMAGE_PREFIX="$repo" IMAGE_TAG="$tag" bash "$ROOT/scripts/setup/docker/build-images.sh" ||
    die "the offline build failed (output above)"
else
  DOCKER="${DOCKER:-docker}"
  command -v "$DOCKER" >/dev/null 2>&1 || die "'$DOCKER' not found: install Docker (or set DOCKER)"
  # Read-only git: GIT_OPTIONAL_LOCKS=0 keeps `git status` from refreshing the index file.
  export GIT_OPTIONAL_LOCKS=0
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then revision="$revision-dirty"; fi
  # The Dockerfiles' RUN --mount needs BuildKit (the default since Docker 23; opt-in before).
  export DOCKER_BUILDKIT=1
  base_arg=()
  if [ -n "${NODE_IMAGE:-}" ]; then base_arg=(--build-arg "NODE_IMAGE=$NODE_IMAGE"); fi
  for role in "${ROLES[@]}"; do
    log "docker build -f Dockerfile.$role -t $repo/$role:$tag ."
    "$DOCKER" build -f "Dockerfile.$role" -t "$repo/$role:$tag" "${base_arg[@]}" \
      --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
      --build-arg "SOURCE=${IMAGE_SOURCE:-}" . ||
      die "docker build -f Dockerfile.$role failed (no container registry reachable? IMAGES_OFFLINE=1 after npm run setup:e2e, for tests only)"
  done
fi

if [ "$push" = 1 ]; then
  out="$(mktemp)"
  trap 'rm -f "$out"' EXIT
  for role in "${ROLES[@]}"; do
    ref="$repo/$role:$tag"
    log "docker push $ref"
    # Progress to stderr; the output kept for the digest line.
    "$DOCKER" push "$ref" 2>&1 | tee "$out" >&2 ||
      die "docker push $ref failed (log in first: docker login ${prefix%%/*})"
    # The digest, for pinning: the chart's <role>.image.digest, or NAME@DIGEST in compose.
    digest="$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$out" | tail -n 1)"
    echo "$ref${digest:+ $digest}"
  done
  log "pushed; install with: helm install cn oci://... --set image.registry=$prefix"
else
  for role in "${ROLES[@]}"; do echo "$repo/$role:$tag"; done
fi
