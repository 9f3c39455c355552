"""A two-task benchmark built in a temp dir: fast fixtures for harness tests.

It implements the same Benchmark base as dgm-mini, with a real git repo,
real patches and real pytest runs, so the harness under test is the real one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.sandbox.images import base_image_tag
from dgm.sandbox.testbed import testbed_tar

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TEST_BASE = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def _diff(repo: Path, edit) -> str:
    edit(repo)
    _git(repo, "add", "-A")
    out = _git(repo, "diff", "--cached")
    _git(repo, "reset", "-q", "--hard")
    _git(repo, "clean", "-fdq")
    return out


class TinyBenchmark(Benchmark):
    name = "tiny"

    def __init__(self, root: Path, n_tasks: int = 2, problems: list[str] | None = None,
                 difficulties: list[int] | None = None, base_files: dict[str, str] | None = None):
        repo = root / "calc"
        repo.mkdir(parents=True)
        (repo / "calc.py").write_text(CALC)
        (repo / "tests").mkdir()
        (repo / "tests" / "test_calc.py").write_text(TEST_BASE)
        for name, text in (base_files or {}).items():
            (repo / name).write_text(text)
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "base")
        self.base = _git(repo, "rev-parse", "HEAD").strip()
        gold = _diff(repo, lambda r: (r / "calc.py").write_text(CALC.replace("a - b", "a + b")))
        tests = _diff(repo, lambda r: (r / "tests" / "test_add.py").write_text(
            "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"))
        self._tar = testbed_tar(repo)
        problems = problems or ["`add(2, 3)` returns -1; it should return 5."] * n_tasks
        self._tasks = [
            Task(instance_id=f"tiny__calc-{i}", repo="tiny/calc", base_commit=self.base,
                 problem_statement=problem, patch=gold,
                 test_patch=tests, FAIL_TO_PASS=("tests/test_add.py::test_add",),
                 PASS_TO_PASS=("tests/test_calc.py::test_mul",), version="1.0", benchmark="tiny",
                 test_command="python3 -m pytest -rA -p no:cacheprovider tests/test_add.py tests/test_calc.py",
                 summary="add subtracts", difficulty=(difficulties or [1] * len(problems))[i - 1])
            for i, problem in enumerate(problems, start=1)
        ]

    def tasks(self):
        return list(self._tasks)

    def image(self, task):
        return base_image_tag()

    def repo_tar(self, task):
        return self._tar
