"""A campaign on a SWE-bench instance (the synthetic one, built offline from the
repository's own inputs): killed with SIGKILL while a child is evaluated in
the instance's image, resumed, completed, its lineage shown, and an agent of
it replayed from its recording on the instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dgm.archive.store import ArchiveStore
from tests.support.cli import REPO_ROOT, run_dgm
from tests.support.swebench_synthetic import IID, load_bench, make_instance, register_spec

pytestmark = pytest.mark.docker


def _child_evaluating(archive_dir, name) -> bool:
    with ArchiveStore.open(None, archive_dir) as store:
        try:
            campaign = store.get_campaign(name)
        except Exception:  # noqa: BLE001 - not created yet
            return False
        generation = {a.id: a.generation for a in store.list_agents(campaign.id)}
        return any(r.kind == "task" and r.status == "running" and generation.get(r.agent_id, 0) >= 1
                   for r in store.list_task_runs(campaign_id=campaign.id))


def test_a_swebench_campaign_resumes_after_sigkill_and_shows_its_lineage(tmp_path, docker_client, monkeypatch):
    register_spec(monkeypatch.setitem)
    instance = make_instance(tmp_path / "instance")
    bench = load_bench(instance, tmp_path / "instance" / "cache")
    assert bench.prepare_images(docker_client, bench.select([IID])) == {}  # built here, or present already

    rules = str(REPO_ROOT / "tests/fixtures/scripted/slow_rehearsal.json")
    archive_dir = tmp_path / "archive"
    base = [sys.executable, "-m", "tests.support.swebench_campaign_proc", str(tmp_path / "instance"),
            str(archive_dir), "swe", rules]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(base, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The resuming process loads its code meanwhile, and touches the archive and Docker only once told.
    final = subprocess.Popen([*base, "resume", "standby"], env=env, cwd=REPO_ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and not _child_evaluating(archive_dir, "swe"):
            time.sleep(0.05)
        assert proc.poll() is None, \
            f"the campaign ended before its child was evaluated: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        out, err = final.communicate("go\n", timeout=600)
    finally:
        final.kill()
        proc.kill()
    assert final.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["status"] == "completed"

    with ArchiveStore.open(None, archive_dir) as store:
        campaign = store.get_campaign("swe")
        agents = store.list_agents(campaign.id)
        runs = store.list_task_runs(campaign_id=campaign.id)
    child = next(a for a in agents if a.generation == 1)
    assert child.status == "admitted" and child.parent_id is not None
    # Each agent met the instance once, no run was left running, and the killed one was redone.
    task_runs = [(r.agent_id, r.task_id, r.stage, r.attempt) for r in runs if r.kind == "task"]
    assert sorted(task_runs) == sorted({(a.id, IID, "all", 0) for a in agents})
    assert all(r.status != "running" for r in runs)
    assert all(r.status == "resolved" for r in runs if r.kind == "task")  # gold-sized fix: rehearsal solves it

    shown = run_dgm(["lineage", "swe", "--format", "json", "--archive-dir", str(archive_dir)])
    assert shown.returncode == 0, shown.stderr
    graph = json.loads(shown.stdout)
    assert {n["id"] for n in graph["nodes"]} == {a.id for a in agents}

    # Replay finds the instance through the options the campaign recorded (no --dataset given).
    replayed = run_dgm(["replay", child.id, "--task", IID, "--archive-dir", str(archive_dir)])
    assert replayed.returncode == 0, replayed.stderr
    assert "byte-identical" in replayed.stdout and "resolved" in replayed.stdout
