"""`dgm run`, SIGINT, `dgm status` and `dgm resume` through the real CLI on dgm-mini."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.cli import run_dgm

pytestmark = pytest.mark.docker

CONFIG = """
[campaign]
model = "scripted:rehearsal"
generations = 2
children_per_generation = 1
workers = 2
heldout = ["minicalc__minicalc-1"]
[[campaign.stages]]
name = "small"
tasks = ["textkit__textkit-1", "textkit__textkit-4", "confini__confini-1"]
"""


def dgm(*args, archive_dir, **kw):
    return [sys.executable, "-m", "dgm", *args, "--archive-dir", str(archive_dir)]


def test_run_interrupt_status_resume(tmp_path, docker_client):
    config = tmp_path / "campaign.toml"
    config.write_text(CONFIG)
    archive_dir = tmp_path / "archive"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(dgm("run", "--config", str(config), "--name", "cli-run", archive_dir=archive_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    # Interrupt once the seed is admitted: the run must checkpoint and exit 0.
    for line in proc.stdout:
        lines.append(line)
        if "agent_admitted" in line:
            # A second runner on the same campaign is refused while this one lives.
            second = subprocess.run(dgm("resume", "cli-run", archive_dir=archive_dir), capture_output=True,
                                    text=True, env=env, timeout=120)
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=600)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-3000:]
    assert "scripted rehearsal" in output and "status interrupted" in output
    assert second.returncode == 2 and f"is running (pid {proc.pid}" in second.stderr, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1

    status = subprocess.run(dgm("status", "cli-run", archive_dir=archive_dir), capture_output=True, text=True,
                            env=env, timeout=120)
    assert status.returncode == 0 and "interrupted" in status.stdout and "[scripted]" in status.stdout
    # Why it stopped, and how to go on, on the status line itself.
    status_line = next(line for line in status.stdout.splitlines() if line.startswith("status"))
    assert "interrupted — stopped by SIGINT" in status_line and "dgm resume" in status_line, status_line

    # Two resumes started at the same instant: exactly one runs the campaign
    # (the other used to run it too, redoing runs and overspending).
    racing = [subprocess.Popen(dgm("resume", "cli-run", archive_dir=archive_dir), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in racing]
    finished = [(p.returncode, out, err) for p, (out, err) in zip(racing, outputs)]
    assert sorted(code for code, _, _ in finished) == [0, 2], [(c, o[-2000:], e[-2000:]) for c, o, e in finished]
    loser = next(err for code, _, err in finished if code == 2)
    assert len(loser.strip().splitlines()) == 1, loser
    assert "taken over by another runner" in loser or "is running" in loser, loser
    resumed = next(subprocess.CompletedProcess([], code, out, err) for code, out, err in finished if code == 0)
    assert "status completed" in resumed.stdout and "lineage of cli-run" in resumed.stdout
    assert "★ best" in resumed.stdout

    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, archive_dir) as store:
        campaign = store.get_campaign("cli-run")
        assert campaign.status == "completed"
        agents = store.list_agents(campaign.id)
        assert sorted(a.generation for a in agents) == [0, 1, 2]
        runs = store.list_task_runs(campaign_id=campaign.id, kind="task")
        keys = [(r.agent_id, r.task_id, r.stage) for r in runs]
        assert len(keys) == len(set(keys))  # nothing redone after the interrupt


def test_bad_config_key_is_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[campaign]\ngenrations = 3\n")
    r = subprocess.run(dgm("run", "--config", str(config), archive_dir=tmp_path), capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {config}: genrations: unknown key"]


def test_status_of_unknown_campaign(tmp_path):
    from dgm.archive.store import ArchiveStore

    ArchiveStore.open(None, tmp_path).close()
    r = subprocess.run(dgm("status", "nope", archive_dir=tmp_path), capture_output=True, text=True)
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr


def test_a_graceful_stop_keeps_the_heartbeat_and_a_second_signal_quits_at_once(tmp_path, docker_client):
    """First SIGINT: in-flight work finishes, and the runner keeps its heartbeat
    meanwhile, so no second runner is let in. Second SIGINT: out at once (it
    once hung for good, or rejected healthy children), campaign marked
    interrupted, nothing recorded against an agent; `dgm resume` then
    finishes the campaign and sweeps the sandboxes left behind."""
    import json
    import time

    from dgm.archive.store import ArchiveStore
    from dgm.cli.dashboard import heartbeat_age
    from dgm.llm.scripted import BUNDLED_DIR

    rehearsal = json.loads((BUNDLED_DIR / "rehearsal.json").read_text())
    slow = tmp_path / "slow-model.json"
    slow.write_text(json.dumps(dict(rehearsal, latency_s=6.0)))  # every call takes 6 s
    config = tmp_path / "campaign.toml"
    config.write_text(f"""
[campaign]
model = "scripted:{slow}"
generations = 1
children_per_generation = 1
workers = 2
[[campaign.stages]]
name = "small"
tasks = ["textkit__textkit-1", "confini__confini-1", "textkit__textkit-4"]
""")
    archive_dir = tmp_path / "archive"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(dgm("run", "--config", str(config), "--name", "twice", archive_dir=archive_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if "agent_created" in line:  # the seed: its first two task runs start now
                break
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        time.sleep(8)  # the runs in flight still wait on their 6 s model calls
        with ArchiveStore.open(None, archive_dir) as store:
            age = heartbeat_age(store.get_campaign("twice"))
        assert proc.poll() is None and age is not None and age < 7, age  # beat after the first signal
        second = subprocess.run(dgm("resume", "twice", archive_dir=archive_dir), capture_output=True, text=True,
                                env=env, timeout=120)
        assert second.returncode == 2 and "is running" in second.stderr, second.stderr
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "quit at once" in err and "Traceback" not in err, err
    with ArchiveStore.open(None, archive_dir) as store:
        campaign = store.get_campaign("twice")
        assert campaign.status == "interrupted"
        assert any(e.kind == "campaign_stopped" and "quit at once" in e.payload["reason"]
                   for e in store.list_events(campaign.id))
    slow.write_text(json.dumps(rehearsal))  # the same model, answering at once now
    # In-process through the entry point: a child interpreter would pay litellm's import again.
    resumed = run_dgm(["resume", "twice", "--archive-dir", str(archive_dir)])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    with ArchiveStore.open(None, archive_dir) as store:
        campaign = store.get_campaign("twice")
        agents = store.list_agents(campaign.id)
        assert campaign.status == "completed" and sorted(a.generation for a in agents) == [0, 1]
        assert not [a for a in agents if "internal error" in (a.rejection_reason or "")]
        runs = store.list_task_runs(campaign_id=campaign.id, kind="task")
        assert runs and not [r for r in runs if r.status == "running"]
        # Nothing the quit cut short was recorded against the agent (as a sandbox that vanished, say).
        assert not [(r.task_id, r.error) for r in runs if r.status == "error"]
        keys = [(r.agent_id, r.task_id, r.stage) for r in runs]
        assert len(keys) == len(set(keys))
    # The quitting runner's sandboxes were swept by the resume.
    assert docker_client.api.containers(all=True, filters={"label": f"dgm.owner_pid={proc.pid}"}) == []


@pytest.mark.parametrize("text, message", [
    ("budget_usd = 1.0\n[campaign]\ngenerations = 2\n", "budget_usd: outside the [campaign] table"),
    ("[campaign]\ntime_limit_s = inf\n", "time_limit_s:"),
    ("[campaign]\nbudget_usd = nan\n", "budget_usd:"),
    ("[campaign]\n[[campaign.stages]]\nname = 's'\ntasks = -3\n", "a task count must be at least 1, not -3"),
    (b"[campaign]\nname = '\xff\xfe'\n", "not UTF-8 text"),
    (None, "is a directory"),
    ("[campaign]\nbenchmark = 'nope'\n", "unknown benchmark 'nope'"),
    ("[campaign]\nmodel = 'scripted:nope'\n", "unknown scripted model"),
    ("[campaign]\n[[campaign.stages]]\nname = 's'\ntasks = ['no__such-1']\n", "no__such-1"),
])
def test_bad_config_files_are_one_line_and_write_nothing(tmp_path, text, message):
    config = tmp_path / "campaign.toml"
    if text is None:
        config.mkdir()
    elif isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)
    r = subprocess.run(dgm("run", "--config", str(config), archive_dir=tmp_path / "archive"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("option", [["--budget-usd", "-1"], ["--workers", "0"], ["--generations", "-1"],
                                    ["--max-hours", "-2"]])
def test_bad_resume_overrides_are_one_line(tmp_path, option):
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.create_campaign("stopped", "evolution", CampaignConfig().model_dump(mode="json"))
        store.set_campaign_status(campaign.id, "interrupted", finished=True)
    r = subprocess.run(dgm("resume", "stopped", *option, archive_dir=tmp_path / "archive"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    # Named as the option typed, not as a key of some file.
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith(f"error: {option[0]}: "), r.stderr


def test_a_resumes_max_hours_is_for_that_session_only(tmp_path, docker_client):
    """QA: after `resume --max-hours 0.005`, every later plain resume stopped
    after 18 s as well, and `--max-hours 0` cannot remove a limit."""
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig

    config = CampaignConfig(model="scripted:rehearsal", generations=1, children_per_generation=1, workers=1,
                            heldout=["minicalc__minicalc-1"],
                            stages=[{"name": "small", "tasks": ["textkit__textkit-1", "textkit__textkit-4"]}])
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.create_campaign("timed", "evolution", config.model_dump(mode="json"))
        store.set_campaign_status(campaign.id, "interrupted", finished=True)
    r = subprocess.run(dgm("resume", "timed", "--max-hours", "0.00001", "--generations", "2",
                           archive_dir=tmp_path / "archive"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "time limit (--max-hours) was reached" in r.stdout, r.stdout[-2000:] + r.stderr
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        kept = store.get_campaign("timed").config
    assert kept["generations"] == 2  # the other changes are the campaign's from now on
    assert kept["max_hours"] is None


def test_a_resume_cap_at_or_below_the_spend_so_far_is_refused(tmp_path):
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.create_campaign("spent", "evolution", CampaignConfig().model_dump(mode="json"),
                                         budget_usd=2.0)
        from dgm.agent_code import SEED_AGENT_DIR

        sha = store.code.commit_tree(str(SEED_AGENT_DIR), message="seed")
        agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
        store.record_llm_call(campaign_id=campaign.id, agent_id=agent.id, task_run_id=None, purpose="diagnose",
                              model="scripted:x", request_hash="h", prompt_tokens=1, completion_tokens=1,
                              cost_usd=1.5, latency_s=0.1, status="ok", error=None, artifact_id=None, scripted=True)
        store.set_campaign_status(campaign.id, "budget_exhausted", finished=True)
    r = subprocess.run(dgm("resume", "spent", "--budget-usd", "0.5", archive_dir=tmp_path / "archive"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--budget-usd 0.5 is not above what campaign spent has spent already ($1.5000)" in r.stderr
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        assert store.get_campaign("spent").budget_usd == 2.0  # unchanged


def test_a_bad_option_of_run_is_named_as_the_option_even_with_a_config_file(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text("[campaign]\ngenerations = 1\n")
    r = subprocess.run(dgm("run", "--config", str(config), "--budget-usd", "-1", archive_dir=tmp_path / "archive"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: --budget-usd: "), r.stderr
    assert "small.toml" not in r.stderr


def test_a_heldout_count_on_the_command_line_is_a_count_as_in_a_config_file(tmp_path):
    r = subprocess.run(dgm("run", "--heldout", "999", "--generations", "1", archive_dir=tmp_path / "archive"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: heldout: asks for 999 tasks but only"), r.stderr
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("failure, status", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_a_start_that_dies_before_its_runner_does_not_leave_the_campaign_running(tmp_path, monkeypatch,
                                                                                  failure, status):
    """QA: a Ctrl-C in the seconds between a resume's claim and its runner's
    start left the campaign `running` with a dead pid, and no stop event."""
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig
    from dgm.runs import campaign as runs_campaign

    def dies(store, config, campaign, hooks, benchmark=None):
        raise failure("before the runner")

    monkeypatch.setattr(runs_campaign, "run_campaign", dies)
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        campaign = store.create_campaign("early", "evolution", CampaignConfig().model_dump(mode="json"))
        with pytest.raises(failure):
            runs_campaign.launch_campaign(store, CampaignConfig(), campaign)
        assert store.get_campaign("early").status == status
        stop = [e for e in store.list_events(campaign.id) if e.kind == "campaign_stopped"]
        assert len(stop) == 1 and "stopped before its runner started" in stop[0].payload["reason"]

        # A runner that ran records its own stop: the wrapper leaves it alone.
        def runs_then_fails(store, config, campaign, hooks, benchmark=None):
            store.set_campaign_status(campaign.id, "budget_exhausted", finished=True)
            raise failure("after the runner")

        monkeypatch.setattr(runs_campaign, "run_campaign", runs_then_fails)
        other = store.create_campaign("ran", "evolution", CampaignConfig().model_dump(mode="json"))
        with pytest.raises(failure):
            runs_campaign.launch_campaign(store, CampaignConfig(), other)
        assert store.get_campaign("ran").status == "budget_exhausted"
        assert not [e for e in store.list_events(other.id) if e.kind == "campaign_stopped"]
