"""Polyglot without a sandbox: exercises read into tasks, their patches, the
per-runner result parsers, the verdict, and bad datasets."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from dgm.bench.polyglot.benchmark import Polyglot
from dgm.bench.polyglot.exercises import commit_sha, file_diff
from dgm.bench.polyglot.results import parse
from dgm.bench.registry import load_benchmark
from dgm.errors import NotFound, UsageError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polyglot"
IDS = ["cpp__triple", "go__doubler", "java__twice", "javascript__add-two", "python__leap-year", "rust__square"]


@pytest.fixture(scope="module")
def bench() -> Polyglot:
    return load_benchmark("polyglot", dataset=str(FIXTURES))


def _unpack(bench, task, dest: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(bench.repo_tar(task))) as tar:
        tar.extractall(dest, filter="data")
    return dest / "testbed"


def _git(cwd: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, input=input, text=True,
                          capture_output=True, check=True).stdout


def test_every_fixture_exercise_is_a_task_with_its_language(bench):
    tasks = bench.tasks()
    assert sorted(t.instance_id for t in tasks) == IDS
    assert {t.extra["language"] for t in tasks} == {"cpp", "go", "java", "javascript", "python", "rust"}
    assert bench.subset("dgm-small") == json.loads((FIXTURES / "subsets" / "dgm-small.json").read_text())
    assert bench.subset("full") == [t.instance_id for t in tasks]


def test_the_repository_holds_stubs_and_build_files_but_no_tests_docs_or_reference(bench, tmp_path):
    task = bench.select(["java__twice"])[0]
    repo = _unpack(bench, task, tmp_path)
    files = _git(repo, "ls-files").split()
    assert files == ["build.gradle", "src/main/java/Twice.java"]
    assert _git(repo, "rev-parse", "HEAD").strip() == task.base_commit  # computed sha == git's
    assert "TwiceTest" not in task.problem_statement and "JUnit" in task.problem_statement
    assert "Implement `Twice.of(int n)`" in task.problem_statement


@pytest.mark.parametrize("instance_id", IDS)
def test_gold_patch_turns_the_stub_into_the_reference_and_tests_apply_on_top(bench, tmp_path, instance_id):
    task = bench.select([instance_id])[0]
    repo = _unpack(bench, task, tmp_path)
    _git(repo, "apply", "-", input=task.patch)
    _git(repo, "apply", "-", input=task.test_patch)
    lang, name = instance_id.split("__")
    root = FIXTURES / lang / "exercises" / "practice" / name
    config = json.loads((root / ".meta" / "config.json").read_text())["files"]
    for example in config["example"]:
        suffix = Path(example).suffix
        target = next(p for p in config["solution"] if p.endswith(suffix))
        assert (repo / target).read_bytes() == (root / example).read_bytes()
    for test in config["test"]:
        assert (repo / test).exists()


def test_skipped_tests_are_enabled_in_the_hidden_tests(bench):
    js = bench.select(["javascript__add-two"])[0].test_patch
    assert "xtest(" not in js and js.count("test(") == 2
    java = bench.select(["java__twice"])[0].test_patch
    assert "@Disabled(" not in java and java.count("@Test") == 2


def test_build_files_are_protected_and_foreign_test_files_removed_at_grading(bench):
    from dgm.bench.grade import keep_benchmark_files_script

    task = bench.select(["javascript__add-two"])[0]
    script = keep_benchmark_files_script(task)
    for path in ("package.json", "babel.config.js"):
        assert f"git checkout {task.base_commit} -- {path}" in script
    assert "'jest.config.*'" in script and "git ls-files -z --others" in script


def test_commit_sha_matches_git(tmp_path):
    from dgm.bench.dgm_mini import build_repo

    files = {"b.txt": b"x\n", "a/b/c.txt": b"deep\n", "a.b": b"", "a-c/d": b"1"}
    src = tmp_path / "src"
    for path, data in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(data)
    assert build_repo(src, tmp_path / "repo") == commit_sha(files)


def test_file_diff_handles_missing_final_newlines(tmp_path):
    old, new = b"a\nb", b"a\nc\n"
    (tmp_path / "f").write_bytes(old)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "apply", "-", input=file_diff("f", old, new))
    assert (tmp_path / "f").read_bytes() == new


def test_verdict_is_the_exit_status_and_names_the_failed_tests(bench):
    task = bench.select(["go__doubler"])[0]
    log = "\n".join(json.dumps(e) for e in [
        {"Action": "pass", "Test": "TestDoublePositive"}, {"Action": "fail", "Test": "TestDoubleNegative"},
        {"Action": "fail"}])
    resolved, report, status = bench.verdict(task, log, 1)
    assert not resolved and report["FAIL_TO_PASS"]["failure"] == ["TestDoubleNegative"]
    assert bench.verdict(task, log, 0)[0] is True  # the runner's exit status decides, not the parse
    assert bench.verdict(task, "", None)[1]["FAIL_TO_PASS"]["failure"]  # no report: still says it failed


def test_parsers_read_each_runner():
    cargo = "running 2 tests\ntest square_of_three ... ok\ntest square_of_zero ... FAILED\n"
    assert parse("cargo", cargo) == {"square_of_three": "PASSED", "square_of_zero": "FAILED"}
    quiet = "running 2 tests\n.F\nfailures:\n\n---- x stdout ----\n\nfailures:\n    square_of_zero\n\ntest result"
    assert parse("cargo", quiet) == {"square_of_zero": "FAILED"}
    jest = json.dumps({"numFailedTests": 1, "testResults": [{"assertionResults": [
        {"fullName": "add adds", "status": "passed"}, {"fullName": "add neg", "status": "failed"}]}]})
    assert parse("jest", "noise\n" + jest) == {"add adds": "PASSED", "add neg": "FAILED"}
    xml = ('<?xml version="1.0"?><testsuites><testsuite name="t"><testcase classname="TwiceTest" name="a()"/>'
           '<testcase classname="TwiceTest" name="b()"><failure message="x"/></testcase>'
           '<testcase classname="TwiceTest" name="c()"><skipped/></testcase></testsuite></testsuites>')
    assert parse("junit-xml", xml) == {"TwiceTest.a()": "PASSED", "TwiceTest.b()": "FAILED",
                                       "TwiceTest.c()": "SKIPPED"}
    catch = ('<testsuites><testsuite name="triple"><testcase classname="triple.global" name="triple_of_two"/>'
             '</testsuite></testsuites>')
    assert parse("catch2-junit", catch) == {"triple.global.triple_of_two": "PASSED"}
    assert parse("pytest", "PASSED leap_year_test.py::LeapYearTest::test_century\n") == {
        "leap_year_test.py::LeapYearTest::test_century": "PASSED"}


def test_bad_datasets_and_ids_get_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="--dataset"):
        load_benchmark("polyglot")
    with pytest.raises(UsageError, match="not a directory"):
        load_benchmark("polyglot", dataset=str(tmp_path / "nope")).tasks()
    with pytest.raises(UsageError, match="holds no exercises"):
        load_benchmark("polyglot", dataset=str(tmp_path)).tasks()
    broken = tmp_path / "python" / "exercises" / "practice" / "x" / ".meta"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{")
    with pytest.raises(UsageError, match="not an exercise config"):
        load_benchmark("polyglot", dataset=str(tmp_path)).tasks()
    with pytest.raises(NotFound, match="no exercise python__nope"):
        load_benchmark("polyglot", dataset=str(FIXTURES)).select(["python__nope"])


def test_the_test_time_limit_is_dgms_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("DGM_POLYGLOT_TEST_TIMEOUT_S", raising=False)
    assert load_benchmark("polyglot", dataset=str(FIXTURES)).test_timeout_s == 120.0
    monkeypatch.setenv("DGM_POLYGLOT_TEST_TIMEOUT_S", "300")
    assert load_benchmark("polyglot", dataset=str(FIXTURES)).test_timeout_s == 300.0
    monkeypatch.setenv("DGM_POLYGLOT_TEST_TIMEOUT_S", "soon")
    with pytest.raises(UsageError, match="expected seconds"):
        load_benchmark("polyglot", dataset=str(FIXTURES))


def test_rust_cargo_toml_names_the_reference_solutions_crates_at_any_version():
    """The offline registry holds one version of each crate: the reference's
    requirements (itertools = "0.5") would match nothing, so they become "*";
    crates the exercise already names keep their requirement."""
    import tomllib

    from dgm.bench.polyglot.exercises import with_reference_crates

    reference = b'[package]\nname = "x"\n\n[dependencies]\nitertools = "0.5"\nanyhow = "1.0"\n'
    bare = with_reference_crates(b'[package]\nname = "x"\nversion = "1.0.0"\n', reference)
    assert tomllib.loads(bare.decode())["dependencies"] == {"itertools": "*", "anyhow": "*"}
    assert tomllib.loads(bare.decode())["package"]["version"] == "1.0.0"
    named = with_reference_crates(b'[dependencies]\nanyhow = "1.0"\n\n[package]\nname = "x"\n', reference)
    assert tomllib.loads(named.decode())["dependencies"] == {"itertools": "*", "anyhow": "1.0"}
    unchanged = b'[package]\nname = "x"\n'
    assert with_reference_crates(unchanged, b'[package]\nname = "x"\n') == unchanged
