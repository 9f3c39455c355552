"""Input checks runs share: said in one line before anything is written or spent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dgm.errors import UsageError

if TYPE_CHECKING:
    import docker

    from dgm.llm.roles import ModelRoles, RoleModel

ENDPOINT_CHECK_TIMEOUT_S = 3.0
"""How long the check of a role's api_base waits for a connection."""


def check_model(model: str, *, api_base: str | None = None, keyed: bool = False,
                require_key: bool = True) -> None:
    """Fail early, in one line, on a scripted model that cannot be loaded, or a
    model whose provider litellm cannot tell (every call would fail). `keyed`:
    the role names its key variable (checked by `check_role`), so the
    provider's own is not needed; likewise with an `api_base`, whose server
    may take no key at all. Without `require_key`, no key is needed (an estimate
    calls nothing)."""
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
    if not require_key or keyed or api_base is not None:
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


def check_role(role: RoleModel, what: str = "task", *, budget_usd: float | None = None,
               allow_unpriced: bool = False) -> None:
    """One role's model, before anything is written: its provider, its key
    variable, its endpoint answering, and (under a dollar cap) its price."""
    from dgm.llm import model_names

    where = f"the {what} model {role.name}"
    check_model(role.name, api_base=role.api_base, keyed=role.api_key_env is not None)
    if role.api_key_env is not None:
        try:
            role.api_key()
        except KeyError:
            raise UsageError(f"{where}: its key variable {role.api_key_env} (api_key_env) is not set on the "
                             "host") from None
    if role.api_base is not None and not model_names.is_scripted(role.name):
        check_endpoint(role.api_base, where)
    if budget_usd is not None and not allow_unpriced:
        from dgm.llm.client import has_price

        if not has_price(role):
            raise UsageError(f"{where} has no known price, so a ${budget_usd:g} budget cannot be kept: give its "
                             f"pricing (input_usd_per_mtok, output_usd_per_mtok) or --allow-unpriced (the budget "
                             "then covers priced calls only)")


def check_roles(roles: ModelRoles, *, budget_usd: float | None = None, allow_unpriced: bool = False) -> None:
    """`check_role` once per distinct role of a run."""
    for names, role in roles.distinct():
        check_role(role, names, budget_usd=budget_usd, allow_unpriced=allow_unpriced)


def check_endpoint(api_base: str, where: str) -> None:
    """The api_base's host takes a TCP connection within a few seconds (a wrong port or
    a server not started is said now, not after a generation of retried calls)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(api_base)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"{where}: api_base {api_base} has no valid port") from None
    try:
        with socket.create_connection((url.hostname, port), timeout=ENDPOINT_CHECK_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UsageError(f"{where}: api_base {api_base} cannot be reached ({reason}); start its server or fix "
                         "the address") from None
