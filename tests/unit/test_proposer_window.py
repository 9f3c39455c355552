"""The proposer's prompt is cut to fit its model's context window."""

from __future__ import annotations

from dgm.evolution import diagnose as diag


def _evidence():
    return {"problem_statement": "Fix the parser. " * 300, "trajectory": "step " * 4000, "patch": "+x\n" * 2000,
            "tests_status": {"FAIL_TO_PASS": {"failure": [f"test_{i}" for i in range(500)]}},
            "status": "unresolved", "error": None}


def test_a_small_window_gets_every_section_cut_to_fit_and_a_large_one_the_whole_prompt():
    code = "def agent():\n    pass\n" * 2000
    target = diag.Target("failed_task", "t-1", "run-1")
    whole = diag.build_messages(code, target, _evidence())
    whole_chars = sum(len(m["content"]) for m in whole)

    fits = diag.prompt_chars(2048, 64)  # SmolLM2's window, a 64-token reply
    assert fits == (2048 - 64 - diag.WINDOW_MARGIN_TOKENS) * diag.CHARS_PER_TOKEN
    cut = diag.build_messages(code, target, _evidence(), max_chars=fits)
    text = cut[1]["content"]
    assert whole_chars > 3 * fits  # the uncut prompt would be refused
    assert sum(len(m["content"]) for m in cut) <= fits
    # Every section is still there, shortened, and says so.
    for heading in ("# The agent's code", "## Task t-1", "## The agent's run", "## Its patch", "## Hidden test results"):
        assert heading in text
    assert text.count("characters elided") >= 4
    assert cut[0] == whole[0]  # the instructions are never cut

    roomy = diag.build_messages(code, target, _evidence(), max_chars=diag.prompt_chars(1_000_000, 4096))
    assert roomy == whole
    assert diag.prompt_chars(None, 4096) is None
