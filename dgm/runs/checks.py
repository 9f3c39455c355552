"""Input checks runs share: said in one line before anything is written or spent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dgm.errors import UsageError

if TYPE_CHECKING:
    import docker


def check_model(model: str, *, require_key: bool = True) -> None:
    """Fail early, in one line, on a scripted model that cannot be loaded, or a
    model whose provider litellm cannot tell (every call would fail); with
    `require_key`, on one whose provider key is not set (an estimate needs none)."""
    from dgm.llm import model_names, scripted

    if model_names.is_scripted(model):
        scripted.load_spec(model_names.litellm_name(model).split("/", 1)[1])
        return
    from dgm.llm.litellm_loader import load_litellm

    try:
        load_litellm().get_llm_provider(model)
    except Exception:  # noqa: BLE001 - litellm's BadRequestError, or anything it cannot parse
        raise UsageError(f"unknown model {model!r}: litellm cannot tell its provider "
                         "(write it as provider/model, e.g. openai/gpt-4o-mini)") from None
    if not require_key:
        return
    # Without its key every call fails: say so now, not after retrying each as an outage.
    try:
        missing = load_litellm().validate_environment(model).get("missing_keys") or []
    except Exception:  # noqa: BLE001 - a provider litellm cannot check: its calls will tell
        missing = []
    if missing:
        raise UsageError(f"{model}: {', '.join(missing)} not set on the host (the gateway needs it; "
                         "sandboxes never see it)")


def check_sandbox_cpus(client: docker.DockerClient, cpus: float, resuming: bool) -> None:
    """Docker refuses every sandbox asking for more CPUs than the engine has:
    taken for an outage, that was half an hour of retries, then a failed campaign."""
    try:
        available = int(client.info().get("NCPU") or 0)
    except Exception:  # noqa: BLE001 - an engine that will not say: its sandboxes will tell
        return
    if available and cpus > available:
        what = f"[campaign.sandbox] cpus = {cpus:g} is more than the Docker engine's {available} CPU(s)"
        if resuming:
            raise UsageError(f"the campaign's {what}: its sandboxes cannot start on this engine (a resume keeps "
                             "the campaign's sandbox limits)")
        raise UsageError(f"{what}; give {available} or less")
