"""Helpers shared by tests: where the repository is, what a missing service
means, and the sandboxes a test left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"


def require_service(what: str, reason: str):
    if os.environ.get("DGM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required under make test but unavailable: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def leftover_containers(client) -> list:
    """This process's sandboxes still present (idle network-namespace holders,
    kept for reuse until exit, do not count)."""
    from dgm.sandbox.docker import LABEL, NetnsPool, drain_removals

    drain_removals()
    # The low-level listing, labels included in one call: the high-level one inspects each
    # container afterwards and fails when another process's sandbox is removed meanwhile.
    return [c for c in client.api.containers(all=True, filters={"label": LABEL})
            if (c.get("Labels") or {}).get("dgm.owner_pid") == str(os.getpid())
            and (c.get("Labels") or {}).get(NetnsPool.ROLE_LABEL) != "netns"]


def evaluate(store, client, bench, agent_dir: Path, model: str, *, workers: int = 2, settings=None,
             campaign_name: str = "test-eval"):
    """Evaluate an agent dir on a benchmark the way `dgm eval` does; returns the runs."""
    from dgm.agent_code import commit_agent_dir
    from dgm.bench.evaluate import EvalSettings
    from dgm.runs.eval import evaluate_tasks

    sha = commit_agent_dir(store, agent_dir, "test agent")
    campaign = store.create_campaign(name=campaign_name, kind="eval", config={})
    agent = store.add_agent(campaign.id, sha, status="admitted", origin="dir")
    settings = settings or EvalSettings(model=model, time_limit_s=120)
    return evaluate_tasks(store, client, bench, agent, bench.tasks(), campaign_id=campaign.id, settings=settings,
                          workers=workers)
