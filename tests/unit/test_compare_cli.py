"""`dgm compare A B`: the paired test on the tasks both agents ran, through the real CLI and archive."""

from __future__ import annotations

import json

import pytest
from scipy.stats import binomtest

from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
from dgm.archive import ArchiveStore
from tests.support.cli import assert_one_line_error, run_dgm


def _record(store, campaign_id, agent_id, outcomes: dict[str, list[bool]]) -> None:
    for task_id, results in outcomes.items():
        for repeat, ok in enumerate(results):  # repeats: until runs carry a repeat index, one attempt each
            run = store.start_task_run(campaign_id, agent_id, "task", "dgm-mini", task_id, "small", "scripted:gold",
                                       attempt=repeat)
            store.finish_task_run(run.id, status="resolved" if ok else "unresolved", patch="diff --git a/x b/x\n")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare") / "archive"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("cmp", "evolution", {"generations": 1})
        sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
        ids = {name: store.add_agent(campaign.id, sha, status="admitted", origin="seed").id
               for name in ("strong", "weak", "noisy", "rep_a", "rep_b", "loner")}
        tasks = [f"t-{i:02d}" for i in range(12)]
        _record(store, campaign.id, ids["strong"], {t: [True] for t in tasks})
        _record(store, campaign.id, ids["weak"], {t: [i < 2] for i, t in enumerate(tasks)})
        # Resolves 7 of 12, the strong one's 12 less five: 5 discordant tasks, p = 0.0625.
        _record(store, campaign.id, ids["noisy"], {t: [i % 2 == 0 or i == 11] for i, t in enumerate(tasks)})
        _record(store, campaign.id, ids["rep_a"], {t: [True, True, i != 3] for i, t in enumerate(tasks)})
        _record(store, campaign.id, ids["rep_b"], {t: [i < 3, False, i == 5] for i, t in enumerate(tasks)})
        _record(store, campaign.id, ids["loner"], {"elsewhere": [True]})
    return root, ids


def test_clearly_different_agents_get_a_verdict_and_the_tasks_that_differ(archive):
    root, ids = archive
    proc = run_dgm(["compare", ids["strong"], ids["weak"][:8]], root)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "verdict  A better (level 0.05, two-sided)" in out, out
    assert "exact McNemar on the 10 task(s) only one resolved: A 10, B 0" in out
    assert f"p = {binomtest(10, 10).pvalue:.3g}" in out
    assert "1.00 [0.76–1.00] n=12" in out and "0.17 [0.05–0.45] n=12" in out
    for i in range(2, 12):
        assert f"t-{i:02d}" in out
    assert "t-00" not in out and "t-01" not in out  # both resolved those: no evidence either way
    swapped = json.loads(run_dgm(["compare", ids["weak"], ids["strong"], "--json"], root).stdout)
    assert swapped["verdict"] == "B better" and swapped["test"] == "exact McNemar"
    assert swapped["a"]["id"] == ids["weak"] and swapped["a"]["interval"]["n"] == 12
    assert [d["task_id"] for d in swapped["differing"]] == [f"t-{i:02d}" for i in range(2, 12)]
    assert {d["winner"] for d in swapped["differing"]} == {"B"}


def test_a_five_task_lead_is_no_evidence_at_005_but_is_at_010(archive):
    root, ids = archive
    out = run_dgm(["compare", ids["strong"], ids["noisy"]], root).stdout
    assert "no evidence of a difference" in out and "A 5, B 0" in out and "p = 0.0625" in out, out
    assert "A better (level 0.1" in run_dgm(["compare", ids["strong"], ids["noisy"], "--alpha", "0.1"], root).stdout
    # On the tasks given only: the two both resolve agree there.
    sub = json.loads(run_dgm(["compare", ids["strong"], ids["noisy"], "--tasks", "t-00,t-02", "--json"], root).stdout)
    assert sub["shared_tasks"] == 2 and sub["differing"] == [] and sub["p_value"] == 1.0


def test_repeats_are_compared_by_per_task_rates(archive):
    root, ids = archive
    data = json.loads(run_dgm(["compare", ids["rep_a"], ids["rep_b"], "--json"], root).stdout)
    assert data["test"] == "Wilcoxon signed-rank" and data["verdict"] == "A better"
    assert data["a"]["runs"] == data["b"]["runs"] == 36
    out = run_dgm(["compare", ids["rep_a"], ids["rep_b"]], root).stdout
    assert "Wilcoxon signed-rank on per-task resolve rates" in out and "3/3 resolved" in out, out


@pytest.mark.parametrize("args, needle", [
    (["nothere", "{strong}"], "nothere"),
    (["{strong}", "{strong}"], "the same agent"),
    (["{strong}", "{loner}"], "no task both ran"),
    (["{strong}", "{weak}", "--tasks", "t-00,nope"], "not run by both agents: nope"),
    (["{strong}", "{weak}", "--alpha", "1.5"], "--alpha"),
    (["{strong}", "{weak}", "--campaign", "no-such-campaign"], "no-such-campaign"),
])
def test_bad_input_is_one_line_and_exit_2(archive, args, needle):
    root, ids = archive
    assert_one_line_error(run_dgm([a.format(**ids) for a in ["compare", *args]], root), needle)
