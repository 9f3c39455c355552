"""The asynchronous schedule end to end: real sandboxes, gateway, archive, git;
scripted models. A campaign of N children completes with a valid lineage, and
one killed with SIGKILL while children are in flight resumes to N children,
nothing lost and no task run recorded twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.campaign import run_campaign
from tests.support.harness import REPO_ROOT
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker


def _check_async_archive(store, campaign_id: str, children: int) -> list:
    """What every finished async campaign of `children` children must hold; returns its agents."""
    from dgm.lineage.forest import Lineage
    from dgm.lineage.tree import rich_tree

    agents = store.list_agents(campaign_id)
    by_id = {a.id: a for a in agents}
    kids = sorted((a for a in agents if a.origin == "child"), key=lambda a: a.generation)
    # One child per generation, numbered 1..N in the order they started.
    assert [a.generation for a in kids] == list(range(1, children + 1))
    assert all((a.meta or {}).get("slot") == 0 and (a.meta or {}).get("schedule") == "async" for a in kids)
    assert all(a.status in ("admitted", "rejected", "twin") for a in kids), [(a.id, a.status) for a in kids]
    admitted = {e.agent_id: e.created_at for e in store.list_events(campaign_id, kinds=["agent_admitted"])}
    for child in kids:
        parent = by_id[child.parent_id]
        # The parent was in the archive (admitted, earlier) when the child was created.
        assert parent.status == "admitted" and parent.generation < child.generation
        assert admitted[parent.id] <= child.created_at
    stats = store.list_generation_stats(campaign_id)
    assert [s.generation for s in stats] == list(range(children + 1))
    # No task run recorded twice, none left running.
    runs = store.list_task_runs(campaign_id=campaign_id)
    keys = [(r.agent_id, r.kind, r.task_id, r.stage, r.repeat) for r in runs]
    assert len(keys) == len(set(keys)) and all(r.status != "running" for r in runs)
    tree = rich_tree(Lineage.load(store, campaign_id), "t").plain
    assert all(a.id in tree for a in agents)
    return agents


def test_async_campaign_starts_children_without_a_generation_barrier(tmp_path, store, docker_client):
    import threading

    from rich.console import Console

    from dgm.cli.dashboard import live_view

    shown: list[str] = []
    done = threading.Event()

    def watch(runner) -> None:  # what the live dashboard shows, sampled while the campaign runs
        def sample() -> None:
            while not done.wait(0.2):
                console = Console(record=True, width=200)
                console.print(live_view(runner))
                shown.append(console.export_text())
        threading.Thread(target=sample, daemon=True).start()

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=2, difficulties=[1, 4])
    try:
        campaign, status = run_campaign(store, docker_client, bench, name="async", schedule="async", generations=2,
                                        workers=2, heldout=0, time_limit_s=60, on_runner=watch,
                                        stages=[{"name": "all", "tasks": "rest"}])
    finally:
        done.set()
    assert status == "completed"
    busy = [int(m.group(1)) for screen in shown for m in [re.search(r"sandbox slots\s+(\d+) busy / 2", screen)] if m]
    assert len(busy) == len(shown) and max(busy) >= 1 and all(0 <= b <= 2 for b in busy)
    assert any("children" in screen and "finished of 2" in screen for screen in shown)
    _check_async_archive(store, campaign.id, 2)
    # No barrier: some child started while an earlier one was still being evaluated.
    events = store.list_events(campaign.id)
    created = {e.agent_id: i for i, e in enumerate(events) if e.kind == "agent_created"}
    ended = {e.agent_id: i for i, e in enumerate(events) if e.kind in ("agent_admitted", "agent_rejected")}
    kids = sorted((a for a in store.list_agents(campaign.id) if a.origin == "child"), key=lambda a: a.generation)
    assert any(created[later.id] < ended[earlier.id] for earlier, later in zip(kids, kids[1:]))
    assert events[-2].kind == "campaign_done"


# --------------------------------------------------------------------------- kill -9 and resume
def _state(archive_dir: Path, name: str) -> dict:
    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, archive_dir) as s:
        try:
            c = s.get_campaign(name)
        except Exception:  # noqa: BLE001 - not created yet
            return {}
        agents = s.list_agents(c.id)
        runs = s.list_task_runs(campaign_id=c.id, kind="task")
    children = {a.id for a in agents if a.origin == "child"}
    in_flight = [a for a in agents if a.origin == "child" and a.status not in ("admitted", "rejected", "twin")]
    running = [r for r in runs if r.status == "running" and r.agent_id in children]
    return {"children_in_flight": len(in_flight), "child_runs_running": len(running)}


def _status_screen(archive_dir: Path, name: str) -> str:
    from rich.console import Console

    from dgm.archive.store import ArchiveStore
    from dgm.cli.dashboard import status_view

    with ArchiveStore.open(None, archive_dir) as s:
        console = Console(record=True, width=200)
        console.print(status_view(s, s.get_campaign(name)))
    return console.export_text()


def test_sigkill_with_children_in_flight_then_resume_completes_the_campaign(tmp_path, docker_client):
    rules = str(REPO_ROOT / "tests/fixtures/scripted/slow_rehearsal.json")
    archive_dir = tmp_path / "archive"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, "-m", "tests.support.async_campaign_proc", str(archive_dir), "killed", rules]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        state = _state(archive_dir, "killed")
        if state.get("child_runs_running") and state.get("children_in_flight", 0) >= 2:
            screen = _status_screen(archive_dir, "killed")
            busy = re.search(r"sandbox slots\s+(\d+) busy / 2", screen)
            if busy and int(busy.group(1)) >= 1:  # `dgm status` of the running campaign shows its slots in use
                assert "schedule async" in screen
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"never caught two children in flight: {proc.stderr.read().decode()[-2000:]}"

    final = subprocess.run(args + ["resume"], env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert json.loads(final.stdout.strip().splitlines()[-1])["status"] == "completed"

    from dgm.archive.store import ArchiveStore
    from tests.support.async_campaign_proc import CHILDREN

    with ArchiveStore.open(None, archive_dir) as s:
        campaign = s.get_campaign("killed")
        agents = _check_async_archive(s, campaign.id, CHILDREN)
        runs = s.list_task_runs(campaign_id=campaign.id, kind="task")
        # Nothing lost: every evaluated agent ran every task of its stage once (the one
        # stage is every selection task), attempt 0, whatever the kill interrupted.
        evaluated = [a for a in agents if a.status in ("admitted", "rejected") and a.score is not None]
        tasks = {t for r in runs for t in [r.task_id]}
        for agent in evaluated:
            mine = sorted(r.task_id for r in runs if r.agent_id == agent.id)
            assert mine == sorted(tasks), (agent.id, mine)
        assert all(r.attempt == 0 for r in runs)
