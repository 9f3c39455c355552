#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io when no engine
# is installed, start dockerd in the background when none is running.
# Idempotent; safe to run before every `make demo` / `make test`.
set -euo pipefail

if docker info >/dev/null 2>&1; then exit 0; fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no Docker engine and no apt-get to install one; install Docker and start it" >&2
    exit 1
  fi
  echo "installing docker.io (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd in the background (log: /var/log/dgm-dockerd.log)"
  nohup dockerd >/var/log/dgm-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
docker info >/dev/null 2>&1 || { echo "error: dockerd did not come up; see /var/log/dgm-dockerd.log" >&2; exit 1; }
echo "docker engine is up"
