"""The evolution loop end to end: real sandboxes, gateway, litellm, archive, git.

Only the LLM is scripted (dgm/llm/scripted_models/rehearsal.json): on tasks of
difficulty >= 4 it gives up unless the agent's own prompt tells it to run the
tests; the proposer proposes adding that instruction; the self-modifying
agent adds it to its own main.py. Whether a child then solves more is decided
by the child's real code, run in real sandboxes and graded by real tests.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgm.evolution import diagnose as diag
from tests.support.campaign import archive_fingerprint, run_campaign
from tests.support.harness import REPO_ROOT
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

TWO_STAGES = [{"name": "small", "tasks": 2, "advance_threshold": 0.0}, {"name": "rest", "tasks": "rest"}]
REHEARSAL = json.loads((REPO_ROOT / "dgm/llm/scripted_models/rehearsal.json").read_text())


def solved(store, agent_id):
    return {r.task_id for r in store.list_task_runs(agent_id=agent_id, kind="task") if r.status == "resolved"}


def test_child_improves_itself_and_becomes_best_deterministically(tmp_path, store, docker_client):
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    fields = dict(generations=1, children_per_generation=2, seed=7, stages=TWO_STAGES, heldout=1, time_limit_s=60)
    runners = []
    campaign, status = run_campaign(store, docker_client, bench, name="first", on_runner=runners.append, **fields)
    assert status == "completed"

    # The live view `dgm run` shows renders the runner's state and the archive's spend.
    from rich.console import Console

    from dgm.cli.dashboard import live_view

    console = Console(record=True, width=160)
    console.print(live_view(runners[0]))
    screen = console.export_text()
    assert "generation  1 of 1" in screen and "best score  1.00 [" in screen
    assert "[scripted rehearsal]" in screen and "$" in screen
    agents = store.list_agents(campaign.id)
    seed = next(a for a in agents if a.origin == "seed")
    children = sorted((a for a in agents if a.origin == "child"), key=lambda a: a.meta["slot"])
    assert len(children) == 2
    child, twin = children
    assert child.status == "admitted" and child.twin_of is None

    # The child really changed its own code, in a commit whose parent is the seed's.
    assert child.commit_sha != seed.commit_sha
    diff = store.code.diff(seed.commit_sha, child.commit_sha)
    assert "+Run the tests before you submit" in diff and "main.py" in diff
    assert store.code.get_ref(child.id) == child.commit_sha
    # The proposer was shown the parent's code (every text file of it).
    (diagnosis, *_) = [c for c in store.list_llm_calls(agent_id=child.id) if c.purpose == "diagnose"]
    prompt = json.dumps(json.loads(store.artifacts.get(diagnosis.artifact_id))["request"]["messages"])
    assert "=== main.py ===" in prompt and "MAX_STEPS" in prompt

    # ...and because of that change it solves the hard tasks its parent gave up on.
    parent_runs = {r.task_id: r.status for r in store.list_task_runs(agent_id=seed.id, kind="task")
                   if r.stage != "heldout"}
    hard = {t.instance_id for t in bench.tasks() if t.difficulty >= 4} & set(parent_runs)
    assert hard and all(parent_runs[t] == "empty_patch" for t in hard)
    selection = set(parent_runs)
    assert solved(store, child.id) & selection > solved(store, seed.id) & selection
    assert hard <= solved(store, child.id)
    assert child.score > seed.score
    admitted = store.list_agents(campaign.id, statuses=["admitted"])
    top = max(a.score for a in admitted)
    assert top == 1.0 and all(a.origin == "child" for a in admitted if a.score == top)
    # The best agent meets the held-out task, which no selection or diagnosis ever saw.
    assert any(a.heldout_score is not None for a in admitted if a.score == top)
    stats = store.list_generation_stats(campaign.id)
    assert [s.generation for s in stats] == [0, 1] and stats[1].best_score > stats[0].best_score

    # Both children are the seed's, given the same proposal (the scripted proposer does not heed what it
    # is told the first was asked to do): the second wrote the same code, so it is the first's twin,
    # recorded and never evaluated, nor a member of the archive.
    assert twin.status == "twin" and twin.twin_of == child.id and twin.score is None
    trees = store.code.trees([twin.commit_sha, child.commit_sha])
    assert trees[twin.commit_sha] == trees[child.commit_sha]
    assert {r.kind for r in store.list_task_runs(agent_id=twin.id)} == {"self_modify"}
    assert twin.id not in {a.id for a in admitted}
    (twin_diagnosis,) = [c for c in store.list_llm_calls(agent_id=twin.id) if c.purpose == "diagnose"]
    twin_prompt = json.loads(store.artifacts.get(twin_diagnosis.artifact_id))["request"]["messages"][1]["content"]
    assert f"Child {child.id} (generation 1)" in twin_prompt and child.proposal["improvement_proposal"] in twin_prompt
    assert diag.SIBLINGS_HEADING not in prompt  # the first child had no sibling before it
    [event] = store.list_events(campaign.id, kinds=["agent_twin"])
    assert event.payload == {"agent": twin.id, "twin_of": child.id, "evaluated": False}
    from dgm.lineage.forest import Lineage
    from dgm.lineage.tree import rich_tree

    tree = rich_tree(Lineage.load(store, campaign.id), "t").plain
    assert f"{twin.id}  g1    -    twin  = twin of {child.id} (not evaluated)" in tree

    # Same seed, same scripted models: the same archive.
    again, status = run_campaign(store, docker_client, bench, name="second", **fields)
    assert status == "completed"
    assert archive_fingerprint(store, again.id) == archive_fingerprint(store, campaign.id)


def test_a_proposer_told_what_a_sibling_tries_proposes_other_work_and_repeats_are_each_recorded(
        tmp_path, store, docker_client):
    """A proposer that heeds the siblings' section (this rules file answers it with the other
    rehearsal proposal) gives the parent's second child other work: two children, two codes, no
    twin. Each task of the stage runs twice; the scripted model is deterministic, so both repeats
    of a task end alike and the score is that of one run: the bookkeeping, not the model, is tested."""
    def heed_siblings(spec):
        tail = _rule(spec, "diagnose", 1)["reply"]
        test_hint = json.loads(_rule(spec, "diagnose", 0)["reply"].strip("`json\n"))["improvement_proposal"]
        spec["rules"].insert(0, {"purpose": "diagnose", "any_contains": f"Proposal: {test_hint}", "reply": tail})

    model = _rules_with(tmp_path, "heeds-siblings", heed_siblings)
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=2, difficulties=[1, 4])
    campaign, status = run_campaign(store, docker_client, bench, name="siblings", model=model, generations=1,
                                    children_per_generation=2, heldout=0, time_limit_s=60,
                                    stages=[{"name": "all", "tasks": "rest", "repeats": 2}])
    assert status == "completed"
    agents = store.list_agents(campaign.id)
    first, second = sorted((a for a in agents if a.origin == "child"), key=lambda a: a.meta["slot"])
    (call,) = [c for c in store.list_llm_calls(agent_id=second.id) if c.purpose == "diagnose"]
    prompt = json.loads(store.artifacts.get(call.artifact_id))["request"]["messages"][1]["content"]
    assert diag.SIBLINGS_HEADING in prompt and f"Child {first.id} (generation 1)" in prompt
    assert first.proposal["improvement_proposal"] in prompt
    assert "[dgm-rehearsal:test-hint]" in first.proposal["problem_statement"]
    assert "[dgm-rehearsal:tail]" in second.proposal["problem_statement"]
    assert first.commit_sha != second.commit_sha and first.twin_of is None and second.twin_of is None
    assert first.status == second.status == "admitted"

    rates = store.task_resolve_rates(campaign.id)
    for agent in agents:
        runs = store.list_task_runs(agent_id=agent.id, kind="task")
        assert sorted((r.task_id, r.repeat) for r in runs) == sorted((t.instance_id, k) for t in bench.tasks()
                                                                   for k in (0, 1))
        by_task = {}
        for r in runs:
            by_task.setdefault(r.task_id, set()).add(r.status)
        assert all(len(statuses) == 1 for statuses in by_task.values()), by_task
        resolved = sum(r.status == "resolved" for r in runs)
        assert agent.score == pytest.approx(resolved / len(runs))
        assert all(n == 2 and k in (0, 2) for k, n in rates[agent.id].values())
    seed = next(a for a in agents if a.origin == "seed")
    assert seed.score == 0.5 and first.score == 1.0


# --------------------------------------------------------------------------- kill -9 and resume
def _db_state(archive_dir: Path, name: str) -> dict:
    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, archive_dir) as s:
        try:
            c = s.get_campaign(name)
        except Exception:  # noqa: BLE001 - not created yet
            return {}
        agents = {a.id: a for a in s.list_agents(c.id)}
        runs = s.list_task_runs(campaign_id=c.id)
        events = s.list_events(c.id)
    gen = lambda agent_id: agents[agent_id].generation if agent_id in agents else -1  # noqa: E731
    return {
        "diagnosis": any(a.generation >= 1 and a.status == "pending" for a in agents.values()),
        "self_modification": any(r.kind == "self_modify" and r.status == "running" for r in runs),
        "evaluation": any(r.kind == "task" and r.status == "running" and gen(r.agent_id) >= 1 for r in runs),
        "admission": any(e.kind == "agent_admitted" and gen(e.agent_id) >= 1 for e in events),
    }


def _kill_at_every_step_then_resume(archive_dir: Path, rules: str) -> list[int]:
    """Run campaign `killme` in child processes, SIGKILL one at each kind of step, then resume
    it to its end (tests.support.campaign_proc: KILL_CONFIG); returns the children's pids.

    Each resuming process is started on standby while the one before it runs (it loads its code,
    seconds of litellm's import) and told to go once that one is dead: it opens the archive,
    sweeps the dead one's sandboxes and resumes only then, as `dgm resume` after a kill does."""
    def start(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.support.campaign_proc", str(archive_dir), "killme",
                                 rules, *extra], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    proc = start()
    procs = [proc]
    try:
        for point in ["diagnosis", "self_modification", "evaluation", "admission"]:
            standby = start("resume", "standby")
            procs.append(standby)
            killed = False
            deadline = time.monotonic() + 180
            while proc.poll() is None and time.monotonic() < deadline:
                if _db_state(archive_dir, "killme").get(point):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed = True
                    break
                time.sleep(0.05)
            assert proc.poll() is not None, f"campaign neither reached {point} nor finished"
            assert killed, f"never caught the campaign during {point}: {proc.stderr.read()[-2000:]}"
            proc = standby
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=600)  # the last resume, left to finish
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["status"] == "completed"
    finally:
        for left in procs:
            if left.poll() is None:
                left.kill()
                left.wait()
    return [p.pid for p in procs]


def test_sigkill_at_every_step_then_resume_matches_uninterrupted(tmp_path, store, docker_client):
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.campaign_proc import DIFFICULTIES, KILL_CONFIG

    rules = str(REPO_ROOT / "tests/fixtures/scripted/slow_rehearsal.json")
    archive_dir = tmp_path / "killed-archive"
    # The same campaign, never interrupted, runs meanwhile in this process: its own archive, and
    # sandboxes that the killed runs' orphan sweeps leave alone (their owner is alive).
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=DIFFICULTIES)
    with ThreadPoolExecutor(1, thread_name_prefix="uninterrupted-campaign") as pool:
        uninterrupted = pool.submit(run_campaign, store, docker_client, bench, name="reference",
                                    model=f"scripted:{rules}", **KILL_CONFIG)
        pids = _kill_at_every_step_then_resume(archive_dir, rules)
    reference, status = uninterrupted.result()
    assert status == "completed"

    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, archive_dir) as killed_store:
        killed = killed_store.get_campaign("killme")
        got, want = archive_fingerprint(killed_store, killed.id), archive_fingerprint(store, reference.id)
        for part in ("agents", "runs"):
            extra = [x for x in got[part] if x not in want[part]]
            missing = [x for x in want[part] if x not in got[part]]
            assert not extra and not missing, f"{part}: only after kills {extra}; only uninterrupted {missing}"
        # No finished task run was redone: one row per (agent, kind, task, stage), attempt 0.
        runs = killed_store.list_task_runs(campaign_id=killed.id)
        keys = [(r.agent_id, r.kind, r.task_id, r.stage) for r in runs]
        assert len(keys) == len(set(keys)) and all(r.attempt == 0 for r in runs)
        assert all(r.status != "running" for r in runs)

    from dgm.sandbox.docker import LABEL

    left = [c for c in docker_client.containers.list(all=True, filters={"label": LABEL})
            if c.labels.get("dgm.owner_pid") in {str(p) for p in pids}]
    assert left == []


# --------------------------------------------------------------------------- faulty LLMs
def _rules_with(tmp_path, name: str, change) -> str:
    spec = copy.deepcopy(REHEARSAL)
    change(spec)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return f"scripted:{path}"


def _rule(spec, purpose, index=0):
    return [r for r in spec["rules"] if r["purpose"] == purpose][index]


def _one_child(tmp_path, store, docker_client, model, name, **extra):
    bench = TinyBenchmark(tmp_path / f"bench-{name}", n_tasks=3, difficulties=[1, 4, 1])
    campaign, status = run_campaign(store, docker_client, bench, name=name, model=model, generations=1,
                                    children_per_generation=1, heldout=0,
                                    stages=[{"name": "all", "tasks": "rest"}], **{"time_limit_s": 60, **extra})
    child = next(a for a in store.list_agents(campaign.id) if a.origin == "child")
    return campaign, status, child


def test_rate_limits_server_errors_and_timeouts_are_retried_and_recorded(tmp_path, store, docker_client):
    def flaky(spec):
        _rule(spec, "diagnose")["fail"] = {"status": 429, "times": 2}
        _rule(spec, "self_modify")["fail"] = {"status": 500, "times": 1}
        _rule(spec, "task", 1)["fail"] = {"status": "timeout", "times": 1}

    campaign, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "flaky", flaky),
                                         "flaky")
    assert status == "completed" and child.status == "admitted"
    errors = [c for c in store.list_llm_calls(campaign_id=campaign.id) if c.status == "error"]
    kinds = {(c.purpose, c.error.split(":")[0]) for c in errors}
    assert ("diagnose", "RateLimitError") in kinds
    assert ("self_modify", "InternalServerError") in kinds
    assert ("task", "Timeout") in kinds
    assert sum(c.purpose == "diagnose" for c in errors) == 2


def test_a_model_outage_stops_the_campaign_without_blaming_any_agent(tmp_path, store, docker_client):
    from dgm.errors import ModelUnavailable

    def task_outage(spec):
        for rule in spec["rules"]:
            if rule["purpose"] == "task":
                rule["fail"] = {"status": 500, "times": 1000}

    def proposer_outage(spec):
        for rule in spec["rules"]:
            if rule["purpose"] == "diagnose":
                rule["fail"] = {"status": 429, "times": 1000}

    # The agents' model is down from the start: the seed is not scored 0, the campaign stops.
    with pytest.raises(ModelUnavailable, match="was unavailable during a run"):
        _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "down", task_outage), "down",
                   infrastructure_wait_minutes=0)
    campaign = store.get_campaign("down")
    (seed,) = store.list_agents(campaign.id)
    assert campaign.status == "failed" and seed.status == "evaluating" and seed.score is None
    runs = store.list_task_runs(campaign_id=campaign.id)
    assert runs and {r.status for r in runs} == {"running"}
    assert store.list_events(campaign.id)[-1].payload["reason"].startswith("infrastructure: the model")
    # Every call was retried, and every attempt is on record.
    failed = [c for c in store.list_llm_calls(campaign_id=campaign.id) if c.status == "error"]
    assert len(failed) >= 5 and all("InternalServerError" in c.error for c in failed)

    # The provider is back: resume finishes the campaign as if nothing had happened.
    healthy = _rules_with(tmp_path, "healthy", lambda spec: None)
    bench = TinyBenchmark(tmp_path / "bench-down-again", n_tasks=3, difficulties=[1, 4, 1])
    fields = dict(model=healthy, generations=1, children_per_generation=1, heldout=0, time_limit_s=60,
                  stages=[{"name": "all", "tasks": "rest"}])
    resumed, status = run_campaign(store, docker_client, bench, campaign=campaign, **fields)
    assert status == "completed"
    reference, status = run_campaign(store, docker_client, bench, name="never-down", **fields)
    assert archive_fingerprint(store, resumed.id) == archive_fingerprint(store, reference.id)

    # A blip the agents ride out (one call fails through all 5 attempts, the agent's
    # own retry is answered) stops nothing: their results stand.
    def blip(spec):
        for rule in spec["rules"]:
            if rule["purpose"] == "task":
                rule["fail"] = {"status": 500, "times": 5}

    campaign, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "blip", blip), "blip")
    assert status == "completed" and child.status == "admitted"
    assert not [r for r in store.list_task_runs(campaign_id=campaign.id) if r.status in ("running", "error")]
    failed = [c for c in store.list_llm_calls(campaign_id=campaign.id) if c.status == "error"]
    assert len(failed) >= 5

    # The proposer is down: the child waits, undiagnosed, instead of being rejected.
    with pytest.raises(ModelUnavailable, match="proposer model"):
        _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "no-proposer", proposer_outage),
                   "no-proposer", infrastructure_wait_minutes=0)
    campaign = store.get_campaign("no-proposer")
    child = next(a for a in store.list_agents(campaign.id) if a.origin == "child")
    assert campaign.status == "failed" and child.status == "pending" and child.rejection_reason is None


def test_malformed_proposals_are_retried_then_the_child_is_rejected(tmp_path, store, docker_client):
    def malformed(spec):
        for rule in spec["rules"]:
            if rule["purpose"] == "diagnose":
                rule["reply"] = "I think the agent should be better. {not json"

    campaign, status, child = _one_child(tmp_path, store, docker_client,
                                         _rules_with(tmp_path, "malformed", malformed), "malformed")
    assert status == "completed"
    assert child.status == "rejected" and "diagnosis: no valid proposal after 3 replies" in child.rejection_reason
    assert sum(c.purpose == "diagnose" for c in store.list_llm_calls(campaign_id=campaign.id)) == 3


def test_a_self_modification_that_changes_nothing_is_rejected(tmp_path, store, docker_client):
    def lazy(spec):
        for rule in spec["rules"]:
            if rule["purpose"] == "self_modify":
                rule["reply"] = "THOUGHT: nothing to do.\n```bash\necho {{submit}}\n```"

    _, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "lazy", lazy), "lazy")
    assert status == "completed"
    assert child.status == "rejected" and "changed nothing" in child.rejection_reason


def test_a_child_that_does_not_compile_is_rejected_before_any_task(tmp_path, store, docker_client):
    def broken(spec):
        _rule(spec, "self_modify")["reply"] = ("THOUGHT: edit.\n```bash\nprintf 'def broken(:\\n' >> main.py\n```")

    campaign, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "broken", broken),
                                         "broken")
    assert status == "completed"
    # The reason names the file and the compiler's complaint, not just the verdict.
    assert child.status == "rejected" and \
        child.rejection_reason.startswith("sanity gate: the child does not compile: main.py: "), child.rejection_reason
    assert "line" in child.rejection_reason
    assert store.list_task_runs(agent_id=child.id, kind="task") == []


def test_a_sanity_rejection_says_which_check_failed_and_how():
    from dgm.evolution.self_modify import _detail, _line_after, _pytest_summary

    compiled = "does not compile:\nmain.py: invalid non-printable character U+001B (main.py, line 211)\nx.py: ...\n"
    assert _line_after(compiled, "does not compile:") == \
        "main.py: invalid non-printable character U+001B (main.py, line 211)"
    tests = "compiles\n..F.\n=== FAILURES ===\nassert 1 == 2\n=========== 1 failed, 3 passed in 0.21s ===========\n"
    assert _pytest_summary(tests) == "1 failed, 3 passed in 0.21s"
    assert _pytest_summary("compiles\nKilled\n") is None and _detail(None) == ""
    assert _detail("x" * 500) == ": " + "x" * 200


def test_a_child_that_hangs_is_rejected_and_the_campaign_goes_on(tmp_path, store, docker_client):
    def hang(spec):
        _rule(spec, "self_modify")["reply"] = (
            "THOUGHT: edit.\n```bash\npython3 - <<'PY'\ntext = open('main.py').read()\n"
            "text = text.replace('def main() -> int:\\n', 'def main() -> int:\\n    time.sleep(10 ** 6)\\n', 1)\n"
            "open('main.py', 'w').write(text)\nPY\n```")

    # The gate's limit is all this test waits out: a child that sleeps 10**6 s hangs past any of them.
    campaign, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "hang", hang),
                                         "hang", sanity_time_limit_s=10)
    assert status == "completed"
    assert child.status == "rejected" and "hang" in child.rejection_reason


def test_a_child_that_only_fails_at_task_time_is_rejected_with_how_its_runs_ended(tmp_path, store, docker_client):
    """It passes the sanity gate (it compiles, its own tests pass) but times
    out on every task: the reason says so, not just "no patch"."""
    def stalls(spec):
        _rule(spec, "self_modify")["reply"] = (
            "THOUGHT: edit.\n```bash\npython3 - <<'PY'\ntext = open('main.py').read()\n"
            "text = text.replace('def main() -> int:\\n', 'def main() -> int:\\n'\n"
            "    '    if os.path.exists(os.path.join(os.environ.get(\"DGM_REPO\", \"\"), \"calc.py\")):\\n'\n"
            "    '        time.sleep(10 ** 6)\\n', 1)\n"
            "open('main.py', 'w').write(text)\nPY\n```")

    campaign, status, child = _one_child(tmp_path, store, docker_client, _rules_with(tmp_path, "stalls", stalls),
                                         "stalls", time_limit_s=5, sanity_time_limit_s=60)
    assert status == "completed"
    runs = store.list_task_runs(agent_id=child.id, kind="task")
    assert runs and all(r.status == "timeout" for r in runs), [(r.task_id, r.status, r.error) for r in runs]
    assert child.status == "rejected"
    assert child.rejection_reason == f"produced no non-empty patch on any task ({len(runs)} timeout)"


# --------------------------------------------------------------------------- budget
def test_budget_cap_stops_the_campaign_at_the_cap_not_past_it(tmp_path, store, docker_client):
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    cap = 0.012
    campaign, status = run_campaign(store, docker_client, bench, name="capped", generations=5,
                                    children_per_generation=2, budget_usd=cap, stages=TWO_STAGES, heldout=1,
                                    time_limit_s=60)
    assert status == "budget_exhausted" and campaign.status == "budget_exhausted"
    calls = [c for c in store.list_llm_calls(campaign_id=campaign.id) if c.status == "ok"]
    spent = store.campaign_spend(campaign.id)
    assert spent <= cap + 1e-12  # never over: a call the budget cannot pay for whole is cut or not made
    assert cap - spent <= max(c.cost_usd for c in calls) + 1e-12  # and it did not stop early either
    assert abs(spent - sum(c.cost_usd for c in calls)) < 1e-9
    assert abs(campaign.spent_usd - spent) < 1e-9
    # The progress series (plot, explorer) shows all of it, the generation it stopped in included.
    from dgm.lineage.plot import generation_series

    points, source = generation_series(store, campaign.id)
    assert source == "recorded" and points[-1].spent_usd == pytest.approx(spent)
    assert points[-1].partial and [p.generation for p in points] == list(range(len(points)))
    # Every call is attributed to its campaign and agent.
    assert all(c.campaign_id == campaign.id and c.agent_id for c in calls)
    # Nothing left half-done that a resume could not redo.
    stop = store.list_events(campaign.id)[-1].payload
    assert stop["status"] == "budget_exhausted"
    assert stop["reason"] == f"its $0.01 budget is spent (${spent:.4f}); --budget-usd on resume raises it"


# --------------------------------------------------------------------------- what agents write
@pytest.mark.parametrize("raw", [
    b"[1, 2, 3]", b'"a string"', b"42", b"[" * 200_000 + b"]" * 200_000, b'{"messages": 7}',
    b'{"messages": [1, "x", null, {"role": "user", "content": "kept"}]}', b"\xff\xfe not json",
])
def test_a_trajectory_is_read_whatever_the_agent_wrote(raw):
    from dgm.evolution.diagnose import render_trajectory
    from dgm.sandbox.agent_run import load_trajectory

    text = render_trajectory(raw, 1000)  # never raises: the proposer always gets something to read
    assert isinstance(text, str) and text
    if b"kept" in raw:
        assert "--- user ---\nkept" in text
    assert load_trajectory(raw) is None or isinstance(load_trajectory(raw), dict)


def _symlink_patch(name: str, target: str) -> str:
    return (f"diff --git a/{name} b/{name}\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n"
            f"+++ b/{name}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n")


@pytest.mark.parametrize("target,allowed", [("/etc/shadow", False), ("../../../etc", False), ("main.py", True)])
def test_a_child_whose_code_links_out_of_itself_is_rejected_with_the_reason(store, target, allowed):
    from dgm.agent_code import SEED_AGENT_DIR, AgentCodeCache, commit_agent_dir
    from dgm.evolution.self_modify import RejectChild, commit_child

    campaign = store.create_campaign(name="links", kind="evolution", config={})
    parent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="admitted",
                             origin="seed")
    cache = AgentCodeCache(store)
    patch = _symlink_patch("link", target)
    if not allowed:
        with pytest.raises(RejectChild, match=f"symlink leading out of the agent's code: link -> {target}"):
            commit_child(store, cache, parent, patch, message="child")
        return
    sha = commit_child(store, cache, parent, patch, message="child")
    assert os.readlink(os.path.join(cache.path(sha), "link")) == "main.py"


def test_a_child_without_a_usable_diff_is_rejected_with_the_runs_reason(store):
    """Not "changed nothing" when the diff could not be taken or kept byte
    for byte: the reason the run gave."""
    from dgm.agent_code import SEED_AGENT_DIR, AgentCodeCache, commit_agent_dir
    from dgm.evolution.self_modify import RejectChild, commit_child

    campaign = store.create_campaign(name="unusable", kind="evolution", config={})
    parent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="admitted",
                             origin="seed")
    cache = AgentCodeCache(store)
    with pytest.raises(RejectChild, match="no usable diff: diff larger than 5000000 bytes"):
        commit_child(store, cache, parent, "", message="c", error="diff larger than 5000000 bytes", usable=False)
    latin1 = "diff --git a/x.txt b/x.txt\nnew file mode 100644\n--- /dev/null\n+++ b/x.txt\n@@ -0,0 +1 @@\n+caf\ufffd\n"
    with pytest.raises(RejectChild, match="no usable diff: the diff is not UTF-8 text"):
        commit_child(store, cache, parent, latin1, message="c", usable=False,
                     error="the diff is not UTF-8 text (in x.txt); those bytes were replaced")
    with pytest.raises(RejectChild, match="changed nothing"):
        commit_child(store, cache, parent, "", message="c")
    pyc = ("diff --git a/__pycache__/x.cpython-311.pyc b/__pycache__/x.cpython-311.pyc\nnew file mode 100644\n"
           "--- /dev/null\n+++ b/__pycache__/x.cpython-311.pyc\n@@ -0,0 +1 @@\n+x\n")
    with pytest.raises(RejectChild, match="never keeps __pycache__"):
        commit_child(store, cache, parent, pyc, message="c")
    newline = ('diff --git "a/new\\nline.txt" "b/new\\nline.txt"\nnew file mode 100644\n--- /dev/null\n'
               '+++ "b/new\\nline.txt"\n@@ -0,0 +1 @@\n+x\n')
    with pytest.raises(RejectChild, match="cannot be stored"):
        commit_child(store, cache, parent, newline, message="c")


def test_a_child_whose_archive_lacks_what_its_rows_name_is_left_for_resume_not_rejected(tmp_path, store,
                                                                                         docker_client):
    """A missing artifact or commit is the archive's fault (a wrong
    --archive-dir, a damaged one), not the child's: the campaign stops with
    one clear error and the child stays where it was."""
    from dgm.errors import ArchiveIncomplete, NotFound

    def lose_artifacts(runner):
        def missing(agent):
            raise NotFound("no artifact 8877c8 in archive/artifacts")
        runner._diagnose = missing

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=3, difficulties=[1, 4, 1])
    with pytest.raises(ArchiveIncomplete, match="lacks what its rows reference.*no artifact 8877c8.*--archive-dir"):
        run_campaign(store, docker_client, bench, name="lost", generations=1, children_per_generation=1,
                     heldout=0, stages=[{"name": "all", "tasks": "rest"}], time_limit_s=60, on_runner=lose_artifacts)
    campaign = next(c for c in store.list_campaigns() if c.name == "lost")
    child = next(a for a in store.list_agents(campaign.id) if a.origin == "child")
    assert (campaign.status, child.status, child.rejection_reason) == ("failed", "pending", None)


def _copy_patch(source: str, dest: str = "stolen.txt", kind: str = "copy") -> str:
    return (f"diff --git a/{dest} b/{dest}\nsimilarity index 100%\n{kind} from {source}\n{kind} to {dest}\n")


@pytest.mark.parametrize("kind,spell", [
    ("copy", lambda secret: str(secret)),                                      # absolute
    ("rename", lambda secret: "../" * 12 + str(secret).lstrip("/")),           # climbing out
    ("copy", lambda secret: '"' + str(secret).replace("/", "\\057") + '"'),  # absolute, C-quoted
])
def test_a_diff_that_copies_a_host_file_into_the_child_is_rejected(store, tmp_path, kind, spell):
    """git apply reads a `copy from` path wherever it points: a forged
    self-modification diff once had the host copy a secret into the child's
    commit. The control shows git really does so; the harness refuses first."""
    from dgm.agent_code import SEED_AGENT_DIR, AgentCodeCache, commit_agent_dir
    from dgm.evolution.self_modify import RejectChild, commit_child

    secret = tmp_path / "HOST_SECRET.txt"
    secret.write_text("s3cr3t\n")
    patch = _copy_patch(spell(secret), kind=kind)
    if kind == "copy":  # the control: git alone takes the host file
        victim = tmp_path / "victim"
        victim.mkdir()
        subprocess.run(["git", "apply", "-"], cwd=victim, input=patch.encode(), check=True, capture_output=True)
        assert (victim / "stolen.txt").read_text() == "s3cr3t\n"
    campaign = store.create_campaign(name="copy", kind="evolution", config={})
    parent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="admitted",
                             origin="seed")
    with pytest.raises(RejectChild, match="names a path outside the agent's code"):
        commit_child(store, AgentCodeCache(store), parent, patch, message="child")


def test_only_header_paths_count_as_paths():
    from dgm.sandbox.testbed import unsafe_patch_paths

    content = ("diff --git a/q.sql b/q.sql\n--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1 @@\n--- ../../etc/passwd\n"
               " keep\n")
    assert unsafe_patch_paths(content) == []
    assert unsafe_patch_paths("diff --git a/x b/x\n--- a/../x\n+++ b/x\n@@ -0,0 +1 @@\n+a\n") == ["--- a/../x"]
    assert unsafe_patch_paths("diff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n") == []


# --------------------------------------------------------------------------- sequential staging
def test_sequential_staging_runs_batches_to_the_cap_and_leaves_twins_unsettled(tmp_path, store, docker_client):
    """Seed and children run the plan's tasks in batches up to the cap, each run
    under its plan stage's name. The children of generation 1 make the same
    change (twins, evaluated here as second samples) and beat the seed on its
    hard tasks: they are not stopped, and since they never differ on a task,
    settling has nothing to decide."""
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=7, difficulties=[1, 4, 1, 4, 1, 4, 1])
    campaign, status = run_campaign(
        store, docker_client, bench, name="sequential", generations=1, children_per_generation=2, seed=3,
        heldout=1, stages=TWO_STAGES, staging="sequential", sequential_batch=2, sequential_max_tasks=4,
        time_limit_s=60, evaluate_twins=True,
        # Settle only clear close calls: on 4 shared tasks the seed's loss to its children is still a
        # close call at the default 10 %, and settling it would run them past the cap this test checks.
        sequential_settle_confidence=0.8, sequential_settle_margin=0.0)
    assert status == "completed"
    agents = store.list_agents(campaign.id)
    seed = next(a for a in agents if a.origin == "seed")
    children = [a for a in agents if a.origin == "child" and a.status == "admitted"]
    assert len(children) == 2

    def selection_runs(agent_id):
        return [r for r in store.list_task_runs(agent_id=agent_id, kind="task") if r.stage != "heldout"]

    # Stage names are the plan's: the first 2 tasks are 'small', the rest 'rest'.
    assert {r.stage for r in selection_runs(seed.id)} == {"small", "rest"}
    assert [len(selection_runs(a.id)) for a in (seed, *children)] == [4, 4, 4]  # the cap, of 6
    kinds = [e.kind for e in store.list_events(campaign.id)]
    assert "close_call" not in kinds and "evaluation_stopped" not in kinds
    for child in children:
        runs = selection_runs(child.id)
        assert child.score == pytest.approx(sum(r.status == "resolved" for r in runs) / len(runs))
        assert child.score > seed.score


def test_sequential_staging_stops_a_child_whose_first_batch_produced_no_patch(tmp_path, store, docker_client):
    """The agents' model never edits anything (`scripted:noop` in task runs), while the proposer and the
    self-modification still make real children: every child's first batch yields no patch, so it stops
    there (admission would reject it whatever its other runs did) instead of running to the cap as
    its paired test, level with a seed that resolves nothing too, would let it."""
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=7, difficulties=[1] * 7)
    campaign, status = run_campaign(
        store, docker_client, bench, name="nopatch", generations=1, children_per_generation=1, seed=3,
        heldout=1, stages=TWO_STAGES, staging="sequential", sequential_batch=2, sequential_max_tasks=4,
        time_limit_s=60, model="scripted:noop",
        models={"proposer": {"model": "scripted:rehearsal"}, "self_modify": {"model": "scripted:rehearsal"}})
    assert status == "completed"
    agents = store.list_agents(campaign.id)
    seed = next(a for a in agents if a.origin == "seed")
    (child,) = [a for a in agents if a.origin == "child"]

    def selection_runs(agent_id):
        return [r for r in store.list_task_runs(agent_id=agent_id, kind="task") if r.stage != "heldout"]

    assert len(selection_runs(seed.id)) == 4  # the seed is never stopped for want of a patch
    assert len(selection_runs(child.id)) == 2 and child.status == "rejected"
    stopped = [e for e in store.list_events(campaign.id) if e.kind == "evaluation_stopped"]
    assert [(e.payload or {}).get("no_patch") for e in stopped] == [True]
