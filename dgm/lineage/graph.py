"""A campaign's lineage as a networkx DiGraph (edge parent -> child) and its exports.

Nodes are agent ids; attributes are the agent's light columns plus the number
of its task runs. The graph is built from two grouped queries, so a 100,000-
agent campaign loads in well under a second; JSON columns (proposals, meta)
are left out on purpose and fetched per agent by whoever shows one.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any, TYPE_CHECKING, TextIO

import networkx as nx

from dgm.ranking import best_key, can_be_best
from dgm.safe_text import terminal_safe

FORMATS = ("graphml", "json", "dot")

# Re-exported: the light structures live apart so the text tree and `dgm show` never import networkx.
from dgm.lineage.forest import Lineage, score_hex, score_rgb  # noqa: E402,F401

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore


def build_graph(store: ArchiveStore, campaign_id: str, *, with_runs: bool = True) -> nx.DiGraph:
    """The campaign's agents and parent -> child edges; `with_runs` adds `n_runs` per node.

    Counting runs is a pass over every task run of the campaign (5 million
    rows at 100k agents), so the text tree goes without it.
    """
    rows = store.lineage_rows(campaign_id)
    counts = store.task_run_counts(campaign_id) if with_runs else {}
    graph = nx.DiGraph(campaign=campaign_id)
    graph.add_nodes_from(
        (r.id, {
            "generation": r.generation, "status": r.status, "origin": r.origin, "score": r.score,
            "heldout_score": r.heldout_score, "stage_reached": r.stage_reached, "commit": r.commit_sha,
            "parent": r.parent_id, "twin_of": r.twin_of,
            **({"n_runs": counts.get(r.id, 0)} if with_runs else {}),
        })
        for r in rows
    )
    if with_runs:  # the exports: the runs behind each score and its 95 % Wilson interval
        from dgm.stats.intervals import interval_fields

        behind = store.score_counts(campaign_id=campaign_id)
        elsewhere = [r.id for r in rows if r.id not in behind and r.score is not None]
        if elsewhere:
            behind.update(store.score_counts(agent_ids=elsewhere))
        for r in rows:
            for which, value in (("score", r.score), ("heldout", r.heldout_score)):
                if value is None:
                    continue
                fields = interval_fields(*behind.get(r.id, {}).get(which, (0, 0)))
                prefix = "score" if which == "score" else "heldout_score"
                graph.nodes[r.id].update({f"{prefix}_n": fields["n"], f"{prefix}_low": fields["low"],
                                          f"{prefix}_high": fields["high"]})
    if with_runs:  # the exports: why each rejected child was turned away
        for agent_id, (reason, own_code) in store.rejections(campaign_id).items():
            graph.nodes[agent_id]["rejection_reason"] = reason
            if not own_code:
                graph.nodes[agent_id]["commit"] = None  # it still points at its parent's
    # A parent outside the campaign (an agent re-evaluated elsewhere) has no
    # node here: the child is a root of this campaign's forest, with `parent` kept.
    graph.add_edges_from((r.parent_id, r.id) for r in rows if r.parent_id is not None and r.parent_id in graph)
    return graph


def roots(graph: nx.DiGraph) -> list[str]:
    return [n for n in graph if graph.in_degree(n) == 0]


def best_agent(graph: nx.DiGraph) -> str | None:
    """The best agent that finished its evaluation (`dgm.ranking`, ties to the smaller id).

    Only agent columns decide, so a graph built without run counts (the
    text tree) names the same best agent as the exports.
    """
    scored = [(best_key(data["score"], data.get("heldout_score"), data.get("generation"), node), node)
              for node, data in graph.nodes(data=True) if can_be_best(data.get("score"), data.get("status"))]
    return min(scored)[1] if scored else None


def path_to(graph: nx.DiGraph, node: str | None) -> list[str]:
    """Root ... node along parent edges (empty for None)."""
    chain: list[str] = []
    while node is not None:
        chain.append(node)
        preds = list(graph.predecessors(node))
        node = preds[0] if preds else None
    return chain[::-1]


def best_path(graph: nx.DiGraph) -> list[str]:
    return path_to(graph, best_agent(graph))


# -- exports -------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return terminal_safe(value)  # a reason quoting an agent: no control characters (GraphML cannot hold them)
    return value.isoformat() if isinstance(value, datetime) else value


def _export_copy(graph: nx.DiGraph) -> nx.DiGraph:
    """Attributes every format can hold: no None (GraphML has no null), datetimes as ISO text."""
    out = nx.DiGraph()
    out.graph.update({k: _plain(v) for k, v in graph.graph.items() if v is not None})
    best = best_path(graph)
    on_best = set(best)
    if best:
        out.graph["best_agent"] = best[-1]
    for node, data in graph.nodes(data=True):
        attrs = {k: _plain(v) for k, v in data.items() if v is not None}
        attrs["on_best_path"] = node in on_best
        out.add_node(node, **attrs)
    out.add_edges_from(graph.edges())
    return out


def write_graphml(graph: nx.DiGraph, stream: Any) -> None:
    """GraphML (readable by `networkx.read_graphml`, Gephi, yEd) into a binary stream."""
    nx.write_graphml(_export_copy(graph), stream)


def to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """networkx node-link JSON (`networkx.node_link_graph(data, edges="edges")` reads it back)."""
    return nx.node_link_data(_export_copy(graph), edges="edges")


def _dot_quote(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def write_dot(graph: nx.DiGraph, out: TextIO) -> None:
    """Graphviz DOT, written directly: pydot/pygraphviz are heavy optional extras of networkx."""
    copy = _export_copy(graph)
    on_best = {n for n, d in copy.nodes(data=True) if d.get("on_best_path")}
    out.write(f"digraph {_dot_quote(copy.graph.get('campaign', 'lineage'))} {{\n")
    out.write("  rankdir=TB;\n  node [shape=box, style=filled, fontname=monospace];\n")
    for node, data in copy.nodes(data=True):
        score = data.get("score")
        interval = (f" [{data['score_low']:.2f}\u2013{data['score_high']:.2f}] n={data['score_n']}"
                    if score is not None and "score_low" in data else "")
        label = f"{node}\ng{data.get('generation', 0)} " + (f"{score:.2f}{interval}" if score is not None else "-")
        attrs = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))}
        attrs["label"] = label
        attrs["fillcolor"] = score_hex(score)
        if node in on_best:
            attrs["penwidth"] = 3
        body = ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items())
        out.write(f"  {_dot_quote(node)} [{body}];\n")
    for a, b in copy.edges():
        extra = " [penwidth=3, color=\"#d62728\"]" if a in on_best and b in on_best else ""
        out.write(f"  {_dot_quote(a)} -> {_dot_quote(b)}{extra};\n")
    out.write("}\n")


def export(graph: nx.DiGraph, fmt: str) -> bytes:
    if fmt == "graphml":
        buf = io.BytesIO()
        write_graphml(graph, buf)
        return buf.getvalue()
    if fmt == "json":
        return (json.dumps(to_json(graph), indent=1) + "\n").encode()
    if fmt == "dot":
        text = io.StringIO()
        write_dot(graph, text)
        return text.getvalue().encode()
    raise ValueError(f"unknown format {fmt!r}")
