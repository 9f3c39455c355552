"""The offline image builder end to end on a small synthetic SWE-bench instance:
a tiny repository cloned into a local mirror, a synthetic swebench spec, a
local wheelhouse (no network), then swebench's own eval script graded in the
image: gold resolves, empty does not; and the image keeps the agent contract."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from dgm.bench.grade import grade
from dgm.bench.registry import load_benchmark
from dgm.bench.swebench.offline_build import BUILD_STAGE_LABEL, OfflineBuilder
from dgm.sandbox.docker import Sandbox

pytestmark = pytest.mark.docker

REPO = "dgmtest/calc"
IID = "dgmtest__calc-1"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@l", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@l", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
CALC = "import tinydep\n\n\ndef add(a, b):\n    return tinydep.combine(a, -b)\n"
TESTS = ("import unittest\n\nfrom calc import add\n\n\nclass CalcTest(unittest.TestCase):\n"
         "    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n")


def git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def diff(repo: Path, edit) -> str:
    edit(repo)
    git(repo, "add", "-A")
    out = git(repo, "diff", "--cached")
    git(repo, "reset", "-q", "--hard")
    return out


def make_wheel(dest: Path, name: str, version: str, files: dict[str, str]) -> None:
    """A minimal pure-Python wheel (what `pip download` would have fetched)."""
    dist = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: dgm-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    contents[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(dest / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in contents.items():
            whl.writestr(path, text)


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    from swebench.harness.constants import MAP_REPO_TO_EXT, MAP_REPO_VERSION_TO_SPECS
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER
    from swebench.harness.log_parsers.python import parse_log_django

    # A spec in swebench's own format: Python 3.11 (the base image's), one pip
    # package from the wheelhouse, unittest as the test command.
    monkeypatch.setitem(MAP_REPO_VERSION_TO_SPECS, REPO, {"1.0": {
        "python": "3.11", "pip_packages": ["tinydep==1.0"], "test_cmd": "python -m unittest -v"}})
    monkeypatch.setitem(MAP_REPO_TO_EXT, REPO, "py")
    monkeypatch.setitem(MAP_REPO_TO_PARSER, REPO, parse_log_django)  # reads unittest's verbose lines

    work = tmp_path / "calc"
    (work / "tests").mkdir(parents=True)
    (work / "calc.py").write_text(CALC)
    (work / "tests" / "__init__.py").write_text("")
    (work / "tests" / "test_calc.py").write_text(TESTS)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    base = git(work, "rev-parse", "HEAD").strip()
    gold = diff(work, lambda r: (r / "calc.py").write_text(CALC.replace("-b", "b")))
    test_patch = diff(work, lambda r: (r / "tests" / "test_calc.py").write_text(
        TESTS + "\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(work), str(mirror / "dgmtest__calc.git"))

    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    import ensurepip

    bundled = Path(ensurepip.__file__).parent / "_bundled"
    for whl in bundled.glob("pip-*.whl"):
        (wheelhouse / whl.name).write_bytes(whl.read_bytes())
    make_wheel(wheelhouse, "tinydep", "1.0", {"tinydep.py": "def combine(a, b):\n    return a + b\n"})

    row = {"instance_id": IID, "repo": REPO, "base_commit": base, "environment_setup_commit": base,
           "version": "1.0", "problem_statement": "add() subtracts", "patch": gold, "test_patch": test_patch,
           "FAIL_TO_PASS": json.dumps(["test_add (tests.test_calc.CalcTest.test_add)"]),
           "PASS_TO_PASS": json.dumps(["test_zero (tests.test_calc.CalcTest.test_zero)"]), "hints_text": ""}
    dataset = tmp_path / "synthetic.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    bench = load_benchmark("swebench-verified", dataset=str(dataset), images="offline", repo_mirror=str(mirror))
    bench._provider = OfflineBuilder(mirror, cache=tmp_path / "cache", wheelhouse=wheelhouse,
                                     build_tools=("pip",))
    return bench


def test_offline_image_grades_gold_and_empty_and_keeps_agent_contract(synthetic, docker_client):
    bench = synthetic
    task = bench.select([IID])[0]
    tag = bench.image(task)
    try:
        docker_client.images.remove(tag, force=True)  # really build (layers may come from cache)
    except Exception:  # noqa: BLE001 - not there yet
        pass
    failures = bench.prepare_images(docker_client, [task])
    assert failures == {}
    assert bench.provider.timings[IID]["docker_build_s"] > 0
    # The build stage (wheelhouse, a second testbed) is not left behind as an untagged image.
    ours = f"{IID}.{os.getpid()}."
    left = [image.id for image in docker_client.images.list(all=True, filters={"label": BUILD_STAGE_LABEL})
            if image.labels.get(BUILD_STAGE_LABEL, "").startswith(ours)]
    assert left == []

    gold = grade(docker_client, bench, task, task.patch, test_timeout_s=120)
    assert gold.resolved, gold.log[-2000:]
    empty = grade(docker_client, bench, task, "", test_timeout_s=120)
    assert not empty.resolved
    assert empty.status_map.get("test_add (tests.test_calc.CalcTest.test_add)") == "FAILED"

    with Sandbox(docker_client, tag).start() as box:
        probe = box.exec(["bash", "-c",
                          "stat -c %u /testbed /testbed/calc.py && git -C /testbed rev-parse refs/dgm/base HEAD "
                          "&& /usr/bin/python3 -c 'import sys; print(sys.version_info >= (3, 8))' "
                          "&& source /opt/miniconda3/bin/activate && conda activate testbed "
                          "&& python -c 'import tinydep, sys; print(sys.prefix)' "
                          "&& git -C /testbed log --format=%s -1"], timeout_s=60)
    lines = probe.output.split()
    assert probe.exit_code == 0, probe.output
    assert lines[:2] == ["1000", "1000"]  # the agent user owns the repository
    assert lines[2] == lines[3]  # agents' diffs start at the post-setup commit
    assert "True" in lines and "/opt/miniconda3/envs/testbed" in lines
    assert lines[-1] == "SWE-bench"  # swebench's own setup script ran (its commit)


def test_unsupported_python_is_reported_per_instance_not_raised(synthetic, docker_client, monkeypatch):
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS

    monkeypatch.setitem(MAP_REPO_VERSION_TO_SPECS[REPO]["1.0"], "python", "3.7")
    bench = synthetic
    task = bench.select([IID])[0]
    try:
        docker_client.images.remove(bench.image(task), force=True)  # an existing image would be used as is
    except Exception:  # noqa: BLE001 - not there
        pass
    failures = bench.prepare_images(docker_client, [task])
    assert "needs Python 3.7" in failures[IID] and "--images pull" in failures[IID]
