"""`dgm run`, SIGINT, `dgm status` and `dgm resume` through the real CLI on dgm-mini."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

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
    assert "interrupted — SIGINT" in status_line and "dgm resume" in status_line, status_line

    resumed = subprocess.run(dgm("resume", "cli-run", archive_dir=archive_dir), capture_output=True, text=True,
                             env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
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
    r = subprocess.run(dgm("status", "nope", archive_dir=tmp_path), capture_output=True, text=True)
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr
