"""The model each role of a run talks to, and how to reach it.

A campaign has three roles: `task` (the agents' own model, in task runs),
`proposer` (diagnoses a failure, proposes an improvement) and `self_modify`
(the parent rewriting its own code). Each is a litellm model name (or a
scripted stand-in) with, optionally, its own endpoint (`api_base`), the NAME
of the environment variable holding its key (`api_key_env`: the key itself
is read on the head at call time and is never in a file, row, log or config
snapshot), a price, an output cap, a context window, a per-call timeout and
extra completion parameters. `campaign.toml` gives them as
`[campaign.models.task]`, `[campaign.models.proposer]`,
`[campaign.models.self_modify]`.

A call's purpose names its role: task -> task, diagnose -> proposer,
self_modify -> self_modify.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from dgm.strict_fields import refuse_boolean_for_number


ROLES = ("task", "proposer", "self_modify")
"""The roles of a campaign, in the order they are shown."""

ROLE_OF_PURPOSE = {"task": "task", "diagnose": "proposer", "self_modify": "self_modify"}
"""A call's purpose (`llm_calls.purpose`) -> the role whose model it uses."""

RESERVED_PARAMS = {
    "model": "give it as the role's `model`",
    "messages": "the run writes the messages",
    "api_key": "never write a key in a file: give the NAME of its variable as `api_key_env`",
    "api_base": "give it as the role's `api_base`",
    "base_url": "give it as the role's `api_base`",
    "max_tokens": "give it as the role's `max_output_tokens`",
    "timeout": "give it as the role's `timeout_s`",
    "stream": "dgm reads whole replies",
}
"""Completion parameters `params` may not set, and what to do instead."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value, info: ValidationInfo):
        return refuse_boolean_for_number(cls, value, info)


class Pricing(_Checked):
    """What a model costs, for one litellm does not price (or to use a contract's price)."""

    input_usd_per_mtok: float = Field(ge=0.0)
    """US dollars per million prompt (input) tokens."""
    output_usd_per_mtok: float = Field(ge=0.0)
    """US dollars per million completion (output) tokens."""

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok) / 1e6


class RoleModel(_Checked):
    """One role's model and how to reach it."""

    model: str | None = None
    """litellm model name (e.g. openai/gpt-4.1, anthropic/claude-sonnet-4-5) or scripted:NAME
    (default: the campaign's `model`, or `proposer_model` for the proposer)."""
    api_base: str | None = None
    """Endpoint of an OpenAI-compatible or self-hosted server, e.g. http://127.0.0.1:8080/v1 (default: the provider's)."""
    api_key_env: str | None = None
    """NAME of the environment variable holding the key, read on the head at call time (default: the provider's own)."""
    pricing: Pricing | None = None
    """Price of the model ($ per million input / output tokens); wins over litellm's table."""
    max_output_tokens: int | None = Field(None, ge=1)
    """Most tokens one reply may hold (sent as max_tokens on every call)."""
    context_window: int | None = Field(None, ge=1)
    """Tokens the model takes in all (prompt + reply); default: litellm's figure, if it has one."""
    timeout_s: float | None = Field(None, gt=0.0)
    """Seconds one call may take before it is abandoned (and retried); default 300."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra completion parameters passed to litellm as they are (temperature, reasoning_effort, top_p, ...)."""

    @field_validator("model", mode="before")
    @classmethod
    def _model_named(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("a model name may not be blank")
        return value

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("give an http:// or https:// URL, e.g. http://127.0.0.1:8080/v1")
        return value

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _env_name(cls, value):
        # Never echoed: a key pasted here by mistake must not end up in an error line or a log.
        if value is None:
            return value
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
            raise ValueError("give the NAME of the environment variable holding the key (e.g. OPENAI_API_KEY), "
                             "never the key itself")
        return value

    @field_validator("params")
    @classmethod
    def _params_free(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in RESERVED_PARAMS:
                raise ValueError(f"{key!r} may not be set in params: {RESERVED_PARAMS[key]}")
        return value

    @model_validator(mode="after")
    def _reply_fits_the_window(self) -> "RoleModel":
        if self.max_output_tokens is not None and self.context_window is not None and \
                self.max_output_tokens >= self.context_window:
            raise ValueError(f"max_output_tokens ({self.max_output_tokens}) must be less than context_window "
                             f"({self.context_window}): the prompt needs room too")
        return self

    @property
    def name(self) -> str:
        if self.model is None:
            raise ValueError("the role's model is not filled in yet")
        return self.model

    def api_key(self) -> str | None:
        """The key, read now from `api_key_env` (None without one: the provider's own variable is used).
        Raises KeyError naming the variable when it is not set."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise KeyError(self.api_key_env)
        return key

    def endpoint_label(self) -> str:
        """Where calls go, as shown and recorded: the api_base, else 'provider default'."""
        return self.api_base or "provider default"


class ModelRoles(BaseModel):
    """`[campaign.models]`: a RoleModel per role; a role left out takes the task role's settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: RoleModel = Field(default_factory=RoleModel)
    """The agents' own model, in task runs."""
    proposer: RoleModel | None = None
    """The model that diagnoses failures and proposes improvements (default: the task role,
    or `proposer_model` with the provider's defaults)."""
    self_modify: RoleModel | None = None
    """The model the parent uses to rewrite its own code (default: the task role)."""

    def role(self, name: str) -> RoleModel:
        value = getattr(self, name)
        return value if value is not None else self.task

    def for_purpose(self, purpose: str) -> RoleModel:
        return self.role(ROLE_OF_PURPOSE.get(purpose, "task"))

    def distinct(self) -> list[tuple[str, RoleModel]]:
        """(role names, role) once per distinct role, e.g. ('task, self_modify', ...): what to check before a run."""
        groups: list[tuple[list[str], RoleModel]] = []
        for name in ROLES:
            role = self.role(name)
            same = next((names for names, seen in groups if seen == role), None)
            if same is not None:
                same.append(name)
            else:
                groups.append(([name], role))
        return [(", ".join(names), role) for names, role in groups]


def fill_roles(models: ModelRoles, model: str, proposer_model: str | None) -> ModelRoles:
    """Every role with a model name: a table's own `model`, else the campaign's `model`
    (`proposer_model` for the proposer); a role without a table takes the task role's
    settings (the proposer: only its model, when `proposer_model` names another)."""
    task = models.task if models.task.model else models.task.model_copy(update={"model": model})
    if models.proposer is not None:
        proposer = models.proposer if models.proposer.model else models.proposer.model_copy(
            update={"model": proposer_model or task.model})
    elif proposer_model is not None and proposer_model != task.model:
        proposer = RoleModel(model=proposer_model)
    else:
        proposer = task
    if models.self_modify is not None:
        self_modify = models.self_modify if models.self_modify.model else models.self_modify.model_copy(
            update={"model": task.model})
    else:
        self_modify = task
    return ModelRoles(task=task, proposer=proposer, self_modify=self_modify)
