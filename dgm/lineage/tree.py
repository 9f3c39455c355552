"""The lineage as Rich text: colour by score, the best agent's path marked.

A big campaign is pruned to the nodes worth reading (the best path, the best
agents and their ancestors, the shallow levels); every hidden subtree is
summarised in one line, so the printout stays readable and fast. Works on the
light `Lineage` lists, not networkx: 100,000 agents in well under a second.
"""

from __future__ import annotations

import heapq

from rich.color import Color
from rich.style import Style
from rich.text import Text

from dgm.lineage.forest import Lineage, score_rgb

BEST_MARK = "★"


def _label(lin: Lineage, i: int, on_best: bool, is_best: bool) -> Text:
    row = lin.rows[i]
    score = row.score
    text = Text()
    if on_best:
        text.append(f"{BEST_MARK} ", style="bold red" if is_best else "red")
    text.append(row.id, style="bold" if on_best else "")
    text.append(f"  g{row.generation}  ")
    text.append("  -  " if score is None else lin.score_label(i),
                style=Style(color=Color.from_rgb(*score_rgb(score)), bold=on_best))
    text.append(f"  {row.status}", style="dim" if row.status in ("rejected", "twin") else "")
    twin_of = getattr(row, "twin_of", None)
    if twin_of:
        text.append(f"  = twin of {twin_of}" + (" (not evaluated)" if row.status == "twin" else ""), style="magenta")
    if row.heldout_score is not None:
        text.append(f"  held-out {lin.score_label(i, 'heldout')}")
    if is_best:
        text.append("  best", style="bold red")
    return text


def visible(lin: Lineage, max_nodes: int, must: list[int]) -> set[int]:
    """About `max_nodes` rows: `must`, the best-scoring agents with their ancestors,
    then the shallowest others. Closed under 'parent of', so it is a tree again."""
    if len(lin) <= max_nodes:
        return set(range(len(lin)))
    keep: set[int] = set()

    def add_with_ancestors(i: int) -> None:
        while i >= 0 and i not in keep:
            keep.add(i)
            i = lin.parent[i]

    for i in must:
        add_with_ancestors(i)
    budget = (2 * max_nodes) // 3
    top = heapq.nsmallest(budget, ((-r.score, r.generation, r.id, i) for i, r in enumerate(lin.rows)
                                   if r.score is not None))
    for *_, i in top:
        if len(keep) >= budget:
            break
        add_with_ancestors(i)
    for i in lin.bfs():
        if len(keep) >= max_nodes:
            break
        if lin.parent[i] < 0 or lin.parent[i] in keep:
            keep.add(i)
    return keep


def _subtree_stats(lin: Lineage) -> tuple[list[int], list[float | None]]:
    """Agents under and including each node, and their best score (one bottom-up pass)."""
    size = [1] * len(lin)
    best: list[float | None] = [r.score for r in lin.rows]
    for i in reversed(lin.bfs()):
        p = lin.parent[i]
        if p >= 0:
            size[p] += size[i]
            if best[i] is not None and (best[p] is None or best[i] > best[p]):
                best[p] = best[i]
    return size, best


def rich_tree(lin: Lineage, title: str, max_nodes: int | None = 300) -> Text:
    """The tree as one Rich Text (guide lines drawn here: rich.tree.Tree lays out
    every node as its own renderable, which takes seconds for a few hundred).
    `max_nodes` None prints every agent."""
    best = lin.best()
    path = lin.path_to(best)
    on_best = set(path)
    shown = set(range(len(lin))) if max_nodes is None else visible(lin, max_nodes, path)
    size, sub_best = _subtree_stats(lin) if len(shown) < len(lin) else (None, None)
    rows = lin.rows
    out = Text(title, style="bold")
    roots = lin.roots()
    items: list[int | Text] = [r for r in roots if r in shown]
    hidden_roots = [r for r in roots if r not in shown]
    if hidden_roots:
        items.append(Text(f"… {len(hidden_roots)} more root agents", style="dim italic"))
    stack: list[tuple[int | Text, str, bool]] = [(items[k], "", k == len(items) - 1)
                                                 for k in range(len(items) - 1, -1, -1)]
    while stack:  # iterative: DGM lineages can be hundreds of generations deep
        item, prefix, last = stack.pop()
        out.append("\n" + prefix + ("└── " if last else "├── "), style="dim")
        if isinstance(item, Text):
            out.append_text(item)
            continue
        out.append_text(_label(lin, item, item in on_best, item == best))
        children = sorted(lin.children[item], key=lambda c: (c not in on_best, -(rows[c].score or -1.0), rows[c].id))
        entries: list[int | Text] = [c for c in children if c in shown]
        hidden = [c for c in children if c not in shown]
        if hidden:
            total = sum(size[c] for c in hidden)
            scores = [sub_best[c] for c in hidden if sub_best[c] is not None]
            score_txt = f", best {max(scores):.3f}" if scores else ""
            entries.append(Text(f"… {len(hidden)} more {'child' if len(hidden) == 1 else 'children'} ({total} agent{'' if total == 1 else 's'}{score_txt})", style="dim italic"))
        child_prefix = prefix + ("    " if last else "│   ")
        for k in range(len(entries) - 1, -1, -1):
            stack.append((entries[k], child_prefix, k == len(entries) - 1))
    return out


def print_lineage(console, lin: Lineage, title: str, max_nodes: int | None = 300) -> None:
    """The tree, then one line naming the best agent and its path (`dgm lineage`, end of `dgm run`)."""
    tree = rich_tree(lin, title, max_nodes)
    # Piped: whole lines (soft wrap), so grep and less see one agent per line; a terminal crops instead.
    if console.is_terminal:
        console.print(tree, no_wrap=True, overflow="ellipsis")
    else:
        console.print(tree, soft_wrap=True)
    best = lin.best()
    if best is not None:
        row = lin.rows[best]
        path = " → ".join(lin.rows[i].id for i in lin.path_to(best))
        console.print(f"{BEST_MARK} best agent {row.id} (score {lin.score_label(best)}, generation {row.generation}); "
                      f"path: {path}", soft_wrap=True)
