"""`dgm estimate` (and `dgm run --dry-run`): what a campaign will cost, before it starts.

Checks the config as `dgm run` does (models, benchmark, task ids), then
gathers the figures the pure estimator (`dgm.evolution.estimate`) needs:

- from the archive, when it holds finished runs of the same model on the
  same benchmark: calls and tokens per task run, per diagnosis and per
  self-modification, and how children went (evaluated, advanced a stage,
  scored on held-out tasks);
- otherwise from the documented defaults below (one set for real models,
  one for scripted stand-ins), scaled to the benchmark's own prompts (its
  issue texts and the seed agent's prompt, counted at 4 characters a token).

Prices are litellm's (the scripted models' own, registered with litellm).
Nothing is written: an archive is only read, and one that does not exist is
not made.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from dgm.evolution.estimate import (CampaignEstimate, CampaignShape, Calibration, Price, RoleFigures, Span,
                                    estimate_campaign)

if TYPE_CHECKING:
    from dgm.archive.reads import ArchiveReader
    from dgm.bench.base import Benchmark
    from dgm.config import CampaignConfig
    from dgm.evolution.staging import StagePlan

CHARS_PER_TOKEN = 4
"""How prompts are counted before any model has seen them (the scripted models bill the same way)."""
LEAST_SAMPLES = 3
"""Fewer finished units than this in the archive: the defaults are used for that figure instead."""


@dataclass(frozen=True)
class Defaults:
    """What a campaign's units cost when the archive has no runs to learn from.

    Calls are (low, expected, high) per unit. A unit's first prompt is
    counted from the actual texts (the seed agent's prompt, the benchmark's
    issues, the seed agent's code); each later call's prompt has grown by
    the reply before it and the command's output.
    """

    task_calls: tuple[float, float, float]
    task_reply_tokens: tuple[float, float, float]
    """Tokens of a reply in a task run (the patch-writing one excepted when `patch_in_reply`)."""
    task_output_tokens: float
    """Tokens of a command's output added to the history after each reply."""
    patch_in_reply: bool
    """One reply of each task run writes the task's whole patch (scripted stand-ins apply the reference patch)."""
    diagnose_trajectory_chars: float
    """How much of a failed run's trajectory a diagnosis prompt holds (at most `trajectory_chars`)."""
    diagnose_completion_tokens: tuple[float, float, float]
    proposal_chars: float
    """A proposal's problem statement, the self-modification's issue."""
    self_modify_calls: tuple[float, float, float]
    self_modify_reply_tokens: tuple[float, float, float]
    self_modify_output_tokens: float
    advance: tuple[float, float, float]
    evaluated: tuple[float, float, float]
    heldout_new: tuple[float, float, float]
    label: str


REAL_MODEL_DEFAULTS = Defaults(
    # The seed agent stops at 30 steps (MAX_STEPS); DGM's and mini-swe-agent's
    # SWE-bench runs take 10-20 steps typically, a few stop early. A command's
    # output is cut to 10,000 characters (OUTPUT_HEAD_CHARS + OUTPUT_TAIL_CHARS); most are far shorter.
    task_calls=(4, 12, 30), task_reply_tokens=(100, 250, 600), task_output_tokens=450, patch_in_reply=False,
    # A failed run's trajectory fills most of trajectory_chars; the proposal is a JSON object of a few paragraphs.
    diagnose_trajectory_chars=20_000, diagnose_completion_tokens=(400, 800, 1500), proposal_chars=1_500,
    self_modify_calls=(4, 15, 30), self_modify_reply_tokens=(100, 300, 600), self_modify_output_tokens=450,
    # DGM: about half the children clear the first stage's threshold; some are
    # rejected before evaluation (no diff, sanity gate); a new best now and then.
    advance=(0.0, 0.5, 1.0), evaluated=(0.5, 0.85, 1.0), heldout_new=(0.0, 0.5, 1.0),
    label="defaults for a real model",
)
SCRIPTED_DEFAULTS = Defaults(
    # What the bundled stand-ins do (dgm/llm/scripted_models/, `make demo`): a
    # task run's first reply writes the reference patch (or gives up), the next
    # submits; the proposer answers first time with a short proposal; the
    # self-modifying agent edits in one reply and submits in the next. The
    # rehearsal's children fix what the seed fails, so nearly all go on. A
    # stand-in is deterministic: two children of one parent make the same
    # change, and the later is a twin, not evaluated (3 of 6 in `make demo`).
    task_calls=(1, 1.95, 2), task_reply_tokens=(15, 20, 40), task_output_tokens=40, patch_in_reply=True,
    diagnose_trajectory_chars=1_500, diagnose_completion_tokens=(100, 160, 250), proposal_chars=400,
    self_modify_calls=(1, 2, 2), self_modify_reply_tokens=(30, 50, 100), self_modify_output_tokens=40,
    advance=(0.0, 0.9, 1.0), evaluated=(0.3, 0.5, 1.0), heldout_new=(0.0, 0.35, 1.0),
    label="defaults for a scripted stand-in",
)


@dataclass(frozen=True)
class PromptSizes:
    """Tokens of the texts a campaign's first prompts are made of (4 characters a token)."""

    task_first: float
    """A task run's first prompt: the seed agent's prompt and the issue (mean over the plan's tasks)."""
    patch: float
    """The reference patch (mean over the plan's tasks)."""
    self_modify_frame: float
    """A self-modification's first prompt without its proposal."""
    diagnose_base: float
    """A diagnosis prompt without its trajectory: the agent's code, an issue, the instructions."""


@dataclass
class EstimateResult:
    config: CampaignConfig
    plan: StagePlan
    estimate: CampaignEstimate
    models: dict[str, str]
    """Role -> model name."""
    archive: str | None
    """The archive the figures were calibrated from (None: defaults only, no archive given or none there)."""


def role_models(config: CampaignConfig) -> dict[str, str]:
    """Role -> model, as the loop uses them (the parent rewrites itself with the agents' model)."""
    return {"task": config.model, "diagnose": config.diagnosis_model, "self_modify": config.model}


def model_price(model: str) -> Price | None:
    """USD per input and output token, as litellm prices the model (None: it has no price)."""
    from dgm.llm import model_names, scripted
    from dgm.llm.litellm_loader import load_litellm

    litellm = load_litellm()
    name = model_names.litellm_name(model)
    if model_names.is_scripted(model):
        scripted.register_with_litellm()  # litellm knows the provider only once it is registered
        scripted.register_pricing(model)
    try:
        prompt_usd, _ = litellm.cost_per_token(model=name, prompt_tokens=1_000_000, completion_tokens=0)
        _, completion_usd = litellm.cost_per_token(model=name, prompt_tokens=0, completion_tokens=1_000_000)
    except Exception:  # noqa: BLE001 - not in litellm's price table
        return None
    return Price(float(prompt_usd) / 1_000_000, float(completion_usd) / 1_000_000)


def shape_of(config: CampaignConfig, plan: StagePlan) -> CampaignShape:
    return CampaignShape(stage_sizes=tuple(len(s.task_ids) for s in plan.stages), heldout_size=len(plan.heldout),
                         heldout_top_k=config.heldout_top_k, generations=config.generations,
                         # The async schedule's generations are its children, one each (dgm.evolution.schedule).
                         children_per_generation=1 if config.schedule == "async" else config.children_per_generation)


def estimate(config: CampaignConfig, open_reads: Callable[[], "ArchiveReader | None"] | None = None, *,
             benchmark: Benchmark | None = None) -> EstimateResult:
    """The estimate of `config`'s campaign, calibrated from the archive `open_reads` gives
    (None, or a callable returning None: no archive, the defaults); on `benchmark` when
    given (a benchmark object not in the registry), else on the config's."""
    from dgm.bench.registry import load_benchmark
    from dgm.evolution.staging import build_plan
    from dgm.runs.checks import check_model

    # As `dgm run` checks them (runs/campaign.py: check_config), but no provider key is needed to estimate.
    for model in dict.fromkeys(role_models(config).values()):
        check_model(model, require_key=False)
    bench = benchmark or load_benchmark(config.benchmark, **config.benchmark_options)
    plan = build_plan(config, bench)
    models = role_models(config)
    reads = open_reads() if open_reads is not None else None  # the caller's to close
    calibration = calibrate(config, bench, plan, models, reads)
    prices = {role: model_price(model) for role, model in models.items()}
    return EstimateResult(config=config, plan=plan, estimate=estimate_campaign(shape_of(config, plan), calibration,
                                                                               prices),
                          models=models, archive=getattr(reads, "url", None))


# --------------------------------------------------------------------------- calibration
def calibrate(config: CampaignConfig, bench: Benchmark, plan: StagePlan, models: dict[str, str],
              reads: "ArchiveReader | None") -> Calibration:
    """Per-role figures and child outcomes: from the archive's earlier runs of the same
    models on the same benchmark where there are enough, from the defaults otherwise."""
    from dgm.archive import reads as queries
    from dgm.evolution.self_modify import SELF_BENCHMARK

    sizes = prompt_sizes(bench, plan)
    roles: dict[str, RoleFigures] = {}
    campaigns: list[str] = []
    if reads is not None:
        campaigns = [c.id for c in reads.list_campaigns()
                     if c.kind == "evolution" and (c.config or {}).get("benchmark") == config.benchmark]
    fetch = reads.fetch if reads is not None else None

    def defaults_for(model: str) -> Defaults:
        from dgm.llm.model_names import is_scripted

        return SCRIPTED_DEFAULTS if is_scripted(model) else REAL_MODEL_DEFAULTS

    # Task runs: any kind of campaign's runs of this model on this benchmark (evaluations too).
    d = defaults_for(models["task"])
    measured = queries.run_call_figures(fetch, kind="task", model=models["task"], benchmark=config.benchmark) \
        if fetch else []
    roles["task"] = (_measured(measured, "task runs") if len(measured) >= LEAST_SAMPLES else
                     _conversation(d.task_calls, sizes.task_first, d.task_reply_tokens, d.task_output_tokens,
                                   sizes.patch if d.patch_in_reply else None, d.label))
    d = defaults_for(models["self_modify"])
    measured = queries.run_call_figures(fetch, kind="self_modify", model=models["self_modify"],
                                        benchmark=SELF_BENCHMARK, campaign_ids=campaigns) if fetch else []
    roles["self_modify"] = (_measured(measured, "self-modifications") if len(measured) >= LEAST_SAMPLES else
                            _conversation(d.self_modify_calls, sizes.self_modify_frame + d.proposal_chars / CHARS_PER_TOKEN,
                                          d.self_modify_reply_tokens, d.self_modify_output_tokens, None, d.label))
    d = defaults_for(models["diagnose"])
    measured = queries.agent_call_figures(fetch, purpose="diagnose", model=models["diagnose"],
                                          campaign_ids=campaigns) if fetch else []
    if len(measured) >= LEAST_SAMPLES:
        roles["diagnose"] = _measured(measured, "diagnoses")
    else:
        trajectory = min(d.diagnose_trajectory_chars, config.trajectory_chars)
        prompt = sizes.diagnose_base + trajectory / CHARS_PER_TOKEN
        retries = 1 + config.diagnosis_retries
        roles["diagnose"] = RoleFigures(calls=Span(1, 1 + 0.1 * config.diagnosis_retries, retries),
                                        prompt_tokens=Span.exactly(prompt),
                                        completion_tokens=Span(*d.diagnose_completion_tokens), source=d.label)
    return _child_figures(config, plan, roles, queries.child_outcomes(fetch, campaigns) if fetch else None,
                          defaults_for(models["task"]))


def _child_figures(config, plan, roles, outcomes, d: Defaults) -> Calibration:
    """Advance fractions per stage, the evaluated share and new held-out scorings: from the archive's
    finished children (enough of them), else the defaults."""
    n_stages = len(plan.stages)
    reached = (outcomes or {}).get("stage_reached", {})
    finished = sum(reached.values())

    def certain(advance: list[Span]) -> tuple[Span, ...]:
        # A stage whose threshold is 0 lets every agent go on (should_advance): no uncertainty there.
        return tuple(Span.exactly(1.0) if plan.stages[i].advance_threshold <= 0 else span
                     for i, span in enumerate(advance))

    if finished < LEAST_SAMPLES:
        return Calibration(roles=roles, advance=certain([Span(*d.advance) for _ in range(n_stages - 1)]),
                           evaluated=Span(*d.evaluated), heldout_new=Span(*d.heldout_new), source=d.label)
    at_least = {i: sum(n for stage, n in reached.items() if stage >= i) for i in range(n_stages + 1)}
    advance = []
    for i in range(1, n_stages):
        if at_least[i] >= LEAST_SAMPLES:
            advance.append(_share(at_least[i + 1], at_least[i]))
        else:
            advance.append(Span(*d.advance))
    generations = outcomes["generations"]
    held = (Span(*d.heldout_new) if generations < 1 else
            _share(outcomes["heldout_scored"], generations * max(1, config.heldout_top_k), scale=config.heldout_top_k))
    return Calibration(roles=roles, advance=certain(advance), evaluated=_share(at_least[1], finished),
                       heldout_new=held, source=f"{finished} finished children in this archive")


def _share(hits: int, total: int, scale: float = 1.0) -> Span:
    """A measured fraction with its Wilson 90 % interval as the range."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.95)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return Span(max(0.0, centre - half) * scale, p * scale, min(1.0, centre + half) * scale)


def _measured(units: list[tuple[int, int, int, float]], what: str) -> RoleFigures:
    """Figures from finished units: calls per unit (10th, mean, 90th percentile), tokens per call (mean)."""
    calls = [n for n, _, _, _ in units]
    total = max(1, sum(calls))
    low, high = _percentiles(calls)
    prompt = sum(p for _, p, _, _ in units) / total
    completion = sum(c for _, _, c, _ in units) / total
    return RoleFigures(calls=Span(low, statistics.fmean(calls), high), prompt_tokens=Span.exactly(prompt),
                       completion_tokens=Span.exactly(completion),
                       source=f"{len(units)} earlier {what} in this archive")


def _percentiles(values: list[int]) -> tuple[float, float]:
    if len(values) < 2:
        return float(values[0]), float(values[0])
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return float(cuts[0]), float(cuts[-1])


def _conversation(calls: tuple[float, float, float], first: float, reply: tuple[float, float, float],
                  output: float, patch: float | None, label: str) -> RoleFigures:
    """Default figures of a unit of `calls` replies in one growing history: each call's prompt
    is the first one plus every reply and command output before it. With `patch`, one
    reply writes the whole patch (the first: what follows carries it in the history)."""
    def per_call(n: float, reply_tokens: float) -> tuple[float, float]:
        replies = n * reply_tokens + (patch or 0.0)
        # Call k (0-based) carries the k replies and outputs before it: n(n-1)/2 of each in all,
        # the patch in each of the n-1 calls after the one that wrote it.
        history = (n * (n - 1) / 2) * (reply_tokens + output) + (n - 1) * (patch or 0.0)
        return (n * first + history) / n, replies / n

    figures = [per_call(n, r) for n, r in zip(calls, reply)]
    return RoleFigures(calls=Span(*calls), prompt_tokens=Span(*(p for p, _ in figures)),
                       completion_tokens=Span(*(c for _, c in figures)), source=label)


def prompt_sizes(bench: Benchmark, plan: StagePlan) -> PromptSizes:
    """The sizes of the texts a campaign's first prompts are made of, from the texts themselves."""
    from dgm.agent_code import SEED_AGENT_DIR
    from dgm.evolution.diagnose import AGENT_CODE_CHARS
    from dgm.evolution.self_modify import SELF_MODIFY_PREAMBLE
    from dgm.seed_agent.main import INSTANCE_TEMPLATE, SYSTEM_PROMPT

    wanted = set(plan.selection_task_ids) | set(plan.heldout)
    tasks = [t for t in bench.tasks() if t.instance_id in wanted]
    problem = statistics.fmean(len(t.problem_statement) for t in tasks) if tasks else 0.0
    patch = statistics.fmean(len(t.patch or "") for t in tasks) if tasks else 0.0
    frame = len(SYSTEM_PROMPT) + len(INSTANCE_TEMPLATE)
    code = sum(len(p.read_bytes()) for p in Path(SEED_AGENT_DIR).rglob("*")
               if p.is_file() and p.suffix in (".py", ".md", ".txt", ".toml", ".json") and "__pycache__" not in p.parts)
    instructions = 1_000  # the diagnosis prompt's own instructions and JSON schema
    return PromptSizes(task_first=(frame + problem) / CHARS_PER_TOKEN, patch=patch / CHARS_PER_TOKEN,
                       self_modify_frame=(frame + len(SELF_MODIFY_PREAMBLE)) / CHARS_PER_TOKEN,
                       diagnose_base=(min(code, AGENT_CODE_CHARS) + problem + instructions) / CHARS_PER_TOKEN)
