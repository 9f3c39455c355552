#!/usr/bin/env bash
# The main job: a short evolution campaign on the bundled dgm-mini benchmark,
# ending with the lineage tree. Offline it is a scripted rehearsal (the model
# is a deterministic stand-in, labelled as such everywhere); set DGM_MODEL to a
# real litellm model name (with its API key in the environment) for a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
MODEL="${DGM_MODEL:-scripted:rehearsal}"
GENERATIONS="${DGM_DEMO_GENERATIONS:-3}"
if [[ "$MODEL" == scripted:* ]]; then
  echo "== scripted rehearsal: $MODEL is an offline stand-in for an LLM; the loop, sandboxes,"
  echo "== grading and archive are real, the scores measure the machinery, not a model =="
fi
exec .venv/bin/dgm run --config campaign.example.toml --model "$MODEL" --generations "$GENERATIONS" \
  --name "demo-$(date -u +%Y%m%d-%H%M%S)" --workers 2
