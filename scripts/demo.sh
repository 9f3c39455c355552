#!/usr/bin/env bash
# The main job: evaluate the seed agent on the bundled dgm-mini benchmark.
# Offline, the model is the scripted gold model (the harness self-check);
# set DGM_MODEL to a real litellm model name to use a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
MODEL="${DGM_MODEL:-scripted:gold}"
if [[ "$MODEL" == scripted:* ]]; then
  echo "== scripted rehearsal: model $MODEL is an offline stand-in, not a real LLM =="
fi
exec .venv/bin/dgm eval --agent seed --benchmark dgm-mini --model "$MODEL" --workers 2
