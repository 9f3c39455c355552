"""What a campaign will cost, before it runs: task runs, LLM calls, tokens and
dollars per generation and in all, each as a range (low, expected, high).

Pure: the campaign's shape (stages, children, generations, held-out top-k),
per-role figures (calls, tokens per call) and prices go in, numbers come out.
Where the figures come from (earlier runs in the archive, or the defaults
below) is `dgm.runs.estimate`'s business; it says which in what it returns.

The campaign is counted as the loop runs it (`evolution/loop.py`):
generation 0 evaluates the seed stage by stage and scores it on the held-out
tasks; each later generation makes `children_per_generation` children, each
with one diagnosis (1 + `diagnosis_retries` calls at most) and one
self-modification run; a child that survives the sanity gate is evaluated
stage by stage, going on only while its resolve rate reaches the stage's
threshold; after each generation the best `heldout_top_k` agents not yet
scored meet the held-out tasks.

The low end assumes every uncertain thing goes the cheap way (fewest calls,
no child past the first stage, no new held-out scoring), the high end the
dear way; the expected value takes the middle figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("task", "diagnose", "self_modify")
"""`llm_calls.purpose` of each role: the agents' task runs, the proposer's diagnoses, self-modification runs."""
ROLE_LABELS = {"task": "task runs", "diagnose": "diagnosis", "self_modify": "self-modification"}


@dataclass(frozen=True)
class Span:
    """A quantity as a range: low, expected (mid), high."""

    low: float
    mid: float
    high: float

    @classmethod
    def exactly(cls, value: float) -> "Span":
        return cls(value, value, value)

    def __add__(self, other: "Span") -> "Span":
        return Span(self.low + other.low, self.mid + other.mid, self.high + other.high)

    def __mul__(self, other: "Span | float") -> "Span":
        if isinstance(other, Span):
            return Span(self.low * other.low, self.mid * other.mid, self.high * other.high)
        return Span(self.low * other, self.mid * other, self.high * other)

    __rmul__ = __mul__

    def capped(self, most: float) -> "Span":
        return Span(min(self.low, most), min(self.mid, most), min(self.high, most))


ZERO = Span.exactly(0.0)


@dataclass(frozen=True)
class RoleFigures:
    """How one role uses its model: calls per unit (a task run, or a child), tokens per call."""

    calls: Span
    prompt_tokens: Span
    """Prompt tokens per call (the mean over a unit's calls: histories grow)."""
    completion_tokens: Span
    source: str
    """Where the figures come from, in words (shown to the user)."""


@dataclass(frozen=True)
class Price:
    """USD per token of one model; None prices mean the model has no known price."""

    input_usd: float
    output_usd: float


@dataclass(frozen=True)
class CampaignShape:
    """What the config fixes: how many of each unit a campaign can have."""

    stage_sizes: tuple[int, ...]
    heldout_size: int
    heldout_top_k: int
    generations: int
    children_per_generation: int


@dataclass(frozen=True)
class Calibration:
    """The uncertain figures of a campaign, per role and per child."""

    roles: dict[str, RoleFigures]
    advance: tuple[Span, ...]
    """Fraction of evaluated agents going on past stage i, for each stage but the last."""
    evaluated: Span
    """Fraction of children that reach evaluation (the rest are rejected before: no diff, sanity gate)."""
    heldout_new: Span
    """Agents newly scored on the held-out tasks per generation after the seed's (at most heldout_top_k)."""
    source: str
    """Where the child figures (advance, evaluated, held-out) come from."""


@dataclass
class RoleEstimate:
    units: Span
    """Task runs (task role), or children (diagnosis, self-modification)."""
    calls: Span
    prompt_tokens: Span
    completion_tokens: Span
    usd: Span | None
    """None: the role's model has no known price."""

    @property
    def tokens(self) -> Span:
        return self.prompt_tokens + self.completion_tokens


class _RoleTotals:
    """Totals over `roles` (one generation's, or the whole campaign's)."""

    roles: dict[str, RoleEstimate]

    @property
    def task_runs(self) -> Span:
        return self.roles["task"].units

    @property
    def calls(self) -> Span:
        return _sum(r.calls for r in self.roles.values())

    @property
    def tokens(self) -> Span:
        return _sum(r.tokens for r in self.roles.values())

    @property
    def usd(self) -> Span | None:
        """The dollars; None when some role's model has no price."""
        return _sum_usd(r.usd for r in self.roles.values())

    @property
    def priced_usd(self) -> Span:
        """The dollars of the roles whose model has a price."""
        return _sum(r.usd for r in self.roles.values() if r.usd is not None)


@dataclass
class GenerationEstimate(_RoleTotals):
    generation: int
    roles: dict[str, RoleEstimate]


@dataclass
class CampaignEstimate(_RoleTotals):
    generations: list[GenerationEstimate]
    calibration: Calibration
    prices: dict[str, Price | None]
    roles: dict[str, RoleEstimate] = field(default_factory=dict)
    """Whole-campaign figures per role."""



def _sum(spans) -> Span:
    total = ZERO
    for span in spans:
        total = total + span
    return total


def _sum_usd(spans) -> Span | None:
    spans = list(spans)
    return None if any(s is None for s in spans) else _sum(spans)


def stage_runs(stage_sizes: tuple[int, ...], advance: tuple[Span, ...]) -> Span:
    """Task runs of one evaluated agent: every run of the first stage, then each
    later stage's runs times the chance of getting that far."""
    total, reach = ZERO, Span.exactly(1.0)
    for index, size in enumerate(stage_sizes):
        if index:
            reach = reach * advance[index - 1]
        total = total + reach * float(size)
    return total


def _role(figures: RoleFigures, units: Span, price: Price | None) -> RoleEstimate:
    calls = units * figures.calls
    prompt = calls * figures.prompt_tokens
    completion = calls * figures.completion_tokens
    usd = None if price is None else prompt * price.input_usd + completion * price.output_usd
    return RoleEstimate(units=units, calls=calls, prompt_tokens=prompt, completion_tokens=completion, usd=usd)


def estimate_campaign(shape: CampaignShape, calibration: Calibration,
                      prices: dict[str, Price | None]) -> CampaignEstimate:
    """Per generation and in all, each role's units, calls, tokens and dollars."""
    if len(calibration.advance) < len(shape.stage_sizes) - 1:
        raise ValueError("one advance fraction per stage but the last is needed")
    per_agent = stage_runs(shape.stage_sizes, calibration.advance)
    heldout = float(shape.heldout_size) if shape.heldout_top_k > 0 else 0.0
    generations = []
    # Generation 0: the seed, evaluated stage by stage, then scored on the held-out tasks.
    seed_runs = per_agent + Span.exactly(heldout)
    generations.append(_generation(0, calibration, prices, seed_runs, ZERO))
    children = Span.exactly(float(shape.children_per_generation))
    new_heldout = calibration.heldout_new.capped(float(min(shape.heldout_top_k, shape.children_per_generation)))
    for generation in range(1, shape.generations + 1):
        runs = children * calibration.evaluated * per_agent + new_heldout * heldout
        generations.append(_generation(generation, calibration, prices, runs, children))
    roles = {role: RoleEstimate(units=_sum(g.roles[role].units for g in generations),
                                calls=_sum(g.roles[role].calls for g in generations),
                                prompt_tokens=_sum(g.roles[role].prompt_tokens for g in generations),
                                completion_tokens=_sum(g.roles[role].completion_tokens for g in generations),
                                usd=_sum_usd(g.roles[role].usd for g in generations))
             for role in ROLES}
    return CampaignEstimate(generations=generations, calibration=calibration, prices=dict(prices), roles=roles)


def _generation(generation: int, calibration: Calibration, prices: dict[str, Price | None],
                task_runs: Span, children: Span) -> GenerationEstimate:
    units = {"task": task_runs, "diagnose": children, "self_modify": children}
    return GenerationEstimate(generation, {role: _role(calibration.roles[role], units[role], prices.get(role))
                                           for role in ROLES})
