"""Bad input that only the Docker engine can reveal (or that is checked after
it answers) still gets one clear line, exit code 2, and no archive left behind."""

from __future__ import annotations

import pytest

from tests.support.cli import assert_one_line_error
from tests.support.cli import dgm_process as dgm

pytestmark = pytest.mark.docker


def test_unreachable_archive_url(tmp_path):
    r = dgm("eval", "--agent", "seed", "--archive", "postgresql+psycopg://u:secretpw@127.0.0.1:1/x",
            "--archive-dir", str(tmp_path))
    assert_one_line_error(r, "cannot open archive")
    assert "secretpw" not in r.stderr


def test_unknown_agent_id(tmp_path):
    from dgm.archive.store import ArchiveStore

    r = dgm("eval", "--agent", "deadbeef", "--archive-dir", str(tmp_path / "archive"))
    assert_one_line_error(r, "no archive in")  # an archived agent needs an archive: none is made up
    assert not (tmp_path / "archive").exists()
    ArchiveStore.open(None, tmp_path / "archive").close()
    r = dgm("eval", "--agent", "deadbeef", "--archive-dir", str(tmp_path / "archive"))
    assert_one_line_error(r, "deadbeef")


def test_sandbox_cpus_beyond_the_engine_are_refused_before_the_campaign_starts(tmp_path):
    """QA: `cpus = 100` on a 2-CPU engine: Docker refused every sandbox, which
    dgm took for an outage and retried for 30 minutes before the campaign failed."""
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig

    config = tmp_path / "campaign.toml"
    # No waiting out "outages" should the check be missing: the test fails fast then.
    config.write_text("[campaign]\ngenerations = 0\ninfrastructure_wait_minutes = 0\n[campaign.sandbox]\ncpus = 100000\n")
    r = dgm("run", "--config", str(config), "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, "[campaign.sandbox] cpus = 100000 is more than the Docker engine's", "or less")
    assert not (tmp_path / "arch").exists()  # refused before an archive was made
    with ArchiveStore.open(None, tmp_path / "arch") as store:
        stored = {**CampaignConfig().model_dump(mode="json"), "sandbox": {"cpus": 100000}, "generations": 0,
                  "infrastructure_wait_minutes": 0}
        campaign = store.create_campaign("greedy", "evolution", stored)
        store.set_campaign_status(campaign.id, "failed", finished=True)
    r = dgm("resume", "greedy", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, "the campaign's [campaign.sandbox] cpus = 100000", "a resume keeps")
    with ArchiveStore.open(None, tmp_path / "arch") as store:
        assert store.get_campaign("greedy").status == "failed"  # not claimed, not started
