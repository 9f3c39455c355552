"""`dgm replay` with real Docker sandboxes, the real gateway and real recorded runs.

The recording is made by a real `scripted:gold` evaluation of the seed agent on
the tiny benchmark. The recorded replay then runs with every TCP/UDP socket
refused and litellm's completion replaced by a tripwire: it must reproduce the
archived patch byte for byte from the archive alone.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket

import pytest

from tests.support.cli import run_dgm
from dgm.archive import ArchiveStore
from dgm.bench import registry
from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
from dgm.bench.evaluate import EvalSettings
from dgm.lineage.replay import compare_requests, normalise_volatile
from dgm.runs.eval import evaluate_tasks
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker


class RenamedTaskBench(TinyBenchmark):
    """Tiny, with task 2 asking something else: the same agent's requests must differ."""

    def __init__(self, root):
        super().__init__(root)
        t1, t2 = self._tasks
        self._tasks = [t1, dataclasses.replace(t2, problem_statement="`add(2, 3)` must return 5, not -1.")]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, docker_client):
    # docker_client (conftest): fails under DGM_REQUIRE_SERVICES=1 without Docker, skips otherwise.
    tmp = tmp_path_factory.mktemp("replay")
    client = docker_client
    bench = RenamedTaskBench(tmp / "bench")
    root = tmp / "archive"
    store = ArchiveStore.open(None, root)
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
    campaign = store.create_campaign("recorded", "eval", {"benchmark": "tiny"})
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
    (run,) = evaluate_tasks(store, client, bench, agent, bench.tasks()[:1], campaign_id=campaign.id,
                            settings=EvalSettings(model="scripted:gold", time_limit_s=120))
    assert run.status == "resolved" and run.patch.strip()
    # A child whose code differs from the recorded agent's (its system prompt changed, to
    # text that is Rich markup: the divergence report quotes it).
    child_dir = tmp / "child"
    shutil.copytree(SEED_AGENT_DIR, child_dir, ignore=shutil.ignore_patterns("__pycache__"))
    main = child_dir / "main.py"
    main.write_text(main.read_text().replace("You are a careful software engineer", "You are a meticulous[/red] engineer"))
    child = store.add_agent(campaign.id, commit_agent_dir(store, child_dir, "child", parent_sha=sha),
                            parent_id=agent.id, generation=1, status="admitted", origin="child")
    yield store, root, bench, agent, child, run
    store.close()


@pytest.fixture
def tiny_registered(monkeypatch, recorded):
    bench = recorded[2]
    monkeypatch.setitem(registry._FACTORIES, "tiny", lambda: bench)


@pytest.fixture
def offline(monkeypatch):
    """No TCP/UDP anywhere in this process, and any real model call is a test failure."""
    import litellm

    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network connection attempted during an offline replay: {address}")
        return real_connect(self, address)

    def no_model(*args, **kwargs):
        raise AssertionError("an upstream model was called during a recorded replay")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(litellm, "completion", no_model)


def test_recorded_replay_reproduces_the_archived_patch_offline(recorded, tiny_registered, offline):
    store, root, _, agent, _, original = recorded
    proc = run_dgm(["replay", agent.id, "--task", original.task_id, "--recorded", "--json"], root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["source_run_id"] == original.id
    assert report["patch_identical"] is True
    assert report["divergence"] is None and report["exact_divergence"] is None
    assert report["recorded_steps"] == report["replayed_steps"] == 2
    assert report["verdict"].startswith("faithful")
    replay_run = store.get_task_run(report["task_run_id"])
    assert replay_run.kind == "replay" and replay_run.status == "resolved"
    assert replay_run.patch.encode() == original.patch.encode()
    assert store.get_campaign(report["campaign_id"]).kind == "replay"
    calls = store.list_llm_calls(replay_run.id)
    assert [c.model for c in calls] == ["replay:scripted:gold"] * 2
    assert sum(c.cost_usd for c in calls) == 0
    assert [c.request_hash for c in calls] == [c.request_hash for c in store.list_llm_calls(original.id)]


def test_replay_reports_divergence_when_the_agent_code_differs(recorded, tiny_registered, offline):
    store, root, _, _, child, original = recorded
    proc = run_dgm(["replay", child.id, "--task", original.task_id, "--run", original.id, "--json"], root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["exact_divergence"]["step"] == 0
    assert report["divergence"]["step"] == 0
    assert "meticulous" in report["divergence"]["reason"] or "careful" in report["divergence"]["reason"]
    assert report["verdict"].startswith("diverged at step 1")
    text = run_dgm(["replay", child.id, "--task", original.task_id, "--run", original.id], root)
    assert text.returncode == 0 and "diverged at step 1" in text.stdout, text.stderr
    assert "[/red]" in text.stdout  # the agent's text as it is, not read as markup


def test_replay_reports_divergence_when_the_task_differs(recorded, tiny_registered, offline):
    store, root, bench, agent, _, original = recorded
    other = bench.tasks()[1].instance_id
    assert other != original.task_id
    proc = run_dgm(["replay", agent.id, "--task", other, "--run", original.id, "--json"], root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    assert report["divergence"]["step"] == 0
    assert "must return 5" in report["divergence"]["reason"]
    assert store.get_task_run(report["task_run_id"]).task_id == other


def test_live_replay_stores_a_new_run_beside_the_old_one(recorded, tiny_registered):
    store, root, bench, agent, _, original = recorded
    other = bench.tasks()[1].instance_id  # a task this agent never ran
    proc = run_dgm(["replay", agent.id, "--task", other, "--live", "--model", "scripted:gold", "--benchmark", "tiny",
                    "--json"], root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    run = store.get_task_run(report["task_run_id"])
    assert run.kind == "replay" and run.status == "resolved" and run.model == "scripted:gold"
    assert run.id != original.id and store.get_task_run(original.id).status == "resolved"
    assert [c.model for c in store.list_llm_calls(run.id)] == ["scripted:gold"] * 2


def test_volatile_numbers_are_masked_only_for_the_normalised_check():
    a = [{"model": "m", "messages": [{"role": "user", "content": "1 passed in 0.01s at 0x7f3a2b1c"}]}]
    b = [{"model": "m", "messages": [{"role": "user", "content": "1 passed in 0.03s at 0x7f99aa00"}]}]
    c = [{"model": "m", "messages": [{"role": "user", "content": "2 passed in 0.01s at 0x7f3a2b1c"}]}]
    assert normalise_volatile("in 0.01s") == "in <decimal>s"
    for epoch in ("1795389754", "1795389754123", "1795389754123456789", "1795389754.25"):
        assert normalise_volatile(f"t={epoch};") == "t=<epoch>;", epoch
    assert normalise_volatile("42 passed, 1234567 bytes") == "42 passed, 1234567 bytes"
    assert compare_requests(a, b) is None
    assert compare_requests(a, c)["step"] == 0  # integers (test counts) still count
    assert compare_requests(a + a, b)["reason"].startswith("the agent stopped after 1 of 2")


def test_default_replay_source_is_the_evaluation_run_never_a_recorded_replay(recorded, tiny_registered):
    """A recorded replay may serve another run's recording (--run); a later
    default replay must not chain on to it and call that 'faithful'."""
    store, root, bench, agent, _, original = recorded
    other = bench.tasks()[1].instance_id
    live = run_dgm(["replay", agent.id, "--task", other, "--live", "--model", "scripted:gold", "--benchmark", "tiny",
                    "--json"], root)
    assert live.returncode == 0, live.stderr + live.stdout
    live_run = json.loads(live.stdout)["task_run_id"]
    crossed = run_dgm(["replay", agent.id, "--task", original.task_id, "--run", live_run, "--json"], root)
    assert crossed.returncode == 0, crossed.stderr + crossed.stdout
    assert json.loads(crossed.stdout)["divergence"] is not None  # the other task's recording does not fit
    again = run_dgm(["replay", agent.id, "--task", original.task_id, "--json"], root)
    assert again.returncode == 0, again.stderr + again.stdout
    report = json.loads(again.stdout)
    assert report["source_run_id"] == original.id and report["verdict"].startswith("faithful")
    # No evaluation run on `other`: the default is a live replay there, never a recorded one.
    on_other = run_dgm(["replay", agent.id, "--task", other, "--json"], root)
    assert on_other.returncode == 0, on_other.stderr + on_other.stdout
    source = store.get_task_run(json.loads(on_other.stdout)["source_run_id"])
    assert source.kind == "replay" and store.get_campaign(source.campaign_id).config["mode"] == "live"
