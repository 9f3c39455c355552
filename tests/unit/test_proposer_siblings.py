"""The proposer is told what its parent's other children were already asked to do."""

from __future__ import annotations

from dgm.evolution import diagnose as diag


def test_the_prompt_holds_each_sibling_s_proposal_and_asks_for_another():
    siblings = [{"agent": "a1", "generation": 1, "summary": "It never runs the tests.",
                 "improvement_proposal": "Tell the model to run the tests first.",
                 "implementation_plan": "p", "problem_statement": "s"},
                {"agent": "b2", "generation": 2, "summary": "Output tails are short.",
                 "improvement_proposal": "Keep " + "x" * 5000, "implementation_plan": "p", "problem_statement": "s"}]
    target = diag.Target("general")
    text = diag.build_messages("code", target, {}, siblings=siblings)[1]["content"]
    assert diag.SIBLINGS_HEADING in text and "Propose a different improvement" in text
    assert "Child a1 (generation 1)" in text and "Tell the model to run the tests first." in text
    assert "Child b2 (generation 2)" in text and "It never runs the tests." in text
    assert "characters elided" in text and len(text) < 6000  # a long proposal is clipped, not dropped
    assert text.index("# Target: general") < text.index(diag.SIBLINGS_HEADING)

    alone = diag.build_messages("code", target, {})[1]["content"]
    assert diag.SIBLINGS_HEADING not in alone
    assert diag.build_messages("code", target, {}, siblings=[]) == diag.build_messages("code", target, {})
