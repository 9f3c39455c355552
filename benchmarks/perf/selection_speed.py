"""Parent-selection speed on a synthetic 100,000-agent archive.

Run: python benchmarks/perf/selection_speed.py [--agents N] [--repeats R]

The archive: a random recursive tree (each agent's parent uniform among the
earlier agents, depth ≈ 30), 50 tasks, DGM-like staged evaluation (70 % of
agents evaluated on 10 random tasks, 30 % on all 50), each agent solving each
evaluated task with its own random skill p ~ U(0, 1), 80 % eligible. Also a
100,000-deep chain, the worst case for hgm_cmp's clade sums.

Three figures per method, each "median (min)" of R runs after a warm-up run
(the min shows the cost without interference from other processes):

* end-to-end: `select_parents(method, list_of_AgentStats, k=2, seed)`, the
  realistic call; includes extracting the columns the method needs.
* table build: `StatsTable.from_stats(list)` extracting those columns only.
* on table: `select_parents` on a prebuilt `StatsTable` holding the raw
  columns; derived results (hgm_cmp's clade sums, the eligible-row index) are
  dropped before every call, so this figure includes the clade aggregation.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.evolution.diversity import coverage, mean_pairwise_jaccard_distance  # noqa: E402
from dgm.evolution.selection import SELECTORS, AgentStats, StatsTable, select_parents  # noqa: E402

COLUMNS_USED = {
    "score_child_prop": ("agent_ids", "score", "n_children", "eligible"),
    "score_prop": ("agent_ids", "score", "eligible"),
    "best": ("agent_ids", "score", "n_children", "eligible"),
    "random": ("agent_ids", "eligible"),
    "hgm_cmp": ("agent_ids", "eligible", "parent", "n_solved", "n_failed"),
    "novelty_share": ("agent_ids", "score", "n_children", "eligible", "n_solved", "solved_incidence"),
}


def synthetic_archive(n: int, n_tasks: int = 50, seed: int = 0, chain: bool = False) -> list[AgentStats]:
    rnd = random.Random(seed)
    tasks = [f"repo__project-{i:05d}" for i in range(n_tasks)]
    parents = [None] + [f"a{(i - 1 if chain else rnd.randrange(i)):06d}" for i in range(1, n)]
    children = [0] * n
    for p in parents[1:]:
        children[int(p[1:])] += 1
    stats = []
    for i in range(n):
        evaluated = rnd.sample(tasks, 10 if rnd.random() < 0.7 else n_tasks)
        skill = rnd.random()
        solved = frozenset(t for t in evaluated if rnd.random() < skill)
        stats.append(AgentStats(
            agent_id=f"a{i:06d}",
            parent_id=parents[i],
            score=len(solved) / len(evaluated),
            n_children=children[i],
            solved=solved,
            failed=frozenset(evaluated) - solved,
            eligible=rnd.random() < 0.8,
        ))
    return stats


def timings_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall time in ms over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def ms(fn, repeats: int, width: int = 0, digits: int = 1) -> str:
    med, low = timings_ms(fn, repeats)
    return f"{med:.{digits}f} ({low:.{digits}f})".rjust(width)


DERIVED = ("clade_totals", "eligible_rows")


def fresh(table: StatsTable) -> StatsTable:
    """The same table without its cached derived results."""
    for name in DERIVED:
        table.__dict__.pop(name, None)
    return table


def build(stats, columns):
    t = StatsTable.from_stats(stats)
    for c in columns:
        getattr(t, c)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--k", type=int, default=2)
    args = ap.parse_args()
    n, r, k = args.agents, args.repeats, args.k

    t0 = time.perf_counter()
    stats = synthetic_archive(n)
    pairs = sum(len(s.solved) for s in stats)
    print(f"synthetic archive: {n:,} agents, 50 tasks, {pairs:,} solved pairs, "
          f"{sum(s.eligible for s in stats):,} eligible (built in {time.perf_counter() - t0:.1f} s)")
    table = StatsTable.from_stats(stats).materialize()
    print(f"full StatsTable.from_stats(...).materialize(): {ms(lambda: StatsTable.from_stats(stats).materialize(), r)} ms")
    print()
    print(f"ms, k={k}, median (min) of {r} runs")
    print(f"{'method':<18}{'end-to-end (list)':>20}{'table build':>18}{'on table':>16}")
    seeds = iter(range(10**9))
    for method in SELECTORS:
        e2e = ms(lambda: select_parents(method, stats, k, next(seeds)), r, 20)
        tb = ms(lambda: build(stats, COLUMNS_USED[method]), r, 18)
        on = ms(lambda: select_parents(method, fresh(table), k, next(seeds)), r, 16, 2)
        print(f"{method:<18}{e2e}{tb}{on}")

    chain = synthetic_archive(n, seed=1, chain=True)
    chain_table = StatsTable.from_stats(chain).materialize()
    print()
    print(f"hgm_cmp on a {n:,}-deep chain: end-to-end "
          f"{ms(lambda: select_parents('hgm_cmp', chain, k, next(seeds)), r)} ms, "
          f"on table {ms(lambda: select_parents('hgm_cmp', fresh(chain_table), k, next(seeds)), r)} ms, "
          f"clade sums alone {ms(lambda: fresh(chain_table).clade_totals, r)} ms")
    print(f"clade sums alone on the random tree: {ms(lambda: fresh(table).clade_totals, r)} ms")

    sets = [s.solved for s in stats]
    print()
    print(f"diversity: coverage {ms(lambda: coverage(sets), r)} ms, "
          f"mean_pairwise_jaccard_distance (20,000 sampled pairs) "
          f"{ms(lambda: mean_pairwise_jaccard_distance(sets, seed=0), r)} ms "
          f"-> {mean_pairwise_jaccard_distance(sets, seed=0):.3f}")


if __name__ == "__main__":
    main()
