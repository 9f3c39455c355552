#!/usr/bin/env bash
# A second Docker engine on this machine, so a Ray cluster of two nodes here
# has two engines: each node's sandboxes run on its own engine, and "images
# are there or built on first use" is exercised, not assumed. Idempotent.
#   DGM_DOCKERD2_SOCK   its socket (default /run/dgm-dockerd2.sock)
#   DGM_DOCKERD2_ROOT   its data, exec and pid files (default /var/lib/dgm-dockerd2)
# The base sandbox image is copied over from the first engine (`docker save | docker load`).
set -euo pipefail

SOCK="${DGM_DOCKERD2_SOCK:-/run/dgm-dockerd2.sock}"
ROOT="${DGM_DOCKERD2_ROOT:-/var/lib/dgm-dockerd2}"
IMAGE="${DGM_BASE_IMAGE:-dgm-base:bookworm-v1}"
export_host="unix://$SOCK"

if ! DOCKER_HOST="$export_host" docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || { echo "error: no dockerd installed (run scripts/ensure_docker.sh first)" >&2; exit 1; }
  mkdir -p "$ROOT/data" "$ROOT/exec"
  echo "starting a second dockerd on $SOCK (log: $ROOT/dockerd.log)"
  # No bridge and no iptables: sandboxes have no network of their own
  # (network_mode none), and the first engine owns the host's NAT rules.
  nohup dockerd -H "$export_host" --data-root "$ROOT/data" --exec-root "$ROOT/exec" \
    --pidfile "$ROOT/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
    --containerd-namespace dgm-dockerd2 --containerd-plugins-namespace dgm-dockerd2-plugins \
    >"$ROOT/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    DOCKER_HOST="$export_host" docker info >/dev/null 2>&1 && break
    sleep 1
  done
  DOCKER_HOST="$export_host" docker info >/dev/null 2>&1 || { echo "error: the second dockerd did not come up; see $ROOT/dockerd.log" >&2; exit 1; }
fi

if ! DOCKER_HOST="$export_host" docker image inspect "$IMAGE" >/dev/null 2>&1; then
  docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "error: $IMAGE is not on the first engine either (run sandboxes/build_base_image.sh)" >&2; exit 1; }
  echo "copying $IMAGE to the second engine"
  docker save "$IMAGE" | DOCKER_HOST="$export_host" docker load -q
fi
echo "second docker engine is up at $export_host with $IMAGE"
