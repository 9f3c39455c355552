"""The asynchronous schedule end to end: real sandboxes, gateway, archive, git;
scripted models. A campaign killed with SIGKILL while two children are in
flight is resumed and completes: N children, one per generation, a valid
lineage, nothing lost, no task run recorded twice; `dgm status` and the live
view show the sandbox slots busy / total. (Without real sandboxes,
tests/unit/test_async_schedule.py checks that no child waits for a sibling.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.campaign import run_campaign
from tests.support.harness import REPO_ROOT

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


def _watch_live_view(shown: list[str], done):
    """`on_runner` for run_campaign: what the live dashboard shows, sampled while the campaign runs."""
    from rich.console import Console

    from dgm.cli.dashboard import live_view

    def watch(runner) -> None:
        def sample() -> None:
            while not done.wait(0.2):
                console = Console(record=True, width=200)
                console.print(live_view(runner))
                shown.append(console.export_text())
        threading.Thread(target=sample, daemon=True).start()
    return watch


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
    from dgm.archive.store import ArchiveStore
    from dgm.sandbox.docker import LABEL
    from tests.support.async_campaign_proc import ASYNC_CONFIG, CHILDREN, tiny_bench

    rules = str(REPO_ROOT / "dgm/llm/scripted_models/rehearsal.json")
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
    # What `dgm resume` does first: the killed runner's sandboxes go.
    for container in docker_client.containers.list(all=True, filters={"label": f"dgm.owner_pid={proc.pid}"}):
        container.remove(force=True)

    with ArchiveStore.open(None, archive_dir) as s:
        campaign = s.get_campaign("killed")
        cut = {r.id for r in s.list_task_runs(campaign_id=campaign.id, kind="task") if r.status == "running"}
        assert cut  # the kill interrupted task runs
        # Resumed in this process (the runner `dgm resume` builds).
        bench = tiny_bench(tmp_path / "bench")
        shown: list[str] = []
        done = threading.Event()
        try:
            campaign, status = run_campaign(s, docker_client, bench, campaign=campaign, model=f"scripted:{rules}",
                                            on_runner=_watch_live_view(shown, done), **ASYNC_CONFIG)
        finally:
            done.set()
        assert status == "completed"
        # The live view showed the slots busy / total throughout, and the children finished.
        busy = [int(m.group(1)) for screen in shown for m in [re.search(r"sandbox slots\s+(\d+) busy / 2", screen)]
                if m]
        assert shown and len(busy) == len(shown) and max(busy) >= 1 and all(0 <= b <= 2 for b in busy)
        assert any("children" in screen and f"finished of {CHILDREN}" in screen for screen in shown)
        agents = _check_async_archive(s, campaign.id, CHILDREN)
        runs = s.list_task_runs(campaign_id=campaign.id)
        # The runs the kill cut were redone in their own rows, once; nothing else was redone.
        assert cut <= {r.id for r in runs if r.status != "running"}
        assert all(r.attempt == 0 for r in runs)
        # Nothing lost: every evaluated agent ran every task of the one stage, once.
        tasks = {t.instance_id for t in bench.tasks()}
        for agent in agents:
            if agent.status in ("admitted", "rejected") and agent.score is not None:
                assert sorted(r.task_id for r in runs if r.agent_id == agent.id and r.kind == "task") == sorted(tasks)
    left = docker_client.containers.list(all=True, filters={"label": LABEL})
    assert not [c for c in left if c.labels.get("dgm.owner_pid") == str(proc.pid)]
