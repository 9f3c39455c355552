#!/usr/bin/env bash
# The whole suite, with every service it needs already up (see Makefile).
# Under this script no test may skip for want of a service: a missing
# service is a failure, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
export DGM_TEST_POSTGRES_URL="${DGM_TEST_POSTGRES_URL:-postgresql+psycopg://dgm_test:dgm_test@127.0.0.1:5432/dgm_test}"
export DGM_TEST_CHROMIUM="${DGM_TEST_CHROMIUM:-$(command -v chromium)}"
export DGM_REQUIRE_SERVICES=1
mkdir -p test-artifacts
# The slowest tests are listed at the end: the suite must stay under 25 minutes.
exec .venv/bin/python -m pytest -p no:cacheprovider -ra --durations=30 "$@"
