"""A small synthetic SWE-bench instance the offline builder can build with no
network: a tiny repository in a local mirror, a spec in swebench's own format
(registered in swebench's tables), and a local wheelhouse. Used in-process by
tests and by child processes (`swebench_campaign_proc`) alike."""

from __future__ import annotations

import base64
import ensurepip
import hashlib
import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = "dgmtest/calc"
IID = "dgmtest__calc-1"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@l", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@l", "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
CALC = "import tinydep\n\n\ndef add(a, b):\n    return tinydep.combine(a, -b)\n"
TESTS = ("import unittest\n\nfrom calc import add\n\n\nclass CalcTest(unittest.TestCase):\n"
         "    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n")
# A spec in swebench's own format: Python 3.11 (the base image's), one pip
# package from the wheelhouse, unittest as the test command.
SPEC = {"python": "3.11", "pip_packages": ["tinydep==1.0"], "test_cmd": "python -m unittest -v"}


@dataclass
class SyntheticInstance:
    dataset: Path
    mirror: Path
    wheelhouse: Path
    row: dict


def register_spec(setitem=None) -> None:
    """Make swebench know the synthetic repository (`setitem`: e.g. monkeypatch.setitem)."""
    from swebench.harness.constants import MAP_REPO_TO_EXT, MAP_REPO_VERSION_TO_SPECS
    from swebench.harness.log_parsers import MAP_REPO_TO_PARSER
    from swebench.harness.log_parsers.python import parse_log_django

    setitem = setitem or (lambda mapping, key, value: mapping.__setitem__(key, value))
    setitem(MAP_REPO_VERSION_TO_SPECS, REPO, {"1.0": dict(SPEC)})
    setitem(MAP_REPO_TO_EXT, REPO, "py")
    setitem(MAP_REPO_TO_PARSER, REPO, parse_log_django)  # reads unittest's verbose lines


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


def make_instance(root: Path) -> SyntheticInstance:
    """The repository, its bare clone in `root/mirror`, the wheelhouse and a one-row dataset file."""
    work = root / "calc"
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
    mirror = root / "mirror"
    mirror.mkdir()
    git(root, "clone", "-q", "--bare", str(work), str(mirror / "dgmtest__calc.git"))

    wheelhouse = root / "wheelhouse"
    wheelhouse.mkdir()
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    for whl in bundled.glob("pip-*.whl"):
        (wheelhouse / whl.name).write_bytes(whl.read_bytes())
    make_wheel(wheelhouse, "tinydep", "1.0", {"tinydep.py": "def combine(a, b):\n    return a + b\n"})

    row = {"instance_id": IID, "repo": REPO, "base_commit": base, "environment_setup_commit": base,
           "version": "1.0", "problem_statement": "add() subtracts", "patch": gold, "test_patch": test_patch,
           "FAIL_TO_PASS": json.dumps(["test_add (tests.test_calc.CalcTest.test_add)"]),
           "PASS_TO_PASS": json.dumps(["test_zero (tests.test_calc.CalcTest.test_zero)"]), "hints_text": ""}
    dataset = root / "synthetic.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    return SyntheticInstance(dataset, mirror, wheelhouse, row)


def load_bench(instance: SyntheticInstance, cache: Path):
    """swebench-verified over the synthetic row, its offline builder on the local wheelhouse."""
    from dgm.bench.registry import load_benchmark
    from dgm.bench.swebench.offline_build import OfflineBuilder

    bench = load_benchmark("swebench-verified", dataset=str(instance.dataset), images="offline",
                           repo_mirror=str(instance.mirror))
    bench._provider = OfflineBuilder(instance.mirror, cache=cache, wheelhouse=instance.wheelhouse,
                                     build_tools=("pip",))
    return bench
