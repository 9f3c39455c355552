"""Lineage graph, exports and `dgm lineage` / `dgm plot` against a real SQLite archive
with real agent commits (synthetic campaign built through the store's bulk methods)."""

from __future__ import annotations

import json
import re

import networkx as nx
import pytest

from tests.support.cli import assert_one_line_error, run_dgm
from dgm.archive import ArchiveStore
from dgm.errors import NotFound, UsageError
from dgm.lineage.graph import best_agent, best_path, build_graph
from dgm.lineage.plot import generation_series
from tests.support.synthetic import make_synthetic_campaign


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("lineage") / "archive"
    store = ArchiveStore.open(None, root)
    synth = make_synthetic_campaign(store, 240, 6, n_tasks=12, generations=8, seed=3, name="lin")
    yield store, root, synth
    store.close()


def archive_edges(store, campaign_id):
    agents = store.list_agents(campaign_id)
    return {a.id for a in agents}, {(a.parent_id, a.id) for a in agents if a.parent_id}


def test_graphml_export_loads_in_networkx_with_the_archive_nodes_and_edges(archive, tmp_path):
    store, root, synth = archive
    out = tmp_path / "lineage.graphml"
    proc = run_dgm(["lineage", "lin", "--format", "graphml", "--out", str(out)], root, subprocess_=True)
    assert proc.returncode == 0, proc.stderr
    graph = nx.read_graphml(out)
    nodes, edges = archive_edges(store, synth.campaign_id)
    assert len(nodes) == 240
    assert set(graph.nodes) == nodes
    assert set(graph.edges) == edges
    assert graph.graph["best_agent"] == synth.best_agent
    agent = store.get_agent(synth.best_agent)
    assert graph.nodes[agent.id]["score"] == pytest.approx(agent.score)
    assert graph.nodes[agent.id]["on_best_path"] is True
    assert graph.nodes[agent.id]["n_runs"] == 6
    # The score's 95 % Wilson interval, from the runs behind it.
    from dgm.stats.intervals import wilson_interval

    resolved, n = store.score_counts(agent_ids=[agent.id])[agent.id]["score"]
    assert graph.nodes[agent.id]["score_n"] == n > 0
    assert (graph.nodes[agent.id]["score_low"], graph.nodes[agent.id]["score_high"]) == \
        pytest.approx(tuple(wilson_interval(resolved, n)), abs=1e-4)  # exports keep 4 decimals


def test_json_and_dot_exports_hold_the_same_graph(archive):
    store, root, synth = archive
    nodes, edges = archive_edges(store, synth.campaign_id)
    proc = run_dgm(["lineage", synth.campaign_id, "--format", "json"], root)
    assert proc.returncode == 0, proc.stderr
    graph = nx.node_link_graph(json.loads(proc.stdout), edges="edges")
    assert set(graph.nodes) == nodes and set(graph.edges) == edges
    dot = run_dgm(["lineage", synth.campaign_id, "--format", "dot"], root)
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph ")
    dot_edges = {tuple(part.strip().strip('";').split('" -> "')) for part in dot.stdout.splitlines() if " -> " in part}
    dot_edges = {(a.strip('"'), b.split('"')[0]) for a, b in dot_edges}
    assert dot_edges == edges
    assert re.search(r'label="[0-9a-f]+\\ng\d+ \d\.\d\d \[\d\.\d\d\u2013\d\.\d\d\] n=\d+"', dot.stdout), dot.stdout[:2000]


def test_best_path_is_the_lineage_of_the_top_scoring_agent(archive):
    store, _, synth = archive
    graph = build_graph(store, synth.campaign_id)
    best = best_agent(graph)
    top = max(a.score for a in store.list_agents(synth.campaign_id))
    assert store.get_agent(best).score == top
    assert best_path(graph) == [a.id for a in store.ancestors(best)][::-1]


def test_rich_tree_marks_the_best_path_and_summarises_hidden_subtrees(archive):
    store, root, synth = archive
    proc = run_dgm(["lineage", "lin", "--max-nodes", "30"], root)
    assert proc.returncode == 0, proc.stderr
    path = [a.id for a in store.ancestors(synth.best_agent)][::-1]
    marked = [line for line in proc.stdout.splitlines() if "★" in line]
    for agent_id in path:
        assert any(agent_id in line for line in marked), agent_id
    assert "more children" in proc.stdout
    assert f"best agent {synth.best_agent}" in proc.stdout
    full = run_dgm(["lineage", "lin", "--all"], root)
    assert full.returncode == 0
    printed = sum(agent in full.stdout for agent in archive_edges(store, synth.campaign_id)[0])
    assert printed == 240


def test_plot_writes_a_png_and_the_series_matches_the_archive(archive, tmp_path):
    store, root, synth = archive
    out = tmp_path / "progress.png"
    proc = run_dgm(["plot", "lin", "--out", str(out)], root)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    points, source = generation_series(store, synth.campaign_id)
    assert source == "recomputed"
    agents = store.list_agents(synth.campaign_id)
    last_gen = max(a.generation for a in agents)
    assert points[-1].generation == last_gen
    archived = [a.score for a in agents if a.status in ("seed", "admitted")]
    assert points[-1].best_score == pytest.approx(max(archived))
    assert points[-1].mean_score == pytest.approx(sum(archived) / len(archived))
    assert points[-1].spent_usd == pytest.approx(store.campaign_spend(synth.campaign_id))
    assert 0 < points[-1].coverage_fraction <= 1
    # The best score's error bar: the Wilson interval of the runs behind it, named in the printed line.
    last = points[-1]
    best = next(a for a in agents if a.id == last.best_agent)
    assert best.status in ("seed", "admitted") and best.score == pytest.approx(max(archived))
    behind = [r for r in store.list_task_runs(agent_id=best.id, kind="task", campaign_id=synth.campaign_id)
              if r.stage != "heldout" and r.finished]
    assert last.best_n == len(behind) > 0 and last.best_resolved == sum(r.status == "resolved" for r in behind)
    from dgm.stats.intervals import score_label, wilson_interval

    assert (last.best_low, last.best_high) == pytest.approx(tuple(wilson_interval(last.best_resolved, last.best_n)))
    assert last.best_label == score_label(last.best_score, last.best_resolved, last.best_n)
    assert f"last: best {last.best_label}," in proc.stdout, proc.stdout


def test_bad_input_is_one_line_and_exit_2(archive, tmp_path):
    _, root, synth = archive
    assert_one_line_error(run_dgm(["lineage", "no-such-campaign"], root, subprocess_=True), "no campaign",
                          "no-such-campaign")
    assert_one_line_error(run_dgm(["lineage", "lin", "--format", "svg"], root), "--format")
    assert_one_line_error(run_dgm(["plot", "nope", "--out", str(tmp_path / "x.png")], root), "no campaign")
    assert_one_line_error(run_dgm(["plot", "lin", "--out", str(tmp_path / "x.txt")], root), ".png")


def test_bulk_loading_validates_rows(archive):
    store, _, synth = archive
    with pytest.raises(ValueError, match="agent status"):
        store.bulk_add_agents([{"campaign_id": synth.campaign_id, "commit_sha": "0" * 40, "status": "great",
                                "origin": "child"}])
    with pytest.raises(NotFound, match="not in the agent code store"):
        store.bulk_add_agents([{"campaign_id": synth.campaign_id, "commit_sha": "ab" * 20, "status": "admitted",
                                "origin": "child"}])
    with pytest.raises(UsageError, match="rejected"):  # foreign key: no such agent
        store.bulk_add_task_runs([{"campaign_id": synth.campaign_id, "agent_id": "missing", "kind": "task",
                                   "benchmark": "b", "task_id": "t", "stage": "s", "status": "resolved",
                                   "model": "m"}])


def test_one_rule_names_the_best_agent_everywhere():
    """Equal selection scores: the agent with a (higher) held-out score wins,
    then the earlier generation; the loop, the light lineage and the graph agree."""
    from collections import namedtuple

    import networkx as nx

    from dgm.lineage.forest import Lineage
    from dgm.ranking import best_key

    Row = namedtuple("Row", "id parent_id generation status origin score heldout_score stage_reached commit_sha")
    rows = [
        Row("a0", None, 0, "admitted", "seed", 0.7, 0.8, "full", "c"),
        Row("b1", "a0", 1, "admitted", "child", 1.0, None, "full", "c"),   # smaller id, no held-out
        Row("c1", "a0", 1, "admitted", "child", 1.0, 0.9, "full", "c"),    # measured on held-out: best
        Row("d1", "a0", 1, "admitted", "child", 1.0, 0.6, "full", "c"),
        Row("e2", "c1", 2, "admitted", "child", 1.0, None, "full", "c"),   # later generation
        Row("f2", "c1", 2, "rejected", "child", None, None, "sanity", "c"),
    ]
    assert Lineage(rows).rows[Lineage(rows).best()].id == "c1"
    graph = nx.DiGraph()
    graph.add_nodes_from((r.id, {"score": r.score, "heldout_score": r.heldout_score, "generation": r.generation})
                         for r in rows)
    assert best_agent(graph) == "c1"
    # The loop's key, with slots as the last tie-break.
    slots = {"a0": 0, "b1": 0, "c1": 1, "d1": 2, "e2": 0}
    scored = [r for r in rows if r.score is not None]
    assert min(scored, key=lambda r: best_key(r.score, r.heldout_score, r.generation, slots[r.id])).id == "c1"


def test_graph_exports_hold_no_control_characters_an_agent_wrote(tmp_path):
    """A rejection reason quoting an agent (escape sequences, BEL) must not make
    GraphML unreadable nor reach a terminal through `--format dot` on stdout."""
    import networkx as nx

    from dgm.archive import ArchiveStore
    from dgm.lineage.graph import build_graph, export

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.create_campaign("esc", "evolution", {})
        sha = store.code.commit_tree(str(__import__("dgm.agent_code", fromlist=["x"]).SEED_AGENT_DIR),
                                     message="seed")
        seed = store.add_agent(campaign.id, sha, status="seed", origin="seed")
        child = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="pending", origin="child")
        store.update_agent(child.id, status="rejected", rejection_reason="bad \x1b]0;TITLE\x07 \x1b[41mred")
        graph = build_graph(store, campaign.id)
    for fmt in ("graphml", "dot", "json"):
        data = export(graph, fmt)
        assert b"\x1b" not in data and b"\x07" not in data, fmt
    (tmp_path / "g.graphml").write_bytes(export(graph, "graphml"))
    read = nx.read_graphml(tmp_path / "g.graphml")
    assert read.nodes[child.id]["rejection_reason"] == "bad \\x1b]0;TITLE\\x07 \\x1b[41mred"
