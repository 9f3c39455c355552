"""Shared fixtures. Services (Docker, PostgreSQL, Chromium, a local LLM server) are real.

Under `scripts/run_tests.sh` (make test, CI) DGM_REQUIRE_SERVICES=1 is set:
a missing service then FAILS the tests that need it instead of skipping them,
so a green run really ran everything.

`tests/unit/` needs no service; `tests/system/` holds every test that needs
Docker, PostgreSQL, Chromium or the local LLM server. A test is marked with
the services it uses
from the fixtures it asks for (directly or through other fixtures), so the
marker cannot be forgotten; one that reaches a service some other way (a
`dgm eval` subprocess, say) carries the marker by hand. A unit test that
turns out to need a service is refused at collection, so `make test-quick`
never quietly grows a Docker dependency.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from tests.support.harness import require_service

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Retries in tests should not wait like they would for a real provider.
os.environ.setdefault("DGM_LLM_BACKOFF_S", "0.05")

# Fixtures are data: the Polyglot exercises' own test files (leap_year_test.py, ...) are
# for the sandboxes to run against a solution, not for this suite to collect.
collect_ignore = ["fixtures"]

# Fixture name -> the service marker a test that uses it carries.
SERVICE_FIXTURES = {"docker_client": "docker", "base_image": "docker", "polyglot_image": "docker", "pg_url": "postgres",
                    "chromium_path": "browser", "browser": "browser", "local_llm": "llm"}
SERVICE_MARKERS = frozenset(SERVICE_FIXTURES.values())
UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config, items):
    misplaced = []
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in SERVICE_FIXTURES.items():
            if fixture in used:
                item.add_marker(marker)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgresql" in (params.get("db_url"), params.get("db")):  # a fixture asked for by name at run time
            item.add_marker("postgres")
        needs = sorted({m.name for m in item.iter_markers()} & SERVICE_MARKERS)
        if needs and UNIT_DIR in Path(str(item.path)).parents:
            misplaced.append(f"{item.nodeid} needs {', '.join(needs)}")
    if misplaced:
        raise pytest.UsageError("unit tests must need no service; move these to tests/system/: "
                                + "; ".join(misplaced))


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


@pytest.fixture(scope="session")
def local_llm():
    """A real LLM: llama-cpp-python's server with SmolLM2-135M on a free port,
    for the whole session (it loads in seconds but answers one request at a
    time). Its `env` points litellm's `openai/smollm2` at it."""
    from dgm.errors import DgmError
    from dgm.llm.local_server import LocalLLMServer

    try:
        server = LocalLLMServer().start()
    except DgmError as exc:
        require_service("the local LLM server", str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def polyglot_image(docker_client) -> str:
    """The Polyglot benchmark's image (`make test` builds it: `make polyglot-image`)."""
    from dgm.bench.polyglot.benchmark import image_tag
    from dgm.errors import DgmError
    from dgm.sandbox.docker import ensure_image

    try:
        ensure_image(docker_client, image_tag())
    except DgmError:
        require_service("the polyglot image", f"{image_tag()} is missing; build it with `make polyglot-image`")
    return image_tag()


@pytest.fixture
def browser():
    """A headless Chromium context (Playwright), closed after the test."""
    from tests.support.browser import browser_context

    with browser_context() as context:
        yield context


@pytest.fixture
def store(tmp_path):
    from dgm.archive.store import ArchiveStore

    s = ArchiveStore.open(None, tmp_path / "archive")
    yield s
    s.close()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database of its own, dropped afterwards."""
    import sqlalchemy as sa

    url = os.environ.get("DGM_TEST_POSTGRES_URL")
    if not url:
        require_service("PostgreSQL", "DGM_TEST_POSTGRES_URL is not set")
    base = sa.make_url(url)
    name = f"dgm_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield base.set(database=name).render_as_string(hide_password=False)
    # FORCE may meet an autovacuum worker on the fresh database, which this
    # non-superuser role may not terminate: it ends within moments, so retry.
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            break
        except sa.exc.ProgrammingError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    admin.dispose()
