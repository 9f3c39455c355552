"""Real SWE-bench (Lite, Verified) through the official `swebench` package.

What is swebench's and used as is: the per-repo/version specs
(`MAP_REPO_VERSION_TO_SPECS`), the eval script (`make_eval_script_list`: reset
the test files, apply the hidden test patch, run the spec's test command), the
test spec with its environment and repository scripts (`make_test_spec`), the
log parsers and the FAIL_TO_PASS / PASS_TO_PASS grading (in `dgm.bench.grade`).

What is dgm's: loading the dataset from a local file or the HuggingFace hub,
the DGM paper's named subsets, and where the image comes from
(`dgm.sandbox.swebench_images`: pulled, built by swebench, or built offline).

A task's `test_command` runs swebench's own eval script inside the instance
image; `Task.extra["eval_script"]` carries it so that grading can drop it into
the sandbox as a file (`grade.py` then leaves the test patch to the script).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.errors import NotFound, UsageError

LITE = "swebench-lite"
VERIFIED = "swebench-verified"
HF_DATASETS = {LITE: "princeton-nlp/SWE-bench_Lite", VERIFIED: "princeton-nlp/SWE-bench_Verified"}
# Where a downloaded copy of a hub dataset is kept in the cache.
LOCAL_NAMES = {LITE: ("swe-bench-lite.test.json", "swe-bench-lite.json"),
               VERIFIED: ("swe-bench-verified.test.json", "swe-bench-verified.json")}
DATASET_ENV = {LITE: "DGM_SWEBENCH_LITE", VERIFIED: "DGM_SWEBENCH_VERIFIED"}

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSETS_DIR = REPO_ROOT / "benchmarks" / "swebench"
# The DGM paper's staged-evaluation subsets (instance ids of SWE-bench Verified).
NAMED_SUBSETS = ("dgm-small", "dgm-medium", "dgm-big")

from dgm.bench.grade import EVAL_SCRIPT_PATH  # noqa: E402 - grading drops the script there
# Ref the image builders leave on the repository's post-setup commit. SWE-bench
# images commit their setup edits (e.g. sphinx's tox.ini) on top of
# base_commit, so an agent's diff must be taken against that commit.
DIFF_BASE_REF = "refs/dgm/base"
# The interpreter that runs agents inside instance images (the dgm base
# image's Debian python3, >= 3.8 as the seed agent needs); the testbed's own
# Python lives in the conda(-shim) env and may be older.
AGENT_PYTHON = "/usr/bin/python3"

_JSON_FIELDS = ("FAIL_TO_PASS", "PASS_TO_PASS")


def cache_dir() -> Path:
    """dgm's cache for SWE-bench datasets, build contexts and wheelhouses."""
    base = os.environ.get("DGM_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                          os.path.expanduser("~/.cache"), "dgm")
    return Path(base) / "swebench"


# --------------------------------------------------------------------------- datasets
def read_dataset_file(path: Path) -> list[dict]:
    """Rows of a SWE-bench dataset file: JSON (a list), JSONL, or parquet."""
    if not path.is_file():
        raise NotFound(f"dataset file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # comes with `datasets`, a swebench dependency

            return pq.read_table(path).to_pylist()
        text = path.read_text()
        if suffix == ".jsonl" or (not text.lstrip().startswith("[")):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = json.loads(text)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read dataset {path}: {exc}") from None
    if not isinstance(rows, list):
        raise UsageError(f"dataset {path}: expected a JSON list of SWE-bench instances")
    return rows


REQUIRED_FIELDS = ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
                   "FAIL_TO_PASS", "PASS_TO_PASS", "version")


def check_rows(rows: list, source: str) -> None:
    """UsageError naming the first row a task could not be made from (or graded right)."""
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UsageError(f"dataset {source}: row {number} is not an object (expected SWE-bench instances)")
        name = row.get("instance_id", f"row {number}")
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise UsageError(f"dataset {source}: {name} has no {', '.join(missing)}")
        try:
            lists = {key: _json_list(row[key]) for key in ("FAIL_TO_PASS", "PASS_TO_PASS")}
        except (ValueError, TypeError):
            raise UsageError(f"dataset {source}: {name}: FAIL_TO_PASS / PASS_TO_PASS must be lists of test "
                             "names") from None
        if not lists["FAIL_TO_PASS"]:
            # Without them any patch that keeps PASS_TO_PASS green would count as resolved.
            raise UsageError(f"dataset {source}: {name} has an empty FAIL_TO_PASS: nothing would tell a fix "
                             "from no fix")


def _default_dataset_file(name: str) -> Path | None:
    env = os.environ.get(DATASET_ENV[name])
    if env:
        return Path(env).expanduser()
    directory = cache_dir() / "datasets"
    for filename in LOCAL_NAMES[name]:
        if (directory / filename).is_file():
            return directory / filename
    return None


def load_rows(name: str, dataset: str | os.PathLike | None = None) -> tuple[list[dict], str]:
    """The benchmark's rows and where they came from.

    Order: `dataset` (a file path, or a hub dataset name such as
    princeton-nlp/SWE-bench_Verified), $DGM_SWEBENCH_LITE / $DGM_SWEBENCH_VERIFIED,
    the local cache, then the HuggingFace hub (online only; the download is
    cached for next time). Nothing beside the repository is looked at: a
    clone has only what it ships.
    """
    if dataset is not None:
        path = Path(dataset).expanduser()
        if path.exists() or path.suffix.lower() in (".json", ".jsonl", ".parquet"):
            return read_dataset_file(path), str(path)
        return _load_from_hub(name, str(dataset)), f"hf:{dataset}"
    local = _default_dataset_file(name)
    if local is not None:
        return read_dataset_file(local), str(local)
    return _load_from_hub(name, HF_DATASETS[name]), f"hf:{HF_DATASETS[name]}"


def _load_from_hub(name: str, hub_name: str) -> list[dict]:
    try:
        import logging

        from datasets import load_dataset

        # Offline, the hub client logs each of its retries: the one line below says it all.
        for logger in ("huggingface_hub", "datasets", "fsspec", "urllib3"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        rows = [dict(r) for r in load_dataset(hub_name, split="test")]
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, auth: all one message
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UsageError(
            f"{name}: no local dataset and the HuggingFace hub did not answer for {hub_name} ({reason}); "
            f"pass --dataset FILE (JSON/JSONL/parquet) or set ${DATASET_ENV[name]}") from None
    target = cache_dir() / "datasets" / LOCAL_NAMES[name][0]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, target)
    return rows


def subset_ids(name: str) -> list[str]:
    """Instance ids of a DGM paper subset (dgm-small / dgm-medium / dgm-big)."""
    if name not in NAMED_SUBSETS:
        raise NotFound(f"unknown subset {name!r} (known: {', '.join(NAMED_SUBSETS)}, full)")
    return list(json.loads((SUBSETS_DIR / f"{name}.json").read_text()))


# --------------------------------------------------------------------------- specs
def _json_list(value) -> list[str]:
    if isinstance(value, str):
        return list(json.loads(value)) if value.strip() else []
    return list(value or [])


def normalise_row(row: dict) -> dict:
    """A row as swebench expects it (lists may come as JSON strings or lists)."""
    out = dict(row)
    for key in _JSON_FIELDS:
        out[key] = _json_list(row.get(key))
    out["version"] = str(row.get("version", ""))
    return out


def specs_for(row: dict) -> dict:
    """swebench's install/test specs for the row's repo and version."""
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS

    try:
        return MAP_REPO_VERSION_TO_SPECS[row["repo"]][str(row["version"])]
    except KeyError:
        raise UsageError(f"{row.get('instance_id')}: swebench has no spec for {row.get('repo')} "
                         f"version {row.get('version')!r}") from None


def eval_script(row: dict) -> str:
    """swebench's eval script for the row (no network needed)."""
    from swebench.harness.test_spec.create_scripts import make_eval_script_list

    specs = specs_for(row)
    commands = make_eval_script_list(row, specs, "testbed", "/testbed", row["base_commit"], row["test_patch"])
    commands = [_reset_new_test_files(c, row) for c in commands]
    # The same header swebench's TestSpec.eval_script puts on it.
    return "\n".join(["#!/bin/bash", "set -uxo pipefail"] + commands) + "\n"


def _reset_new_test_files(command: str, row: dict) -> str:
    """swebench 4.1.0's fix-up for test patches that only add files.

    swebench resets the test files with `git checkout BASE FILES...`, where
    FILES are the files the test patch modifies. When it only adds files
    (sphinx-8595, sphinx-9711, django-16877) the list is empty, and
    `git checkout BASE` moves HEAD back to the base commit. That undoes the
    setup commit, and with it sphinx's `pytest -rA` in tox.ini, so no test
    result can be parsed and even the gold patch fails (SWE-bench issue #518).
    Upstream fixed it later (SWE-bench PR #539) by removing the new files
    instead, and this does the same."""
    if command.strip() != f"git checkout {row['base_commit']}":
        return command
    new_files = re.findall(r"^--- /dev/null\n\+\+\+ b/(\S+)", row["test_patch"], flags=re.M)
    return "rm -f " + " ".join(shlex.quote(f) for f in new_files) if new_files else "true"


# swebench fetches requirements.txt / environment.yml from GitHub while making
# a test spec. Offline, the same files come from the local repository mirror:
# the `requests` module swebench's spec code uses is swapped for one that reads
# `git show <commit>:<path>` from the mirror, so the cleaning and recursion
# logic stays swebench's. One spec at a time: the swap is module-global.
_spec_lock = threading.Lock()


class _MirrorResponse:
    def __init__(self, status_code: int, text: str = ""):
        self.status_code = status_code
        self.text = text


class _MirrorRequests:
    def __init__(self, read_file, fallback):
        self._read_file = read_file
        self._fallback = fallback

    def get(self, url: str, headers=None, **kwargs):
        from swebench.harness.constants import SWE_BENCH_URL_RAW

        if url.startswith(SWE_BENCH_URL_RAW):
            owner, name, commit, path = url[len(SWE_BENCH_URL_RAW):].lstrip("/").split("/", 3)
            text = self._read_file(f"{owner}/{name}", commit, os.path.normpath(path))
            if text is not None:
                return _MirrorResponse(200, text)
            if self._fallback is None:
                return _MirrorResponse(404)
        if self._fallback is None:
            return _MirrorResponse(404)
        return self._fallback.get(url, headers=headers, **kwargs)


@contextmanager
def _requirements_from(read_file, allow_network: bool):
    import requests as real_requests
    from swebench.harness.test_spec import python as spec_python

    with _spec_lock:
        saved = spec_python.requests
        spec_python.requests = _MirrorRequests(read_file, real_requests if allow_network else None)
        # swebench caches these per (repo, commit); a cached failure or a file
        # read from another mirror must not leak between calls.
        spec_python.get_requirements_by_commit.cache_clear()
        spec_python.get_environment_yml_by_commit.cache_clear()
        try:
            yield
        finally:
            spec_python.requests = saved
            spec_python.get_requirements_by_commit.cache_clear()
            spec_python.get_environment_yml_by_commit.cache_clear()


def make_spec(row: dict, read_file=None, *, allow_network: bool = True):
    """swebench's TestSpec for the row; requirement files come from `read_file`
    (repo, commit, path) -> text | None when given, else from GitHub."""
    from swebench.harness.test_spec.test_spec import make_test_spec

    if read_file is None:
        read_file = lambda repo, commit, path: None  # noqa: E731
    try:
        with _requirements_from(read_file, allow_network):
            return make_test_spec(row)
    except Exception as exc:  # noqa: BLE001 - requests' connection errors (OSErrors too) when offline
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise UsageError(f"{row['instance_id']}: its environment needs requirement files from GitHub, which "
                             f"did not answer; give --repo-mirror DIR with a clone of {row['repo']}") from None
        if isinstance(exc, (ValueError, OSError)):
            raise UsageError(f"{row['instance_id']}: cannot make the swebench test spec: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        raise


def task_from_row(row: dict, benchmark: str) -> Task:
    row = normalise_row(row)
    script = eval_script(row)
    first_line = (row.get("problem_statement") or "").strip().splitlines()[:1]
    return Task(
        instance_id=row["instance_id"], repo=row["repo"], base_commit=row["base_commit"],
        problem_statement=row.get("problem_statement", ""), patch=row.get("patch", ""),
        test_patch=row["test_patch"], FAIL_TO_PASS=tuple(row["FAIL_TO_PASS"]),
        PASS_TO_PASS=tuple(row["PASS_TO_PASS"]), version=row["version"], benchmark=benchmark,
        test_command=f"bash {EVAL_SCRIPT_PATH}", log_parser="swebench",
        summary=(first_line[0][:100] if first_line else ""),
        difficulty=_difficulty(row.get("difficulty")),
        extra={"eval_script": script, "diff_base": DIFF_BASE_REF, "agent_python": AGENT_PYTHON,
               "row": row, "python": str(specs_for(row).get("python", "")),
               # Lite has no difficulty: `difficulty` is then only the scripted models' default.
               "difficulty_known": row.get("difficulty") is not None},
    )


def _difficulty(label) -> int:
    # Verified's difficulty buckets, mapped onto dgm's 1..5 scale.
    return {"<15 min fix": 1, "15 min - 1 hour": 2, "1-4 hours": 4, ">4 hours": 5}.get(label or "", 1)


# --------------------------------------------------------------------------- benchmark
class SweBench(Benchmark):
    """SWE-bench Lite or Verified as a dgm Benchmark, with named subsets.

    `images` picks the provider (see `dgm.sandbox.swebench_images`): "auto",
    "pull", "build" or "offline"; `repo_mirror` is the directory of local
    clones the offline builder (and offline spec-making) reads.
    """

    test_timeout_s = 1800.0  # as SWE-bench's own harness (and `dgm bench validate`) allows
    # Images are pulled or built per instance (minutes each), and some instances cannot have one.
    needs_image_preparation = True

    def __init__(self, name: str, *, dataset: str | os.PathLike | None = None, images: str = "auto",
                 repo_mirror: str | os.PathLike | None = None, wheelhouse: str | os.PathLike | None = None):
        if name not in HF_DATASETS:
            raise NotFound(f"unknown SWE-bench benchmark {name!r} (known: {', '.join(HF_DATASETS)})")
        self.name = name
        self.dataset = dataset
        self.images = images
        self.repo_mirror = Path(repo_mirror).expanduser() if repo_mirror else None
        from dgm.sandbox.swebench_images import check_provider_choice

        # Now, not when the first image is wanted (after the archive and the campaign were made).
        check_provider_choice(images, self.repo_mirror)
        self.wheelhouse = Path(wheelhouse).expanduser() if wheelhouse else None
        self._provider = None
        self.source = ""

    @cached_property
    def _rows(self) -> dict[str, dict]:
        rows, self.source = load_rows(self.name, self.dataset)
        check_rows(rows, self.source)
        return {r["instance_id"]: r for r in rows}

    @cached_property
    def _tasks(self) -> dict[str, Task]:
        return {iid: task_from_row(row, self.name) for iid, row in self._rows.items()}

    def tasks(self) -> list[Task]:
        return list(self._tasks.values())

    def row(self, instance_id: str) -> dict:
        return normalise_row(self._rows[instance_id])

    def select(self, ids: list[str] | None) -> list[Task]:
        if ids is None:
            return self.tasks()
        missing = [i for i in ids if i not in self._rows]
        if missing:
            shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            raise NotFound(f"{self.name}: no instance {shown} in {self.source}")
        return [self._task(i) for i in ids]

    def _task(self, instance_id: str) -> Task:
        # Building every task's eval script is cheap, but a select() of a few
        # ids should not depend on every row of the file being well-formed.
        if "_tasks" in self.__dict__:
            return self._tasks[instance_id]
        return task_from_row(self._rows[instance_id], self.name)

    # -- named subsets: what a campaign's --stages / --heldout name ----------
    def subsets(self) -> list[str]:
        """Names `subset` accepts."""
        return [*NAMED_SUBSETS, "full"]

    def subset(self, name: str) -> list[str]:
        """Instance ids of a named subset, in the list's order.

        The DGM lists are SWE-bench Verified ids; on another dataset (Lite)
        the subset is the part of the list that the dataset holds.
        """
        if name == "full":
            return list(self._rows)
        ids = subset_ids(name)
        if self.name == VERIFIED:
            missing = [i for i in ids if i not in self._rows]
            if missing:
                raise NotFound(f"{self.name}: subset {name} names {len(missing)} instance(s) missing from "
                               f"{self.source} (e.g. {missing[0]})")
            return ids
        return [i for i in ids if i in self._rows]

    # -- images ----------------------------------------------------------------
    @property
    def provider(self):
        if self._provider is None:
            from dgm.sandbox.swebench_images import make_provider

            self._provider = make_provider(self.images, repo_mirror=self.repo_mirror, wheelhouse=self.wheelhouse)
        return self._provider

    def image(self, task: Task) -> str:
        return self.provider.tag(task)

    def prepare_images(self, docker_client, tasks: list[Task], *, progress=None) -> dict[str, str]:
        """Make sure every task's image exists (pull or build it); returns
        {instance_id: error line} for those that could not be produced."""
        return self.provider.ensure_all(docker_client, tasks, progress=progress)

    def repo_tar(self, task: Task) -> bytes | None:
        return None  # the instance image holds /testbed

    # -- grading -----------------------------------------------------------------
    def grading_limits(self, limits):
        """The grading sandbox's limits: at least what SWE-bench's tests need,
        whatever the agents get. The official harness caps neither CPU,
        memory nor processes. Some tests skip themselves below two CPUs
        (pylint-7080's PASS_TO_PASS `test_jobs_score` reads the CPU quota), and
        a skip is not a pass; others start many processes."""
        from dataclasses import replace

        return replace(limits, cpus=max(limits.cpus, min(2.0, float(os.cpu_count() or 1))),
                       memory_mb=max(limits.memory_mb, 4096), pids=max(limits.pids, 1024))
