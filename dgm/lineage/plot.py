"""Campaign progress per generation: best and mean archive score, coverage and
diversity, spend. From the recorded `generation_stats` when the loop wrote
them; otherwise recomputed from agents and task runs (imports, eval campaigns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dgm.evolution.diversity import coverage, mean_pairwise_jaccard_distance
from dgm.ranking import best_key
from dgm.stats.intervals import score_label, wilson_interval

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

# Agents that count as "in the archive" when recomputing (the loop admits these).
ARCHIVED_STATUSES = ("seed", "admitted")


@dataclass
class GenerationPoint:
    generation: int
    archive_size: int
    best_score: float | None
    mean_score: float | None
    coverage: int
    coverage_fraction: float
    mean_jaccard_distance: float | None
    spent_usd: float
    partial: bool = False
    """A generation the campaign stopped in (a budget stop, an interrupt): what it had reached, and all it spent."""
    best_agent: str | None = None
    best_resolved: int = 0
    best_n: int = 0
    """The task runs behind the best score (its own campaign's, as every view counts them)."""
    best_low: float | None = None
    best_high: float | None = None
    """The best score's 95 % Wilson interval (None without runs behind it)."""
    best_label: str = "-"
    """The best score as every view writes it: `0.73 [0.55–0.86] n=22`."""

    def as_dict(self) -> dict:
        return asdict(self)


def generation_series(store: ArchiveStore, campaign_id: str) -> tuple[list[GenerationPoint], str]:
    """Points per generation and where they came from ('recorded' or 'recomputed'),
    each best score with the interval of the runs behind it."""
    points, source = _series(store, campaign_id)
    return _with_best_intervals(store, campaign_id, points), source


def _with_best_intervals(store: ArchiveStore, campaign_id: str, points: list[GenerationPoint]) -> list[GenerationPoint]:
    """Each point's best agent (the best-ranked archived agent of its generation or before with the best
    score) and the Wilson interval of the runs behind that score."""
    if not points:
        return points
    rows = [r for r in store.lineage_rows(campaign_id) if r.status in ARCHIVED_STATUSES and r.score is not None]
    counts = store.score_counts(campaign_id=campaign_id)
    out = []
    for p in points:
        tied = [r for r in rows if r.generation <= p.generation and p.best_score is not None
                and abs(r.score - p.best_score) < 1e-9]
        best = min(tied, key=lambda r: best_key(r.score, r.heldout_score, r.generation, r.id), default=None)
        if best is None:
            out.append(p)
            continue
        resolved, n = counts.get(best.id, {}).get("score", (0, 0))
        low, high = wilson_interval(resolved, n) if n else (None, None)
        out.append(replace(p, best_agent=best.id, best_resolved=resolved, best_n=n, best_low=low, best_high=high,
                           best_label=score_label(p.best_score, resolved, n)))
    return out


def _series(store: ArchiveStore, campaign_id: str) -> tuple[list[GenerationPoint], str]:
    stats = store.list_generation_stats(campaign_id)
    if not stats:
        return _recomputed(store, campaign_id), "recomputed"
    points = [GenerationPoint(s.generation, s.archive_size, s.best_score, s.mean_score, s.coverage,
                              s.coverage_fraction, s.mean_jaccard_distance, s.spent_usd) for s in stats]
    # Statistics are written as each generation ends: money spent in one the
    # campaign stopped in would otherwise be missing from the series.
    total = store.campaign_spend(campaign_id)
    last = points[-1]
    if total > last.spent_usd + 1e-9:
        reached = next((p for p in _recomputed(store, campaign_id) if p.generation == last.generation + 1), None)
        points.append(replace(reached or last, generation=last.generation + 1, spent_usd=total, partial=True))
    return points, "recorded"


def _recomputed(store: ArchiveStore, campaign_id: str) -> list[GenerationPoint]:
    rows = store.lineage_rows(campaign_id)
    if not rows:
        return []
    outcomes = store.agent_task_outcomes(campaign_id)
    costs = store.agent_costs(campaign_id=campaign_id)
    all_tasks = {t for per in outcomes.values() for t in per}
    points: list[GenerationPoint] = []
    archived: list = []
    spent = 0.0
    by_gen: dict[int, list] = {}
    for r in rows:
        by_gen.setdefault(r.generation, []).append(r)
    for gen in range(min(by_gen), max(by_gen) + 1):
        for r in by_gen.get(gen, []):
            spent += costs.get(r.id, 0.0)
            if r.status in ARCHIVED_STATUSES:
                archived.append(r)
        scores = [r.score for r in archived if r.score is not None]
        solved = [{t for t, ok in outcomes.get(r.id, {}).items() if ok} for r in archived]
        cov = coverage(solved) if solved else 0
        points.append(GenerationPoint(
            generation=gen, archive_size=len(archived), best_score=max(scores) if scores else None,
            mean_score=sum(scores) / len(scores) if scores else None, coverage=cov,
            coverage_fraction=cov / len(all_tasks) if all_tasks else 0.0,
            mean_jaccard_distance=mean_pairwise_jaccard_distance(solved) if len(solved) > 1 else None,
            spent_usd=spent,
        ))
    return points


def spend_label(unpriced_calls: int, total_usd: float) -> str:
    """The spend axis' name: an unpriced model's calls are in no dollar figure, and it says so."""
    if not unpriced_calls:
        return "spent (USD)"
    return "spent: unpriced model" if not total_usd else "spent (USD, priced calls only;\nsome calls unpriced)"


def plot_series(points: list[GenerationPoint], out: Path, title: str, *, unpriced_calls: int = 0) -> Path:
    """`unpriced_calls`: the campaign's calls that had no known price (the spend panel says so)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    gens = [p.generation for p in points]
    nan = float("nan")
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    ax = axes[0]
    best = [p.best_score if p.best_score is not None else nan for p in points]
    # Error bars: the best score's 95 % Wilson interval (none where no runs are behind it).
    below = [p.best_score - p.best_low if p.best_low is not None and p.best_score is not None else nan for p in points]
    above = [p.best_high - p.best_score if p.best_high is not None and p.best_score is not None else nan
             for p in points]
    ax.errorbar(gens, best, yerr=[below, above], fmt="-o", ms=3, capsize=3, label="best (95 % Wilson interval)")
    ax.plot(gens, [p.mean_score if p.mean_score is not None else nan for p in points], "-o", ms=3, label="mean")
    ax.set_ylabel("archive score")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax = axes[1]
    ax.plot(gens, [p.coverage_fraction for p in points], "-o", ms=3, color="tab:green", label="coverage (solved by any)")
    ax.plot(gens, [p.mean_jaccard_distance if p.mean_jaccard_distance is not None else nan for p in points],
            "-o", ms=3, color="tab:purple", label="diversity (mean Jaccard distance)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax = axes[2]
    ax.plot(gens, [p.spent_usd for p in points], "-o", ms=3, color="tab:red")
    ax.set_ylabel(spend_label(unpriced_calls, points[-1].spent_usd if points else 0.0))
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers (axes share x)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
