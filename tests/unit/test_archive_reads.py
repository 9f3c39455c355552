"""The browsing reads (dgm/archive/reads.py) against the ORM's, on one archive.

`dgm ls`, `status` and `show` read an SQLite archive through a read-only
sqlite3 connection and plain records, and any other archive through the
store's connection with the same SQL text. The single-row and list reads are
written a second time there (the store's are ORM objects, which writers
need): every read the browsing path serves is compared here, column by
column, with the ORM's, so that the two cannot drift apart silently.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dgm.archive import records
from dgm.archive.models import Agent, Campaign, Event, LLMCall, TaskRun
from dgm.archive.reads import ArchiveReads
from dgm.archive.readonly import open_for_browsing, open_sqlite_readonly
from dgm.archive.store import ArchiveStore
from dgm.errors import NotFound

RECORDS = {records.CampaignRecord: Campaign, records.AgentRecord: Agent, records.TaskRunRecord: TaskRun,
           records.LLMCallRecord: LLMCall, records.EventRecord: Event}


def _commit(store: ArchiveStore, tmp_path: Path, text: str, parent: str | None = None) -> str:
    src = tmp_path / f"src-{secrets.token_hex(3)}"
    src.mkdir()
    (src / "main.py").write_text(text)
    return store.code.commit_tree(src, parent, "agent")


def fill_archive(store: ArchiveStore, tmp_path: Path) -> dict[str, str]:
    """An evolution campaign (seed, admitted child, a child rejected before its commit, one still
    running), an eval campaign that ran the child, runs finished and not, LLM calls and events."""
    evo = store.create_campaign("evo", "evolution", {"generations": 2, "model": "scripted:gold",
                                                     "stages": [{"name": "small"}, {"name": "medium"}]},
                                seed=7, budget_usd=5.0)
    seed_sha = _commit(store, tmp_path, "print('seed')\n")
    seed = store.add_agent(evo.id, seed_sha, status="seed", origin="seed")
    child_sha = _commit(store, tmp_path, "print('child')\n", seed_sha)
    child = store.add_agent(evo.id, child_sha, parent_id=seed.id, generation=1, status="admitted", origin="child",
                            proposal={"improvement": "say child", "nested": [1, 2.5, None]},
                            diagnosis_target={"task_id": "t-1"}, meta={"note": "ünïcode"})
    store.add_agent(evo.id, seed_sha, parent_id=seed.id, generation=1, status="rejected", origin="child",
                    proposal={"improvement": "never committed"}, meta={"own_commit": False})
    store.update_agent(store.list_agents(evo.id)[-1].id, rejection_reason="sanity failed")
    pending = store.add_agent(evo.id, child_sha, parent_id=child.id, generation=2, status="evaluating",
                              origin="child", proposal=None)
    store.update_agent(seed.id, score=0.5)
    store.update_agent(child.id, score=1.0, heldout_score=0.75, stage_reached=2)
    store.update_agent(pending.id, score=1.0)  # in flight: never the best
    for agent, outcomes in ((seed, ["resolved", "unresolved"]), (child, ["resolved", "resolved", "running"])):
        for k, status in enumerate(outcomes):
            run = store.start_task_run(evo.id, agent.id, "task", "dgm-mini", f"t-{k}", "small" if k < 2 else "medium",
                                       "scripted:gold")
            store.record_llm_call(model="scripted:gold", request_hash="ab" * 32, purpose="task", task_run_id=run.id,
                                  cost_usd=0.25, prompt_tokens=10, completion_tokens=5, scripted=True)
            if status != "running":
                store.finish_task_run(run.id, status=status, patch="diff --git a/x b/x\n", duration_s=1.5,
                                      tests_status={"FAIL_TO_PASS": {"success": ["a"], "failure": []}})
    sm = store.start_task_run(evo.id, child.id, "self_modify", "dgm-mini", "t-0", "self_modify", "scripted:gold")
    store.finish_task_run(sm.id, status="ok", patch="diff --git a/main.py b/main.py\n")
    store.record_llm_call(model="gpt-x", request_hash="cd" * 32, purpose="diagnose", campaign_id=evo.id,
                          agent_id=child.id, cost_usd=1.5, status="error", error="rate limited")
    store.add_event(evo.id, "agent_admitted", {"agent": child.id, "score": 1.0}, agent_id=child.id)
    store.add_event(evo.id, "campaign_stopped", {"status": "budget_exhausted", "reason": "budget"})
    store.set_campaign_status(evo.id, "budget_exhausted", finished=True)
    ev = store.create_campaign("eval-child", "eval", {"tasks": ["t-0", "t-1"], "model": "scripted:gold"})
    run = store.start_task_run(ev.id, child.id, "task", "dgm-mini", "t-0", "heldout", "scripted:gold")
    store.record_llm_call(model="scripted:gold", request_hash="ef" * 32, purpose="task", task_run_id=run.id,
                          cost_usd=0.125, scripted=True)
    store.finish_task_run(run.id, status="error", error="boom\nsecond line")
    store.heartbeat(ev.id, 12345)
    return {"evo": evo.id, "eval": ev.id, "seed": seed.id, "child": child.id, "run": run.id}


def assert_same(record, orm) -> None:
    """Every column of the ORM object, equal (and of the same type) in the record."""
    columns = [c.key for c in type(orm).__table__.columns]
    assert list(type(record).COLUMNS) == columns
    for name in columns:
        mine, theirs = getattr(record, name), getattr(orm, name)
        assert mine == theirs and type(mine) is type(theirs), (type(orm).__name__, name, mine, theirs)
        if hasattr(theirs, "tzinfo"):
            assert mine.tzinfo == theirs.tzinfo


def assert_all_same(mine: list, theirs: list) -> None:
    assert [r.id for r in mine] == [o.id for o in theirs]
    for record, orm in zip(mine, theirs):
        assert_same(record, orm)


def assert_same_not_found(read, orm_read, ref: str) -> None:
    """Both ways refuse `ref` with the same NotFound message."""
    with pytest.raises(NotFound) as mine:
        read(ref)
    with pytest.raises(NotFound) as theirs:
        orm_read(ref)
    assert str(mine.value) == str(theirs.value)


def assert_reads_match_orm(reads: ArchiveReads, store: ArchiveStore, ids: dict[str, str]) -> None:
    """Every read of `ArchiveReads` equals the store's (ORM) answer to the same question."""
    assert_all_same(reads.list_campaigns(), store.list_campaigns())
    for ref in (ids["evo"], ids["evo"][:3], "evo", ids["eval"], "eval-child"):
        assert_same(reads.get_campaign(ref), store.get_campaign(ref))
    for bad in ("nope", "ffffffff"):
        assert_same_not_found(reads.get_campaign, store.get_campaign, bad)
    assert reads.campaign_overview() == store.campaign_overview()
    for cid in (ids["evo"], ids["eval"]):
        assert reads.campaign_spend(cid) == store.campaign_spend(cid)
        assert_all_same(reads.list_agents(cid), store.list_agents(cid))
        assert_all_same(reads.list_task_runs(campaign_id=cid), store.list_task_runs(campaign_id=cid))
        assert_all_same(reads.list_events(cid), store.list_events(cid))
        assert reads.lineage_rows(cid) == store.lineage_rows(cid)
        assert reads.rejections(cid) == store.rejections(cid)
        assert reads.stage_results(campaign_id=cid) == store.stage_results(campaign_id=cid)
        assert reads.agent_costs(campaign_id=cid) == store.agent_costs(campaign_id=cid)
        only = [a.id for a in store.list_agents(ids["evo"])][:2]
        assert reads.stage_results(campaign_id=cid, agent_ids=only) == store.stage_results(campaign_id=cid,
                                                                                          agent_ids=only)
        assert reads.agent_costs(campaign_id=cid, agent_ids=only) == store.agent_costs(campaign_id=cid, agent_ids=only)
    for agent in store.list_agents(ids["evo"]):
        for ref in (agent.id, agent.id[:10]):
            assert_same(reads.get_agent(ref), store.get_agent(ref))
        assert_all_same(reads.children_of(agent.id), store.children_of(agent.id))
        assert_all_same(reads.list_task_runs(agent_id=agent.id), store.list_task_runs(agent_id=agent.id))
        assert_all_same(reads.list_task_runs(agent_id=agent.id, kind="self_modify"),
                        store.list_task_runs(agent_id=agent.id, kind="self_modify"))
        assert_all_same(reads.list_llm_calls(agent_id=agent.id), store.list_llm_calls(agent_id=agent.id))
    for run in store.list_task_runs():
        assert_all_same(reads.list_llm_calls(run.id), store.list_llm_calls(run.id))
    for bad in ("zz", "ffffffffff"):
        assert_same_not_found(reads.get_agent, store.get_agent, bad)


@pytest.fixture
def filled(tmp_path):
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        ids = fill_archive(store, tmp_path)
        yield store, root, ids


def test_light_and_store_reads_equal_the_orm_reads(filled):
    store, root, ids = filled
    light = open_sqlite_readonly(None, root, root_given=True)
    assert light is not None, "a settled SQLite archive at the head schema is read without SQLAlchemy"
    with light:
        assert light.url == store.url and light.root == root
        assert_reads_match_orm(light, store, ids)
    through_store = ArchiveReads(store.fetch, json_as_text=True, url=store.url, root=store.root, code=store.code)
    assert_reads_match_orm(through_store, store, ids)


def test_records_have_every_column_of_the_models():
    for record, model in RECORDS.items():
        assert record.TABLE == model.__tablename__
        assert list(record.COLUMNS) == [c.key for c in model.__table__.columns]
        types = {c.key: type(c.type).__name__ for c in model.__table__.columns}
        assert {c for c, t in types.items() if t == "JSON"} == record.JSON
        assert {c for c, t in types.items() if t == "UTCDateTime"} == record.DATETIMES
        assert {c for c, t in types.items() if t == "Boolean"} == record.BOOLS


def test_browsing_an_sqlite_archive_imports_no_sqlalchemy_and_writes_nothing(filled):
    store, root, ids = filled
    store.close()
    db = root / "dgm.db"
    before = db.read_bytes()
    code = ("import sys\nfrom pathlib import Path\nfrom dgm.archive.readonly import open_for_browsing\n"
            f"r = open_for_browsing(None, Path({str(root)!r}), root_given=True)\n"
            f"r.get_agent({ids['child']!r}); r.campaign_overview(); r.close()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'git')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert db.read_bytes() == before


def test_an_archive_not_ready_to_read_as_it_is_goes_through_the_store(filled, tmp_path):
    store, root, ids = filled
    store.close()
    # An older schema: the store migrates it (a write), so the light path steps aside.
    conn = sqlite3.connect(root / "dgm.db")
    conn.execute("UPDATE alembic_version SET version_num = '0003'")
    conn.commit()
    assert open_sqlite_readonly(None, root, root_given=True) is None
    conn.execute(f"UPDATE alembic_version SET version_num = '{records.SCHEMA_HEAD}'")
    # A directory the database does not record yet: the store records it.
    conn.execute("UPDATE archive_info SET value = '/elsewhere' WHERE key = 'archive_dir'")
    conn.commit()
    conn.close()
    assert open_sqlite_readonly(None, root, root_given=True) is None
    with open_for_browsing(None, root, root_given=True) as reads:
        assert reads.get_agent(ids["child"]).id == ids["child"]
    assert open_sqlite_readonly(None, root, root_given=True) is not None
    # Not an archive at all: the store's one-line NotFound.
    with pytest.raises(NotFound):
        open_for_browsing(None, tmp_path / "nothing", root_given=True)
    # Another database or URL form: never read by sqlite3 here.
    assert open_sqlite_readonly(f"sqlite:///{root / 'dgm.db'}?mode=ro", root, root_given=True) is None
    assert open_sqlite_readonly("postgresql+psycopg://u@h/db", root, root_given=True) is None


def test_score_counts_are_the_runs_behind_each_score_in_the_agents_own_campaign(filled):
    store, root, ids = filled
    light = open_sqlite_readonly(None, root, root_given=True)
    with light:
        for reads in (light, store):
            counts = reads.score_counts(campaign_id=ids["evo"])
            # The seed: 1 of 2 resolved; the child: 2 of 2 (its run still going is not counted).
            assert counts[ids["seed"]] == {"score": (1, 2)} and counts[ids["child"]] == {"score": (2, 2)}
            # The child's later eval (another campaign, on a stage named heldout) is not behind its scores.
            assert reads.score_counts(agent_ids=[ids["child"]]) == {ids["child"]: {"score": (2, 2)}}
            assert reads.score_counts(campaign_id=ids["eval"]) == {}
            # The best agent: the child (the one at 1.0 still being evaluated cannot be best).
            assert reads.best_agents() == {ids["evo"]: ids["child"]}


def test_task_run_outcomes_list_every_finished_run_per_task(filled):
    store, root, ids = filled
    light = open_sqlite_readonly(None, root, root_given=True)
    with light:
        for reads in (light, store):
            both = reads.task_run_outcomes([ids["seed"], ids["child"]])
            assert both[ids["seed"]] == {"t-0": [True], "t-1": [False]}
            # The child's own runs, and its later eval's error on t-0: a second sample of t-0.
            assert both[ids["child"]] == {"t-0": [True, False], "t-1": [True]}
            assert reads.task_run_outcomes([ids["child"]], campaign_id=ids["evo"]) == {
                ids["child"]: {"t-0": [True], "t-1": [True]}}
            assert reads.task_run_outcomes([ids["child"]], stages=["heldout"]) == {ids["child"]: {"t-0": [False]}}
            assert reads.task_run_outcomes([ids["child"]], stages=[]) == {}
