"""Harness self-check (SWE-bench's validation practice): for every instance the
gold patch must resolve and the empty patch must not.

Works for any Benchmark; benchmarks whose images must first be pulled or
built (SWE-bench: `needs_image_preparation`) get a chance to do so through
`prepare_images`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from dgm.bench.grade import grade
from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.sandbox.docker import SandboxLimits


@dataclass
class Validation:
    instance_id: str
    repo: str
    gold_resolved: bool | None = None
    empty_resolved: bool | None = None
    gold_s: float = 0.0
    empty_s: float = 0.0
    image_s: float = 0.0
    error: str | None = None
    """Why the instance could not be checked (no image, an unsupported Python...)."""
    gold_report: dict = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return self.error is None and self.gold_resolved is True and self.empty_resolved is False

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "unavailable"
        return "agrees" if self.agrees else "DISAGREES"

    def to_json(self) -> dict:
        data = asdict(self)
        data["agrees"] = self.agrees
        data["verdict"] = self.verdict
        return data


def _failed_tests(report: dict) -> list[str]:
    out = []
    for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        out += [f"{key}: {t}" for t in (report.get(key, {}) or {}).get("failure", [])]
    return out


def validate(docker_client, benchmark: Benchmark, tasks: list[Task], *, limits: SandboxLimits | None = None,
             test_timeout_s: float = 1800.0, on_done: Callable[[Validation], None] | None = None,
             on_image: Callable[[Task, str | None], None] | None = None, workers: int = 1) -> list[Validation]:
    """Each task's verdict, in task order; `workers` tasks at a time (each
    task's two gradings run one after the other)."""
    if workers > 1 and len(tasks) > 1:
        from concurrent.futures import ThreadPoolExecutor

        def one(task: Task) -> Validation:
            return validate(docker_client, benchmark, [task], limits=limits, test_timeout_s=test_timeout_s,
                            on_done=on_done, on_image=on_image)[0]

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, tasks))
    results: list[Validation] = []
    for task in tasks:
        result = Validation(task.instance_id, task.repo)
        started = time.monotonic()
        # Per instance, so that one missing image is that instance's verdict only.
        # Benchmarks whose images must merely exist (dgm-mini) are not probed here:
        # a missing one fails its grading, and `dgm bench validate` checks them first.
        if benchmark.needs_image_preparation:
            failures = benchmark.prepare_images(docker_client, [task])
            result.error = failures.get(task.instance_id)
        result.image_s = time.monotonic() - started
        if on_image:
            on_image(task, result.error)
        if result.error is None:
            try:
                gold = grade(docker_client, benchmark, task, task.patch, limits=limits, test_timeout_s=test_timeout_s)
                result.gold_resolved, result.gold_s = gold.resolved, gold.test_duration_s
                result.gold_report = {"failed": _failed_tests(gold.tests_status)[:20], "error": gold.error}
                empty = grade(docker_client, benchmark, task, "", limits=limits, test_timeout_s=test_timeout_s)
                result.empty_resolved, result.empty_s = empty.resolved, empty.test_duration_s
            except Exception as exc:  # noqa: BLE001 - one instance's failure is reported, the rest go on
                result.error = f"grading failed: {type(exc).__name__}: {exc}"
        results.append(result)
        if on_done:
            on_done(result)
    return results
