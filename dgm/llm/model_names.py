"""How a scripted stand-in model's name is spelled, known without loading the stand-ins.

Listings label scripted models (`dgm ls`, `status`, the explorer); loading
dgm.llm.scripted for that would import pydantic and build its rule models,
a good part of what `dgm ls` costs.
"""

from __future__ import annotations

PROVIDER = "scripted"


def is_scripted(model: str) -> bool:
    return model.startswith(PROVIDER + ":") or model.startswith(PROVIDER + "/")


def litellm_name(model: str) -> str:
    """`scripted:gold` (our spelling, shell-friendly) -> `scripted/gold` (litellm's)."""
    if model.startswith(PROVIDER + ":"):
        return PROVIDER + "/" + model[len(PROVIDER) + 1 :]
    return model
