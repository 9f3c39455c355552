"""SWE-bench Lite and Verified as a dgm Benchmark: tasks from rows, named
subsets, images from a provider, and grading limits its tests need."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from dgm.bench.base import Benchmark
from dgm.bench.grade import EVAL_SCRIPT_PATH
from dgm.bench.swebench.dataset import (HF_DATASETS, NAMED_SUBSETS, VERIFIED, check_rows, load_rows,
                                        normalise_row, subset_ids)
from dgm.bench.swebench.images import AGENT_PYTHON, DIFF_BASE_REF
from dgm.bench.swebench.specs import eval_script, specs_for
from dgm.bench.task import Task
from dgm.errors import NotFound


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
        difficulty=_difficulty(row.get("difficulty"), row.get("patch") or ""),
        extra={"eval_script": script, "diff_base": DIFF_BASE_REF, "agent_python": AGENT_PYTHON,
               "row": row, "python": str(specs_for(row).get("python", "")),
               # Lite has no difficulty: `difficulty` is then the gold patch's size, for scripted models only.
               "difficulty_known": row.get("difficulty") is not None},
    )


# Lines the gold patch changes -> difficulty, where the dataset gives none (Lite).
PATCH_SIZE_DIFFICULTY = ((5, 1), (10, 2), (20, 3), (40, 4))


def _difficulty(label, gold_patch: str) -> int:
    if label:  # Verified's difficulty buckets, mapped onto dgm's 1..5 scale.
        return {"<15 min fix": 1, "15 min - 1 hour": 2, "1-4 hours": 4, ">4 hours": 5}.get(label, 1)
    # Without one, only scripted models read it (`min_difficulty`, as the
    # rehearsal's "hard tasks"): the size of the fix stands in for its difficulty,
    # so a rehearsal on Lite meets easy and hard tasks as on dgm-mini.
    changed = sum(1 for line in gold_patch.splitlines()
                  if line[:1] in "+-" and not line.startswith(("+++", "---")))
    return next((level for limit, level in PATCH_SIZE_DIFFICULTY if changed <= limit), 5)


class SweBench(Benchmark):
    """SWE-bench Lite or Verified as a dgm Benchmark, with named subsets.

    `images` picks the provider (see `dgm.bench.swebench.providers`): "auto",
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
        from dgm.bench.swebench.providers import check_provider_choice

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
            from dgm.bench.swebench.providers import make_provider

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
