"""A campaign's spend split by role (task runs / diagnosis / self-modification) in
`dgm status`, `dgm show` (agent and campaign) and the explorer's API."""

from __future__ import annotations

import json

from dgm.archive.readonly import open_sqlite_readonly
from dgm.archive.store import ArchiveStore
from tests.support.cli import run_dgm
from tests.unit.test_archive_reads import fill_archive


def test_spend_by_role_is_summed_per_purpose_the_same_both_ways(tmp_path):
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        ids = fill_archive(store, tmp_path)
        self_modify = store.start_task_run(ids["evo"], ids["child"], "self_modify", "self", "self", "self_modify",
                                           "scripted:gold")
        store.record_llm_call(model="scripted:gold", request_hash="aa" * 32, purpose="self_modify",
                              task_run_id=self_modify.id, cost_usd=0.0625, prompt_tokens=7, completion_tokens=3)
        by_role = store.spend_by_purpose(ids["evo"])
        with open_sqlite_readonly(None, root, root_given=True) as light:
            assert light.spend_by_purpose(ids["evo"]) == by_role
    # fill_archive: five task calls at $0.25, one failed diagnosis call at $1.50; one self-modification call here.
    assert by_role == {
        "task": {"calls": 5, "prompt_tokens": 50, "completion_tokens": 25, "cost_usd": 1.25, "errors": 0, "unpriced_calls": 0},
        "diagnose": {"calls": 1, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 1.5, "errors": 1, "unpriced_calls": 0},
        "self_modify": {"calls": 1, "prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.0625, "errors": 0, "unpriced_calls": 0}}
    line = "task runs $1.2500 (5 calls) · diagnosis $1.5000 (1 call) · self-modification $0.0625 (1 call)"
    status = run_dgm(["status", "evo"], archive_dir=root)
    assert status.returncode == 0, status.stderr
    assert line in status.stdout
    shown = run_dgm(["show", "evo"], archive_dir=root)  # a campaign's name: its status, spend by role
    assert shown.returncode == 0, shown.stderr
    assert line in shown.stdout
    as_json = json.loads(run_dgm(["show", ids["evo"], "--json"], archive_dir=root).stdout)
    assert as_json["spend_by_role"] == by_role and as_json["name"] == "evo"
    agent = run_dgm(["show", ids["child"], "--no-diff"], archive_dir=root)
    assert "diagnosis $1.5000 (1 call), self-modification $0.0625 (1 call)" in agent.stdout
    missing = run_dgm(["show", "no-such-thing"], archive_dir=root)
    assert missing.returncode == 2 and "no agent" in missing.stderr.lower()


def test_the_explorer_sends_the_campaigns_spend_by_role(tmp_path):
    from dgm.web.server import ExplorerApi

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        ids = fill_archive(store, tmp_path)
        graph = json.loads(ExplorerApi(store).graph_bytes(ids["evo"]))
        assert graph["campaign"]["spend_by_role"] == store.spend_by_purpose(ids["evo"])
        assert graph["campaign"]["spend_by_role"]["diagnose"]["cost_usd"] == 1.5
        assert graph["campaign"]["budget_usd"] == 5.0


def test_the_role_split_says_unpriced_for_calls_with_no_price(tmp_path):
    # A role on an unpriced model spent an unknown amount, not $0: the split must say so.
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        ids = fill_archive(store, tmp_path)
        run = store.start_task_run(ids["evo"], ids["child"], "self_modify", "self", "self", "self_modify",
                                   "openai/smollm2")
        store.record_llm_call(model="openai/smollm2", request_hash="bb" * 32, purpose="self_modify",
                              task_run_id=run.id, cost_usd=0.0, prompt_tokens=7, completion_tokens=3, priced=False)
        assert store.spend_by_purpose(ids["evo"])["self_modify"]["unpriced_calls"] == 1
    status = run_dgm(["status", "evo"], archive_dir=root)
    assert status.returncode == 0, status.stderr
    assert "self-modification unpriced (1 call)" in status.stdout
