"""dgm-mini: the bundled offline benchmark.

A handful of small stdlib-only Python libraries, each with SWE-bench-format
tasks (`benchmarks/dgm-mini/tasks.json`), so campaigns, the grader and the
test-suite run without network access or the real SWE-bench images.

The repositories are kept as plain source trees. A task's `base_commit` is the
sha of a commit built from that tree with a fixed author, date and config, so
the same sources always give the same sha; `build_tasks.py` (next to
tasks.json) derives the patches and test lists from the authoring files and
uses the same builder as this loader.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.errors import DgmError, NotFound
from dgm.sandbox.images import base_image_tag
from dgm.sandbox.testbed import testbed_tar

BENCHMARK_NAME = "dgm-mini"
ROOT_ENV = "DGM_MINI_ROOT"
TASKS_FILE = "tasks.json"
REPOS_DIR = "repos"
REGENERATE_COMMAND = "python benchmarks/dgm-mini/build_tasks.py"

# Everything that goes into the base commit object besides the tree. Changing
# any of these changes every base_commit, so tasks.json must be regenerated.
BRANCH = "main"
COMMIT_MESSAGE = "Initial import\n"
COMMIT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
_IDENTITY = {
    "GIT_AUTHOR_NAME": "dgm-mini",
    "GIT_AUTHOR_EMAIL": "dgm-mini@localhost",
    "GIT_AUTHOR_DATE": f"{COMMIT_EPOCH} +0000",
    "GIT_COMMITTER_NAME": "dgm-mini",
    "GIT_COMMITTER_EMAIL": "dgm-mini@localhost",
    "GIT_COMMITTER_DATE": f"{COMMIT_EPOCH} +0000",
}
# Per-invocation settings that would otherwise come from whatever config the
# host has (line-ending conversion, signing, hooks) and could alter the tree
# or make the commit fail.
_GIT_OPTIONS = (
    "-c", "core.autocrlf=false",
    "-c", "core.safecrlf=false",
    "-c", "core.fileMode=true",
    "-c", "core.symlinks=true",
    "-c", "commit.gpgSign=false",
    "-c", "core.hooksPath=/dev/null",
)
# Build debris that must never reach a base commit, whatever the source tree
# holds after someone ran its tests in place.
_IGNORED_NAMES = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")

_REQUIRED_FIELDS = (
    "instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
    "FAIL_TO_PASS", "PASS_TO_PASS", "version", "difficulty", "summary", "test_files",
)


def default_root() -> Path:
    """`$DGM_MINI_ROOT`, else `benchmarks/dgm-mini` of the source checkout."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[3] / "benchmarks" / BENCHMARK_NAME


def git_env() -> dict[str, str]:
    """An environment in which git ignores the host's config and any GIT_* state
    inherited from a calling git process (hooks, `git rebase --exec`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_IDENTITY)
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        TZ="UTC",
    )
    return env


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    """Run git with the deterministic environment; return stdout."""
    proc = subprocess.run(
        ["git", *_GIT_OPTIONS, *args],
        cwd=cwd, env=git_env(), input=input, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise DgmError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout


def _ignored(name: str) -> bool:
    return name in _IGNORED_NAMES or name.endswith(_IGNORED_SUFFIXES)


def copy_sources(src: Path, dest: Path) -> None:
    """Copy a repository's source tree, dropping build debris and normalising
    modes, so the resulting git tree does not depend on how it was checked out."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        rel = Path(dirpath).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            if _ignored(name):
                continue
            path = Path(dirpath) / name
            if path.is_symlink():
                raise DgmError(f"{path}: symlinks are not allowed in dgm-mini repositories")
            target = dest / rel / name
            shutil.copyfile(path, target)
            target.chmod(0o644)


def build_repo(src: Path, dest: Path) -> str:
    """Turn the source tree `src` into a git work tree at `dest` (created, must
    not exist) with one deterministic commit on `main`; return its sha."""
    if not src.is_dir():
        raise NotFound(f"dgm-mini repository sources not found: {src}")
    dest.mkdir(parents=True)
    copy_sources(src, dest)
    # An empty template keeps sample hooks and `description` out of the tar.
    template = Path(tempfile.mkdtemp(prefix="dgm-mini-tpl-"))
    try:
        git(dest, "init", "-q", f"--template={template}", "-b", BRANCH)
    finally:
        template.rmdir()
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "--no-verify", "-m", COMMIT_MESSAGE)
    return git(dest, "rev-parse", "HEAD").strip()


def _task_from_json(row: dict, benchmark: str) -> Task:
    missing = [f for f in _REQUIRED_FIELDS if f not in row]
    if missing:
        raise DgmError(f"dgm-mini task {row.get('instance_id', '?')}: missing fields {missing}")
    test_files = list(row["test_files"])
    return Task(
        instance_id=row["instance_id"],
        repo=row["repo"],
        base_commit=row["base_commit"],
        problem_statement=row["problem_statement"],
        patch=row["patch"],
        test_patch=row["test_patch"],
        FAIL_TO_PASS=tuple(row["FAIL_TO_PASS"]),
        PASS_TO_PASS=tuple(row["PASS_TO_PASS"]),
        version=row["version"],
        benchmark=benchmark,
        test_command=shlex.join(["python3", "-m", "pytest", "-rA", "-p", "no:cacheprovider", *test_files]),
        log_parser="pytest",
        summary=row["summary"],
        difficulty=int(row["difficulty"]),
        extra={"test_files": tuple(test_files), "repo_dir": repo_dir_name(row["repo"])},
    )


def repo_dir_name(repo: str) -> str:
    """`dgm-mini/textkit` -> `textkit` (the directory under `repos/`)."""
    owner, _, name = repo.partition("/")
    if owner != BENCHMARK_NAME or not name or "/" in name or name.startswith("."):
        raise DgmError(f"not a dgm-mini repository name: {repo!r}")
    return name


class DgmMini(Benchmark):
    """The bundled offline benchmark (see the module docstring)."""

    name = BENCHMARK_NAME

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else default_root()
        self._tasks: list[Task] | None = None
        self._lock = threading.Lock()
        self._repo_locks: dict[str, threading.Lock] = {}
        self._tars: dict[str, tuple[str, bytes]] = {}  # repo dir -> (sha, tar)

    # -- tasks ---------------------------------------------------------------

    def tasks(self) -> list[Task]:
        with self._lock:
            if self._tasks is None:
                self._tasks = self._load()
            return list(self._tasks)

    def _load(self) -> list[Task]:
        path = self.root / TASKS_FILE
        if not path.is_file():
            raise DgmError(
                f"dgm-mini tasks not found at {path}; point ${ROOT_ENV} at the "
                f"benchmarks/dgm-mini directory of a dgm source checkout"
            )
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DgmError(f"{path}: not valid JSON ({exc}); regenerate with `{REGENERATE_COMMAND}`") from exc
        tasks = [_task_from_json(row, self.name) for row in rows]
        seen: set[str] = set()
        for task in tasks:
            if task.instance_id in seen:
                raise DgmError(f"{path}: duplicate instance_id {task.instance_id}")
            seen.add(task.instance_id)
        return tasks

    # -- sandbox material ------------------------------------------------------

    def image(self, task: Task) -> str:
        return base_image_tag()

    def source_dir(self, task: Task) -> Path:
        """The plain source tree the task's repository is built from."""
        return self.root / REPOS_DIR / repo_dir_name(task.repo)

    def repo_tar(self, task: Task) -> bytes:
        """The repository at base_commit, `.git` included, under `testbed/`.

        Built once per repository and kept in memory (a few hundred kB each).
        """
        name = repo_dir_name(task.repo)
        with self._lock:
            repo_lock = self._repo_locks.setdefault(name, threading.Lock())
        # One lock per repository: concurrent callers wait for a single build,
        # while different repositories build in parallel.
        with repo_lock:
            built = self._tars.get(name)
            if built is None:
                with tempfile.TemporaryDirectory(prefix=f"dgm-mini-{name}-") as tmp:
                    work = Path(tmp) / "testbed"
                    sha = build_repo(self.source_dir(task), work)
                    built = self._tars[name] = (sha, testbed_tar(work))
        sha, data = built
        self._check_commit(task, sha)
        return data

    def _check_commit(self, task: Task, sha: str) -> None:
        if sha != task.base_commit:
            raise DgmError(
                f"dgm-mini repository {task.repo} ({self.source_dir(task)}) builds commit "
                f"{sha[:12]}, but task {task.instance_id} expects {task.base_commit[:12]}: the "
                f"sources changed without regenerating the tasks; run `{REGENERATE_COMMAND}`"
            )
