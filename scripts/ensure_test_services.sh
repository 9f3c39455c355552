#!/usr/bin/env bash
# Services only the test suite needs: Debian's PostgreSQL (the archive's
# multi-worker backend) and Debian's Chromium (browser tests of `dgm serve`).
# Installs what is missing and starts what is stopped; idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
  echo "installing ${need[*]} (Debian packages)"
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Start the first PostgreSQL cluster (create one if the package made none).
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$version" ]]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main >/dev/null
fi
if ! pg_ctlcluster "$version" main status >/dev/null 2>&1; then
  pg_ctlcluster "$version" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='dgm_test'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create role dgm_test login password 'dgm_test' createdb\""
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='dgm_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O dgm_test dgm_test"
echo "postgresql $version up; chromium at $(command -v chromium)"
