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

from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.bench.tests_status import TEST_CONFIG_KEPT_OUT_KEY
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
# Files that configure the test run rather than the code under test: pytest
# loads plugins and hooks from them (a conftest.py can rewrite every report to
# "passed"; an ini file can add `-p plugin`). They are the benchmark's, like the
# hidden tests: whatever an agent's patch adds, changes or removes among them is
# put back as it was before grading, so editing them buys an agent nothing. No
# gold or test patch of SWE-bench Lite or dgm-mini touches one of these names,
# so verdicts agree with SWE-bench's own harness on every reference patch.
TEST_CONFIG_NAMES = ("conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini",
                     "setup.cfg", "pyproject.toml", "sitecustomize.py", "usercustomize.py", "*.pth")
# Printed (with the grading's nonce) for each such file the patch touched.
TEST_CONFIG_KEPT_OUT = ">>>>> DGM TEST CONFIG KEPT OUT"
# Printed after TEST_END with the test command's exit status, for benchmarks
# whose verdict is that status (Polyglot) rather than per-test results.
TEST_EXIT = ">>>>> DGM TEST EXIT"
_TEST_EXIT_LINE = re.compile(rf"^{re.escape(TEST_EXIT)} ([0-9a-f]+) (\d+)$", re.MULTILINE)


@dataclass
class GradeResult:
    resolved: bool
    tests_status: dict
    log: str
    test_duration_s: float
    patch_applied: bool = True
    error: str | None = None
    status_map: dict = field(default_factory=dict)
    test_config_kept_out: list[str] = field(default_factory=list)
    """Test configuration files the patch added, changed or removed, put back before the tests ran."""

    def archived_tests_status(self) -> dict:
        """What a task run keeps: swebench's report, and under `test_config_kept_out`
        the test configuration files the patch touched, when there were any."""
        if not self.test_config_kept_out:
            return self.tests_status
        return {**self.tests_status, TEST_CONFIG_KEPT_OUT_KEY: list(self.test_config_kept_out)}


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


def test_exit_code(log: str, nonce: str) -> int | None:
    """The test command's exit status from the last line carrying the nonce; None when it never finished."""
    codes = [int(code) for n, code in _TEST_EXIT_LINE.findall(log) if n == nonce]
    return codes[-1] if codes else None


def keep_benchmark_files_script(task: Task) -> str:
    """Shell that undoes what the agent's patch did to files the benchmark owns
    besides the hidden tests (Task.extra): `protected_files` (build files)
    go back to the base commit, and new files matching `foreign_test_globs`
    (a test file or runner configuration of the agent's own) are removed."""
    script = ""
    globs = task.extra.get("foreign_test_globs") or ()
    if globs:
        specs = " ".join(shlex.quote(g) for g in globs)
        script += f"git ls-files -z --others -- {specs} | xargs -0 -r rm -rf --\n"
    for path in task.extra.get("protected_files") or ():
        quoted = shlex.quote(path)
        script += f"git checkout {task.base_commit} -- {quoted} 2>/dev/null || rm -f {quoted}\n"
    return script


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


def eval_script_test_log(log: str) -> str | None:
    """The test run inside an eval script's log, between swebench's markers
    (the script also prints `git show`, install output, ...); None when a
    marker is missing: the tests did not run as the script says, and, as in
    swebench's `get_logs_eval`, nothing counts as passed."""
    from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

    if START_TEST_OUTPUT not in log or END_TEST_OUTPUT not in log:
        return None
    log = log.split(START_TEST_OUTPUT, 1)[1]
    # xtrace prints the marker as `+ : '>>>>> Start Test Output'`: drop that line's rest.
    log = log.split("\n", 1)[1] if "\n" in log else ""
    return log.rsplit(END_TEST_OUTPUT, 1)[0]


def parse_test_log(task: Task, log: str, *, eval_script: bool) -> dict[str, str]:
    """Test name -> status, as swebench's harness reads its eval logs."""
    parse = log_parser(task)
    if not eval_script:
        return parse(log, None)
    section = eval_script_test_log(log)
    # Unlike swebench's `get_logs_eval`, an empty section is not followed by a
    # parse of the whole log: outside the markers is `git diff` output, where
    # an agent's patch could print "PASSED test_x" lines of its own.
    return {} if section is None else parse(section, None)


def _test_config_find() -> str:
    names = " -o ".join(f"-name {shlex.quote(n)}" for n in TEST_CONFIG_NAMES)
    return f"find . -path ./.git -prune -o \\( -type f -o -type l \\) \\( {names} \\) -print0"


def may_touch_test_config(patch: str) -> bool:
    """Whether `patch` can add, change or remove a test configuration file.

    A patch can only touch files it names, and git and GNU patch write
    names literally (git's quoting escapes only special and non-ASCII
    characters, none of which the protected names contain). A patch naming
    none of them is applied as is, without the copy-and-restore steps."""
    return any(name.lstrip("*") in patch for name in TEST_CONFIG_NAMES)


def keep_test_config_script(apply: str, nonce: str) -> str:
    """Shell that runs `apply` (the agent's patch) with the repository's test
    configuration kept as it was: a copy is taken outside the repository
    first (the patch cannot know where), then files of those names that the
    patch created are removed and the copy is put back over the rest. Each
    file the patch touched is named on a line of its own."""
    find = _test_config_find()
    kept = f"{TEST_CONFIG_KEPT_OUT} {nonce}"
    failed = f"{{ echo '{SETUP_FAILED}'; exit {SETUP_FAILED_EXIT}; }}"
    return (
        f"__dgm_tc=$(mktemp -d) || {failed}\n"
        f"{find} >\"$__dgm_tc/list\"\n"
        "tar -c -f \"$__dgm_tc/orig.tar\" --null --no-recursion -T \"$__dgm_tc/list\" && "
        f"mkdir \"$__dgm_tc/orig\" && tar -x --no-same-owner -f \"$__dgm_tc/orig.tar\" -C \"$__dgm_tc/orig\" || {failed}\n"
        f"{apply}\n"
        # Created by the patch: removed.
        "while IFS= read -r -d '' f; do "
        "if [ ! -e \"$__dgm_tc/orig/$f\" ] && [ ! -L \"$__dgm_tc/orig/$f\" ]; then "
        f"rm -f -- \"$f\"; printf '%s %s\\n' '{kept}' \"${{f#./}}\"; fi; done < <({find})\n"
        # Changed or removed by the patch: named, then the copy goes back over all of them.
        "while IFS= read -r -d '' f; do "
        f"cmp -s -- \"$__dgm_tc/orig/$f\" \"$f\" || printf '%s %s\\n' '{kept}' \"${{f#./}}\"; "
        "done <\"$__dgm_tc/list\"\n"
        f"tar -x --unlink-first --no-same-owner -f \"$__dgm_tc/orig.tar\" || {failed}\n"
    )


def kept_out_files(log: str, nonce: str) -> list[str]:
    """The test configuration files `keep_test_config_script` put back, from its lines in `log`."""
    prefix = f"{TEST_CONFIG_KEPT_OUT} {nonce} "
    return sorted({line[len(prefix):] for line in log.splitlines() if line.startswith(prefix)})


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
    limits = benchmark.grading_limits(limits or SandboxLimits())
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
        nonce = secrets.token_hex(8)
        script = "set -u\n"
        script += f"if [ -f {REPO_TAR_PATH} ]; then {unpack_repo_command(REPO_TAR_PATH)}; fi\n"
        script += f"cd {REPO_PATH}\n"
        if (patch or "").strip():
            apply = _apply_script(model_patch)
            script += keep_test_config_script(apply, nonce) if may_touch_test_config(patch) else apply + "\n"
        script += keep_benchmark_files_script(task)
        if eval_script is None:
            # Like SWE-bench: the hidden tests win over whatever the agent did to
            # the same files, so reset those files to the base commit first.
            for path in patched_files(task.test_patch):
                quoted = shlex.quote(path)
                script += f"git checkout {task.base_commit} -- {quoted} 2>/dev/null || rm -f {quoted}\n"
            script += _apply_script(tests_patch) + "\n"
        start, end = f"{TEST_START} {nonce}", f"{TEST_END} {nonce}"
        script += (f"echo '{start}'\n__dgm_t0=${{EPOCHREALTIME:-}}\n{task.test_command}\n__dgm_rc=$?\n"
                   f"__dgm_t1=${{EPOCHREALTIME:-}}\necho '{end}'\necho \"{TEST_CLOCK} {nonce} $__dgm_t0 $__dgm_t1\"\n"
                   f"echo \"{TEST_EXIT} {nonce} $__dgm_rc\"\n")
        started = time.monotonic()
        result = box.run(shell_under_timeout(script, test_timeout_s), timeout_s=test_timeout_s, output_cap=5_000_000)
        duration = own_test_time(result.output, time.monotonic() - started, nonce)
        log = result.output
        if result.exit_code == SETUP_FAILED_EXIT and SETUP_FAILED in log:
            return GradeResult(False, {}, log, duration, error="could not set up the repository for grading")
        if APPLY_FAILED in log:
            return GradeResult(False, {}, log, duration, patch_applied=False, error="patch does not apply")
        if result.timed_out:
            return GradeResult(False, {}, log, duration, error=f"tests timed out after {test_timeout_s:.0f} s")
        # Only the part before the tests ran: the code under test cannot add to it.
        kept_out = kept_out_files(log.split(start, 1)[0], nonce)
        test_log = log.split(start, 1)[-1].split(end, 1)[0]
        own = benchmark.verdict(task, test_log, test_exit_code(log.split(end, 1)[-1], nonce))
        if own is not None:
            resolved, report, status_map = own
            return GradeResult(resolved, report, log, duration, status_map=status_map, test_config_kept_out=kept_out)
        status_map = parse_test_log(task, test_log, eval_script=eval_script is not None)
        resolved, report = decide(task, status_map)
        return GradeResult(resolved, report, log, duration, status_map=status_map, test_config_kept_out=kept_out)
    finally:
        box.remove(wait=False)
