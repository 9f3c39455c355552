"""Grade a patch: fresh sandbox, apply patch + hidden tests, run, parse, decide.

Parsing and the FAIL_TO_PASS / PASS_TO_PASS decision are the `swebench`
package's own, so a dgm-mini verdict means the same as a SWE-bench one.
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
from dataclasses import dataclass, field

from dgm.bench.task import Benchmark, Task
from dgm.sandbox.docker import STAGE_MOUNT, Sandbox, SandboxLimits, shell_under_timeout
from dgm.sandbox.testbed import REPO_PATH, REPO_TMPFS_MB, SETUP_FAILED, SETUP_FAILED_EXIT, unpack_repo_command

# Mark the test run in the log, so apply noise is not parsed. Each grading
# adds a fresh nonce to them: the code under test (the agent's) cannot print
# a marker of its own to cut the log short and hide its failures.
TEST_START = ">>>>> DGM START TEST OUTPUT"
TEST_END = ">>>>> DGM END TEST OUTPUT"
APPLY_FAILED = ">>>>> DGM PATCH APPLY FAILED"
# Printed after TEST_END with the clock read just before and just after the
# test command: the test command's own time, without the sandbox's start, the
# unpacking and the patching (those are the harness's).
TEST_CLOCK = ">>>>> DGM TEST CLOCK"
_TEST_CLOCK_LINE = re.compile(rf"^{re.escape(TEST_CLOCK)} (?:([0-9a-f]+) )?(\d+\.\d+) (\d+\.\d+)$", re.MULTILINE)
# Where a task's own eval script goes (Task.extra["eval_script"], e.g. SWE-bench's:
# it resets the test files and applies the test patch itself).
EVAL_SCRIPT_NAME = "eval.sh"
EVAL_SCRIPT_PATH = f"{STAGE_MOUNT}/{EVAL_SCRIPT_NAME}"
REPO_TAR_PATH = f"{STAGE_MOUNT}/repo.tar"


@dataclass
class GradeResult:
    resolved: bool
    tests_status: dict
    log: str
    test_duration_s: float
    patch_applied: bool = True
    error: str | None = None
    status_map: dict = field(default_factory=dict)


def own_test_time(log: str, whole_run_s: float, nonce: str | None = None) -> float:
    """The test command's own time from the clock line the grading script
    prints last (with `nonce`: the line carrying it); the whole sandbox run's
    time when there is none (the tests timed out, the script never got
    there, or a bash older than 5 has no EPOCHREALTIME)."""
    clocks = [(t0, t1) for n, t0, t1 in _TEST_CLOCK_LINE.findall(log) if nonce is None or n == nonce]
    if not clocks:
        return whole_run_s
    t0, t1 = (float(x) for x in clocks[-1])  # the last: a test's own output cannot come after it
    return min(max(t1 - t0, 0.0), whole_run_s)


def log_parser(task: Task):
    """The swebench parser for this task's test framework."""
    if task.log_parser == "pytest":
        from swebench.harness.log_parsers.python import parse_log_pytest

        return parse_log_pytest
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER

    return MAP_REPO_TO_PARSER[task.repo]


def decide(task: Task, status_map: dict[str, str]) -> tuple[bool, dict]:
    """swebench's verdict: resolved iff every FAIL_TO_PASS and PASS_TO_PASS passes."""
    from swebench.harness.constants import FAIL_TO_PASS, PASS_TO_PASS, ResolvedStatus
    from swebench.harness.grading import get_eval_tests_report, get_resolution_status

    report = get_eval_tests_report(
        status_map, {FAIL_TO_PASS: list(task.FAIL_TO_PASS), PASS_TO_PASS: list(task.PASS_TO_PASS)}
    )
    return get_resolution_status(report) == ResolvedStatus.FULL.value, report


def _apply_script(path: str) -> str:
    # SWE-bench's own fallbacks: git apply, then patch with fuzz.
    return (f"git apply --verbose {path} >/dev/null 2>&1 || "
            f"patch --batch --fuzz=5 -p1 -i {path} || {{ echo '{APPLY_FAILED}'; exit 1; }}")


def eval_script_test_log(log: str) -> str:
    """The test run inside an eval script's log, between swebench's markers
    (the script also prints `git show`, install output, ...)."""
    from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

    if START_TEST_OUTPUT in log:
        log = log.split(START_TEST_OUTPUT, 1)[1]
        # xtrace prints the marker as `+ : '>>>>> Start Test Output'`: drop that line's rest.
        log = log.split("\n", 1)[1] if "\n" in log else ""
    if END_TEST_OUTPUT in log:
        log = log.rsplit(END_TEST_OUTPUT, 1)[0]
    return log


def patched_files(diff: str) -> list[str]:
    """Paths a unified git diff touches (its `b/` side)."""
    files = []
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            parts = line.split(" b/", 1)
            if len(parts) == 2:
                files.append(parts[1].strip())
    return files


def prepare_grading_sandbox(docker_client, benchmark: Benchmark, task: Task, *,
                            limits: SandboxLimits | None = None, labels: dict[str, str] | None = None) -> Sandbox:
    """A fresh sandbox (started by `grade`) for the task: its image, the
    benchmark's grading limits, and the repository at base_commit staged
    (unpacked by the grading script) unless the image holds it.
    """
    repo = benchmark.repo_tar(task)
    limits = limits or SandboxLimits()
    if hasattr(benchmark, "grading_limits"):
        limits = benchmark.grading_limits(limits)
    box = Sandbox(docker_client, benchmark.image(task), limits=limits, labels=labels, name_hint="grade",
                  stage=True, tmpfs={REPO_PATH: REPO_TMPFS_MB} if repo is not None else None)
    if repo is not None:
        box.stage_file("repo.tar", repo)
    return box


def grade(
    docker_client,
    benchmark: Benchmark,
    task: Task,
    patch: str,
    *,
    limits: SandboxLimits | None = None,
    test_timeout_s: float = 900.0,
    labels: dict[str, str] | None = None,
    sandbox: Sandbox | None = None,
) -> GradeResult:
    """Run the hidden tests against `patch` in a fresh sandbox.

    `sandbox` stands in for the one `prepare_grading_sandbox` would make
    (tests pass one that answers with a recorded log); it is removed here.
    """
    box = sandbox or prepare_grading_sandbox(docker_client, benchmark, task, limits=limits, labels=labels)
    try:
        eval_script = task.extra.get("eval_script")
        model_patch = box.stage_file("model.patch", patch or "")
        tests_patch = box.stage_file("tests.patch", task.test_patch)
        if eval_script is not None:
            box.stage_file(EVAL_SCRIPT_NAME, eval_script, mode=0o755)
        script = "set -u\n"
        script += f"if [ -f {REPO_TAR_PATH} ]; then {unpack_repo_command(REPO_TAR_PATH)}; fi\n"
        script += f"cd {REPO_PATH}\n"
        if (patch or "").strip():
            script += _apply_script(model_patch) + "\n"
        if eval_script is None:
            # Like SWE-bench: the hidden tests win over whatever the agent did to
            # the same files, so reset those files to the base commit first.
            for path in patched_files(task.test_patch):
                quoted = shlex.quote(path)
                script += f"git checkout {task.base_commit} -- {quoted} 2>/dev/null || rm -f {quoted}\n"
            script += _apply_script(tests_patch) + "\n"
        nonce = secrets.token_hex(8)
        start, end = f"{TEST_START} {nonce}", f"{TEST_END} {nonce}"
        script += (f"echo '{start}'\n__dgm_t0=${{EPOCHREALTIME:-}}\n{task.test_command}\n"
                   f"__dgm_t1=${{EPOCHREALTIME:-}}\necho '{end}'\necho \"{TEST_CLOCK} {nonce} $__dgm_t0 $__dgm_t1\"\n")
        started = time.monotonic()
        result = box.run(shell_under_timeout(script, test_timeout_s), timeout_s=test_timeout_s, output_cap=5_000_000)
        duration = own_test_time(result.output, time.monotonic() - started, nonce)
        log = result.output
        if result.exit_code == SETUP_FAILED_EXIT and SETUP_FAILED in log:
            return GradeResult(False, {}, log, duration, error="could not unpack the repository for grading")
        if APPLY_FAILED in log:
            return GradeResult(False, {}, log, duration, patch_applied=False, error="patch does not apply")
        if result.timed_out:
            return GradeResult(False, {}, log, duration, error=f"tests timed out after {test_timeout_s:.0f} s")
        test_log = log.split(start, 1)[-1].split(end, 1)[0]
        if eval_script is not None:
            test_log = eval_script_test_log(test_log)
        status_map = log_parser(task)(test_log, None)
        resolved, report = decide(task, status_map)
        return GradeResult(resolved, report, log, duration, status_map=status_map)
    finally:
        box.remove(wait=False)
