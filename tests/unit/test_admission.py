"""keep_better admission (dgm/evolution/admission.py): the paired test by default, the fixed allowance as an option."""

from __future__ import annotations

import pytest

from dgm.config import validate_config
from dgm.errors import UsageError
from dgm.evolution.admission import keep_better_refusal


def _runs(resolved: list[bool]) -> dict[str, list[bool]]:
    return {f"t-{i}": [ok] for i, ok in enumerate(resolved)}


def _decide(test: str, child: list[bool], parent: list[bool], **kw) -> str | None:
    return keep_better_refusal(test=test, child_score=sum(child) / len(child), parent_score=sum(parent) / len(parent),
                               child_outcomes=_runs(child), parent_outcomes=_runs(parent),
                               alpha=kw.get("alpha", 0.05), allowance=kw.get("allowance", 0.05))


# Six tasks, as DGM's first stage: the child resolves two fewer than its parent.
PARENT_6 = [True, True, True, True, False, False]
CHILD_6 = [True, True, False, False, False, False]


def test_paired_keeps_a_child_a_couple_of_tasks_behind_on_a_small_stage():
    assert _decide("paired", CHILD_6, PARENT_6) is None  # 2 discordant tasks: p = 0.5
    # The allowance refuses the same child: 0.333 < 0.667 - 0.05.
    assert "below parent's 0.667 minus allowance 0.05" in _decide("allowance", CHILD_6, PARENT_6)


def test_paired_refuses_a_child_the_test_finds_worse_and_says_why():
    parent = [True] * 10 + [False] * 2
    child = [False] * 9 + [True] + [False] * 2
    reason = _decide("paired", child, parent)
    assert reason is not None and "worse than its parent by the paired test" in reason
    assert "exact McNemar on the 12 task(s) both ran: the parent alone resolved 9, the child alone 0" in reason
    assert "p = 0.00391 < 0.05" in reason
    # At a stricter level the same evidence is not enough.
    assert _decide("paired", child, parent, alpha=0.001) is None


def test_paired_uses_only_the_tasks_both_ran():
    # The parent's extra stage (tasks the child never reached) cannot count against the child.
    parent = {**_runs(PARENT_6), **{f"x-{i}": [True] for i in range(20)}}
    assert keep_better_refusal(test="paired", child_score=1 / 3, parent_score=0.9, child_outcomes=_runs(CHILD_6),
                               parent_outcomes=parent, alpha=0.05, allowance=0.05) is None


def test_a_better_child_is_never_refused_either_way():
    assert _decide("paired", PARENT_6, CHILD_6) is None
    assert _decide("allowance", PARENT_6, CHILD_6) is None
    assert _decide("allowance", CHILD_6, PARENT_6, allowance=0.5) is None


def test_the_config_chooses_the_test_and_its_level():
    config = validate_config({}, "test")
    assert (config.admission_test, config.admission_alpha) == ("paired", 0.05)
    assert validate_config({"admission_test": "allowance"}, "test").admission_test == "allowance"
    with pytest.raises(UsageError, match="admission_test"):
        validate_config({"admission_test": "vibes"}, "campaign.toml")
    for bad in (0, 1, 1.5):
        with pytest.raises(UsageError, match="admission_alpha"):
            validate_config({"admission_alpha": bad}, "campaign.toml")


PARENT_12 = [True] * 10 + [False] * 2
CHILD_12 = [False] * 9 + [True] + [False] * 2


@pytest.mark.parametrize("test, parent_runs, child_runs, refused", [
    ("paired", PARENT_6, CHILD_6, None), ("allowance", PARENT_6, CHILD_6, "minus allowance"),
    ("paired", PARENT_12, CHILD_12, "worse than its parent by the paired test")])
def test_the_loop_admits_by_the_configured_test_on_its_selection_stages(store, test, parent_runs, child_runs, refused):
    """CampaignRunner._admit on a real archive: the runs it reads are the campaign's, on its selection stages."""
    from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
    from dgm.bench.registry import load_benchmark
    from dgm.evolution.loop import CampaignContext, CampaignRunner
    from dgm.evolution.self_modify import RejectChild

    config = validate_config({"admission": "keep_better", "admission_test": test, "heldout": 0,
                              "stages": [{"name": "small", "tasks": len(parent_runs)}]}, "test")
    campaign = store.create_campaign("admit", "evolution", config.model_dump())
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
    parent = store.add_agent(campaign.id, sha, status="admitted", origin="seed")
    child = store.add_agent(campaign.id, sha, parent_id=parent.id, generation=1, status="evaluating", origin="child")
    runner = CampaignRunner(CampaignContext(store=store, config=config, campaign=campaign,
                                            benchmark=load_benchmark("dgm-mini"), docker=None, llm=None, gateway=None,
                                            evaluator=None, executor=None))
    tasks = runner.plan.stages[0].task_ids
    for agent, outcomes in ((parent, parent_runs), (child, child_runs)):
        for task_id, ok in zip(tasks, outcomes):
            run = store.start_task_run(campaign.id, agent.id, "task", "dgm-mini", task_id, "small", "scripted:gold")
            store.finish_task_run(run.id, status="resolved" if ok else "unresolved", patch="diff --git a/x b/x\n")
    # A run of the child's on another stage (held-out, say) is not a selection task and is not read.
    extra = store.start_task_run(campaign.id, child.id, "task", "dgm-mini", tasks[0], "heldout", "scripted:gold")
    store.finish_task_run(extra.id, status="resolved", patch="diff --git a/x b/x\n")
    store.update_agent(parent.id, score=sum(parent_runs) / len(parent_runs))
    child = store.update_agent(child.id, score=sum(child_runs) / len(child_runs))
    if refused:
        with pytest.raises(RejectChild, match=refused):
            runner._admit(child)
    else:
        runner._admit(child)
        assert store.get_agent(child.id).status == "admitted"
