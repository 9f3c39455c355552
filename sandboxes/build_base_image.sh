#!/usr/bin/env bash
# Build the sandbox base image offline: debootstrap Debian bookworm from the
# apt mirror this host already uses, then `docker import` it. No registry is
# contacted, so this works on machines that cannot pull images.
#
# Usage: sandboxes/build_base_image.sh [--force] [TAG]
set -euo pipefail

FORCE=0
if [[ "${1:-}" == "--force" ]]; then FORCE=1; shift; fi
TAG="${1:-dgm-base:bookworm-v1}"
SUITE=bookworm
# What every sandbox needs: an interpreter for the agent, git for diffs, patch
# for grading fallbacks, pytest for hidden tests, procps to kill leftovers.
PACKAGES=python3,python3-pytest,git,patch,procps,ca-certificates,coreutils

if [[ $FORCE == 0 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG already present"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# Read the mirror from the host's own apt configuration (deb822 or one-line
# format) rather than naming any host here.
mirror=""
if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
  mirror=$(awk '/^Types:/{deb=($0 ~ /deb( |$)/)} /^URIs:/ && deb {print $2; exit}' \
           /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 || true)
fi
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list)
fi
if [[ -z "$mirror" ]]; then
  echo "error: no Debian mirror found in /etc/apt/sources.list{,.d}; cannot debootstrap" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/dgm-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "debootstrap $SUITE from the host's configured mirror into $work (about a minute)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work" "$mirror" >"$work.log" 2>&1 || {
  echo "error: debootstrap failed; last lines of its log:" >&2; tail -20 "$work.log" >&2; exit 1; }
rm -f "$work.log"

# The agent runs as an unprivileged user; uid 1000 owns the repository.
chroot "$work" useradd --uid 1000 --create-home --shell /bin/bash agent
# Keep the image small and free of the host's apt state.
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* "$work"/usr/share/doc/* "$work"/usr/share/man/*
mkdir -p "$work/testbed" "$work/dgm" && chown 1000:1000 "$work/testbed"

# A rebuild of the tag: the image that held it until now, removed below so none is left untagged.
replaced=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
tar --numeric-owner -C "$work" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'ENV PYTHONDONTWRITEBYTECODE=1' \
  -c 'WORKDIR /testbed' \
  -c 'LABEL dgm.image=base' \
  - "$TAG" >/dev/null
if [ -n "$replaced" ] && [ "$(docker image inspect -f '{{.Id}}' "$TAG")" != "$replaced" ]; then
  docker rmi "$replaced" >/dev/null 2>&1 || true  # kept if a container or another tag uses it
fi
echo "built base image $TAG"
