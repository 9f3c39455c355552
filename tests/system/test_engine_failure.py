"""When Docker itself fails, nothing is scored against the agents and nothing is lost.

The engine's "death" is real from dgm's side: dgm talks to the real engine
through a Unix-socket relay, and the test cuts the relay (the socket file
goes away and every open connection drops), which is what dgm sees when
dockerd dies. The containers themselves run on the real engine.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.campaign import archive_fingerprint, run_campaign
from tests.support.harness import leftover_containers
from tests.support.relay import EngineRelay
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

TWO_STAGES = [{"name": "small", "tasks": 2, "advance_threshold": 0.0}, {"name": "rest", "tasks": "rest"}]


@pytest.fixture
def relay(docker_client):
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), f"the relay needs a Unix-socket engine, not {host}"
    r = EngineRelay(host[len("unix://"):])
    yield r
    if not os.path.exists(r.path):
        r.restore()
    # Removals tried while the engine was cut failed, and the pool dropped the
    # namespace holders of those sandboxes: remove them (and empty the pool,
    # whose holders may have been made through the relay) on the real engine.
    from dgm.sandbox.docker import NETNS_POOL, OWNER_PID_LABEL

    NETNS_POOL.close()
    _remove_by_label(docker_client, OWNER_PID_LABEL, str(os.getpid()))


def _remove_by_label(client, key: str, value: str) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{key}={value}"}):
        c.remove(force=True)


def _wait_for(predicate, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _running_container(client, task_run_id: str) -> bool:
    return bool(client.containers.list(filters={"label": f"dgm.task_run={task_run_id}", "status": "running"}))


def _sleeping_sandbox_cut(box, docker_client, label: str, cut) -> tuple[dict, float]:
    """Run `sleep 60` in `box` (labelled dgm.test=`label`) in a thread; once it
    runs, call `cut()`. Returns the run's outcome and when the cut came."""
    outcome = {}

    def run() -> None:
        try:
            outcome["result"] = box.run(["sleep", "60"], workdir="/tmp", timeout_s=90)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    _wait_for(lambda: docker_client.containers.list(filters={"label": f"dgm.test={label}", "status": "running"}),
              what="the sandbox to run")
    cut_at = time.monotonic()
    cut()
    worker.join(30)
    assert not worker.is_alive(), "the run did not notice the cut"
    return outcome, cut_at


# --------------------------------------------------------------------------- the sandbox layer
def test_sandbox_failures_of_docker_itself_are_infrastructure_errors(tmp_path, docker_client, base_image, relay):
    from dgm.errors import DockerUnavailable, ImageUnavailable, SandboxLaunchFailed
    from dgm.sandbox.docker import STAGE_PREFIX, Mount, Sandbox

    def stages() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob(f"{STAGE_PREFIX}{os.getpid()}-*")}

    before = stages()
    # The engine refuses this container (a relative bind-mount source): nothing of an agent ran.
    with pytest.raises(SandboxLaunchFailed, match="would not start a sandbox"):
        with Sandbox(docker_client, base_image, mounts=[Mount("relative/dir", "/x")], stage=True) as box:
            box.run(["true"], workdir="/tmp", timeout_s=30)
    with pytest.raises(ImageUnavailable, match="dgm-no-such-image"):
        with Sandbox(docker_client, "dgm-no-such-image:0", stage=True) as box:
            box.run(["true"], workdir="/tmp", timeout_s=30)

    # The engine dies while a sandbox runs: the run does not end as the process's own result.
    proxied = relay.client()
    box = Sandbox(proxied, base_image, labels={"dgm.test": "engine-cut"}, stage=True)
    outcome, cut_at = _sleeping_sandbox_cut(box, docker_client, "engine-cut", relay.cut)
    assert time.monotonic() - cut_at < 15
    assert isinstance(outcome.get("error"), DockerUnavailable), outcome
    assert "stopped answering" in str(outcome["error"])
    # And with the engine gone, the next sandbox does not start either.
    with pytest.raises(DockerUnavailable):
        with Sandbox(proxied, base_image, stage=True) as other:
            other.run(["true"], workdir="/tmp", timeout_s=30)
    relay.restore()
    box.remove()
    _remove_by_label(docker_client, "dgm.test", "engine-cut")
    assert leftover_containers(docker_client) == []
    assert stages() == before


def test_a_sandbox_killed_from_outside_is_not_its_process_ending(docker_client, base_image):
    """`docker kill` (or stop, or rm -f) of a running sandbox is not the agent's
    doing: the run raises SandboxKilled instead of ending with exit 137. A PID 1
    that ends with 137 by itself is its own result."""
    from dgm.errors import SandboxKilled
    from dgm.sandbox.docker import Sandbox

    box = Sandbox(docker_client, base_image, labels={"dgm.test": "killed-outside"}, stage=True)
    outcome, _ = _sleeping_sandbox_cut(
        box, docker_client, "killed-outside",
        lambda: docker_client.containers.list(filters={"label": "dgm.test=killed-outside"})[0].kill())
    assert isinstance(outcome.get("error"), SandboxKilled), outcome
    assert "killed from outside dgm" in str(outcome["error"])
    box.remove()

    with Sandbox(docker_client, base_image, stage=True) as own:
        result = own.run(["bash", "-c", "sleep 0.2; exit 137"], workdir="/tmp", timeout_s=30)
    assert result.exit_code == 137 and not result.killed_by_host


# --------------------------------------------------------------------------- an evaluation
def _evaluation_cut_mid_run(tmp_path, store, client, docker_client, cut, *, name: str, n_tasks: int) -> tuple:
    """Evaluate the seed (slow gold answers, one worker) through `client`; once
    the first task's agent runs, call `cut(run)`. Returns (outcome, runs)."""
    import json

    from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
    from dgm.bench.evaluate import EvalSettings
    from dgm.llm.scripted import BUILTIN_SPECS
    from dgm.runs.stack import run_stack

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=n_tasks)
    # Gold answers, slowly: the agent is mid-run when the cut comes.
    spec = tmp_path / "slow_gold.json"
    spec.write_text(json.dumps(dict(BUILTIN_SPECS["gold"], latency_s=3)))
    campaign = store.create_campaign(name=name, kind="eval", config={})
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    outcome = {}
    with run_stack(store, client, bench, EvalSettings(model=f"scripted:{spec}", time_limit_s=60)) as stack:

        def run() -> None:
            try:
                outcome["runs"] = stack.evaluator.run_tasks(agent, bench.tasks(), campaign_id=campaign.id,
                                                            stage="eval", executor=stack.executor)
            except BaseException as exc:  # noqa: BLE001
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        _wait_for(lambda: any(_running_container(docker_client, r.id)
                              for r in store.list_task_runs(campaign_id=campaign.id)),
                  what="the first task's agent to run")
        cut(store.list_task_runs(campaign_id=campaign.id)[0])
        worker.join(60)
        assert not worker.is_alive()
    return outcome, store.list_task_runs(campaign_id=campaign.id)


def test_a_dead_engine_stops_an_evaluation_without_blaming_the_agent(tmp_path, store, docker_client, relay):
    from dgm.errors import DockerUnavailable

    outcome, runs = _evaluation_cut_mid_run(tmp_path, store, relay.client(), docker_client, lambda run: relay.cut(),
                                            name="engine-dies", n_tasks=4)
    assert isinstance(outcome.get("error"), DockerUnavailable), outcome
    # The run in flight is left unfinished (a resume redoes it), not scored as the agent's error,
    # and no other task was started against a dead engine.
    assert [r.status for r in runs] == ["running"]
    relay.restore()
    _remove_by_label(docker_client, "dgm.task_run", runs[0].id)


def test_an_agent_sandbox_killed_from_outside_leaves_its_run_unfinished(tmp_path, store, docker_client):
    """QA killed an agent's sandbox with `docker kill`: the run was scored as the
    agent's error ("no diff came back") and the agent kept the lower score."""
    from dgm.errors import SandboxKilled

    def docker_kill(run) -> None:
        docker_client.containers.list(filters={"label": f"dgm.task_run={run.id}"})[0].kill()

    outcome, runs = _evaluation_cut_mid_run(tmp_path, store, docker_client, docker_client, docker_kill,
                                            name="killed-outside", n_tasks=2)
    assert isinstance(outcome.get("error"), SandboxKilled), outcome
    # Left for a resume to redo, not scored; no further task was started.
    assert [r.status for r in runs] == ["running"]

# --------------------------------------------------------------------------- a campaign
def test_a_dead_engine_stops_a_campaign_and_resume_finishes_it_as_if_nothing_happened(
        tmp_path, store, docker_client, relay):
    from dgm.errors import InfrastructureError

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    fields = dict(generations=2, children_per_generation=2, seed=7, stages=TWO_STAGES, heldout=1, time_limit_s=60)
    reference, status = run_campaign(store, docker_client, bench, name="uninterrupted", **fields)
    assert status == "completed"

    proxied = relay.client()
    cut = threading.Event()

    def cut_during_generation_1(runner) -> None:
        def watch() -> None:
            def child_task_running() -> bool:
                agents = {a.id: a for a in store.list_agents(runner.campaign.id)}
                return any(r.kind == "task" and agents[r.agent_id].generation == 1
                           and _running_container(docker_client, r.id)
                           for r in store.list_task_runs(campaign_id=runner.campaign.id, status="running"))

            _wait_for(child_task_running, timeout_s=120, what="a generation-1 task run")
            relay.cut()
            cut.set()

        threading.Thread(target=watch, daemon=True).start()

    with pytest.raises(InfrastructureError, match="stopped answering"):
        run_campaign(store, proxied, bench, name="engine-dies", on_runner=cut_during_generation_1,
                     infrastructure_wait_minutes=0, **fields)
    assert cut.is_set()
    campaign = store.get_campaign("engine-dies")
    assert campaign.status == "failed"
    agents = store.list_agents(campaign.id)
    # No child paid for the engine: none rejected, none scored; the interrupted runs are
    # unfinished (not errors), and the campaign stopped instead of going on to generation 2.
    assert not [a for a in agents if a.status == "rejected"]
    # (A twin of an earlier agent is not evaluated at all.)
    assert {a.status for a in agents if a.generation == 1} <= {"evaluating", "self_modifying", "twin"}
    assert max(a.generation for a in agents) == 1
    runs = store.list_task_runs(campaign_id=campaign.id)
    assert not [r for r in runs if r.status == "error"]
    assert [r for r in runs if r.status == "running"]
    last = store.list_events(campaign.id)[-1]
    assert last.kind == "campaign_stopped" and last.payload["status"] == "failed"
    assert last.payload["reason"].startswith("infrastructure: the Docker engine stopped answering")

    # The engine is back: resume finishes it, and the archive is what an uninterrupted run gives.
    relay.restore()
    for run in runs:
        _remove_by_label(docker_client, "dgm.task_run", run.id)
    resumed, status = run_campaign(store, docker_client, bench, campaign=campaign, **fields)
    assert status == "completed"
    assert archive_fingerprint(store, resumed.id) == archive_fingerprint(store, reference.id)

    # Given time to wait (the default), the campaign rides out an engine that comes back by itself.
    cut.clear()

    def cut_then_restore(runner) -> None:
        cut_during_generation_1(runner)

        def restore() -> None:
            cut.wait(300)
            time.sleep(3)
            relay.restore()

        threading.Thread(target=restore, daemon=True).start()

    waited, status = run_campaign(store, proxied, bench, name="engine-comes-back", on_runner=cut_then_restore,
                                  infrastructure_wait_minutes=2, **fields)
    assert cut.is_set() and status == "completed"
    waits = [e for e in store.list_events(waited.id) if e.kind == "infrastructure_wait"]
    assert waits and "stopped answering" in waits[0].payload["reason"]
    assert archive_fingerprint(store, waited.id) == archive_fingerprint(store, reference.id)


# --------------------------------------------------------------------------- the command line
def test_dgm_eval_reports_a_dead_engine_in_one_line_and_keeps_what_finished(tmp_path, docker_client, relay):
    import json
    import subprocess
    import sys

    from dgm.archive.store import ArchiveStore
    from dgm.llm.scripted import BUILTIN_SPECS

    spec = tmp_path / "slow_gold.json"
    spec.write_text(json.dumps(dict(BUILTIN_SPECS["gold"], latency_s=2)))
    tasks = "minicalc__minicalc-1,minicalc__minicalc-2,minicalc__minicalc-3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dgm", "eval", "--agent", "seed", "--benchmark", "dgm-mini", "--tasks", tasks,
         "--model", f"scripted:{spec}", "--workers", "1", "--archive-dir", str(tmp_path / "archive")],
        env={**os.environ, "DOCKER_HOST": f"unix://{relay.path}", "COLUMNS": "200"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with ArchiveStore.open(None, tmp_path / "archive") as store:
            def second_task_running() -> bool:
                runs = store.list_task_runs()
                return len(runs) == 2 and any(_running_container(docker_client, r.id) for r in runs)

            _wait_for(second_task_running, timeout_s=120, what="the second task's agent to run")
            relay.cut()
            out, err = proc.communicate(timeout=60)
            runs = store.list_task_runs()
            campaign = store.list_campaigns()[0]
    finally:
        proc.kill()
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the Docker engine stopped answering"), err
    assert "1 of 3 task(s) finished" in lines[0] and "1 cut short" in lines[0], lines[0]
    # What finished is kept; the run cut short is closed as the harness's error; the third never started.
    assert campaign.status == "failed"
    assert sorted(r.status for r in runs) == ["error", "resolved"]
    assert "cut short by the sandbox machinery" in next(r.error for r in runs if r.status == "error")
    relay.restore()
    for run in runs:
        _remove_by_label(docker_client, "dgm.task_run", run.id)


# --------------------------------------------------------------------------- the archive
def test_an_archive_outage_stops_a_campaign_without_blaming_children(tmp_path, store, docker_client, monkeypatch):
    """The store turns a database that stops answering into ArchiveUnavailable
    (tested with PostgreSQL in test_archive.py); here it strikes while a child's
    tasks finish, and clears before anything else is written."""
    from dgm.errors import ArchiveUnavailable

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    fields = dict(generations=1, children_per_generation=2, seed=7, stages=TWO_STAGES, heldout=1, time_limit_s=60)
    reference, status = run_campaign(store, docker_client, bench, name="no-outage", **fields)
    assert status == "completed"

    real_finish = store.finish_task_run
    outage = {"on": False, "hits": 0}

    def finish_task_run(run_id, **kwargs):
        run = store.get_task_run(run_id)
        if run.kind == "task" and store.get_agent(run.agent_id).generation == 1 and not outage["hits"]:
            outage["hits"] += 1
            raise ArchiveUnavailable("archive sqlite:///x: database is locked")
        return real_finish(run_id, **kwargs)

    monkeypatch.setattr(store, "finish_task_run", finish_task_run)
    with pytest.raises(ArchiveUnavailable):
        run_campaign(store, docker_client, bench, name="outage", infrastructure_wait_minutes=0, **fields)
    monkeypatch.setattr(store, "finish_task_run", real_finish)
    campaign = store.get_campaign("outage")
    assert outage["hits"] == 1 and campaign.status == "failed"
    assert not [a for a in store.list_agents(campaign.id) if a.status == "rejected"]
    resumed, status = run_campaign(store, docker_client, bench, campaign=campaign, **fields)
    assert status == "completed"
    assert archive_fingerprint(store, resumed.id) == archive_fingerprint(store, reference.id)


def test_resume_refuses_an_archive_dir_without_the_campaigns_code(tmp_path):
    import subprocess
    import sys

    from dgm.archive.store import ArchiveStore
    from dgm.agent_code import SEED_AGENT_DIR, AgentCodeCache, commit_agent_dir
    from dgm.config import CampaignConfig
    from dgm.errors import ArchiveUnavailable

    with ArchiveStore.open(None, tmp_path / "a") as a:
        campaign = a.create_campaign(name="elsewhere", kind="evolution", config=CampaignConfig().model_dump(mode="json"))
        a.add_agent(campaign.id, commit_agent_dir(a, SEED_AGENT_DIR, "seed"), status="admitted", origin="seed")
        a.set_campaign_status(campaign.id, "interrupted", finished=True)  # stopped, so a resume is in order
    with ArchiveStore.open(None, tmp_path / "a") as a:
        # A store whose code directory lacks the agent (opening refuses one; built here by hand):
        # evaluating that agent is the archive's failure, not the agent's.
        b = ArchiveStore(a.engine, tmp_path / "b", a.url)
        with pytest.raises(ArchiveUnavailable, match="is missing from"):
            AgentCodeCache(b).path(b.list_agents()[0].commit_sha)
    proc = subprocess.run([sys.executable, "-m", "dgm", "resume", "elsewhere", "--archive",
                           f"sqlite:///{tmp_path / 'a' / 'dgm.db'}", "--archive-dir", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"this archive's agent code and artifacts are in {tmp_path / 'a'}, not" in lines[0], \
        proc.stderr
