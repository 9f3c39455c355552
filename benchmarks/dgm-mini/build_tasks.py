#!/usr/bin/env python3
"""Regenerate dgm-mini's tasks.json from the repositories and authoring files.

    python benchmarks/dgm-mini/build_tasks.py           # rewrite tasks.json
    python benchmarks/dgm-mini/build_tasks.py --check   # exit 1 if tasks.json is stale
    python benchmarks/dgm-mini/build_tasks.py --only textkit__textkit-1 ...  # check some, write nothing

Layout (next to this script):

    repos/<repo>/                      a repository's source tree at its base state
    authoring/<repo>__<repo>-<n>/
        task.toml                      difficulty, summary, problem_statement, also_run
        gold/<path>                    full new contents of each file the fix changes
        hidden/tests/<path>            full new contents of each hidden test file

Nothing here is hand-written diff. For every task this script builds the
repository's base commit with the same builder as `dgm.bench.dgm_mini` (so the
shas agree), overlays the hidden tests, runs pytest, overlays the gold files,
runs pytest again, and derives the patches with `git diff` and FAIL_TO_PASS /
PASS_TO_PASS from the two runs. It refuses tasks whose gold patch does not
pass every test, whose FAIL_TO_PASS is empty, or that would break the
repository's visible tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the dgm checkout, when dgm is not installed

from swebench.harness.log_parsers.python import parse_log_pytest  # noqa: E402

from dgm.bench.dgm_mini import BENCHMARK_NAME, REPOS_DIR, TASKS_FILE, build_repo, git  # noqa: E402

VERSION = "1.0"
INSTANCE_ID = re.compile(r"^(?P<repo>[a-z0-9_]+)__(?P=repo)-(?P<number>[0-9]+)$")
TOML_KEYS = {"difficulty", "summary", "problem_statement", "also_run"}
PYTEST = ["-m", "pytest", "-rA", "-p", "no:cacheprovider"]
# The sandbox has Debian's bare pytest; host plugins (xdist, timeout, ...) must
# not change what the tests see, and bytecode must not land in the work tree.
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class BuildError(Exception):
    pass


@dataclass
class Authoring:
    instance_id: str
    repo_dir: str
    number: int
    path: Path
    difficulty: int
    summary: str
    problem_statement: str
    also_run: list[str]
    gold_files: list[str]
    hidden_files: list[str]


def overlay_files(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def load_authoring(path: Path) -> Authoring:
    m = INSTANCE_ID.match(path.name)
    if not m:
        raise BuildError(f"{path.name}: directory name must look like <repo>__<repo>-<n>")
    with (path / "task.toml").open("rb") as fh:
        meta = tomllib.load(fh)
    unknown = set(meta) - TOML_KEYS
    if unknown:
        raise BuildError(f"{path.name}/task.toml: unknown keys {sorted(unknown)}")
    difficulty = meta.get("difficulty")
    if not isinstance(difficulty, int) or not 1 <= difficulty <= 5:
        raise BuildError(f"{path.name}: difficulty must be an integer 1..5")
    summary = str(meta.get("summary", "")).strip()
    if not summary or "\n" in summary:
        raise BuildError(f"{path.name}: summary must be one non-empty line")
    statement = str(meta.get("problem_statement", "")).strip()
    if not statement:
        raise BuildError(f"{path.name}: problem_statement is empty")
    gold = overlay_files(path / "gold")
    hidden = overlay_files(path / "hidden")
    if not gold or not hidden:
        raise BuildError(f"{path.name}: needs both gold/ and hidden/ files")
    if bad := [f for f in gold if f.startswith("tests/")]:
        raise BuildError(f"{path.name}: gold files must not be tests: {bad}")
    if bad := [f for f in hidden if not f.startswith("tests/")]:
        raise BuildError(f"{path.name}: hidden files must be under tests/: {bad}")
    return Authoring(
        instance_id=path.name,
        repo_dir=m["repo"],
        number=int(m["number"]),
        path=path,
        difficulty=difficulty,
        summary=summary,
        problem_statement=statement + "\n",
        also_run=list(meta.get("also_run", [])),
        gold_files=gold,
        hidden_files=hidden,
    )


def run_pytest(cwd: Path, files: list[str]) -> tuple[dict[str, str], str]:
    proc = subprocess.run(
        [sys.executable, *PYTEST, *files],
        cwd=cwd, env={**os.environ, **PYTEST_ENV}, capture_output=True, text=True, timeout=300,
    )
    log = proc.stdout + proc.stderr
    return parse_log_pytest(log, None), log


def collect(cwd: Path, files: list[str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, *PYTEST, "--collect-only", "-q", *files],
        cwd=cwd, env={**os.environ, **PYTEST_ENV}, capture_output=True, text=True, timeout=300,
    )
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def apply_overlay(src: Path, files: list[str], dest: Path, must_change: bool = True) -> None:
    for rel in files:
        target = dest / rel
        new = (src / rel).read_bytes()
        if must_change and target.exists() and target.read_bytes() == new:
            raise BuildError(f"{src / rel}: identical to the base file")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(new)


def diff(work: Path, paths: list[str]) -> str:
    git(work, "add", "-A")
    return git(
        work, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames",
        "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--", *paths,
    )


def build_task(task: Authoring, base: Path, base_sha: str, scratch: Path) -> dict:
    work = scratch / task.instance_id
    shutil.copytree(base, work)
    test_files = sorted(set(task.hidden_files + task.also_run))
    for rel in test_files:
        if not rel.startswith("tests/") or not rel.endswith(".py"):
            raise BuildError(f"{task.instance_id}: test file {rel} must be tests/*.py")
    if missing := [f for f in task.also_run if not (base / f).is_file()]:
        raise BuildError(f"{task.instance_id}: also_run names missing files {missing}")

    apply_overlay(task.path / "hidden", task.hidden_files, work)
    before, log = run_pytest(work, test_files)
    if broken := [t for t in before if "::" not in t]:
        # A collection error aborts the whole run, so nothing would be
        # PASS_TO_PASS; hidden tests must import new names inside the tests.
        raise BuildError(f"{task.instance_id}: hidden tests do not collect at base: {broken}\n{log[-3000:]}")
    apply_overlay(task.path / "gold", task.gold_files, work)
    after, log = run_pytest(work, test_files)
    if not after or any(status != "PASSED" for status in after.values()):
        failed = sorted(t for t, s in after.items() if s != "PASSED")
        raise BuildError(f"{task.instance_id}: with the gold patch these do not pass: {failed}\n{log[-3000:]}")
    everything, log = run_pytest(work, ["tests"])
    if any(status != "PASSED" for status in everything.values()):
        failed = sorted(t for t, s in everything.items() if s != "PASSED")
        raise BuildError(f"{task.instance_id}: the gold patch breaks the test-suite: {failed}\n{log[-3000:]}")

    fail_to_pass = sorted(t for t in after if before.get(t) != "PASSED")
    pass_to_pass = sorted(t for t in after if before.get(t) == "PASSED")
    if not fail_to_pass:
        raise BuildError(f"{task.instance_id}: no test fails before the gold patch")
    collected = collect(work, test_files)
    if collected != set(after):
        # swebench's parser splits lines on whitespace, so an id with a space
        # (e.g. a parametrize value) would be graded under a truncated name.
        raise BuildError(
            f"{task.instance_id}: the log parser sees {sorted(set(after) - collected)} instead of "
            f"{sorted(collected - set(after))}; give parametrized tests ids without whitespace"
        )
    for test in fail_to_pass:
        name = test.split("::")[-1].split("[")[0]
        if name in task.problem_statement:
            raise BuildError(f"{task.instance_id}: the problem statement names the hidden test {name}")

    patch = diff(work, task.gold_files)
    test_patch = diff(work, task.hidden_files)
    return {
        "instance_id": task.instance_id,
        "repo": f"{BENCHMARK_NAME}/{task.repo_dir}",
        "base_commit": base_sha,
        "problem_statement": task.problem_statement,
        "patch": patch,
        "test_patch": test_patch,
        "FAIL_TO_PASS": fail_to_pass,
        "PASS_TO_PASS": pass_to_pass,
        "version": VERSION,
        "difficulty": task.difficulty,
        "summary": task.summary,
        "test_files": test_files,
    }


def build_base(repo_dir: str, scratch: Path) -> tuple[Path, str]:
    base = scratch / f"{repo_dir}.base"
    sha = build_repo(HERE / REPOS_DIR / repo_dir, base)
    results, log = run_pytest(base, ["tests"])
    if not results or any(s != "PASSED" for s in results.values()):
        raise BuildError(f"repository {repo_dir}: visible tests fail at the base commit\n{log[-3000:]}")
    return base, sha


def build(only: list[str] | None, jobs: int) -> list[dict]:
    authoring = [load_authoring(p) for p in sorted((HERE / "authoring").iterdir()) if p.is_dir()]
    if only:
        unknown = set(only) - {a.instance_id for a in authoring}
        if unknown:
            raise BuildError(f"no authoring directory for {sorted(unknown)}")
        authoring = [a for a in authoring if a.instance_id in only]
    authoring.sort(key=lambda a: (a.repo_dir, a.number))
    with tempfile.TemporaryDirectory(prefix="dgm-mini-build-") as tmp, ThreadPoolExecutor(jobs) as pool:
        scratch = Path(tmp)
        repos = sorted({a.repo_dir for a in authoring})
        bases = dict(zip(repos, pool.map(lambda r: build_base(r, scratch), repos)))
        futures = [pool.submit(build_task, a, *bases[a.repo_dir], scratch) for a in authoring]
        return [f.result() for f in futures]


def render(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with tasks.json instead of writing it")
    parser.add_argument("--only", nargs="+", metavar="ID", help="build and check only these tasks; writes nothing")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    try:
        rows = build(args.only, args.jobs)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = render(rows)
    out = HERE / TASKS_FILE
    if args.only:
        for row in rows:
            print(f"{row['instance_id']}: FAIL_TO_PASS={row['FAIL_TO_PASS']} PASS_TO_PASS={len(row['PASS_TO_PASS'])}")
        return 0
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is stale; run {Path(__file__).name} to regenerate it", file=sys.stderr)
            return 1
        print(f"{out.name} is up to date ({len(rows)} tasks)")
        return 0
    out.write_text(text, encoding="utf-8")
    per_repo: dict[str, int] = {}
    for row in rows:
        per_repo[row["repo"]] = per_repo.get(row["repo"], 0) + 1
    print(f"wrote {len(rows)} tasks to {out}: " + ", ".join(f"{r} {n}" for r, n in sorted(per_repo.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
