"""The harness self-check on the bundled benchmark, through the real CLI:
gold patches resolve every dgm-mini task, empty patches resolve none.

`dgm eval` runs in-process through its entry point (`run_dgm`): a child
interpreter would pay litellm's import, seconds on two cores, for each."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run_dgm

pytestmark = pytest.mark.docker


def run_eval(tmp_path, model, agent="seed"):
    out = tmp_path / f"{model.split(':')[1]}.json"
    # Three workers on two cores: a gold run's sandboxes mostly wait on Docker, not the CPU.
    result = run_dgm(["eval", "--agent", agent, "--benchmark", "dgm-mini", "--model", model, "--workers", "3",
                      "--archive-dir", str(tmp_path / "archive"), "--json", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_gold_resolves_every_task_and_noop_resolves_none(tmp_path, docker_client):
    from dgm.bench.registry import load_benchmark

    n = len(load_benchmark("dgm-mini").tasks())
    assert n >= 20

    stdout, gold = run_eval(tmp_path, "scripted:gold")
    assert f"resolved {n}/{n}" in stdout
    # Shown as scripted in the header and the table's title, as plain text (no markup escapes).
    assert "with model scripted:gold [scripted]" in stdout and "results (scripted:gold [scripted])" in stdout
    assert "\\[" not in stdout
    assert len(gold) == n and all(r["status"] == "resolved" for r in gold), \
        [(r["instance_id"], r["status"]) for r in gold if r["status"] != "resolved"]
    assert all(r["patch"].startswith("diff --git") for r in gold)
    assert set(gold[0]) >= {"instance_id", "status", "patch", "duration_s", "cost_usd"}

    assert {r["model"] for r in gold} == {"scripted:gold"} and all(r["error"] is None for r in gold)
    assert all(r["tests_status"]["FAIL_TO_PASS"]["failure"] == [] for r in gold)
    assert len({r["agent_id"] for r in gold}) == len({r["campaign_id"] for r in gold}) == 1

    # The same archived agent again, with another model: a fresh evaluation,
    # never the earlier one's results handed back.
    stdout, noop = run_eval(tmp_path, "scripted:noop", agent=gold[0]["agent_id"])
    assert f"resolved 0/{n}" in stdout
    assert all(r["status"] == "empty_patch" and r["patch"] == "" for r in noop)
    assert {r["agent_id"] for r in noop} == {gold[0]["agent_id"]}
    assert {r["campaign_id"] for r in noop}.isdisjoint({gold[0]["campaign_id"]})
    assert {r["task_run_id"] for r in noop}.isdisjoint({r["task_run_id"] for r in gold})

    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        runs = store.list_task_runs(kind="task")
        assert len(runs) == 2 * n
        calls = store.list_llm_calls()
        # Every agent step went through the gateway and litellm and was recorded.
        assert calls and all(c.scripted and c.task_run_id for c in calls)
        assert {c.model for c in calls} == {"scripted:gold", "scripted:noop"}
        # The test time is the test command's own (the clock line the grading
        # script prints), not the grading sandbox's whole run: the rest is harness.
        from dgm.bench.grade import own_test_time

        graded = [r for r in runs if r.eval_log_artifact]
        assert len(graded) == n  # the gold runs; an empty patch is not graded
        for run in graded:
            log = store.artifacts.get(run.eval_log_artifact).decode()
            assert own_test_time(log, float("inf")) == pytest.approx(run.test_duration_s)
            assert 0 < run.test_duration_s < run.duration_s - (run.agent_duration_s or 0)
        gold_run = next(r for r in runs if r.status == "resolved")
        trajectory = json.loads(store.artifacts.get(gold_run.trajectory_artifact))
        assert trajectory["exit_status"] == "submitted"


def test_an_evaluation_with_a_budget_stops_at_it_and_keeps_what_finished(tmp_path, docker_client):
    """A model that never lets the agent finish, at $0.01 a reply, under a
    $0.05 cap: the evaluation stops with one line (exit 1), spends no more
    than the cap, records the cut runs as errors saying why, and starts no
    further task."""
    rules = tmp_path / "chatty.json"
    rules.write_text(json.dumps({
        "pricing": {"input_cost_per_token": 0.0, "output_cost_per_token": 1e-4},  # 100 tokens a reply: $0.01
        "default_reply": "THOUGHT: " + "looking " * 47 + "\n```bash\necho still looking\n```",
    }))
    out = tmp_path / "runs.json"
    result = run_dgm(["eval", "--agent", "seed", "--benchmark", "dgm-mini", "--model", f"scripted:{rules}",
                      "--tasks", "textkit__textkit-1,textkit__textkit-2,textkit__textkit-3", "--workers", "1",
                      "--budget-usd", "0.05", "--archive-dir", str(tmp_path / "archive"), "--json", str(out)])
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the $0.05 budget is spent") and "0 of 3 task(s) finished, 1 cut short" in last
    runs = json.loads(out.read_text())
    assert [(r["instance_id"], r["status"]) for r in runs] == [("textkit__textkit-1", "error")]
    assert runs[0]["error"] == "cut short by the $0.05 --budget-usd cap"
    # The table says why, and where to see the run in full.
    assert "cut short by the $0.05 --budget-usd cap" in result.stdout, result.stdout
    assert f"`dgm show {runs[0]['agent_id']}` lists these runs" in " ".join(result.stdout.split())

    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.get_campaign(runs[0]["campaign_id"])
        assert campaign.status == "budget_exhausted" and campaign.budget_usd == 0.05
        # Stopped once a call could no longer pay for 256 output tokens ($0.0256), never past the cap.
        assert 0.05 - 0.0256 < store.campaign_spend(campaign.id) <= 0.05


def test_repeats_run_each_task_k_times_and_show_each_task_s_rate_and_the_score_s_spread(tmp_path, docker_client):
    """`--repeats 2` with a deterministic model: both repeats of a task end alike, so each rate is 0 or 1
    and the spread between repeats is 0: what is tested is the bookkeeping of repeats."""
    tasks = ["confini__confini-1", "confini__confini-5", "datespan__datespan-1"]  # difficulties 1, 4, 1
    out = tmp_path / "runs.json"
    result = run_dgm(["eval", "--agent", "seed", "--tasks", ",".join(tasks), "--repeats", "2", "--model",
                      "scripted:rehearsal", "--workers", "2", "--archive-dir", str(tmp_path / "archive"),
                      "--json", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    assert "on 3 dgm-mini task(s) × 2 repeats" in stdout
    assert "resolve rate per task (2 repeats)" in stdout
    # The seed gives up on the hard task (the rehearsal model's rule), in both repeats.
    assert "confini__confini-5 #1" in stdout
    assert ("score 0.667: the mean of 6 runs; per repeat 0.667 0.667; spread between repeats (sd) 0.000 "
            "(standard error of the score 0.000); 0 of 3 task(s) resolved in some runs and not others") in stdout
    assert "resolved 4/6" in stdout
    runs = json.loads(out.read_text())
    assert sorted((r["instance_id"], r["repeat"]) for r in runs) == sorted((t, k) for t in tasks for k in (0, 1))
    assert [r["repeat"] for r in runs] == [0, 0, 0, 1, 1, 1]  # whole samples first
    statuses = {}
    for r in runs:
        statuses.setdefault(r["instance_id"], set()).add(r["status"])
    assert statuses == {tasks[0]: {"resolved"}, tasks[1]: {"empty_patch"}, tasks[2]: {"resolved"}}
    assert len({r["task_run_id"] for r in runs}) == 6

    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        (campaign,) = store.list_campaigns()
        assert campaign.config["repeats"] == 2
        assert store.task_resolve_rates(campaign.id) == {
            runs[0]["agent_id"]: {tasks[0]: (2, 2), tasks[1]: (0, 2), tasks[2]: (2, 2)}}
