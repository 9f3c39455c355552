"""dgm-mini is sound: every gold patch resolves its task and the hidden tests
fail without it, checked on the host (no Docker) exactly as the grader would:
extract the repository tar, apply the hidden tests, run the task's test
command, parse the log with swebench's pytest parser."""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from swebench.harness.log_parsers.python import parse_log_pytest

from dgm.bench.dgm_mini import ROOT_ENV, DgmMini, default_root, git
from dgm.bench.registry import known_benchmarks, load_benchmark
from dgm.bench.task import Task
from dgm.errors import DgmError, NotFound
from dgm.sandbox.docker import AGENT_UID
from dgm.sandbox.images import base_image_tag

BENCH = DgmMini()
TASKS = BENCH.tasks()
PASSED = "PASSED"
# The sandbox runs Debian's pytest without plugins; host plugins must not
# change the outcome, and bytecode must not land in the work tree.
PYTEST_ENV = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def changed_files(patch: str) -> list[str]:
    return re.findall(r"^diff --git a/(\S+) b/", patch, flags=re.MULTILINE)


# -- the task set -------------------------------------------------------------


def test_task_set_shape():
    ids = [t.instance_id for t in TASKS]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)
    assert {t.difficulty for t in TASKS} == {1, 2, 3, 4, 5}
    assert ids == [t.instance_id for t in DgmMini().tasks()], "order must be stable"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.instance_id)
def test_task_fields(task: Task):
    repo = task.repo.split("/", 1)[1]
    assert task.repo == f"dgm-mini/{repo}"
    assert re.fullmatch(rf"{repo}__{repo}-\d+", task.instance_id)
    assert re.fullmatch(r"[0-9a-f]{40}", task.base_commit)
    assert task.version == "1.0" and task.benchmark == "dgm-mini" and task.log_parser == "pytest"
    assert task.summary and "\n" not in task.summary
    test_files = task.extra["test_files"]
    assert task.test_command == shlex.join(["python3", "-m", "pytest", "-rA", "-p", "no:cacheprovider", *test_files])
    assert task.FAIL_TO_PASS, "a task must have tests that the gold patch makes pass"
    assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
    for test in task.FAIL_TO_PASS + task.PASS_TO_PASS:
        assert test.split("::")[0] in test_files
        assert not re.search(r"\s", test)
    gold, hidden = changed_files(task.patch), changed_files(task.test_patch)
    assert gold and all(not f.startswith("tests/") for f in gold), gold
    assert hidden and all(f.startswith("tests/") for f in hidden), hidden
    for test in task.FAIL_TO_PASS:
        # Naming a hidden test in the issue would leak it to the agent.
        assert test.split("::")[-1].split("[")[0] not in task.problem_statement


def test_tasks_of_one_repo_share_a_base_commit():
    commits: dict[str, set[str]] = {}
    for task in TASKS:
        commits.setdefault(task.repo, set()).add(task.base_commit)
    assert all(len(shas) == 1 for shas in commits.values()), commits


def test_select():
    first, last = TASKS[0], TASKS[-1]
    assert BENCH.select(None) == TASKS
    assert [t.instance_id for t in BENCH.select([last.instance_id, first.instance_id])] == [
        last.instance_id,
        first.instance_id,
    ]


def test_unknown_id_raises_not_found():
    with pytest.raises(NotFound) as err:
        BENCH.select([TASKS[0].instance_id, "textkit__textkit-999"])
    assert "textkit__textkit-999" in str(err.value)
    assert "dgm bench ls dgm-mini" in str(err.value)


def test_registry():
    assert "dgm-mini" in known_benchmarks()
    bench = load_benchmark("dgm-mini")
    assert bench.name == "dgm-mini"
    assert bench.image(TASKS[0]) == base_image_tag()
    with pytest.raises(NotFound, match=r"unknown benchmark 'x' \(known: [^)]*dgm-mini[^)]*\)"):
        load_benchmark("x")


def test_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert default_root() == tmp_path.resolve()
    with pytest.raises(DgmError, match=ROOT_ENV):
        DgmMini().tasks()


# -- repository tars ------------------------------------------------------------


def test_repo_tar_layout():
    task = TASKS[0]
    data = BENCH.repo_tar(task)
    assert BENCH.repo_tar(task) is data, "tars are cached per repository"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    assert all(n == "testbed" or n.startswith("testbed/") for n in names)
    assert {"testbed/.git/HEAD", "testbed/README.md", "testbed/tests"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    for member in members:
        assert (member.uid, member.gid) == (AGENT_UID, AGENT_UID)
        assert member.isdir() or member.isfile(), member.name
        assert member.mode in (0o755, 0o644), (member.name, oct(member.mode))


def _tar_contents(data: bytes) -> dict[str, tuple[int, int, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: (m.mode, m.mtime, tar.extractfile(m).read() if m.isfile() else None)
            for m in tar.getmembers()
            # The index caches inode numbers and change times of the build.
            if m.name != "testbed/.git/index"
        }


def test_repo_tar_is_reproducible():
    task = TASKS[0]
    assert _tar_contents(DgmMini().repo_tar(task)) == _tar_contents(BENCH.repo_tar(task))


def test_changed_sources_are_detected(tmp_path):
    root = tmp_path / "dgm-mini"
    shutil.copytree(default_root() / "repos", root / "repos")
    shutil.copy(default_root() / "tasks.json", root / "tasks.json")
    task = DgmMini(root).tasks()[0]
    readme = root / "repos" / task.extra["repo_dir"] / "README.md"
    readme.write_text(readme.read_text() + "\nlocal edit\n")
    with pytest.raises(DgmError, match="build_tasks.py"):
        DgmMini(root).repo_tar(task)


# -- grading: hidden tests fail before, everything passes after -----------------


@dataclass
class Outcome:
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    error: str | None = None


def run_tests(task: Task, work: Path, outcome: Outcome) -> dict[str, str]:
    command = shlex.split(task.test_command)
    assert command[0] == "python3"
    proc = subprocess.run(
        [sys.executable, *command[1:]], cwd=work, env=PYTEST_ENV, capture_output=True, text=True, timeout=300
    )
    log = proc.stdout + proc.stderr
    outcome.logs.append(log)
    return parse_log_pytest(log, None)


def grade(task: Task, scratch: Path) -> Outcome:
    outcome = Outcome()
    work = scratch / task.instance_id
    try:
        with tarfile.open(fileobj=io.BytesIO(BENCH.repo_tar(task))) as tar:
            tar.extractall(work, filter="data")
        work = work / "testbed"
        if git(work, "rev-parse", "HEAD").strip() != task.base_commit:
            raise AssertionError("HEAD is not the base commit")
        if git(work, "status", "--porcelain"):
            raise AssertionError("work tree differs from the base commit")
        git(work, "apply", "-", input=task.test_patch)
        outcome.before = run_tests(task, work, outcome)
        git(work, "apply", "-", input=task.patch)
        outcome.after = run_tests(task, work, outcome)
    except Exception as exc:  # reported by the task's own test
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


@pytest.fixture(scope="module")
def outcomes():
    """Grades tasks in a thread pool (each is two short pytest runs): all of
    them up front, unless pytest-xdist already spreads the tests over
    processes, in which case each worker grades only the tasks it is given."""
    prefetch = "PYTEST_XDIST_WORKER" not in os.environ
    with tempfile.TemporaryDirectory(prefix="dgm-mini-grade-") as tmp, ThreadPoolExecutor(
        max_workers=max(2, os.cpu_count() or 2) if prefetch else 1
    ) as pool:
        futures = {}

        def outcome(task: Task) -> Outcome:
            for t in TASKS if prefetch else [task]:
                if t.instance_id not in futures:
                    futures[t.instance_id] = pool.submit(grade, t, Path(tmp))
            return futures[task.instance_id].result()

        yield outcome


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.instance_id)
def test_gold_patch_resolves_task(task: Task, outcomes):
    outcome = outcomes(task)
    assert outcome.error is None, outcome.error
    log = "\n".join(outcome.logs)[-4000:]
    still_passing = [t for t in task.FAIL_TO_PASS if outcome.before.get(t) == PASSED]
    assert not still_passing, f"FAIL_TO_PASS tests pass without the gold patch: {still_passing}\n{log}"
    broken = [t for t in task.PASS_TO_PASS if outcome.before.get(t) != PASSED]
    assert not broken, f"PASS_TO_PASS tests fail at the base commit: {broken}\n{log}"
    unresolved = [t for t in task.FAIL_TO_PASS + task.PASS_TO_PASS if outcome.after.get(t) != PASSED]
    assert not unresolved, f"tests fail with the gold patch: {unresolved}\n{log}"
