"""Shared fixtures. Services (Docker, PostgreSQL, Chromium) are real.

Under `scripts/run_tests.sh` (make test, CI) DGM_REQUIRE_SERVICES=1 is set:
a missing service then FAILS the tests that need it instead of skipping them,
so a green run really ran everything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Retries in tests should not wait like they would for a real provider.
os.environ.setdefault("DGM_LLM_BACKOFF_S", "0.05")
sys.path.insert(0, str(Path(__file__).parent))

REPO_ROOT = Path(__file__).resolve().parents[1]


def require_service(what: str, reason: str):
    if os.environ.get("DGM_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required under make test but unavailable: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


@pytest.fixture(scope="session")
def docker_client():
    from dgm.errors import DgmError
    from dgm.sandbox.docker import docker_client as make_client
    from dgm.sandbox.docker import ensure_image
    from dgm.sandbox.images import base_image_tag

    try:
        client = make_client()
        ensure_image(client, base_image_tag())
    except DgmError as exc:
        require_service("Docker and the base image", str(exc))
    return client


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    from dgm.sandbox.images import base_image_tag

    return base_image_tag()


@pytest.fixture
def store(tmp_path):
    from dgm.archive.store import ArchiveStore

    s = ArchiveStore.open(None, tmp_path / "archive")
    yield s
    s.close()


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
    from dgm.bench.evaluate import EvalSettings, Evaluator, commit_agent_dir
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway

    sha = commit_agent_dir(store, agent_dir, "test agent")
    campaign = store.create_campaign(name=campaign_name, kind="eval", config={})
    agent = store.add_agent(campaign.id, sha, status="admitted", origin="dir")
    settings = settings or EvalSettings(model=model, time_limit_s=120)
    executor = ThreadExecutor(workers)
    try:
        with Gateway(LLMClient(store)) as gateway:
            evaluator = Evaluator(store, client, gateway, bench, settings)
            return evaluator.run_tasks(agent, bench.tasks(), campaign_id=campaign.id, stage="eval",
                                       executor=executor)
    finally:
        executor.shutdown()
