"""A campaign's child process started ahead of time, for the tests that SIGKILL one.

A test starts the process that will resume a campaign while the one it will
kill still runs: with `standby` among its arguments, the process loads its code
(litellm's import alone takes seconds on two cores), then waits for a line on
stdin before it touches the archive or Docker, so that it resumes only after
the kill, as `dgm resume` would.
"""

from __future__ import annotations

import sys

FLAG = "standby"


def wait_until_told(args: list[str]) -> bool:
    """Without FLAG in `args`, True at once. With it: load the code, then wait
    for a line on stdin; False if stdin closed first (the test needed no resume)."""
    if FLAG not in args:
        return True
    from dgm.llm.litellm_loader import load_litellm

    load_litellm()
    return bool(sys.stdin.readline())
