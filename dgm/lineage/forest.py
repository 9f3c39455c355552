"""The lineage as plain lists, and the score colour ramp.

Kept free of networkx (a third of a second to import): `dgm lineage`'s text
tree, `dgm show` and the explorer's API use only this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dgm.ranking import best_key, can_be_best
from dgm.stats.intervals import score_label

if TYPE_CHECKING:
    from dgm.archive.reads import ArchiveReader


class Lineage:
    """The lineage as plain lists indexed by row number: what the text tree and the
    explorer need, without networkx's per-node dictionaries (seconds at 100k agents)."""

    def __init__(self, rows: list, counts: dict | None = None):
        self.rows = rows
        self.counts: dict[str, dict[str, tuple[int, int]]] = counts or {}
        """agent id -> the task runs behind its scores (`dgm.archive.reads.score_counts`)."""
        self.index = {r.id: i for i, r in enumerate(rows)}
        self.parent = [self.index.get(r.parent_id, -1) if r.parent_id is not None else -1 for r in rows]
        self.children: list[list[int]] = [[] for _ in rows]
        for i, p in enumerate(self.parent):
            if p >= 0:
                self.children[p].append(i)
        # Both are asked for more than once per command; at 100k agents each costs ~0.1 s.
        self._best: tuple[int | None] | None = None
        self._bfs: list[int] | None = None

    @classmethod
    def load(cls, store: ArchiveReader, campaign_id: str) -> "Lineage":
        rows = store.lineage_rows(campaign_id)
        counts = store.score_counts(campaign_id=campaign_id)
        # An eval's or replay's agents earned their scores in their own campaigns.
        elsewhere = [r.id for r in rows if r.id not in counts and r.score is not None]
        if elsewhere:
            counts.update(store.score_counts(agent_ids=elsewhere))
        return cls(rows, counts)

    def score_label(self, i: int, which: str = "score") -> str:
        """Row i's score (or "heldout" score) with its interval and n: `0.73 [0.55–0.86] n=22`."""
        row = self.rows[i]
        resolved, n = self.counts.get(row.id, {}).get(which, (0, 0))
        return score_label(row.score if which == "score" else row.heldout_score, resolved, n)

    def __len__(self) -> int:
        return len(self.rows)

    def roots(self) -> list[int]:
        return [i for i, p in enumerate(self.parent) if p < 0]

    def best(self) -> int | None:
        """The best agent that finished its evaluation (`dgm.ranking`, ties to the smaller id)."""
        if self._best is None:
            scored = [(best_key(r.score, r.heldout_score, r.generation, r.id), i)
                      for i, r in enumerate(self.rows) if can_be_best(r.score, r.status)]
            self._best = (min(scored)[1] if scored else None,)
        return self._best[0]

    def path_to(self, i: int | None) -> list[int]:
        chain: list[int] = []
        while i is not None and i >= 0:
            chain.append(i)
            i = self.parent[i]
        return chain[::-1]

    def bfs(self) -> list[int]:
        if self._bfs is None:
            order = self.roots()
            k = 0
            while k < len(order):
                order.extend(self.children[order[k]])
                k += 1
            self._bfs = order
        return list(self._bfs)


# -- colours -------------------------------------------------------------------


def score_rgb(score: float | None) -> tuple[int, int, int]:
    """Red (0) -> amber (0.5) -> green (1); grey when unscored. Same ramp as the web explorer."""
    if score is None:
        return (140, 140, 140)
    s = min(1.0, max(0.0, float(score)))
    if s < 0.5:
        t = s / 0.5
        return (int(214 + (240 - 214) * t), int(39 + (173 - 39) * t), int(40 + (40 - 40) * t))
    t = (s - 0.5) / 0.5
    return (int(240 + (44 - 240) * t), int(173 + (160 - 173) * t), int(40 + (44 - 40) * t))


def score_hex(score: float | None) -> str:
    return "#%02x%02x%02x" % score_rgb(score)
