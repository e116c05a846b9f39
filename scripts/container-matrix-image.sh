#!/usr/bin/env bash
# Builds the container matrix's Debian root file system as a tarball, without any image registry: debootstrap from
# the mirror apt already uses, then this machine's Node (the project's native addon was built against it) on top.
# scripts/container-matrix-engine.mjs imports the tarball into Docker and podman under a tag that hashes this file.
#
# Usage: container-matrix-image.sh TARBALL   (a no-op when TARBALL exists: it is the cache)
set -euo pipefail
tarball=${1:?tarball path}
if [ -s "$tarball" ]; then echo "container-matrix: image tarball $tarball is cached"; exit 0; fi

# The suite and mirror apt uses here (deb822 or one-line sources), so no other network source is needed.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | sed -nE 's/^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)(https?:\/\/[^[:space:]]+\/debian)\/?([[:space:]].*)?$/\3/p' | head -n1 || true)
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /var/tmp/pyisolate-matrix-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
# minbase keeps the image small; these are what the project needs at run time: the interpreter and venv for the
# guests, bwrap for the sandbox, CA certificates for the installers, procps for the tests' process checks.
debootstrap --variant=minbase --include=python3,python3-venv,bubblewrap,ca-certificates,procps \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log"; exit 1; }

# This machine's Node: the binary, npm, and the headers the native addon builds against.
node_bin=$(command -v node)
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
node_prefix=$(dirname "$(dirname "$(readlink -f "$node_bin")")")
if [ -d "$node_prefix/include/node" ]; then mkdir -p "$root/usr/local/include" && cp -a "$node_prefix/include/node" "$root/usr/local/include/"; fi
if [ -d "$node_prefix/lib/node_modules/npm" ]; then
  mkdir -p "$root/usr/local/lib/node_modules" && cp -a "$node_prefix/lib/node_modules/npm" "$root/usr/local/lib/node_modules/"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
fi
# An unprivileged user for the --user 1000:1000 configurations, with a home it owns.
chroot "$root" useradd --uid 1000 --create-home --shell /bin/sh app 2>/dev/null || true
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

# Written beside the target and renamed, so an interrupted build never leaves a half tarball that looks cached.
mkdir -p "$(dirname "$tarball")"
tar -C "$root" -cf "$tarball.part" .
mv "$tarball.part" "$tarball"
echo "container-matrix: built $tarball ($(stat -c %s "$tarball") bytes)"
