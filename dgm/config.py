"""Campaign configuration: `campaign.toml`, overridden by `dgm run` flags.

Every field has a one-line docstring; `campaign.example.toml` at the repo root
shows them all. Unknown keys and bad values are rejected with one line that
names the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_serializer, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from dgm.errors import UsageError
from dgm.llm.roles import ModelRoles, RoleModel, fill_roles
from dgm.sandbox.limits import CONFIGURABLE as CONFIGURABLE_LIMITS, SandboxLimits
from dgm.strict_fields import refuse_boolean_for_number


SEED_MAX = 2**63 - 1
"""The archive keeps the seed in a signed 64-bit column."""


class _Strict(BaseModel):
    # inf and nan pass `gt=0`-style bounds, then break the campaign (and its JSON) once it has started.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value, info: ValidationInfo):
        return refuse_boolean_for_number(cls, value, info)


def _task_spec(value, least: int):
    """Task ids, a count of at least `least`, or a name ('rest', 'subset:NAME'): one line for anything else."""
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    if (isinstance(value, (bool, float)) or not isinstance(value, (int, str, list))
            or (isinstance(value, int) and value < least)):
        raise ValueError(f"expected task ids (a list), a count of tasks ({least} or more) or 'subset:NAME', "
                         f"not {shown}")
    if isinstance(value, list) and not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("every task id must be non-blank text")
    if isinstance(value, str) and not value.strip():
        raise ValueError("may not be blank")
    return value


def _not_blank(value, message: str):
    if isinstance(value, str) and not value.strip():
        raise ValueError(message)
    return value


class StageConfig(_Strict):
    name: str
    """Stage name as recorded on task runs (e.g. 'small')."""
    tasks: list[str] | int | str
    """Task ids; or a count (the next N unused tasks in benchmark order); or 'rest'; or 'subset:NAME'."""
    advance_threshold: float = Field(0.0, ge=0.0, le=1.0)
    """Resolve rate (over all stages so far) needed to go on to the next stage."""
    repeats: int = Field(1, ge=1, le=100)
    """Runs of each agent on each task of the stage; the score is their mean (a real model is stochastic)."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _count_positive(cls, value):
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"a task count must be at least 1, not {value}")
        return _task_spec(value, 1)

    @field_validator("name", mode="before")
    @classmethod
    def _name_given(cls, value):
        return _not_blank(value, "a stage name may not be blank")


class ExecutorConfig(_Strict):
    kind: Literal["threads", "ray"] = "threads"
    """Where sandbox work runs: threads on this machine, or Ray tasks on the nodes of a Ray cluster
    that offer the `dgm_sandbox` resource (pip install 'dgm[ray]'; see docs/cluster.md)."""
    address: str = "auto"
    """Ray cluster to join: "auto" (the one `ray start` runs on this machine), "local" (start one here), or
    "ray://HOST:10001"."""
    gateway_host: str | None = None
    """With ray: the address worker nodes reach this machine's gateway channel at (default: this node's Ray IP)."""
    gateway_port: int = Field(0, ge=0, le=65535)
    """With ray: TCP port of the gateway channel (0: any free port; open it to the worker nodes)."""
    max_retries: int = Field(3, ge=0)
    """With ray: how often a run whose node died is retried on another node before the campaign stops."""


class CampaignConfig(_Strict):
    name: str | None = None
    """Campaign name (default: generated)."""
    benchmark: str = "dgm-mini"
    """Benchmark the agents are evaluated on."""
    benchmark_options: dict[str, str] = Field(default_factory=dict)
    """Options of the benchmark, e.g. SWE-bench's dataset, images (auto/pull/build/offline), repo_mirror."""
    model: str = Field(default_factory=lambda: os.environ.get("DGM_MODEL", "scripted:rehearsal"))
    """Model the agents use, for tasks and for modifying themselves (litellm name or scripted:...)."""
    proposer_model: str | None = None
    """Model that diagnoses failures and proposes improvements (default: `model`)."""
    models: ModelRoles = Field(default_factory=ModelRoles)
    """Per role ([campaign.models.task], .proposer, .self_modify): model, api_base, api_key_env, pricing,
    max_output_tokens, context_window, timeout_s, params; a role left out takes the task role's."""
    allow_unpriced: bool = False
    """With budget_usd: start even when a role's model has no known price (the cap then covers priced calls only)."""
    generations: int = Field(5, ge=0)
    """Generations to run (children are created in generations 1..N); with schedule = "async", the total number of children."""
    schedule: Literal["generations", "async"] = "generations"
    """generations: DGM's schedule (each generation's children start together, the next waits for all);
    async: a child starts as soon as a sandbox slot is free, its parent selected from the archive as it stands."""
    children_per_generation: int = Field(2, ge=1)
    """Children created per generation."""
    workers: int = Field(2, ge=1)
    """Task runs executed in parallel (with the ray executor: at most; the cluster's dgm_sandbox slots bound it too)."""
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    """[campaign.executor]: where task runs execute (kind = "threads" or "ray", address)."""
    selection: str = "score_child_prop"
    """Parent selector: score_child_prop, score_prop, best, random, hgm_cmp, novelty_share."""
    admission: Literal["keep_all", "keep_better"] = "keep_all"
    """keep_all: admit every child that works at all; keep_better: only those not worse than their parent."""
    admission_test: Literal["paired", "allowance"] = "paired"
    """How keep_better decides "worse": paired (the paired test of `dgm compare` on the tasks both ran, at
    admission_alpha) or allowance (score below the parent's minus noise_allowance)."""
    admission_alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """Level of keep_better's paired test: a child is refused only when its parent is better at this level."""
    noise_allowance: float = Field(0.05, ge=0.0, le=1.0)
    """keep_better with admission_test = "allowance" admits a child scoring at least parent score minus this."""
    budget_usd: float | None = Field(None, gt=0.0)
    """Hard cap on LLM spend for the whole campaign (None: no cap)."""
    max_hours: float | None = Field(None, gt=0.0)
    """Stop after this much wall time (None: no limit)."""
    seed: int = Field(0, ge=0, le=SEED_MAX)
    """Seed of every random choice (parents, diagnosis targets, held-out split); 0 to 2**63-1."""
    time_limit_s: float = Field(900.0, ge=1)
    """Wall-clock limit of one agent run on one task."""
    self_modify_time_limit_s: float = Field(1800.0, ge=1)
    """Wall-clock limit of one self-modification run."""
    sanity_time_limit_s: float = Field(300.0, ge=1)
    """Wall-clock limit of the sanity gate (compile + the agent's own tests)."""
    diagnosis_retries: int = Field(2, ge=0)
    """Extra attempts when the proposer's reply is not valid JSON of the right shape."""
    trajectory_chars: int = Field(30000, ge=1000)
    """How much of a failed run's trajectory the proposer reads (head and tail kept)."""
    infrastructure_wait_minutes: float = Field(30.0, ge=0)
    """How long, in all, the campaign waits out failures of Docker, the archive or the
    model (retrying from what is committed, with backoff from 10 s to 5 min) before
    it stops as failed; 0 stops at once. Interrupted runs are redone either way."""
    stages: list[StageConfig] | None = None
    """Evaluation stages (default: 'small' = 6 tasks, advance at 0.4; then 'rest')."""
    heldout: list[str] | int | str | None = None
    """Held-out tasks, never used for selection or diagnosis: ids, a count, or 'subset:NAME' (default: 25 %)."""
    heldout_top_k: int = Field(1, ge=0)
    """How many of the best agents are scored on the held-out tasks after each generation."""
    staging: Literal["stages", "sequential"] = "stages"
    """stages: DGM's schedule (run a stage, go on if its advance_threshold is met); sequential: batches in the
    stages' task order, a child stopping once a paired test says it is worse than the best fully evaluated agent."""
    sequential_batch: int = Field(3, ge=1)
    """sequential staging: tasks run between two looks."""
    sequential_max_tasks: int | None = Field(21, ge=1)
    """sequential staging: tasks a child that is not stopped runs (None: every selection task)."""
    sequential_confidence: float = Field(0.9, ge=0.5, lt=1.0)
    """sequential staging: a child stops when P(it beats the reference) falls below 1 minus this."""
    sequential_settle_confidence: float | None = Field(0.9, ge=0.5, lt=1.0)
    """sequential staging: the best and its closest challenger run more tasks while P(the challenger is
    better) is at least 1 minus this (None: sequential_confidence)."""
    sequential_settle_margin: float = Field(0.03, ge=0.0, lt=1.0)
    """sequential staging: when settling, only a challenger better by more than this resolve rate counts."""
    evaluate_twins: bool = False
    """Evaluate a twin (a child with the code tree of an earlier agent) anyway, as a second sample; false: record it."""
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits)
    """Resource limits of every sandbox (the sandbox's own limits type)."""

    @field_validator("name", mode="before")
    @classmethod
    def _name_given(cls, value):
        # A blank name would quietly become a generated one.
        return _not_blank(value, "a campaign name may not be blank (leave it out for a generated one)")

    @field_validator("sandbox", mode="before")
    @classmethod
    def _limits_a_campaign_sets(cls, value):
        # The harness's own fields (output cap, grace) are not the campaign's to set.
        if not isinstance(value, (dict, SandboxLimits)):
            # Worded as when the section had a model of its own (messages stay as users know them).
            raise PydanticCustomError("model_type", "Input should be a valid dictionary or instance of SandboxConfig")
        if isinstance(value, dict):
            for key in value:
                if key not in CONFIGURABLE_LIMITS:
                    raise PydanticCustomError("unknown_key", "unknown key", {"key": key})
        return value

    @field_validator("heldout", mode="before")
    @classmethod
    def _heldout_spec(cls, value):
        return value if value is None else _task_spec(value, 0)

    @field_validator("selection")
    @classmethod
    def _known_selector(cls, value: str) -> str:
        from dgm.evolution.selection import SELECTORS

        if value not in SELECTORS:
            raise ValueError(f"unknown selection method '{value}' (known: {', '.join(sorted(SELECTORS))})")
        return value

    @model_validator(mode="after")
    def _stage_names_unique(self) -> "CampaignConfig":
        if self.stages:
            names = [s.name for s in self.stages]
            if len(set(names)) != len(names) or "heldout" in names:
                raise ValueError("stage names must be unique and not 'heldout'")
        return self

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_role(cls, data):
        # `model` / `proposer_model` and the tables' own `model` name the same thing: the
        # table's fills the key when the key is left out, and two different names are refused.
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            return data
        data = dict(data)
        for key, role in (("model", "task"), ("proposer_model", "proposer")):
            table = data["models"].get(role)
            named = table.get("model") if isinstance(table, dict) else None
            if named is None:
                continue
            if data.get(key) is None:
                data[key] = named
            elif data[key] != named:
                raise PydanticCustomError(
                    "two_names", f"{key} = {data[key]!r} and models.{role}.model = {named!r} name different "
                                 f"models for the {role} role; give one")
        return data

    @field_serializer("models")
    def _models_filled(self, models: ModelRoles, info):
        # The snapshot a campaign keeps says what each role really used, not what was left to defaults.
        return self.roles.model_dump(mode=info.mode)

    @property
    def roles(self) -> ModelRoles:
        """Every role filled in: its model name and how to reach it."""
        return fill_roles(self.models, self.model, self.proposer_model)

    @property
    def diagnosis_model(self) -> str:
        return self.roles.proposer.name


def _first_error(exc: ValidationError, source: str, from_options: frozenset[str] = frozenset()) -> UsageError:
    err = exc.errors()[0]
    loc = err["loc"]
    if err["type"] == "unknown_key":  # raised for the section, about one of its keys
        loc = (*loc, err["ctx"]["key"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("extra_forbidden", "unknown_key"):
        message = "unknown key"
    if err["loc"] and err["loc"][0] in from_options:  # the user typed it as an option, not in the file
        return UsageError(f"--{str(err['loc'][0]).replace('_', '-')}: {message}")
    return UsageError(f"{source}: {key}: {message}")


def _read_campaign_table(path: Path) -> dict:
    """The [campaign] table of a TOML file (or the whole file, without one); UsageError on bad input."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a directory") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    if "campaign" in data:
        # A key above the [campaign] table would be dropped without a word (a budget cap, say).
        stray = sorted(k for k in data if k != "campaign")
        if stray:
            raise UsageError(f"{path}: {stray[0]}: outside the [campaign] table (move it under [campaign])")
        data = data["campaign"]
    return data


def load_config(path: Path | None, overrides: dict) -> CampaignConfig:
    """The config file (if any) with non-None overrides applied; UsageError on bad input.

    `overrides["models"]`, if given, is {role: {field: value}} laid over the file's
    [campaign.models] tables field by field (e.g. `--api-base`), not in their place."""
    data: dict = {}
    source = str(path) if path else "options"
    if path is not None:
        data = _read_campaign_table(path)
    given = {k: v for k, v in overrides.items() if v is not None}
    role_options = given.pop("models", None)
    executor_options = given.pop("executor", None)
    data.update(given)
    if executor_options:
        data["executor"] = _laid_over_table(data.get("executor"), executor_options)
    _flags_name_the_roles(data, given)
    if role_options:
        data["models"] = _laid_over(data.get("models"), role_options)
    return validate_config(data, source, from_options=frozenset(given))


def _laid_over_table(table, fields: dict) -> dict:
    """Options over one table of the file (e.g. --executor over [campaign.executor]), field by field."""
    return {**(table if isinstance(table, dict) else {}), **fields}


def _laid_over(models, role_options: dict) -> dict:
    models = dict(models) if isinstance(models, dict) else {}
    for role, fields in role_options.items():
        table = models.get(role)
        models[role] = {**(table if isinstance(table, dict) else {}), **fields}
    return models


def task_role_of_options(models_file: Path | None, *, model: str | None, api_base: str | None,
                         api_key_env: str | None, default_model: str | None) -> RoleModel:
    """The task role of `dgm eval` / `dgm replay --live`: the [campaign.models.task] table
    of `models_file` (a campaign.toml does; its `model` key too), the options over it."""
    table: dict = {}
    source = "options"
    if models_file is not None:
        data = _read_campaign_table(models_file)
        source = str(models_file)
        models = data.get("models") or {}
        table = dict(models.get("task") or {}) if isinstance(models, dict) else {}
        if "model" not in table and isinstance(data.get("model"), str):
            table["model"] = data["model"]
    options = {k: v for k, v in {"model": model, "api_base": api_base, "api_key_env": api_key_env}.items()
               if v is not None}
    table = {**table, **options}
    table.setdefault("model", default_model)
    try:
        return RoleModel(**table)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        if field in options:
            raise UsageError(f"--{field.replace('_', '-')}: {message}") from None
        raise UsageError(f"{source}: models.task.{'.'.join(str(p) for p in err['loc'])}: {message}") from None


def _flags_name_the_roles(data: dict, given: dict) -> None:
    """`--model` / `--proposer-model` fill the model names of the roles a file's
    [campaign.models] tables give (their endpoint and the rest stay)."""
    models = data.get("models")
    if not isinstance(models, dict):
        return
    for key, role in (("model", "task"), ("proposer_model", "proposer")):
        table = models.get(role)
        if key in given and isinstance(table, dict) and "model" in table:
            data["models"] = models = {**models, role: {**table, "model": given[key]}}


def validate_config(data: dict, source: str, *, from_options: frozenset[str] = frozenset()) -> CampaignConfig:
    """CampaignConfig from plain data; UsageError naming the first bad key
    (as the option it came from, for those in `from_options`)."""
    try:
        return CampaignConfig(**data)
    except ValidationError as exc:
        raise _first_error(exc, source, from_options) from None
