"""Done-when of `dgm compare`: two agents whose scores differ by noise alone get "no evidence of a difference".

The same seed agent is evaluated twice through `dgm eval` (two agents, two
campaigns) with `scripted:rate:0.5`, a stand-in model that resolves each task
run with probability 1/2, through real sandboxes and grading. Its draws are
seeded by the task run's id; the ids are pinned here (and the runs made one
at a time, so they are handed out in one order) so that the test cannot
flake on the few per cent of noise a 0.05-level test calls a difference.
"""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

from tests.support.cli import run_dgm

pytestmark = pytest.mark.docker

TASKS = 10


def test_two_agents_at_the_same_rate_differ_by_noise_and_compare_says_no_evidence(tmp_path, docker_client,
                                                                                   monkeypatch):
    import dgm.archive.store as store_module
    from dgm.bench.registry import load_benchmark

    counter = itertools.count()
    monkeypatch.setattr(store_module, "new_id",
                        lambda nbytes=8: hashlib.sha256(f"noise-{next(counter)}".encode()).hexdigest()[:2 * nbytes])
    tasks = ",".join(t.instance_id for t in load_benchmark("dgm-mini").tasks()[:TASKS])
    root = tmp_path / "archive"
    agents = []
    for k in range(2):
        out = tmp_path / f"eval-{k}.json"
        proc = run_dgm(["eval", "--agent", "seed", "--model", "scripted:rate:0.5", "--tasks", tasks,
                        "--workers", "1", "--json", str(out)], root)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = json.loads(out.read_text())
        assert len(runs) == TASKS and {r["status"] for r in runs} <= {"resolved", "empty_patch"}
        agents.append((runs[0]["agent_id"], sum(r["status"] == "resolved" for r in runs)))
        assert f"resolved {agents[-1][1]}/{TASKS}: " in proc.stdout and f"n={TASKS} (95 % Wilson interval)" in proc.stdout
    (a, a_resolved), (b, b_resolved) = agents
    assert a != b
    assert a_resolved != b_resolved, "the two scores differ, by noise alone"
    assert 0 < a_resolved < TASKS and 0 < b_resolved < TASKS
    proc = run_dgm(["compare", a, b], root)
    assert proc.returncode == 0, proc.stderr
    assert "verdict  no evidence of a difference (level 0.05, two-sided)" in proc.stdout, proc.stdout
    data = json.loads(run_dgm(["compare", a, b, "--json"], root).stdout)
    assert data["shared_tasks"] == TASKS and data["test"] == "exact McNemar"
    assert (data["a"]["resolved"], data["b"]["resolved"]) == (a_resolved, b_resolved)
    assert data["differing"], "some tasks differ, as two noisy runs do"
    assert data["p_value"] >= 0.05
