"""`dgm eval` stopped by SIGTERM or Ctrl-C: what ran is kept, nothing is left 'running'."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dgm.archive.store import ArchiveStore

pytestmark = pytest.mark.docker

TASKS = "textkit__textkit-1,textkit__textkit-4,confini__confini-1,minicalc__minicalc-1,ledger__ledger-1"


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_stopped_eval_closes_its_campaign_and_keeps_finished_runs(tmp_path, docker_client, sig, code, word):
    archive_dir = tmp_path / "archive"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dgm", "eval", "--agent", "seed", "--tasks", TASKS, "--model", "scripted:gold",
         "--workers", "1", "--archive-dir", str(archive_dir), "--json", str(tmp_path / "results.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 300
    store = None
    try:
        while time.monotonic() < deadline:  # stop it once one task is recorded
            if (archive_dir / "dgm.db").exists():
                store = store or ArchiveStore.open(None, archive_dir)
                runs = store.list_task_runs(kind="task")
                if any(r.status != "running" for r in runs):
                    break
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == code, (out[-2000:], err[-2000:])
        assert word in err and "Traceback" not in err, err
        (campaign,) = store.list_campaigns()
        assert store.get_campaign(campaign.id).status == "interrupted"
        runs = store.list_task_runs(campaign_id=campaign.id)
        assert runs and not [r for r in runs if r.status == "running"], [(r.task_id, r.status) for r in runs]
        assert any(r.status == "resolved" for r in runs) and len(runs) < 5
        assert f"recorded in campaign {campaign.id}" in err
        assert "letting the runs in flight finish" in err  # said while it waits, not after
        # --json gets what was recorded, not nothing.
        written = json.loads((tmp_path / "results.json").read_text())
        assert {r["task_run_id"] for r in written} == {r.id for r in runs}
        assert any(r["status"] == "resolved" for r in written)
        left = docker_client.containers.list(all=True, filters={"label": f"dgm.owner_pid={proc.pid}"})
        assert left == [], [c.name for c in left]
    finally:
        if proc.poll() is None:
            proc.kill()
        if store is not None:
            store.close()
