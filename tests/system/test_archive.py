"""ArchiveStore against real databases: SQLite in a temp dir, and PostgreSQL when
DGM_TEST_POSTGRES_URL points at a server whose role may CREATE DATABASE (each
test gets a fresh database, dropped afterwards)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.orm import Session

from dgm.archive import ArchiveStore, llm_request_hash
from dgm.archive.models import Base, TaskRun
from dgm.archive.database import MIGRATIONS_DIR, SCHEMA_HEAD
from dgm.errors import ArchiveUnavailable, NotFound, UsageError

from tests.support.harness import FIXTURES, REPO_ROOT



# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive' / 'dgm.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url, tmp_path):
    s = ArchiveStore.open(db_url, root=tmp_path / "archive")
    yield s
    s.close()


def commit_code(store: ArchiveStore, tmp_path: Path, text: str = "print('hi')\n", parent: str | None = None) -> str:
    src = tmp_path / f"src-{secrets.token_hex(3)}"
    src.mkdir()
    (src / "main.py").write_text(text)
    return store.code.commit_tree(src, parent, "agent")


@pytest.fixture
def seeded(store, tmp_path):
    """A campaign with one seed agent."""
    campaign = store.create_campaign("c1", "evolution", {"generations": 3}, seed=7, budget_usd=10.0)
    agent = store.add_agent(campaign.id, commit_code(store, tmp_path), status="seed", origin="seed")
    return store, campaign, agent


# -- schema and opening -------------------------------------------------------------


def test_migrations_match_models(db_url, tmp_path):
    store = ArchiveStore.open(db_url, root=tmp_path / "archive")
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diffs == []
        assert MigrationContext.configure(conn).get_current_heads() == (SCHEMA_HEAD,)
    store.close()


def _downgrade(store: ArchiveStore, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = store.engine.dialect.name == "sqlite"
    with store.engine.connect() as conn:
        if sqlite:  # as the upgrade does: SQLite copies tables that other rows point at
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def test_migrations_downgrade_and_upgrade_again(db_url, tmp_path):
    store = ArchiveStore.open(db_url, root=tmp_path / "archive")
    _downgrade(store, "base")
    assert set(sa.inspect(store.engine).get_table_names()) == {"alembic_version"}
    store.close()
    root = tmp_path / "archive"
    if db_url.startswith("postgresql"):
        # An emptied database is a new archive: the old directory is another archive's now.
        with pytest.raises(UsageError, match="already holds another archive's agent code"):
            ArchiveStore.open(db_url, root=root)
        root = tmp_path / "archive2"
    store = ArchiveStore.open(db_url, root=root)  # migrates back to head
    assert store.list_campaigns() == []
    store.close()


def test_an_archive_at_the_first_schema_keeps_its_runs_and_gets_the_per_campaign_key(db_url, tmp_path):
    """0001 -> head on a populated archive: rows kept, and the same agent's
    key may now be run again by another campaign (not by the same one)."""
    store = ArchiveStore.open(db_url, root=tmp_path / "archive")
    first = store.create_campaign("c1", "evolution", {})
    agent = store.add_agent(first.id, commit_code(store, tmp_path), status="seed", origin="seed")
    key = dict(agent_id=agent.id, kind="task", benchmark="mini", task_id="t1", stage="eval", model="m")
    started = store.start_task_run(first.id, **key)
    # Rows of other tables that point at the run: SQLite's copy-and-drop of task_runs must not trip over them.
    store.record_llm_call(model="m", request_hash="h", purpose="task", campaign_id=first.id, agent_id=agent.id,
                          task_run_id=started.id, cost_usd=0.25)
    store.add_event(first.id, "note", {"run": started.id}, agent_id=agent.id)
    done = store.finish_task_run(started.id, status="resolved", patch="p")
    _downgrade(store, "0001")  # the data as an archive of the first schema holds it
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == ("0001",)
    store.close()

    store = ArchiveStore.open(db_url, root=tmp_path / "archive")  # migrates to head
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (SCHEMA_HEAD,)
    assert store.get_task_run(done.id).status == "resolved" and store.get_task_run(done.id).patch == "p"
    assert [c.task_run_id for c in store.list_llm_calls(done.id)] == [done.id]
    assert store.campaign_spend(first.id) == pytest.approx(0.25)
    with store.engine.connect() as conn:  # foreign keys are enforced again after the migration
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert store.start_task_run(first.id, **key).id == done.id
    later = store.create_campaign("c2", "eval", {})
    fresh = store.start_task_run(later.id, **key)
    assert fresh.id != done.id and fresh.status == "running" and fresh.campaign_id == later.id
    with store.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(TaskRun).values(
            id="dup", campaign_id=later.id, status="running", cost_usd=0.0, attempt=0,
            created_at=done.created_at, **{k: v for k, v in key.items()}))
    store.close()


def test_default_url_is_sqlite_in_root_with_wal(tmp_path):
    root = tmp_path / "nested" / "archive"
    store = ArchiveStore.open(root=root)
    assert store.url == f"sqlite:///{root.resolve() / 'dgm.db'}"
    assert (root / "dgm.db").exists() and (root / "agents.git" / "HEAD").exists() and (root / "artifacts").is_dir()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.close()
    t0 = time.monotonic()
    ArchiveStore.open(root=root).close()  # already at head: no migration work
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:s3cret@127.0.0.1:1/x",
        "sqlite:////nonexistent-dir-for-dgm-tests/sub/dgm.db",
        "nosuchdialect://u:s3cret@host/db",
    ],
)
def test_unreachable_archive_fails_fast_with_one_line(url, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ArchiveUnavailable) as info:
        ArchiveStore.open(url, root=tmp_path / "archive")
    message = str(info.value)
    assert time.monotonic() - t0 < 10
    assert message.startswith("cannot open archive ")
    assert "\n" not in message and "s3cret" not in message and len(message) < 400


def test_a_database_that_stops_answering_mid_run_is_archive_unavailable(pg_url, tmp_path):
    """What a campaign meets when PostgreSQL dies under it: one line, no password
    (the loop then stops the campaign for a resume; see test_engine_failure.py)."""
    from tests.support.relay import Relay

    url = sa.make_url(pg_url)
    relay = Relay((url.host, url.port or 5432))
    s = ArchiveStore.open(url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False),
                          root=tmp_path / "archive")
    try:
        campaign = s.create_campaign("c", "evolution", {})
        relay.cut()
        t0 = time.monotonic()
        with pytest.raises(ArchiveUnavailable) as info:
            s.set_campaign_status(campaign.id, "running")
        assert time.monotonic() - t0 < 15
        message = str(info.value)
        assert message.startswith("archive postgresql") and "\n" not in message
        assert f":{url.password}@" not in message and ":***@" in message
        relay.restore()
        assert s.set_campaign_status(campaign.id, "running").status == "running"  # and back, once it answers
    finally:
        s.close()


def test_a_write_lock_held_by_another_program_is_named_as_such(tmp_path, monkeypatch):
    """An sqlite3 shell left in a transaction blocks every dgm write; after the
    busy timeout the error says who holds what, not just "database is locked"."""
    import sqlite3

    from dgm.archive import database

    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 1)
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        shell = sqlite3.connect(tmp_path / "archive" / "dgm.db", isolation_level=None)
        shell.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(ArchiveUnavailable, match="another process has held its write lock for over 1 s"):
                store.create_campaign("blocked", "eval", {})
        finally:
            shell.execute("ROLLBACK")
            shell.close()
        assert store.create_campaign("after", "eval", {}).name == "after"


def test_an_archive_in_a_directory_that_cannot_be_written_says_why_it_cannot_be_opened(tmp_path, monkeypatch):
    """SQLite in WAL mode writes -wal and -shm files even to read: a read-only
    copy or mount fails with "unable to open database file", which alone says
    nothing. (A real read-only mount needs privileges; the directory's
    writability is what the message depends on.)"""
    import sqlite3

    from dgm.archive import database

    (tmp_path / "dgm.db").touch()
    failure = sa.exc.OperationalError("PRAGMA journal_mode", {}, sqlite3.OperationalError("unable to open database file"))
    url = f"sqlite:///{tmp_path / 'dgm.db'}"
    assert database._open_failure(url, failure) == "unable to open database file"  # writable: nothing to add
    monkeypatch.setattr(database.os, "access", lambda path, mode: Path(path) != tmp_path.resolve())
    assert database._open_failure(url, failure) == (
        f"unable to open database file: its directory {tmp_path.resolve()} is not writable, and SQLite must create "
        "its -wal and -shm files there even to read (copy the archive somewhere writable)")


def test_root_that_cannot_be_created_is_archive_unavailable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ArchiveUnavailable, match="cannot create directory"):
        ArchiveStore.open(root=blocker / "archive")


def test_archive_from_newer_dgm_is_refused(tmp_path):
    store = ArchiveStore.open(root=tmp_path / "archive")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.close()
    with pytest.raises(ArchiveUnavailable, match="9999.*newer"):
        ArchiveStore.open(root=tmp_path / "archive")


# -- campaigns ------------------------------------------------------------------


def test_campaigns(store):
    c = store.create_campaign("night-1", "evolution", {"k": [1, 2]}, seed=3, budget_usd=5.0)
    assert (c.status, c.spent_usd, c.config, c.pid) == ("running", 0.0, {"k": [1, 2]}, os.getpid())
    assert len(c.id) == 8 and c.created_at.tzinfo is not None
    with pytest.raises(UsageError, match="already exists"):
        store.create_campaign("night-1", "eval", {})
    with pytest.raises(ValueError, match="campaign kind"):
        store.create_campaign("x", "bogus", {})
    assert store.get_campaign("night-1").id == c.id
    assert store.get_campaign(c.id).name == "night-1"
    assert store.get_campaign(c.id[:4]).id == c.id
    with pytest.raises(NotFound, match=r"no campaign with id or name 'nope' \(recent: night-1\)"):
        store.get_campaign("nope")
    done = store.set_campaign_status(c.id, "completed", finished=True)
    assert done.status == "completed" and done.finished_at is not None
    assert store.set_campaign_status(c.id, "running").finished_at is None  # resumed
    before = store.get_campaign(c.id).heartbeat_at
    store.heartbeat(c.id, pid=4242)
    after = store.get_campaign(c.id)
    assert after.pid == 4242 and after.heartbeat_at >= before
    with pytest.raises(NotFound):
        store.heartbeat("nope")
    # Two resumes read the campaign, then both try to become its runner: one does.
    store.set_campaign_status(c.id, "interrupted", finished=True)
    seen_by_first, seen_by_second = store.get_campaign(c.id), store.get_campaign(c.id)
    assert store.claim_runner(c.id, seen_by_first)
    assert not store.claim_runner(c.id, seen_by_second)
    claimed = store.get_campaign(c.id)
    assert claimed.status == "running" and claimed.finished_at is None and claimed.pid == os.getpid()
    assert store.claim_runner(c.id, claimed)  # read after the claim: its own view still matches
    assert [x.name for x in store.list_campaigns()] == ["night-1"]


def test_datetimes_come_back_timezone_aware_utc(seeded):
    store, campaign, agent = seeded
    for value in (store.get_campaign(campaign.id).created_at, store.get_agent(agent.id).updated_at):
        assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0
        assert value.astimezone(timezone.utc) == value


# -- agents -------------------------------------------------------------------------


def test_agents(seeded, tmp_path):
    store, campaign, seed = seeded
    assert seed.commit_sha == store.code.resolve(seed.commit_sha) and len(seed.commit_sha) == 40
    child_sha = commit_code(store, tmp_path, "print('child')\n", parent=seed.commit_sha)
    child = store.add_agent(campaign.id, child_sha, parent_id=seed.id, generation=1, status="pending",
                            origin="child", proposal={"why": "x"}, agent_id="aa01")
    store.add_agent(campaign.id, child_sha, parent_id=seed.id, generation=1, status="admitted",
                    origin="child", agent_id="aa02")
    assert store.get_agent("aa01").proposal == {"why": "x"}
    with pytest.raises(UsageError, match="ambiguous: aa01, aa02"):
        store.get_agent("aa")
    with pytest.raises(NotFound, match="no agent with id 'ffff'"):
        store.get_agent("ffff")
    with pytest.raises(UsageError, match="already exists"):
        store.add_agent(campaign.id, child_sha, status="pending", origin="child", agent_id="aa01")
    with pytest.raises(NotFound, match="parent agent"):
        store.add_agent(campaign.id, child_sha, parent_id="nope", status="pending", origin="child")
    with pytest.raises(NotFound, match="no commit"):
        store.add_agent(campaign.id, "0" * 40, status="pending", origin="child")

    updated = store.update_agent(child.id, status="admitted", score=0.5, stage_reached=2, meta={"n": 1})
    assert (updated.status, updated.score, updated.stage_reached, updated.meta) == ("admitted", 0.5, 2, {"n": 1})
    assert updated.updated_at >= child.updated_at
    with pytest.raises(TypeError, match="cannot set id"):
        store.update_agent(child.id, id="zz")
    with pytest.raises(ValueError):
        store.update_agent(child.id, status="alive")

    assert [a.id for a in store.list_agents(campaign.id)] == [seed.id, "aa01", "aa02"]
    assert [a.id for a in store.list_agents(campaign.id, statuses=["admitted"])] == ["aa01", "aa02"]
    assert store.children_counts(campaign.id) == {seed.id: 2}
    assert store.children_counts(campaign.id, statuses=None) == {seed.id: 2}
    assert [a.id for a in store.ancestors("aa01")] == ["aa01", seed.id]


# -- task runs --------------------------------------------------------------------


def test_task_run_lifecycle_and_resume(seeded):
    store, campaign, agent = seeded
    key = dict(campaign_id=campaign.id, agent_id=agent.id, kind="task", benchmark="mini", task_id="t1", stage="eval", model="m")
    run = store.start_task_run(**key)
    assert run.status == "running" and not run.finished
    store.record_llm_call(model="m", request_hash="h0", purpose="task", task_run_id=run.id, cost_usd=0.5)

    # The process dies here. On resume the same key gives the same row, reset.
    again = store.start_task_run(**key)
    assert again.id == run.id and again.status == "running"
    assert store.list_llm_calls(run.id) == []  # the crashed attempt's call is no longer part of the run...
    assert store.campaign_spend(campaign.id) == pytest.approx(0.5)  # ...but stays billed
    assert [e.kind for e in store.list_events(campaign.id)] == ["task_run_reset"]

    store.record_llm_call(model="m", request_hash="h1", purpose="task", task_run_id=run.id, cost_usd=0.25)
    store.record_llm_call(model="m", request_hash="h2", purpose="task", task_run_id=run.id, cost_usd=0.125)
    tests = {"FAIL_TO_PASS": {"success": ["a"], "failure": []}, "PASS_TO_PASS": {"success": [], "failure": []}}
    done = store.finish_task_run(run.id, status="resolved", patch="diff", tests_status=tests, agent_duration_s=1.5)
    assert done.cost_usd == pytest.approx(0.375) and done.finished_at is not None and done.duration_s >= 0
    # A call that was in flight when the run ended is billed to it when it lands.
    store.record_llm_call(model="m", request_hash="h3", purpose="task", task_run_id=run.id, cost_usd=0.0625)
    assert store.get_task_run(run.id).cost_usd == pytest.approx(sum(c.cost_usd for c in store.list_llm_calls(run.id)))
    assert store.get_task_run(run.id).cost_usd == pytest.approx(0.4375)
    assert store.get_task_run(run.id[:6]).tests_status == tests

    # A resumed campaign gets the finished run back and must not redo it.
    resumed = store.start_task_run(**key)
    assert resumed.id == run.id and resumed.finished and resumed.resolved
    # A deliberate second attempt is a separate run.
    second = store.start_task_run(**key, attempt=1)
    assert second.id != run.id and second.attempt == 1
    assert len(store.list_task_runs(agent_id=agent.id)) == 2
    assert [r.id for r in store.list_task_runs(campaign_id=campaign.id, status="resolved")] == [run.id]
    with pytest.raises(ValueError):
        store.finish_task_run(second.id, status="running")
    with pytest.raises(NotFound):
        store.get_task_run("nope")
    with pytest.raises(NotFound, match="no campaign"):
        store.start_task_run(**{**key, "campaign_id": "nope", "task_id": "t2"})

    # Another campaign (a later `dgm eval` of the same agent) never gets this
    # campaign's runs back, finished or cut short: it runs its own.
    later = store.create_campaign("c2", "eval", {})
    fresh = store.start_task_run(**{**key, "campaign_id": later.id})
    assert fresh.id not in (run.id, second.id) and fresh.status == "running" and fresh.campaign_id == later.id
    cut = store.start_task_run(**{**key, "task_id": "t3"})
    elsewhere = store.start_task_run(**{**key, "task_id": "t3", "campaign_id": later.id})
    assert elsewhere.id != cut.id and store.get_task_run(cut.id).campaign_id == campaign.id


def test_text_holding_nul_is_kept_with_a_replacement_on_both_backends(seeded):
    """PostgreSQL refuses NUL in text columns; a diff, an error from inside a
    sandbox, a model's reply or a name from a config file can hold one. Such a
    write must not fail (it killed a campaign), and both backends keep the same."""
    store, campaign, agent = seeded
    key = (campaign.id, agent.id, "task", "mini", "t\x00id", "st\x00age", "m\x00")
    run = store.start_task_run(*key)
    done = store.finish_task_run(run.id, status="error", patch="+a\x00b\n", error="diff.err: \x00")
    assert (done.patch, done.error, done.task_id, done.stage, done.model) == \
        ("+a\ufffdb\n", "diff.err: \ufffd", "t\ufffdid", "st\ufffdage", "m\ufffd")
    assert store.start_task_run(*key).id == run.id  # looked up by the same key: the same run, finished
    # A model's text in a commit message (a proposal's summary): git takes no NUL in an argument.
    sha = store.code.commit_tree(str(FIXTURES / "scripted"), message="generation 1: a\x00b")
    assert len(sha) == 40
    call = store.record_llm_call(model="m", request_hash="h", purpose="task", task_run_id=run.id, status="error",
                                 error="upstream said \x00")
    assert store.get_llm_call(call.id).error == "upstream said \ufffd"
    assert store.update_agent(agent.id, rejection_reason="does not compile: \x00").rejection_reason == \
        "does not compile: \ufffd"
    named = store.create_campaign("from\x00toml", "eval", {})
    assert store.get_campaign(named.id).name == "from\ufffdtoml"


def test_only_an_import_campaign_is_ever_discarded(seeded, tmp_path):
    """A failed import is removed whole (it cannot be resumed, and would hold its
    name); nothing else is, whatever the caller asks."""
    store, campaign, agent = seeded
    with pytest.raises(UsageError, match="only a failed import is discarded"):
        store.discard_import(campaign.id)
    assert store.get_agent(agent.id).campaign_id == campaign.id
    half = store.create_campaign("half-import", "import", {})
    imported = store.add_agent(half.id, commit_code(store, tmp_path), status="admitted", origin="import")
    run = store.start_task_run(half.id, imported.id, "task", "mini", "t1", "dgm", "dgm-import")
    store.add_event(half.id, "dgm_generation", {"generation": 0})
    store.discard_import(half.id)
    for lookup, ident in ((store.get_campaign, half.id), (store.get_agent, imported.id), (store.get_task_run, run.id)):
        with pytest.raises(NotFound):
            lookup(ident)
    assert store.list_events(half.id) == []
    assert store.create_campaign("half-import", "import", {}).name == "half-import"  # its name is free again


def test_every_agent_keeps_its_code_from_garbage_collection(seeded, tmp_path):
    """add_agent, update_agent and bulk_add_agents (imports) each leave
    refs/agents/<id> on the agent's commit, so `git gc` keeps all of them."""
    store, campaign, seed = seeded
    one = commit_code(store, tmp_path, "print('one')\n")
    child = store.add_agent(campaign.id, one, parent_id=seed.id, generation=1, status="evaluating", origin="child")
    moved = commit_code(store, tmp_path, "print('moved')\n", parent=one)
    store.update_agent(child.id, commit_sha=moved)
    bulk = commit_code(store, tmp_path, "print('imported')\n")
    store.bulk_add_agents([{"id": "20250101_000001_000001", "campaign_id": campaign.id, "commit_sha": bulk,
                            "status": "admitted", "origin": "import"}])
    refs = {aid: store.code.get_ref(aid) for aid in (seed.id, child.id, "20250101_000001_000001")}
    assert refs == {seed.id: seed.commit_sha, child.id: moved, "20250101_000001_000001": bulk}
    # A row that cannot be written leaves no ref behind.
    with pytest.raises(NotFound):
        store.add_agent("no-such-campaign", one, status="seed", origin="seed", agent_id="orphan1")
    assert store.code.get_ref("orphan1") is None
    # An agent id that exists keeps its own ref.
    with pytest.raises(UsageError):
        store.add_agent(campaign.id, one, status="seed", origin="seed", agent_id=child.id)
    assert store.code.get_ref(child.id) == moved

    subprocess.run(["git", "--git-dir", str(store.code.path), "gc", "--prune=now", "--quiet"], check=True,
                   env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"})
    for sha in (seed.commit_sha, moved, bulk):
        assert store.code.read_file(sha, "main.py")


def test_agent_task_outcomes_use_latest_finished_run(seeded, tmp_path):
    store, campaign, a = seeded
    b = store.add_agent(campaign.id, a.commit_sha, parent_id=a.id, generation=1, status="admitted", origin="child")

    def run(agent, task, status, stage="eval", kind="task", attempt=0):
        r = store.start_task_run(campaign.id, agent.id, kind, "mini", task, stage, "m", attempt=attempt)
        if status != "running":
            store.finish_task_run(r.id, status=status)

    run(a, "t1", "unresolved")
    run(a, "t1", "resolved", attempt=1)  # later attempt wins
    run(a, "t2", "resolved")
    run(a, "t2", "error", attempt=1)
    run(a, "t3", "running")  # unfinished: no outcome yet
    run(b, "t1", "resolved", stage="heldout")
    run(b, "t9", "ok", kind="self_modify")  # not a task run
    assert store.agent_task_outcomes(campaign.id) == {a.id: {"t1": True, "t2": False}, b.id: {"t1": True}}
    assert store.agent_task_outcomes(campaign.id, stages=["eval"]) == {a.id: {"t1": True, "t2": False}}


# -- LLM calls, events, stats -----------------------------------------------------------


def test_llm_calls_sequence_and_spend(seeded):
    store, campaign, agent = seeded
    run = store.start_task_run(campaign.id, agent.id, "task", "mini", "t1", "eval", "m")
    assert store.next_llm_seq(run.id) == 0
    h = llm_request_hash("m", [{"role": "user", "content": "hi"}], {"temperature": 0})
    assert h == llm_request_hash("m", [{"content": "hi", "role": "user"}], {"temperature": 0})  # key order
    assert h != llm_request_hash("m", [{"role": "user", "content": "hi!"}], {"temperature": 0})
    calls = [store.record_llm_call(model="m", request_hash=h, purpose="task", task_run_id=run.id, cost_usd=0.1,
                                   prompt_tokens=10, completion_tokens=5, scripted=True) for _ in range(3)]
    assert [c.seq for c in calls] == [0, 1, 2] and store.next_llm_seq(run.id) == 3
    assert all(c.campaign_id == campaign.id and c.agent_id == agent.id for c in calls)
    # Calls outside a task run are sequenced per agent + purpose.
    d0 = store.record_llm_call(model="big", request_hash="x", purpose="diagnose", campaign_id=campaign.id,
                               agent_id=agent.id, cost_usd=1.0, status="error", error="timeout")
    assert d0.seq == 0 and store.next_llm_seq(agent_id=agent.id, purpose="diagnose") == 1
    with pytest.raises(TypeError):
        store.next_llm_seq()
    assert [c.id for c in store.list_llm_calls(run.id)] == [c.id for c in calls]
    assert len(store.list_llm_calls(request_hash=h)) == 3
    assert store.get_llm_call(d0.id).error == "timeout"
    assert store.campaign_spend(campaign.id) == pytest.approx(1.3)
    assert store.get_campaign(campaign.id).spent_usd == pytest.approx(1.3)


def test_events(seeded):
    store, campaign, agent = seeded
    first = store.add_event(campaign.id, "selected", {"parents": [agent.id]}, agent_id=agent.id)
    store.add_event(campaign.id, "admitted", {"score": 0.4})
    store.add_event(None, "note", {})
    assert [e.kind for e in store.list_events(campaign.id)] == ["selected", "admitted"]
    assert [e.kind for e in store.list_events(campaign.id, since_id=first.id)] == ["admitted"]
    assert [e.kind for e in store.list_events(kinds=["note"])] == ["note"]
    assert store.list_events(campaign.id)[0].payload == {"parents": [agent.id]}


def test_generation_stats_upsert(seeded):
    store, campaign, _ = seeded
    common = dict(archive_size=1, mean_score=0.1, coverage=1, coverage_fraction=0.1, spent_usd=0.5)
    store.record_generation_stat(campaign.id, 0, best_score=0.1, **common)
    store.record_generation_stat(campaign.id, 1, best_score=0.2, mean_jaccard_distance=0.3, **common)
    store.record_generation_stat(campaign.id, 0, best_score=0.15, **common)  # recomputed after a resume
    stats = store.list_generation_stats(campaign.id)
    assert [(s.generation, s.best_score, s.mean_jaccard_distance) for s in stats] == [(0, 0.15, None), (1, 0.2, 0.3)]


# -- crash safety -------------------------------------------------------------------


class _FailFlushOnce:
    """Once armed, makes the next ORM flush raise after its SQL ran: a crash mid-transaction."""

    def __init__(self):
        self.armed = False

    def __call__(self, session, flush_context):
        if self.armed:
            self.armed = False
            raise RuntimeError("simulated crash")


@pytest.fixture
def fail_next_flush():
    hook = _FailFlushOnce()
    event.listen(Session, "after_flush", hook)
    yield hook
    event.remove(Session, "after_flush", hook)


def test_failed_llm_call_transaction_writes_nothing(seeded, fail_next_flush):
    store, campaign, agent = seeded
    run = store.start_task_run(campaign.id, agent.id, "task", "mini", "t1", "eval", "m")
    fail_next_flush.armed = True
    with pytest.raises(RuntimeError, match="simulated crash"):
        # The campaign's spent_usd UPDATE has already run when the insert's flush fails.
        store.record_llm_call(model="m", request_hash="h", purpose="task", task_run_id=run.id, cost_usd=2.0)
    assert store.list_llm_calls(run.id) == []
    assert store.get_campaign(campaign.id).spent_usd == 0.0 and store.campaign_spend(campaign.id) == 0.0


def test_failed_task_run_finish_writes_nothing(seeded, fail_next_flush):
    store, campaign, agent = seeded
    run = store.start_task_run(campaign.id, agent.id, "task", "mini", "t1", "eval", "m")
    fail_next_flush.armed = True
    with pytest.raises(RuntimeError):
        store.finish_task_run(run.id, status="resolved", patch="p")
    again = store.get_task_run(run.id)
    assert (again.status, again.patch, again.finished_at) == ("running", None, None)


def test_failed_add_agent_writes_nothing(seeded, fail_next_flush):
    store, campaign, agent = seeded
    fail_next_flush.armed = True
    with pytest.raises(RuntimeError):
        store.add_agent(campaign.id, agent.commit_sha, parent_id=agent.id, status="pending", origin="child")
    assert [a.id for a in store.list_agents(campaign.id)] == [agent.id]


# -- concurrency ----------------------------------------------------------------------


def test_concurrent_writers_in_threads(seeded):
    store, campaign, agent = seeded
    n_threads, n_calls = 4, 15
    shared_ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            shared = store.start_task_run(campaign.id, agent.id, "task", "mini", "shared", "eval", "m")
            shared_ids.append(shared.id)
            run = store.start_task_run(campaign.id, agent.id, "task", "mini", f"t{i}", "eval", "m")
            for _ in range(n_calls):
                store.record_llm_call(model="m", request_hash="h", purpose="task", task_run_id=run.id, cost_usd=0.01)
                store.add_event(campaign.id, "tick", {"thread": i})
            store.finish_task_run(run.id, status="resolved")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(shared_ids)) == 1  # one row for one key, whoever won
    runs = store.list_task_runs(campaign_id=campaign.id)
    assert len(runs) == n_threads + 1
    for run in runs:
        if run.task_id != "shared":
            assert [c.seq for c in store.list_llm_calls(run.id)] == list(range(n_calls))
            assert run.cost_usd == pytest.approx(n_calls * 0.01)
    total = n_threads * n_calls * 0.01
    assert store.campaign_spend(campaign.id) == pytest.approx(total)
    assert store.get_campaign(campaign.id).spent_usd == pytest.approx(total)
    assert len(store.list_events(campaign.id, kinds=["tick"])) == n_threads * n_calls


_PROCESS_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from dgm.archive import ArchiveStore
    url, root, go, me = sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5]
    while not go.exists():
        time.sleep(0.005)
    store = ArchiveStore.open(url, root=root)  # both race the initial migration
    while True:
        try:
            campaign = store.get_campaign("shared")
            break
        except Exception:
            try:
                campaign = store.create_campaign("shared", "eval", {})
                break
            except Exception:
                continue
    src = Path(root) / f"src-{me}"
    src.mkdir(exist_ok=True)
    (src / "main.py").write_text("print(1)\\n")
    sha = store.code.commit_tree(src, None, "seed")  # same tree in both: same sha
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed", agent_id=f"ab{me}")
    store.code.set_ref(agent.id, sha)
    for i in range(20):
        shared = store.start_task_run(campaign.id, agent.id, "task", "mini", f"t{i}", "eval", "m")
        store.record_llm_call(model="m", request_hash="h", purpose="task", task_run_id=shared.id, cost_usd=0.01)
        store.finish_task_run(shared.id, status="resolved")
    print(sha)
    """
)


def test_concurrent_writers_in_processes(db_url, tmp_path):
    root = tmp_path / "archive"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _PROCESS_WORKER, str(REPO_ROOT), db_url, str(root), str(go), str(i)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    time.sleep(0.3)  # let both interpreters start, then release them together
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert outs[0][0] == outs[1][0]
    store = ArchiveStore.open(db_url, root=root)
    campaign = store.get_campaign("shared")
    assert len(store.list_task_runs(campaign_id=campaign.id)) == 40
    assert store.campaign_spend(campaign.id) == pytest.approx(0.4)
    assert store.get_campaign(campaign.id).spent_usd == pytest.approx(0.4)
    assert store.code.get_ref("ab0") == store.code.get_ref("ab1") == outs[0][0].strip()
    store.close()


def test_schema_head_constant_matches_alembic():
    """The fast path that skips Alembic on an up-to-date archive must know the real head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from dgm.archive.database import MIGRATIONS_DIR, SCHEMA_HEAD

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


# -- opening an archive that is not there -------------------------------------


def test_reading_commands_refuse_a_missing_archive_and_create_nothing(tmp_path, db_url):
    """Browsing from the wrong directory (or with a mistyped URL) must say so,
    not show an empty archive it just made: that looks like a lost campaign."""
    from dgm.errors import NotFound

    root = tmp_path / "elsewhere" / "archive"
    missing_url = db_url if db_url.startswith("postgresql") else f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(NotFound, match="no archive"):
        ArchiveStore.open(missing_url, root=root, create=False)
    with pytest.raises(NotFound, match=r"no archive in .*elsewhere/archive.*--archive-dir"):
        ArchiveStore.open(None, root=root, create=False)
    assert not root.exists() and not (tmp_path / "nope.db").exists()
    if db_url.startswith("postgresql"):  # nothing was created in the empty database either
        engine = sa.create_engine(db_url)
        try:
            assert sa.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()
    # Once something made it, the reading commands open it.
    ArchiveStore.open(missing_url, root=root).close()
    ArchiveStore.open(missing_url, root=root, create=False).close()


def test_dgm_ls_in_a_directory_without_an_archive_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for var in ("DGM_ARCHIVE", "DGM_ARCHIVE_DIR"):
        env.pop(var, None)
    for args in (["ls"], ["status"], ["show", "abc"]):
        r = subprocess.run([sys.executable, "-m", "dgm", *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: no archive in ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


# -- which directory holds a database's code and artifacts --------------------


def _run_dgm(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for var in ("DGM_ARCHIVE", "DGM_ARCHIVE_DIR"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "dgm", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_database_url_finds_its_own_code_and_refuses_another_archives(db_url, tmp_path):
    """With --archive URL, the code and artifacts are where the archive
    recorded them, wherever dgm runs; a directory holding another archive's
    code, or a fresh one, is refused in one line rather than used (a resume
    once rejected children over artifacts "missing" from the wrong one)."""
    home = tmp_path / "home" / "archive"
    (tmp_path / "archive").mkdir()  # where the SQLite variant's database file is
    store = ArchiveStore.open(db_url, root=home)
    campaign = store.create_campaign("c1", "evolution", {})
    seed = store.add_agent(campaign.id, commit_code(store, tmp_path), status="seed", origin="seed")
    child_sha = commit_code(store, tmp_path, "print('child')\n", parent=seed.commit_sha)
    store.add_agent(campaign.id, child_sha, status="admitted", origin="child", parent_id=seed.id)
    artifact = store.artifacts.put("kept")
    store.close()
    # Named by nobody: the recorded directory, from anywhere.
    elsewhere = ArchiveStore.open(db_url, root="archive", root_given=False, create=False)
    assert elsewhere.root.resolve() == home.resolve() and elsewhere.artifacts.get(artifact) == b"kept"
    elsewhere.close()
    # Another archive's directory: refused, whether named or not.
    other = ArchiveStore.open(None, root=tmp_path / "other" / "archive")
    other.add_agent(other.create_campaign("o", "evolution", {}).id, commit_code(other, tmp_path), status="seed",
                    origin="seed")
    other.close()
    with pytest.raises(UsageError, match=r"holds the agent code and artifacts of another archive.*"
                                         + str(home.resolve())):
        ArchiveStore.open(db_url, root=tmp_path / "other" / "archive")
    # A fresh directory for an archive that has agents: refused, and nothing made there.
    with pytest.raises(UsageError, match=f"this archive's agent code and artifacts are in {home.resolve()}, not "):
        ArchiveStore.open(db_url, root=tmp_path / "fresh" / "archive")
    assert not (tmp_path / "fresh" / "archive" / "archive-id").exists()
    with pytest.raises(NotFound, match=f"this archive's is {home.resolve()}"):
        ArchiveStore.open(db_url, root=tmp_path / "fresh2" / "archive", create=False)
    # Moved: found where it is now, and remembered.
    moved = tmp_path / "moved" / "archive"
    moved.parent.mkdir()
    home.rename(moved)
    ArchiveStore.open(db_url, root=moved).close()
    again = ArchiveStore.open(db_url, root="archive", root_given=False)
    assert again.root.resolve() == moved.resolve()
    again.close()


def test_an_archive_from_before_directories_were_recorded_is_checked_against_its_commits(tmp_path):
    """An archive made before the directory was recorded has no id yet: the
    first directory it is opened with must hold its agents' commits."""
    url = f"sqlite:///{tmp_path / 'db' / 'dgm.db'}"
    (tmp_path / "db").mkdir()
    home = tmp_path / "home" / "archive"
    store = ArchiveStore.open(url, root=home)
    campaign = store.create_campaign("c1", "evolution", {})
    seed = store.add_agent(campaign.id, commit_code(store, tmp_path), status="seed", origin="seed")
    store.add_agent(campaign.id, commit_code(store, tmp_path, "print(2)\n", parent=seed.commit_sha),
                    status="admitted", origin="child", parent_id=seed.id)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM archive_info")
    store.close()
    (home / "archive-id").unlink()
    # A directory with the same seed but not the child: not this archive's.
    other = ArchiveStore.open(None, root=tmp_path / "other" / "archive")
    other.code.commit_tree(tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("src-")),
                           None, "agent")
    other.close()
    with pytest.raises(UsageError, match="does not hold this archive's agent code"):
        ArchiveStore.open(url, root=tmp_path / "other" / "archive")
    ArchiveStore.open(url, root=home).close()  # its own: marked and recorded
    assert (home / "archive-id").read_text().strip()
    found = ArchiveStore.open(url, root="archive", root_given=False)
    assert found.root.resolve() == home.resolve()
    found.close()


def test_commands_run_anywhere_against_a_database_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = ArchiveStore.open(url, root=tmp_path / "here" / "archive")
    campaign = store.create_campaign("night", "evolution", {})
    store.add_agent(campaign.id, commit_code(store, tmp_path), status="seed", origin="seed")
    store.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run_dgm(["ls", "--archive", url], elsewhere)
    assert result.returncode == 0 and "night" in result.stdout, result.stderr
    assert not (elsewhere / "archive").exists()
    bad = _run_dgm(["ls", "--archive", url, "--archive-dir", str(tmp_path / "typo")], elsewhere)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert f"this archive's is {(tmp_path / 'here' / 'archive').resolve()}" in bad.stderr


def test_an_archives_directory_is_never_shared_split_or_locked_by_a_damaged_mark(tmp_path):
    """QA's cases: a second database given another archive's directory; a
    fresh directory for an archive whose recorded one exists (what racing
    first openings did); a damaged archive-id file."""
    home = tmp_path / "A"
    ArchiveStore.open(None, home).close()  # A belongs to A/dgm.db
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(UsageError, match=r"already holds another archive's agent code and artifacts \(id "):
        ArchiveStore.open(other, root=home)
    # The other database gets its own directory; then a fresh one is refused while that one exists.
    ArchiveStore.open(other, root=tmp_path / "X1").close()
    with pytest.raises(UsageError, match=f"this archive's agent code and artifacts are in {tmp_path / 'X1'}, not"):
        ArchiveStore.open(other, root=tmp_path / "X2")
    assert not (tmp_path / "X2" / "archive-id").exists()
    # A damaged mark says what to do, rather than "File exists" or naming the same directory twice.
    for damage in ("", "garbage\n"):
        (home / "archive-id").write_text(damage)
        with pytest.raises(UsageError, match=r"archive-id is damaged .*: remove it"):
            ArchiveStore.open(None, home)
    (home / "archive-id").unlink()
    ArchiveStore.open(None, home).close()  # re-marked after its (no) agents were checked
    assert len((home / "archive-id").read_text().strip()) == 32


def test_racing_first_openings_of_one_database_agree_on_one_directory(tmp_path):
    """Three processes open a new database at once, two with directory X1 and
    one with X2: exactly one directory ends up recorded and marked, and the
    opening that lost is refused rather than writing elsewhere."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    script = textwrap.dedent(f"""
        import sys
        from dgm.archive import ArchiveStore
        from dgm.errors import UsageError
        try:
            ArchiveStore.open({url!r}, root=sys.argv[1]).close()
            print("ok")
        except UsageError as exc:
            print("refused", exc)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / d)], stdout=subprocess.PIPE, text=True)
             for d in ("X1", "X2", "X1")]
    outcomes = [p.communicate(timeout=120)[0].strip() for p in procs]
    with ArchiveStore.open(url, root="archive", root_given=False) as store:
        recorded = store.root.resolve()
    marked = {d for d in ("X1", "X2") if (tmp_path / d / "archive-id").exists()}
    assert marked == {recorded.name}, (outcomes, marked, recorded)
    loser = "X2" if recorded.name == "X1" else "X1"
    assert all(o == "ok" for o, d in zip(outcomes, ("X1", "X2", "X1")) if d == recorded.name), outcomes
    assert all(o.startswith("refused") for o, d in zip(outcomes, ("X1", "X2", "X1")) if d == loser), outcomes
    assert not (tmp_path / loser).exists()  # a loser leaves no empty directory behind


def test_browsing_reads_equal_the_orm_reads_on_every_backend(db_url, tmp_path):
    """`dgm ls / status / show` read any archive with reads.py's SQL text (through the
    store's connection where sqlite3 cannot): the same answers as the ORM's."""
    from dgm.archive.readonly import open_for_browsing
    from tests.unit.test_archive_reads import assert_reads_match_orm, fill_archive

    root = tmp_path / "archive"
    with ArchiveStore.open(db_url, root=root) as store:
        ids = fill_archive(store, tmp_path)
        with open_for_browsing(db_url, root, root_given=True) as reads:
            assert reads.url == store.url
            assert_reads_match_orm(reads, store, ids)


# -- repeats and twins -----------------------------------------------------------------


def test_each_repeat_is_a_run_of_its_own_recorded_once_and_rates_count_them_all(seeded):
    store, campaign, agent = seeded
    key = dict(campaign_id=campaign.id, agent_id=agent.id, kind="task", benchmark="mini", stage="eval", model="m")
    first = store.start_task_run(**key, task_id="t1")
    assert first.repeat == 0
    store.finish_task_run(first.id, status="resolved")
    second = store.start_task_run(**key, task_id="t1", repeat=1)
    assert second.id != first.id and second.repeat == 1 and second.status == "running"
    # A crash during repeat 1: a resume hands back the same row, reset; repeat 0 stays finished.
    assert store.start_task_run(**key, task_id="t1", repeat=1).id == second.id
    assert store.start_task_run(**key, task_id="t1").id == first.id
    store.finish_task_run(second.id, status="unresolved")
    assert store.start_task_run(**key, task_id="t1", repeat=1).finished
    for repeat in (0, 1):
        store.finish_task_run(store.start_task_run(**key, task_id="t2", repeat=repeat).id, status="resolved")
    store.start_task_run(**key, task_id="t3")  # unfinished: no sample

    assert store.task_resolve_rates(campaign.id) == {agent.id: {"t1": (1, 2), "t2": (2, 2)}}
    assert store.task_resolve_rates(campaign.id, stages=["other"]) == {}
    # Resolved in at least half of its runs.
    assert store.agent_task_outcomes(campaign.id) == {agent.id: {"t1": True, "t2": True}}
    assert len(store.list_task_runs(campaign_id=campaign.id)) == 5
    with store.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(TaskRun).values(id="dup", status="running", cost_usd=0.0, attempt=0, repeat=1,
                                               created_at=first.created_at, task_id="t1", **key))


def test_an_archive_before_repeats_and_twins_keeps_its_runs_as_repeat_zero_and_resumes(db_url, tmp_path):
    store = ArchiveStore.open(db_url, root=tmp_path / "archive")
    campaign = store.create_campaign("old", "evolution", {})
    agent = store.add_agent(campaign.id, commit_code(store, tmp_path), status="seed", origin="seed")
    key = dict(agent_id=agent.id, kind="task", benchmark="mini", task_id="t1", stage="eval", model="m")
    done = store.finish_task_run(store.start_task_run(campaign.id, **key).id, status="resolved")
    left_running = store.start_task_run(campaign.id, **{**key, "task_id": "t2"})
    _downgrade(store, "0004")
    with store.engine.connect() as conn:
        assert "repeat" not in {c["name"] for c in sa.inspect(conn).get_columns("task_runs")}
        assert "twin_of" not in {c["name"] for c in sa.inspect(conn).get_columns("agents")}
    store.close()

    store = ArchiveStore.open(db_url, root=tmp_path / "archive")  # migrates to head
    assert store.get_task_run(done.id).repeat == 0 and store.get_agent(agent.id).twin_of is None
    assert store.start_task_run(campaign.id, **key).id == done.id  # finished: not redone
    again = store.start_task_run(campaign.id, **{**key, "task_id": "t2"})
    assert again.id == left_running.id and again.status == "running"  # the crashed one, redone
    assert store.start_task_run(campaign.id, **key, repeat=1).id != done.id
    store.close()


def _child_with_code(store, campaign, parent, code_sha, slot, generation=1, evaluate_twins=False):
    child = store.add_agent(campaign.id, parent.commit_sha, parent_id=parent.id, generation=generation,
                            status="self_modifying", origin="child", meta={"slot": slot, "own_commit": False})
    return store.record_child_code(child.id, code_sha, {"slot": slot, "own_commit": True},
                                   evaluate_twins=evaluate_twins)


def test_a_child_with_the_code_tree_of_an_earlier_agent_is_recorded_as_its_twin(seeded, tmp_path):
    store, campaign, seed = seeded
    seed_tree = store.code.trees([seed.commit_sha])[seed.commit_sha]
    changed = commit_code(store, tmp_path, "print('better')\n", parent=seed.commit_sha)
    original = _child_with_code(store, campaign, seed, changed, slot=0)
    assert original.status == "evaluating" and original.twin_of is None
    assert store.get_agent(original.id).meta["own_commit"] is True

    # Another commit (another message, time, parent) of the same tree is the same code.
    again = commit_code(store, tmp_path, "print('better')\n", parent=None)
    assert again != changed
    twin = _child_with_code(store, campaign, seed, again, slot=1)
    assert twin.status == "twin" and twin.twin_of == original.id and twin.commit_sha == again
    assert store.code.get_ref(twin.id) == again

    # A later twin names the first agent with that code, never another twin.
    third = _child_with_code(store, campaign, original, changed, slot=0, generation=2)
    assert third.twin_of == original.id
    # With evaluate_twins it is still recorded as a twin, and evaluated.
    sampled = _child_with_code(store, campaign, seed, changed, slot=1, generation=2, evaluate_twins=True)
    assert sampled.status == "evaluating" and sampled.twin_of == original.id
    # Different code is no twin; nor is a child whose own code was never committed (its commit is its parent's).
    other = _child_with_code(store, campaign, seed, commit_code(store, tmp_path, "print('other')\n"), slot=0,
                             generation=3)
    assert other.twin_of is None and other.status == "evaluating"
    pending = store.add_agent(campaign.id, changed, parent_id=seed.id, generation=4, status="pending",
                              origin="child", meta={"slot": 0, "own_commit": False})
    assert store.get_agent(pending.id).twin_of is None

    # The seed's own tree: a child changing nothing in the end is the seed's twin.
    assert _child_with_code(store, campaign, seed, commit_code(store, tmp_path), slot=1, generation=3).twin_of == seed.id
    assert store.code.trees([seed.commit_sha]) == {seed.commit_sha: seed_tree}

    assert store.twins_of(original.id) == [twin.id, third.id, sampled.id]
    rows = {r.id: r for r in store.lineage_rows(campaign.id)}
    assert rows[twin.id].twin_of == original.id and rows[original.id].twin_of is None
