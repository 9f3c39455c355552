"""SWE-bench adapter without network or Docker: datasets, subsets, specs and
eval scripts for Lite-format rows, grading of recorded logs, and clear errors.

The rows are the repository's own fixture (tests/fixtures/swebench/): invented
instances whose repo and version pick real swebench specs and log parsers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dgm.bench.grade import EVAL_SCRIPT_PATH, grade
from dgm.bench.registry import load_benchmark
from dgm.bench.swebench import offline_build, providers, wheels
from dgm.bench.swebench.dataset import normalise_row, subset_ids
from dgm.bench.swebench.images import DIFF_BASE_REF, Unsupported
from dgm.bench.swebench.specs import make_spec
from dgm.errors import ImageUnavailable, NotFound, UsageError
from tests.support.harness import FIXTURES

LITE_FILE = FIXTURES / "swebench" / "swebench-rows.json"
# Fixture rows by the role each plays below (what the test needs of its repo/version).
FLASK = "pallets__flask-5101"  # requirements files, pytest parser, test patch modifies tests/test_config.py
REQUESTS = "psf__requests-6101"  # parametrised test names (pytest-options parser)
PYTEST = "pytest-dev__pytest-8101"  # an environment without requirement files
PYLINT = "pylint-dev__pylint-9101"  # PASS_TO_PASS holds test_jobs_score
VIEWCODE = "sphinx-doc__sphinx-9901"  # tox test command; test patch modifies tests/test_ext_viewcode.py
ADDS_FILES = "sphinx-doc__sphinx-9902"  # test patch only adds files
SEABORN = "mwaskom__seaborn-3301"  # seaborn's own log parser
XARRAY = "pydata__xarray-7001"  # Python 3.10, which the offline builder cannot provide
DJANGO = "django__django-12050"  # an id of the dgm-medium list


@pytest.fixture(scope="module")
def lite_rows() -> dict[str, dict]:
    return {r["instance_id"]: r for r in json.loads(LITE_FILE.read_text())}


@pytest.fixture(scope="module")
def lite(lite_rows):
    return load_benchmark("swebench-lite", dataset=str(LITE_FILE))


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach GitHub from swebench's spec code is a test failure."""
    import requests

    def refuse(*args, **kwargs):
        raise requests.exceptions.ConnectionError("network disabled in tests")

    monkeypatch.setattr(requests, "get", refuse)


GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@l", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@l", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


# --------------------------------------------------------------------------- datasets and tasks
def test_every_lite_row_becomes_a_task_with_swebench_eval_script(lite, lite_rows):
    tasks = lite.tasks()
    assert len(tasks) == len(lite_rows) >= 9
    for task in tasks:
        script = task.extra["eval_script"]
        assert script.startswith("#!/bin/bash\nset -uxo pipefail\n")
        assert "source /opt/miniconda3/bin/activate" in script and "conda activate testbed" in script
        assert task.test_command == f"bash {EVAL_SCRIPT_PATH}"
        assert task.log_parser == "swebench"
        assert isinstance(task.FAIL_TO_PASS, tuple) and task.FAIL_TO_PASS
        assert task.extra["diff_base"] == DIFF_BASE_REF
        assert lite.repo_tar(task) is None


def test_eval_script_is_swebench_own_for_lite_rows(lite, lite_rows):
    from swebench.harness.constants import START_TEST_OUTPUT

    task = lite.select([VIEWCODE])[0]
    row = lite_rows[VIEWCODE]
    script = task.extra["eval_script"]
    # Resets the test files to the base commit, applies the hidden tests itself,
    # runs the spec's test command on the test patch's files, between markers.
    assert f"git checkout {row['base_commit']} tests/test_ext_viewcode.py" in script
    assert row["test_patch"].strip() in script
    assert "tox --current-env -epy39 -v -- tests/test_ext_viewcode.py" in script
    assert START_TEST_OUTPUT in script
    assert script.index("git apply -v -") < script.index(START_TEST_OUTPUT)
    flask = lite.select([FLASK])[0]
    assert "pytest -rA tests/test_config.py" in flask.extra["eval_script"]
    assert flask.FAIL_TO_PASS == tuple(json.loads(lite_rows[FLASK]["FAIL_TO_PASS"]))


def test_full_test_spec_for_lite_rows_without_network(lite_rows):
    # Rows whose environment needs no requirement file: swebench's spec, offline.
    row = lite_rows[PYTEST]
    spec = make_spec(normalise_row(row), allow_network=False)
    assert "conda create -n testbed python=3.9" in spec.setup_env_script
    assert "pluggy==0.13.1" in spec.setup_env_script
    assert f"git reset --hard {row['base_commit']}" in spec.install_repo_script
    assert spec.instance_image_key.startswith(f"sweb.eval.x86_64.{PYTEST}")


def _mirror_with_requirements(root: Path, repo: str, files: dict[str, str]) -> str:
    work = root / "work"
    work.mkdir(parents=True)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    sha = git(work, "rev-parse", "HEAD").strip()
    mirror = root / "mirror"
    mirror.mkdir()
    git(root, "clone", "-q", "--bare", str(work), str(mirror / f"{repo.replace('/', '__')}.git"))
    return sha


def test_requirements_come_from_the_local_mirror(tmp_path, lite_rows):
    """flask's env needs requirements/dev.txt (with -r includes): swebench's own
    recursion and cleaning run on the files of the local clone, not GitHub."""
    sha = _mirror_with_requirements(tmp_path, "pallets/flask", {
        "requirements/dev.txt": "-r tests.txt\n-e .\nbuild==0.10.0\n",
        "requirements/tests.txt": "pytest==7.3.0\n# a comment\n",
    })
    row = normalise_row({**lite_rows[FLASK], "base_commit": sha, "environment_setup_commit": sha})
    mirror = offline_build.RepoMirror(tmp_path / "mirror")
    spec = make_spec(row, mirror.read_file, allow_network=False)
    env = spec.setup_env_script
    assert "pytest==7.3.0" in env and "build==0.10.0" in env
    assert "-e ." not in env and "a comment" not in env


def test_requirement_files_without_mirror_offline_is_one_clear_error(lite_rows):
    row = normalise_row(lite_rows[FLASK])
    with pytest.raises(UsageError, match="--repo-mirror"):
        make_spec(row, allow_network=True)


def test_unknown_ids_are_not_found(lite):
    with pytest.raises(NotFound, match="no instance nope__nope-1"):
        lite.select([FLASK, "nope__nope-1"])


def _verified_rows(lite_rows, ids):
    template = lite_rows[FLASK]
    return [{**template, "instance_id": iid, "difficulty": "15 min - 1 hour"} for iid in ids]


def test_verified_subsets_from_jsonl_and_parquet(tmp_path, lite_rows):
    small = subset_ids("dgm-small")
    assert len(small) == 10 and len(subset_ids("dgm-medium")) == 50 and len(subset_ids("dgm-big")) == 140
    rows = _verified_rows(lite_rows, list(reversed(small)))
    jsonl = tmp_path / "verified.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    bench = load_benchmark("swebench-verified", dataset=str(jsonl))
    assert bench.subsets() == ["dgm-small", "dgm-medium", "dgm-big", "full"]
    assert bench.subset("dgm-small") == small  # the list's order, not the file's
    assert [t.instance_id for t in bench.select(bench.subset("dgm-small"))] == small
    assert bench.select([small[0]])[0].difficulty == 2
    assert set(bench.subset("full")) == set(small)
    with pytest.raises(NotFound, match="dgm-medium"):
        bench.subset("dgm-medium")  # names ids this file does not hold
    with pytest.raises(NotFound, match="unknown subset"):
        bench.subset("dgm-huge")

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "verified.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    assert load_benchmark("swebench-verified", dataset=str(parquet)).subset("dgm-small") == small


def test_lite_subset_is_the_part_it_holds(lite):
    medium = lite.subset("dgm-medium")
    assert 0 < len(medium) < 50 and all(i in subset_ids("dgm-medium") for i in medium)


def test_missing_dataset_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_SWEBENCH_VERIFIED", str(tmp_path / "absent.json"))
    with pytest.raises(NotFound, match="absent.json"):
        load_benchmark("swebench-verified").tasks()


def test_benchmark_options_reach_only_benchmarks_that_take_them():
    with pytest.raises(UsageError, match="takes no options"):
        load_benchmark("dgm-mini", images="offline")
    with pytest.raises(UsageError, match="unknown --images"):
        load_benchmark("swebench-lite", dataset=str(LITE_FILE), images="teleport").provider


# --------------------------------------------------------------------------- image providers: errors
def test_offline_needs_a_mirror_and_mirrors_must_exist(tmp_path):
    with pytest.raises(UsageError, match="--repo-mirror"):
        providers.make_provider("offline")
    with pytest.raises(NotFound, match="not a directory"):
        providers.make_provider("offline", repo_mirror=tmp_path / "nope")


def test_missing_clone_and_missing_commit_are_not_found(tmp_path, lite_rows):
    (tmp_path / "mirror").mkdir()
    builder = offline_build.OfflineBuilder(tmp_path / "mirror", cache=tmp_path / "cache")
    with pytest.raises(NotFound, match="pallets__flask"):
        builder.plan(normalise_row(lite_rows[FLASK]))
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "mirror" / "pallets__flask.git"))
    with pytest.raises(NotFound, match="is not in the clone"):
        builder.plan(normalise_row(lite_rows[FLASK]))


def test_unsupported_python_is_a_per_instance_limitation(tmp_path, lite_rows):
    (tmp_path / "mirror").mkdir()
    builder = offline_build.OfflineBuilder(tmp_path / "mirror", cache=tmp_path / "cache")
    with pytest.raises(Unsupported, match="Python 3.10"):
        builder.plan(normalise_row(lite_rows[XARRAY]))
    assert issubclass(Unsupported, ImageUnavailable)


class _FakeImages:
    def get(self, tag):
        import docker.errors

        raise docker.errors.ImageNotFound(tag)

    def pull(self, repository, tag=None):
        raise RuntimeError("registry unreachable")


class _FakeClient:
    images = _FakeImages()


def test_pull_without_registry_names_the_options(lite):
    task = lite.select([FLASK])[0]
    provider = providers.make_provider("pull")
    assert provider.source(task) == "swebench/sweb.eval.x86_64.pallets_1776_flask-5101:latest"
    with pytest.raises(ImageUnavailable, match="--images offline --repo-mirror"):
        provider.ensure(_FakeClient(), task)
    failures = provider.ensure_all(_FakeClient(), [task])
    assert "cannot pull" in failures[FLASK]
    assert not failures[FLASK].startswith(FLASK)  # keyed by it, not repeated


# --------------------------------------------------------------------------- grading recorded logs
class _RecordedBox:
    """A sandbox stand-in that answers the test run with a recorded log."""

    def __init__(self, log: str):
        self.log = log
        self.files: dict[str, str] = {}
        self.scripts: list[str] = []

    def stage_file(self, name, content, mode=0o644):
        from dgm.sandbox.docker import STAGE_MOUNT

        path = f"{STAGE_MOUNT}/{name}"
        self.files[path] = content if isinstance(content, str) else content.decode()
        return path

    def run(self, cmd, **kwargs):
        import re

        from dgm.bench.grade import TEST_END, TEST_START
        from dgm.sandbox.docker import ExecResult

        self.scripts.append(cmd[-1])
        # The markers the script would echo (they carry the grading's nonce).
        start, end = (re.search(rf"echo '({re.escape(m)} [0-9a-f]+)'", cmd[-1]).group(1) for m in (TEST_START, TEST_END))
        return ExecResult(0, f"noise PASSED bogus\n{start}\n{self.log}\n{end}\n", 1.0)

    def remove(self, wait=True):
        pass


def test_test_time_is_the_test_commands_own():
    from dgm.bench.grade import TEST_CLOCK, TEST_END, own_test_time

    log = f"tests\n{TEST_END}\n{TEST_CLOCK} 1700000000.250000 1700000002.000000\n"
    assert own_test_time(log, 5.0) == pytest.approx(1.75)
    # A test printing a clock line of its own comes before the script's, which wins.
    assert own_test_time(f"{TEST_CLOCK} 1.0 900.0\n" + log, 5.0) == pytest.approx(1.75)
    assert own_test_time("timed out, no clock line\n", 5.0) == 5.0
    assert own_test_time(log, 1.0) == 1.0  # never more than the whole run
    # With the grading's nonce, only its own line counts, wherever a forged one stands.
    ours = f"{TEST_CLOCK} 0123abcd 1700000000.000000 1700000001.500000\n"
    forged = f"{TEST_CLOCK} ffff0000 1.0 2.0\n{TEST_CLOCK} 1.0 3.0\n"
    assert own_test_time(ours + forged, 5.0, "0123abcd") == pytest.approx(1.5)
    assert own_test_time(forged, 5.0, "0123abcd") == 5.0


def _eval_log(body: str, noise: str = "") -> str:
    # What swebench's eval script prints under `set -x`: setup noise, markers, tests.
    return (f"+ git show\n{noise}\n+ : '>>>>> Start Test Output'\n{body}\n"
            f"+ : '>>>>> End Test Output'\n+ git checkout abc tests/x.py\n")


def _pytest_lines(tests, status):
    return "\n".join(f"{status} {t}" for t in tests)


@pytest.mark.parametrize("instance_id", [FLASK, REQUESTS, PYTEST, PYLINT, VIEWCODE])
def test_grading_recorded_pytest_style_logs(lite, instance_id):
    task = lite.select([instance_id])[0]
    tests = list(task.FAIL_TO_PASS) + list(task.PASS_TO_PASS)
    passing = _eval_log("collected\n" + _pytest_lines(tests, "PASSED") + "\n==== 3 passed ====",
                        noise=_pytest_lines(task.FAIL_TO_PASS, "FAILED"))
    box = _RecordedBox(passing)
    result = grade(None, lite, task, task.patch, sandbox=box)
    assert result.resolved, result.tests_status
    # The eval script is swebench's, dropped as a file; grading leaves the test patch to it.
    assert box.files[EVAL_SCRIPT_PATH] == task.extra["eval_script"]
    assert "dgm_tests.patch" not in box.scripts[0] and f"bash {EVAL_SCRIPT_PATH}" in box.scripts[0]

    failing = _eval_log(_pytest_lines(task.FAIL_TO_PASS, "FAILED") + "\n" + _pytest_lines(task.PASS_TO_PASS, "PASSED"))
    assert not grade(None, lite, task, "", sandbox=_RecordedBox(failing)).resolved
    # Outside the markers nothing counts: noise claiming passes resolves nothing.
    outside = f"{_pytest_lines(tests, 'PASSED')}\n+ : '>>>>> Start Test Output'\n+ : '>>>>> End Test Output'\n"
    assert not grade(None, lite, task, "", sandbox=_RecordedBox(outside)).resolved


def test_grading_recorded_seaborn_log(lite_rows, tmp_path):
    row = lite_rows[SEABORN]
    path = tmp_path / "one.json"
    path.write_text(json.dumps([row]))
    bench = load_benchmark("swebench-lite", dataset=str(path))
    task = bench.tasks()[0]
    tests = list(task.FAIL_TO_PASS) + list(task.PASS_TO_PASS)
    # seaborn's parser reads `pytest --no-header -rA` lines "PASSED name" / "name FAILED".
    good = _eval_log("\n".join(f"PASSED {t}" for t in tests))
    assert grade(None, bench, task, task.patch, sandbox=_RecordedBox(good)).resolved
    bad = _eval_log("\n".join([f"{t} FAILED" for t in task.FAIL_TO_PASS] +
                              [f"PASSED {t}" for t in task.PASS_TO_PASS]))
    assert not grade(None, bench, task, "", sandbox=_RecordedBox(bad)).resolved


def test_dgm_mini_style_tasks_grade_as_before(lite):
    """A task without an eval script keeps the old flow: reset + apply the test patch."""
    from dataclasses import replace

    task = lite.select([FLASK])[0]
    plain = replace(task, extra={}, test_command="pytest -rA", log_parser="pytest")
    box = _RecordedBox(_pytest_lines(plain.FAIL_TO_PASS + plain.PASS_TO_PASS, "PASSED"))
    assert grade(None, lite, plain, plain.patch, sandbox=box).resolved
    assert "/dgm/in/tests.patch" in box.scripts[0] and EVAL_SCRIPT_PATH not in box.files



def test_swebench_grading_gets_at_least_what_its_tests_need(lite):
    """pylint's test_jobs_score skips itself under a 1-CPU quota: graded
    with the agents' default limits, the gold patch of an instance whose
    PASS_TO_PASS holds it (pylint-7080 in Lite) came out unresolved. Grading
    limits are raised, never lowered."""
    from dgm.bench.grade import prepare_grading_sandbox
    from dgm.sandbox.docker import SandboxLimits

    task = lite.select([PYLINT])[0]
    assert "tests/test_self.py::TestRunTC::test_jobs_score" in task.PASS_TO_PASS
    agents = SandboxLimits(cpus=1.0, memory_mb=2048, pids=256)
    box = prepare_grading_sandbox(None, lite, task, limits=agents)
    try:
        assert box.limits.cpus == min(2.0, os.cpu_count()) and box.limits.cpus > 1.0
        assert box.limits.memory_mb >= 4096 and box.limits.pids >= 1024
        assert box.limits.host_grace_s == agents.host_grace_s
    finally:
        box.remove()
    generous = SandboxLimits(cpus=2.0, memory_mb=16384, pids=4096)
    assert lite.grading_limits(generous) == generous
    # dgm-mini has no such needs: its grading keeps the agents' limits.
    mini = load_benchmark("dgm-mini")
    mini_box = prepare_grading_sandbox(None, mini, mini.tasks()[0], limits=agents)
    try:
        assert mini_box.limits == agents
    finally:
        mini_box.remove()


# --------------------------------------------------------------------------- offline builder: dependency resolution
# What pip 26 printed for pylint-7080's requirements_test.txt on a 3.9 image:
# coveralls needs docopt, which PyPI has only as an sdist.
DOCOPT_FAILURE = """ERROR: Cannot install -r requirements_test.txt (line 4) because these package versions have conflicting dependencies.

The conflict is caused by:
    coveralls 3.3.1 depends on docopt>=0.6.1
    coveralls 3.3.0 depends on docopt>=0.6.1

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/
"""


def _proc(returncode: int, out: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], returncode, out, "")


def _plan(requirements=("pytest",)) -> offline_build.BuildPlan:
    return offline_build.BuildPlan("x__y-1", "3.9", list(requirements), None, [], ".", "")


def test_sdist_only_dependencies_are_named_from_pips_messages(tmp_path):
    assert wheels.sdist_only_candidates(DOCOPT_FAILURE, tmp_path) == ["docopt>=0.6.1"]
    (tmp_path / "docopt-0.6.2-py2.py3-none-any.whl").write_bytes(b"")
    assert wheels.sdist_only_candidates(DOCOPT_FAILURE, tmp_path) == []  # already built
    assert wheels.sdist_only_candidates("ERROR: No matching distribution found for schema==0.7.5\n",
                                    tmp_path) == ["schema==0.7.5"]
    assert wheels.is_pure_wheel("docopt-0.6.2-py2.py3-none-any.whl", "3.9")
    assert wheels.is_pure_wheel("x-1-cp39-none-any.whl", "3.9")
    assert not wheels.is_pure_wheel("x-1-cp311-cp311-linux_x86_64.whl", "3.9")
    assert not wheels.is_pure_wheel("x-1-cp311-none-any.whl", "3.9")


def test_transitive_sdist_only_dependency_is_built_into_a_wheel(tmp_path, monkeypatch):
    builder = offline_build.OfflineBuilder(tmp_path, cache=tmp_path / "cache")
    calls, built = [], []

    def download(args, dest, python, **kw):
        calls.append((list(args), kw.get("cutoff", True)))
        return _proc(0) if built else _proc(1, DOCOPT_FAILURE)

    def wheel(req, wheels, python, constraints, cutoff=True):
        built.append(req)
        return True

    monkeypatch.setattr(builder, "_pip_download", download)
    monkeypatch.setattr(builder, "_wheel_from_sdist", wheel)
    builder._download_group(_plan(), ["-r", "req.txt"], tmp_path, tmp_path / "c.txt")
    assert built == ["docopt>=0.6.1"]
    assert [c[0] for c in calls] == [["-r", "req.txt"]] * 2


def test_unpinned_dependencies_resolve_before_the_cutoff_unless_a_pin_needs_later(tmp_path, monkeypatch):
    monkeypatch.delenv("DGM_SWEBENCH_PYPI_CUTOFF", raising=False)
    builder = offline_build.OfflineBuilder(tmp_path, cache=tmp_path / "cache")
    assert builder.cutoff == wheels.PYPI_CUTOFF
    cmd, env = builder._pip_command("download")
    assert cmd[cmd.index("--uploaded-prior-to") + 1] == wheels.PYPI_CUTOFF
    # The host's configured local indexes have no upload dates: not used under a cutoff.
    assert env["PIP_CONFIG_FILE"] == os.devnull
    cmd, env = builder._pip_command("download", cutoff=False)
    assert "--uploaded-prior-to" not in cmd and env.get("PIP_CONFIG_FILE") != os.devnull

    calls = []

    def download(args, dest, python, **kw):
        calls.append(kw.get("cutoff", True))
        if kw.get("cutoff", True):
            return _proc(1, "ERROR: No matching distribution found for tox==9.9.9\n")
        return _proc(0)

    monkeypatch.setattr(builder, "_pip_download", download)
    builder._download_group(_plan(["tox==9.9.9", "pytest"]), ["tox==9.9.9", "pytest"], tmp_path, tmp_path / "c")
    assert calls == [True, False]  # the pin newer than the cutoff lifts it for this step only

    monkeypatch.setenv("DGM_SWEBENCH_PYPI_CUTOFF", "none")
    assert offline_build.OfflineBuilder(tmp_path, cache=tmp_path / "cache").cutoff is None
    monkeypatch.setenv("DGM_SWEBENCH_PYPI_CUTOFF", "2021-01-21T00:00:00Z")
    assert offline_build.OfflineBuilder(tmp_path, cache=tmp_path / "cache").cutoff == "2021-01-21T00:00:00Z"
    # A prepared wheelhouse is the whole index: no dates to cut by.
    (tmp_path / "wh").mkdir()
    prepared = offline_build.OfflineBuilder(tmp_path, cache=tmp_path / "cache", wheelhouse=tmp_path / "wh")
    cmd, _ = prepared._pip_command("download")
    assert "--uploaded-prior-to" not in cmd and "--no-index" in cmd


def test_older_python_sees_the_testbed_env_through_symlinks():
    # tox-current-env (sphinx) runs the tests through a symlink to the env's
    # python; a venv python reached that way is the bare interpreter.
    step = offline_build.testbed_pth_step("3.9")
    assert "/usr/local/lib/python3.9/dist-packages/dgm-testbed.pth" in step
    assert "site.addsitedir('/opt/miniconda3/envs/testbed/lib/python3.9/site-packages')" in step
    assert offline_build.testbed_pth_step(offline_build.BASE_PYTHON) == ""  # the agent's own python stays clean
    dockerfile = offline_build.OFFLINE_DOCKERFILE.format(base="b", instance="i", python="3.9", version="v", testbed_pth=step,
                                                        stage_label="l", build_id="b")
    assert "dgm-testbed.pth" in dockerfile.split("FROM python\n")[-1]  # in the final stage


def test_test_patches_that_only_add_files_do_not_reset_the_setup_commit(lite, lite_rows):
    # swebench 4.1.0 would run a bare `git checkout BASE` here, which drops the
    # setup commit (sphinx's `pytest -rA`): SWE-bench issue #518, fixed upstream.
    row = lite_rows[ADDS_FILES]
    script = lite.select([ADDS_FILES])[0].extra["eval_script"]
    lines = script.splitlines()
    assert f"git checkout {row['base_commit']}" not in [ln.strip() for ln in lines]
    reset = "rm -f tests/roots/test-ext-autodoc/target/slots_only.py tests/test_ext_autodoc_slotsonly.py"
    assert lines.count(reset) == 2  # before the test patch and after the run, as swebench's reset
    assert lines.index(reset) < lines.index("git apply -v - <<'EOF_114329324912'")
    # Test patches that modify files keep swebench's own reset.
    viewcode = lite.select([VIEWCODE])[0].extra["eval_script"]
    assert f"git checkout {lite_rows[VIEWCODE]['base_commit']} tests/test_ext_viewcode.py" in viewcode


def test_without_a_difficulty_the_gold_patch_size_stands_in_for_scripted_models(lite_rows):
    from dgm.bench.swebench.benchmark import task_from_row

    def patch(lines: int) -> str:
        return "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n" + "".join(f"-old{i}\n+new{i}\n" for i in range(lines // 2))

    row = lite_rows[FLASK]
    levels = [task_from_row({**row, "patch": patch(n)}, "swebench-lite").difficulty for n in (2, 8, 16, 30, 50)]
    assert levels == [1, 2, 3, 4, 5]  # the rehearsal's "hard" tasks (>= 4) are the large fixes
    task = task_from_row({**row, "patch": patch(80), "difficulty": "<15 min fix"}, "swebench-verified")
    assert task.difficulty == 1 and task.extra["difficulty_known"]  # a dataset's own label wins


def test_bench_ls_shows_no_difficulty_where_the_dataset_has_none(monkeypatch):
    from tests.support.cli import run_dgm

    monkeypatch.setenv("DGM_SWEBENCH_LITE", str(LITE_FILE))  # the dataset a user points dgm at
    proc = run_dgm(["bench", "ls", "swebench-lite"])
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if DJANGO in line)
    assert row.split("│")[2].strip() == "-"
    mini = run_dgm(["bench", "ls", "dgm-mini"]).stdout
    (cell,) = [line.split("│")[2].strip() for line in mini.splitlines() if "confini__confini-1 " in line]
    assert cell in ("1", "2", "3", "4", "5")


# --------------------------------------------------------------------------- QA: datasets and image providers
@pytest.mark.parametrize("change,says", [
    (lambda r: r.pop("test_patch"), f"{FLASK} has no test_patch"),
    (lambda r: r.update(FAIL_TO_PASS="[]"), f"{FLASK} has an empty FAIL_TO_PASS"),
    (lambda r: r.update(PASS_TO_PASS="not json"), "must be lists of test names"),
])
def test_a_dataset_row_that_cannot_be_graded_right_is_one_line(tmp_path, lite_rows, change, says):
    row = dict(lite_rows[FLASK])
    change(row)
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([row]))
    with pytest.raises(UsageError, match=says):
        load_benchmark("swebench-lite", dataset=str(path)).select([FLASK])
    obj = tmp_path / "object.json"
    obj.write_text('{"a": 1}')
    with pytest.raises(UsageError, match="row 1 has no instance_id"):
        load_benchmark("swebench-lite", dataset=str(obj)).tasks()


def test_a_missing_clone_is_that_instance_unavailable_not_the_end_of_the_command(tmp_path, lite_rows, lite):
    """validate / eval go on with the other instances (as for an unsupported Python)."""
    (tmp_path / "mirror").mkdir()
    builder = offline_build.OfflineBuilder(tmp_path / "mirror", cache=tmp_path / "cache")

    class _NoImages:
        class images:
            @staticmethod
            def get(tag):
                if tag == builder.base_image:
                    return object()
                import docker.errors

                raise docker.errors.ImageNotFound(tag)

    tasks = lite.select([FLASK, REQUESTS])
    failures = builder.ensure_all(_NoImages(), tasks)
    assert set(failures) == {FLASK, REQUESTS}
    assert "no clone of pallets/flask" in failures[FLASK]


def test_an_eval_log_without_swebenchs_markers_passes_nothing(lite):
    """As swebench's get_logs_eval: without both markers the tests did not run as the script says."""
    from dgm.bench.grade import parse_test_log

    task = lite.select([FLASK])[0]
    tests = list(task.FAIL_TO_PASS) + list(task.PASS_TO_PASS)
    claims = _pytest_lines(tests, "PASSED")
    assert parse_test_log(task, claims, eval_script=True) == {}
    assert parse_test_log(task, f"+ : '>>>>> Start Test Output'\n{claims}\n", eval_script=True) == {}
    both = f"+ : '>>>>> Start Test Output'\n{claims}\n+ : '>>>>> End Test Output'\n"
    assert set(parse_test_log(task, both, eval_script=True)) == set(tests)
