"""Polyglot as a dgm Benchmark: tasks from a polyglot-benchmark checkout given
with `--dataset`, the DGM paper's subsets, one image for all six languages,
and grading by the test command's exit status."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from functools import cached_property
from pathlib import Path

from dgm.bench.base import Benchmark
from dgm.bench.polyglot.exercises import Exercise, commit_sha, exercise_dirs, files_diff, load_exercise
from dgm.bench.polyglot.results import FAILED, PASSED, parse
from dgm.bench.task import Task
from dgm.errors import DgmError, NotFound, UsageError

BENCHMARK_NAME = "polyglot"
IMAGE_REPO = "dgm-polyglot"
IMAGE_VERSION = "bookworm-v2"
SUBSETS_DIR = Path(__file__).parent / "subsets"
NAMED_SUBSETS = ("dgm-small", "dgm-medium")
TEST_TIMEOUT_S = 120.0  # DGM's polyglot harness allows each test run two minutes
# Seconds per test run instead, for slow or loaded machines (a C++ exercise's
# Catch2 main alone takes minutes to compile on an overloaded 2-core host).
TEST_TIMEOUT_ENV = "DGM_POLYGLOT_TEST_TIMEOUT_S"


def image_tag() -> str:
    return f"{IMAGE_REPO}:{IMAGE_VERSION}"


def build_script() -> Path:
    return Path(__file__).resolve().parents[3] / "sandboxes" / "build_polyglot_image.sh"


def _difficulty(exercise: Exercise) -> int:
    """1..5: Exercism's 1..10 halved when the exercise states one, else from the
    reference solution's size (non-blank lines). The benchmark's copy has no
    labels, and the scripted models' rules read one."""
    if exercise.difficulty is not None:
        return (exercise.difficulty + 1) // 2
    lines = sum(len([ln for ln in data.decode(errors="replace").splitlines() if ln.strip()])
                for data in exercise.reference.values())
    return 1 if lines < 30 else 2 if lines < 60 else 3 if lines < 100 else 4 if lines < 160 else 5


def task_from_exercise(exercise: Exercise) -> Task:
    lang = exercise.lang
    tests = tuple(sorted(exercise.tests))
    gold = files_diff(exercise.files, exercise.reference)
    test_patch = files_diff({}, exercise.tests)
    return Task(
        instance_id=exercise.instance_id, repo=f"polyglot/{exercise.language}", base_commit=commit_sha(exercise.files),
        problem_statement=exercise.statement, patch=gold, test_patch=test_patch,
        FAIL_TO_PASS=tests, PASS_TO_PASS=(), version=exercise.language, benchmark=BENCHMARK_NAME,
        test_command=lang.test_command(exercise.name, tests), log_parser=lang.parser,
        summary=f"{exercise.language}: {exercise.name}", difficulty=_difficulty(exercise),
        extra={"language": exercise.language,
               "protected_files": tuple(p for p in lang.build_files if p in exercise.files),
               "foreign_test_globs": lang.foreign_test_globs, "verdict": "exit_status",
               "difficulty_known": exercise.difficulty is not None},
    )


class Polyglot(Benchmark):
    """Aider's polyglot-benchmark (225 Exercism exercises in six languages)."""

    name = BENCHMARK_NAME
    test_timeout_s = TEST_TIMEOUT_S

    def __init__(self, *, dataset: str | os.PathLike | None = None):
        if dataset is None:
            raise UsageError("polyglot needs its exercises: give --dataset DIR (a polyglot-benchmark checkout)")
        self.dataset = Path(dataset).expanduser().resolve()
        override = os.environ.get(TEST_TIMEOUT_ENV)
        if override:
            try:
                self.test_timeout_s = float(override)
            except ValueError:
                raise UsageError(f"${TEST_TIMEOUT_ENV}: expected seconds, not {override!r}") from None
            if not 1 <= self.test_timeout_s <= 86400:
                raise UsageError(f"${TEST_TIMEOUT_ENV}: expected 1 to 86400 seconds, not {override!r}")
        self._lock = threading.Lock()
        self._tars: dict[str, bytes] = {}

    @cached_property
    def _exercises(self) -> dict[str, tuple[str, Path]]:
        return {f"{lang}__{d.name}": (lang, d) for lang, d in exercise_dirs(self.dataset)}

    @cached_property
    def _tasks(self) -> dict[str, Task]:
        return {iid: self._task(iid) for iid in self._exercises}

    def _task(self, instance_id: str) -> Task:
        if "_tasks" in self.__dict__:
            return self._tasks[instance_id]
        lang, root = self._exercises[instance_id]
        return task_from_exercise(load_exercise(lang, root))

    def tasks(self) -> list[Task]:
        return list(self._tasks.values())

    def select(self, ids: list[str] | None) -> list[Task]:
        if ids is None:
            return self.tasks()
        missing = [i for i in ids if i not in self._exercises]
        if missing:
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            raise NotFound(f"polyglot: no exercise {shown} in {self.dataset} (ids are <language>__<exercise>)")
        return [self._task(i) for i in dict.fromkeys(ids)]

    # -- named subsets ---------------------------------------------------------------
    def subsets(self) -> list[str]:
        """DGM's polyglot subsets (10 and 50 exercises) and `full`, every exercise of the dataset."""
        return [*NAMED_SUBSETS, "full"]

    def subset(self, name: str) -> list[str]:
        if name == "full":
            return list(self._exercises)
        if name not in NAMED_SUBSETS:
            raise NotFound(f"unknown polyglot subset {name!r} (known: {', '.join(self.subsets())})")
        ids = self._subset_ids(name)
        missing = [i for i in ids if i not in self._exercises]
        if missing:
            raise NotFound(f"polyglot: subset {name} names {len(missing)} exercise(s) missing from "
                           f"{self.dataset} (e.g. {missing[0]})")
        return ids

    def _subset_ids(self, name: str) -> list[str]:
        # A dataset may carry its own list of that name (the repository's test
        # fixtures do); the DGM paper's ship with the package.
        own = self.dataset / "subsets" / f"{name}.json"
        return list(json.loads((own if own.is_file() else SUBSETS_DIR / f"{name}.json").read_text()))

    # -- sandbox material -----------------------------------------------------------------
    def image(self, task: Task) -> str:
        return image_tag()

    def prepare_images(self, docker_client, tasks, *, progress=None) -> dict[str, str]:
        from dgm.errors import ImageUnavailable
        from dgm.sandbox.docker import ensure_image

        try:
            ensure_image(docker_client, image_tag())
        except ImageUnavailable:
            raise ImageUnavailable(f"sandbox image {image_tag()} is missing; build it with "
                                   f"`dgm sandbox build --benchmark polyglot`") from None
        if progress:
            for task in tasks:
                progress(task, None)
        return {}

    def repo_tar(self, task: Task) -> bytes:
        """The exercise's repository at base_commit (.git included), built once per task."""
        with self._lock:
            data = self._tars.get(task.instance_id)
        if data is not None:
            return data
        from dgm.bench.dgm_mini.benchmark import build_repo
        from dgm.sandbox.testbed import testbed_tar

        lang, root = self._exercises[task.instance_id]
        exercise = load_exercise(lang, root)
        with tempfile.TemporaryDirectory(prefix="dgm-polyglot-") as tmp:
            src = Path(tmp) / "src"
            for path, content in exercise.files.items():
                (src / path).parent.mkdir(parents=True, exist_ok=True)
                (src / path).write_bytes(content)
            src.mkdir(exist_ok=True)
            sha = build_repo(src, Path(tmp) / "testbed")
            if sha != task.base_commit:
                raise DgmError(f"polyglot {task.instance_id}: the repository builds commit {sha[:12]}, "
                               f"not {task.base_commit[:12]} (exercise changed since the task was read?)")
            data = testbed_tar(Path(tmp) / "testbed")
        with self._lock:
            self._tars[task.instance_id] = data
        return data

    # -- grading ------------------------------------------------------------------------------
    def grading_limits(self, limits):
        """Compilers and the JVM start many threads: at least 512 processes and 2 GB."""
        from dataclasses import replace

        return replace(limits, memory_mb=max(limits.memory_mb, 2048), pids=max(limits.pids, 512))

    def verdict(self, task: Task, test_log: str, exit_code: int | None):
        """Resolved iff the test command exited 0 (DGM's rule); the per-test
        results, where the runner reports them, say which tests failed."""
        status = parse(task.log_parser, test_log)
        passed = sorted(n for n, s in status.items() if s == PASSED)
        failed = sorted(n for n, s in status.items() if s == FAILED)
        resolved = exit_code == 0
        report = {"FAIL_TO_PASS": {"success": passed, "failure": failed},
                  "PASS_TO_PASS": {"success": [], "failure": []}, "exit_code": exit_code}
        if not resolved and not failed:
            report["FAIL_TO_PASS"]["failure"] = [f"(tests did not pass: exit status {exit_code})"]
        return resolved, report, status
