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

    Calls are (low, expected, high) per unit; a unit's prompts grow by
    `*_growth_tokens` per call (the reply and the command's output are added
    to the history), from a first prompt counted from the actual texts.
    """

    task_calls: tuple[float, float, float]
    task_growth_tokens: float
    task_completion_tokens: tuple[float, float, float]
    diagnose_trajectory_chars: float
    """How much of a failed run's trajectory a diagnosis prompt holds (at most `trajectory_chars`)."""
    diagnose_completion_tokens: tuple[float, float, float]
    self_modify_calls: tuple[float, float, float]
    self_modify_growth_tokens: float
    self_modify_completion_tokens: tuple[float, float, float]
    advance: tuple[float, float, float]
    evaluated: tuple[float, float, float]
    heldout_new: tuple[float, float, float]
    label: str


REAL_MODEL_DEFAULTS = Defaults(
    # The seed agent stops at 30 steps (MAX_STEPS); DGM's and mini-swe-agent's
    # SWE-bench runs take 10-20 steps typically, a few stop early.
    task_calls=(4, 12, 30), task_growth_tokens=700, task_completion_tokens=(100, 250, 600),
    # A failed run's trajectory fills most of trajectory_chars; the proposal is a JSON object of a few paragraphs.
    diagnose_trajectory_chars=20_000, diagnose_completion_tokens=(400, 800, 1500),
    self_modify_calls=(4, 15, 30), self_modify_growth_tokens=700, self_modify_completion_tokens=(100, 300, 600),
    # DGM: about half the children clear the first stage's threshold; some are
    # rejected before evaluation (no diff, sanity gate); a new best now and then.
    advance=(0.0, 0.5, 1.0), evaluated=(0.5, 0.85, 1.0), heldout_new=(0.0, 0.5, 1.0),
    label="defaults for a real model",
)
SCRIPTED_DEFAULTS = Defaults(
    # Measured on `make demo` (scripted:rehearsal on dgm-mini): a scripted
    # model answers a task in one step (a patch, or giving up) and submits in
    # the next; its proposer answers first time; the self-modifying agent edits in one step.
    task_calls=(1, 1.8, 2), task_growth_tokens=250, task_completion_tokens=(60, 140, 250),
    diagnose_trajectory_chars=1_500, diagnose_completion_tokens=(100, 160, 250),
    self_modify_calls=(1, 2, 2), self_modify_growth_tokens=150, self_modify_completion_tokens=(40, 80, 150),
    advance=(0.0, 0.6, 1.0), evaluated=(0.5, 0.9, 1.0), heldout_new=(0.0, 0.35, 1.0),
    label="defaults for a scripted stand-in",
)


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
                         children_per_generation=config.children_per_generation)


def estimate(config: CampaignConfig, open_reads: Callable[[], "ArchiveReader | None"] | None = None,
             ) -> EstimateResult:
    """The estimate of `config`'s campaign, calibrated from the archive `open_reads` gives
    (None, or a callable returning None: no archive, the defaults)."""
    from dgm.runs.campaign import check_config

    bench, plan = check_config(config)
    models = role_models(config)
    reads = open_reads() if open_reads is not None else None
    try:
        calibration = calibrate(config, bench, plan, models, reads)
    finally:
        if reads is not None and hasattr(reads, "close"):
            reads.close()
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

    first_task, first_self, diagnose_base = _first_prompts(bench, plan)
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
    roles["task"] = (_measured(measured, "task run") if len(measured) >= LEAST_SAMPLES else
                     _grown(d.task_calls, first_task, d.task_growth_tokens, d.task_completion_tokens, d.label))
    d = defaults_for(models["self_modify"])
    measured = queries.run_call_figures(fetch, kind="self_modify", model=models["self_modify"],
                                        benchmark=SELF_BENCHMARK, campaign_ids=campaigns) if fetch else []
    roles["self_modify"] = (_measured(measured, "self-modification") if len(measured) >= LEAST_SAMPLES else
                            _grown(d.self_modify_calls, first_self, d.self_modify_growth_tokens,
                                   d.self_modify_completion_tokens, d.label))
    d = defaults_for(models["diagnose"])
    measured = queries.agent_call_figures(fetch, purpose="diagnose", model=models["diagnose"],
                                          campaign_ids=campaigns) if fetch else []
    if len(measured) >= LEAST_SAMPLES:
        roles["diagnose"] = _measured(measured, "diagnosis")
    else:
        trajectory = min(d.diagnose_trajectory_chars, config.trajectory_chars)
        prompt = diagnose_base + trajectory / CHARS_PER_TOKEN
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
    if finished < LEAST_SAMPLES:
        return Calibration(roles=roles, advance=tuple(Span(*d.advance) for _ in range(n_stages - 1)),
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
    return Calibration(roles=roles, advance=tuple(advance), evaluated=_share(at_least[1], finished),
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
                       source=f"{len(units)} earlier {what}s in this archive")


def _percentiles(values: list[int]) -> tuple[float, float]:
    if len(values) < 2:
        return float(values[0]), float(values[0])
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return float(cuts[0]), float(cuts[-1])


def _grown(calls: tuple[float, float, float], first: float, growth: float,
           completion: tuple[float, float, float], label: str) -> RoleFigures:
    """Default figures of a unit whose history grows by `growth` tokens a call: its mean prompt."""
    low, mid, high = calls
    return RoleFigures(calls=Span(low, mid, high),
                       prompt_tokens=Span(*(first + growth * (n - 1) / 2 for n in (low, mid, high))),
                       completion_tokens=Span(*completion), source=label)


def _first_prompts(bench: Benchmark, plan: StagePlan) -> tuple[float, float, float]:
    """Tokens of a task run's first prompt (mean over the plan's tasks), of a self-modification's
    (the seed's prompt and the preamble, a proposal), and of a diagnosis without its trajectory."""
    from dgm.agent_code import SEED_AGENT_DIR
    from dgm.evolution.diagnose import AGENT_CODE_CHARS
    from dgm.evolution.self_modify import SELF_MODIFY_PREAMBLE
    from dgm.seed_agent.main import INSTANCE_TEMPLATE, SYSTEM_PROMPT

    wanted = set(plan.selection_task_ids) | set(plan.heldout)
    problems = [len(t.problem_statement) for t in bench.tasks() if t.instance_id in wanted] or [0]
    frame = len(SYSTEM_PROMPT) + len(INSTANCE_TEMPLATE)
    task = (frame + statistics.fmean(problems)) / CHARS_PER_TOKEN
    proposal_chars = 1_500  # a proposal's problem statement: a few paragraphs
    self_modify = (frame + len(SELF_MODIFY_PREAMBLE) + proposal_chars) / CHARS_PER_TOKEN
    code = sum(len(p.read_bytes()) for p in Path(SEED_AGENT_DIR).rglob("*")
               if p.is_file() and p.suffix in (".py", ".md", ".txt", ".toml", ".json") and "__pycache__" not in p.parts)
    diagnose = (min(code, AGENT_CODE_CHARS) + statistics.fmean(problems) + 2_000) / CHARS_PER_TOKEN
    return task, self_modify, diagnose
