# The two front doors: `make demo` and `make test`. Both do all set-up
# themselves, idempotently: virtualenv, Docker engine, sandbox base image.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
DGM := $(VENV)/bin/dgm
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup venv docker image test-services second-engine polyglot-image local-llm demo test test-quick bench clean-containers

setup: venv docker image

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(PY) -m pip install -q -e '.[test]' 2>&1 | { grep -v '^WARNING: Location' || true; }
	touch $@

docker:
	bash scripts/ensure_docker.sh

image: docker
	bash sandboxes/build_base_image.sh

# The Polyglot benchmark's six toolchains on top of the base image (built once, ~10 minutes).
polyglot-image: image
	bash sandboxes/build_polyglot_image.sh

# PostgreSQL and Chromium are only needed by the tests.
test-services:
	bash scripts/ensure_test_services.sh

# A second Docker engine (own socket, data and exec roots) with the base image:
# the cluster tests' second Ray node runs its sandboxes there (docs/cluster.md).
second-engine: image
	bash scripts/ensure_second_dockerd.sh

# A real LLM served on this machine (llama-cpp-python + SmolLM2-135M): the
# tests' real-model checks and `DGM_MODEL=local make demo`. The first build of
# llama-cpp-python takes ~15 min on 2 cores; after that pip's cache makes it seconds.
local-llm: venv
	bash scripts/ensure_local_llm.sh

demo: setup
	if [[ "$${DGM_MODEL:-}" == local ]]; then bash scripts/ensure_local_llm.sh; fi
	bash scripts/demo.sh

test: setup polyglot-image test-services second-engine local-llm
	bash scripts/run_tests.sh

# The inner loop: every test that needs no service (no Docker, PostgreSQL or
# Chromium), in a few minutes. Docker is pointed at nowhere, so a test that
# reaches for it without its marker fails here instead of passing by luck.
test-quick: venv
	DOCKER_HOST=unix:///nonexistent/docker.sock .venv/bin/python -m pytest -p no:cacheprovider -q \
		-m "not docker and not postgres and not browser and not llm" tests

bench: setup
	$(PY) benchmarks/perf/eval_overhead.py

clean-containers:
	-docker ps -aq --filter label=dgm.sandbox | xargs -r docker rm -f
