#!/usr/bin/env bash
# The main job: a short evolution campaign on the bundled dgm-mini benchmark,
# ending with the lineage tree. Offline it is a scripted rehearsal (the model
# is a deterministic stand-in, labelled as such everywhere); set DGM_MODEL to a
# real litellm model name (with its API key in the environment) for a real one,
# or DGM_MODEL=local for a tiny real model served on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
MODEL="${DGM_MODEL:-scripted:rehearsal}"
GENERATIONS="${DGM_DEMO_GENERATIONS:-3}"
if [[ "$MODEL" == local ]]; then
  echo "== a tiny real model: SmolLM2-135M-Instruct, served on this machine by llama.cpp (one request at"
  echo "== a time, a 2048-token window). Its replies are real, but it is far too small to fix code or to"
  echo "== improve an agent: expect no improvement. It shows the loop running on a real model's replies. =="
  # The launcher starts the server, points litellm's openai/smollm2 at it, and stops it however the run ends.
  exec .venv/bin/python -m dgm.llm.local_server -- .venv/bin/dgm run --config scripts/demo-local-llm.toml \
    --generations "${DGM_DEMO_GENERATIONS:-1}" --name "demo-local-$(date -u +%Y%m%d-%H%M%S)"
fi
if [[ "$MODEL" == scripted:* ]]; then
  echo "== scripted rehearsal: $MODEL is an offline stand-in for an LLM; the loop, sandboxes,"
  echo "== grading and archive are real, the scores measure the machinery, not a model =="
fi
exec .venv/bin/dgm run --config campaign.example.toml --model "$MODEL" --generations "$GENERATIONS" \
  --name "demo-$(date -u +%Y%m%d-%H%M%S)" --workers 2
