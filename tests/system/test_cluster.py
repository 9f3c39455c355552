"""Campaigns on a Ray cluster of this machine (`--executor ray`): two worker
nodes, each with its own Docker engine, the archive on PostgreSQL, the head
the only writer and the only holder of keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.campaign import archive_fingerprint, run_campaign
from tests.support.harness import REPO_ROOT
from tests.support.ray_cluster import FIRST_ENGINE, SECOND_ENGINE, LocalRayCluster, second_engine_client
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

TWO_STAGES = [{"name": "small", "tasks": 2, "advance_threshold": 0.0}, {"name": "rest", "tasks": "rest"}]
FIELDS = dict(generations=1, children_per_generation=1, seed=5, stages=TWO_STAGES, heldout=1, time_limit_s=60,
              workers=4)
# The fault tests need task runs in flight on both nodes, not evolution: the seed's evaluation only.
SEED_ONLY = dict(generations=0, seed=5, stages=[{"name": "all", "tasks": "rest"}], heldout=0, time_limit_s=60,
                 workers=4)
DIFFICULTIES = [1, 4, 4, 1, 4]
KEY = "sk-test-secret-9f2c41d7e5b84a06"


@pytest.fixture(scope="module")
def cluster(docker_client):
    from dgm.sandbox.images import base_image_tag

    second = second_engine_client()
    if second is None:
        pytest.fail("the second Docker engine is not up and scripts/ensure_second_dockerd.sh could not start it")
    second.images.get(base_image_tag())
    made = LocalRayCluster.start()
    yield made
    made.shutdown()
    # The nodes' workers are gone: their pooled network namespace holders on the second engine go too.
    from dgm.sandbox.docker import remove_orphans

    remove_orphans(second)


@pytest.fixture
def second_engine(docker_client):
    client = second_engine_client()
    if client is None:
        pytest.fail("the second Docker engine is not up and scripts/ensure_second_dockerd.sh could not start it")
    return client


def _ray(cluster) -> dict:
    return {"kind": "ray", "address": cluster.address}


class EngineWatch:
    """While a campaign runs: which task runs created containers on which
    engine (from the engines' own event logs), and which processes of this
    machine but this one, or containers, hold the key."""

    def __init__(self, engines: dict[str, object]):
        self.engines = engines
        self.runs: dict[str, set[str]] = {name: set() for name in engines}
        self.env_hits: list[str] = []
        self.container_env_hits: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._since = int(time.time()) - 1
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        until = int(time.time()) + 1
        for name, client in self.engines.items():
            for event in client.events(since=self._since, until=until, decode=True,
                                       filters={"type": "container", "event": "create"}):
                run = (event.get("Actor", {}).get("Attributes") or {}).get("dgm.task_run")
                if run:
                    self.runs[name].add(run)

    def _watch(self):
        from dgm.sandbox.docker import LABEL

        while not self._stop.is_set():
            for name, client in self.engines.items():
                try:
                    for c in client.api.containers(filters={"label": LABEL}):
                        run = (c.get("Labels") or {}).get("dgm.task_run")
                        if run:
                            self.runs[name].add(run)
                        if KEY in json.dumps(client.api.inspect_container(c["Id"])):
                            self.container_env_hits.append(f"{name}:{c['Id'][:12]}")
                except Exception:  # noqa: BLE001 - a container gone meanwhile
                    pass
            self.env_hits.extend(processes_holding(KEY))
            self.samples += 1
            self._stop.wait(0.5)


def processes_holding(secret: str) -> list[str]:
    """Processes of this machine, this one left out, whose environment holds `secret`."""
    hits = []
    raw = secret.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if raw in (entry / "environ").read_bytes():
                hits.append(f"{entry.name}:{(entry / 'cmdline').read_bytes()[:120]!r}")
        except OSError:
            continue
    return hits


def test_a_ray_campaign_equals_the_threads_one_and_no_key_reaches_a_node(
        tmp_path, pg_url, docker_client, second_engine, cluster, monkeypatch):
    from dgm.archive.store import ArchiveStore

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=DIFFICULTIES)
    with ArchiveStore.open(pg_url, tmp_path / "archive") as store:
        threads, status = run_campaign(store, docker_client, bench, name="threads", **FIELDS)
        assert status == "completed"

        # The head holds a provider key; the nodes were started without it, as on a real cluster.
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert processes_holding(KEY) == []
        with subprocess.Popen(["sleep", "30"], env={"OPENAI_API_KEY": KEY}) as leak:  # the scan does see a leak
            assert any(hit.startswith(f"{leak.pid}:") for hit in processes_holding(KEY))
            leak.kill()
        watch = EngineWatch({"node-a": docker_client, "node-b": second_engine})
        with watch:
            ray_run, status = run_campaign(store, docker_client, bench, name="ray", executor=_ray(cluster), **FIELDS)
        assert status == "completed"
        assert archive_fingerprint(store, ray_run.id) == archive_fingerprint(store, threads.id)

        # Both nodes' engines ran task runs of the Ray campaign (the first engine is shared with
        # other work, and keeps only its latest events: some of its runs may go unseen).
        task_runs = {r.id for r in store.list_task_runs(campaign_id=ray_run.id) if r.kind == "task"}
        assert watch.runs["node-b"] & task_runs and watch.runs["node-a"] & task_runs
        # The thread campaign's runs stayed on this machine's engine.
        threads_runs = {r.id for r in store.list_task_runs(campaign_id=threads.id)}
        assert not threads_runs & watch.runs["node-b"]

        # The key is nowhere but in this process: not in a raylet, a Ray worker, a relay,
        # a sandbox's processes or its container's configuration, nor in what came back.
        assert watch.samples > 3
        assert watch.env_hits == [] and watch.container_env_hits == []
        for run in store.list_task_runs(campaign_id=ray_run.id):
            kept = [run.patch or "", run.error or "", json.dumps(run.tests_status or {})]
            kept += [store.artifacts.get(a).decode("utf-8", "replace") if isinstance(store.artifacts.get(a), bytes)
                     else str(store.artifacts.get(a))
                     for a in (run.eval_log_artifact, run.agent_log_artifact, run.trajectory_artifact) if a]
            assert not any(KEY in text for text in kept)


def _exactly_once(store, campaign_id: str) -> list:
    runs = store.list_task_runs(campaign_id=campaign_id)
    keys = [(r.agent_id, r.kind, r.task_id, r.stage, r.repeat) for r in runs]
    assert len(keys) == len(set(keys)), "a task run was recorded twice"
    assert all(r.finished and r.status != "running" for r in runs)
    assert all(r.attempt == 0 for r in runs)
    return runs


def _campaign_containers(client, store, campaign_id: str) -> list[str]:
    from dgm.sandbox.docker import LABEL

    runs = {r.id for r in store.list_task_runs(campaign_id=campaign_id)}
    return [c["Id"] for c in client.api.containers(all=True, filters={"label": LABEL})
            if (c.get("Labels") or {}).get("dgm.task_run") in runs]


def _owners_of_runs(client, store, campaign_id: str) -> set[str]:
    """Owner pids (labels) of the campaign's sandboxes on an engine."""
    from dgm.sandbox.docker import LABEL, OWNER_PID_LABEL

    runs = {r.id for r in store.list_task_runs(campaign_id=campaign_id)}
    return {(c.get("Labels") or {}).get(OWNER_PID_LABEL) for c in client.api.containers(all=True, filters={"label": LABEL})
            if (c.get("Labels") or {}).get("dgm.task_run") in runs} - {None}


def _containers_of(client, owners: set[str]) -> list[str]:
    from dgm.sandbox.docker import LABEL, OWNER_PID_LABEL

    return [c["Id"] for c in client.api.containers(all=True, filters={"label": LABEL})
            if (c.get("Labels") or {}).get(OWNER_PID_LABEL) in owners]


def _pid_alive(pid: str) -> bool:
    return Path(f"/proc/{pid}").exists()


def _wait_for(predicate, what: str, timeout: float = 240.0, *, alive=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if alive is not None and not alive():
            pytest.fail(f"the campaign ended before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_a_worker_node_that_dies_mid_campaign_has_its_runs_redone_elsewhere_once(
        tmp_path, pg_url, docker_client, second_engine, cluster):
    from dgm.archive.store import ArchiveStore

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=DIFFICULTIES)
    with ArchiveStore.open(pg_url, tmp_path / "archive") as store:
        outcome = {}

        def campaign():
            try:
                outcome["result"] = run_campaign(store, docker_client, bench, name="node-dies",
                                                 executor=_ray(cluster), **SEED_ONLY)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        runner = threading.Thread(target=campaign, daemon=True)
        runner.start()
        try:
            def busy_on_b():
                campaigns = [c for c in store.list_campaigns() if c.name == "node-dies"]
                return bool(campaigns) and bool(_campaign_containers(second_engine, store, campaigns[0].id))

            _wait_for(busy_on_b, "a task run on node-b", alive=runner.is_alive)
            cluster.kill("node-b")
            runner.join(400)
        finally:
            cluster.ensure("node-b", SECOND_ENGINE)
        assert "error" not in outcome, repr(outcome.get("error"))
        campaign_row, status = outcome["result"]
        assert status == "completed"
        runs = _exactly_once(store, campaign_row.id)
        # The run that was on node-b came back from the other node, and nothing of the task runs is missing.
        tasks = [r for r in runs if r.kind == "task"]
        assert len(tasks) == 5 and {r.status for r in tasks} <= {"resolved", "unresolved", "empty_patch"}


def test_a_killed_head_resumes_and_its_containers_on_worker_nodes_are_removed(
        tmp_path, pg_url, docker_client, second_engine, cluster):
    from dgm.archive.store import ArchiveStore

    proc_args = [sys.executable, "-m", "tests.support.ray_campaign_proc", pg_url, str(tmp_path / "archive"),
                 str(tmp_path / "bench"), "head-dies", cluster.address]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    head = subprocess.Popen(proc_args, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with ArchiveStore.open(pg_url, tmp_path / "archive") as store:
        def busy_on_b():
            campaigns = [c for c in store.list_campaigns() if c.name == "head-dies"]
            return bool(campaigns) and bool(_campaign_containers(second_engine, store, campaigns[0].id))

        try:
            _wait_for(busy_on_b, "a task run on node-b", alive=lambda: head.poll() is None)
        finally:
            head.send_signal(signal.SIGKILL)
            head.wait()
        campaign_row = next(c for c in store.list_campaigns() if c.name == "head-dies")
        # The Ray workers that ran the dead head's sandboxes on node-b die with it (Ray ends a dead
        # driver's workers); what they leave there (sandboxes, pooled network namespace holders)
        # is for the next head to remove: nothing on node-b itself would.
        owners = _owners_of_runs(second_engine, store, campaign_row.id)
        assert owners, "the killed head had nothing on node-b: the test would prove nothing"
        _wait_for(lambda: not any(_pid_alive(pid) for pid in owners), "the dead head's Ray workers to end", 60)
        left = _containers_of(second_engine, owners)
        assert left, "the killed head left nothing on node-b: the test would prove nothing"

        resumed = subprocess.run(proc_args + ["resume"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=400)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert json.loads(resumed.stdout.strip().splitlines()[-1])["status"] == "completed"
        remaining = {c["Id"] for c in second_engine.api.containers(all=True)}
        assert not set(left) & remaining, "containers the killed head left on node-b are still there"
        runs = _exactly_once(store, campaign_row.id)
        assert len([r for r in runs if r.kind == "task"]) == 5


def test_a_node_without_an_image_refuses_with_one_line_saying_how_to_put_it_there(second_engine, monkeypatch):
    from dgm.cluster.node import NodeNotReady, NodeSandboxHost
    from dgm.sandbox.images import base_image_tag

    monkeypatch.setenv("DOCKER_HOST", SECOND_ENGINE)
    host = NodeSandboxHost()
    host.check_images([base_image_tag()])
    with pytest.raises(NodeNotReady) as refused:
        host.check_images(["dgm-base:no-such-version"])
    line = str(refused.value)
    assert "\n" not in line and "dgm-base:no-such-version" in line and SECOND_ENGINE in line
    assert "dgm sandbox build" in line and "docker load" in line
