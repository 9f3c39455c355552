"""The Benchmark seam: what a family must implement, and the defaults of what it may."""

from __future__ import annotations

import pytest

from dgm.bench.base import Benchmark
from dgm.bench.task import Task
from dgm.errors import ImageUnavailable, NotFound, UsageError


def _task(iid: str) -> Task:
    return Task(instance_id=iid, repo="o/r", base_commit="0" * 40, problem_statement="p", patch="", test_patch="",
                FAIL_TO_PASS=("t",), PASS_TO_PASS=(), version="1", benchmark="two", test_command="true")


class TwoTasks(Benchmark):
    name = "two"

    def tasks(self):
        return [_task("two__a-1"), _task("two__b-2")]

    def image(self, task):
        return f"img-{task.instance_id[5]}:1"

    def repo_tar(self, task):
        return None


class _Images:
    def __init__(self, present):
        self.present, self.asked = set(present), []

    def get(self, tag):
        import docker.errors

        self.asked.append(tag)
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)


class _Client:
    def __init__(self, present):
        self.images = _Images(present)


def test_a_family_must_implement_the_required_members():
    class Half(Benchmark):
        name = "half"

        def tasks(self):
            return []

    with pytest.raises(TypeError, match="image"):
        Half()


def test_optional_members_have_defaults():
    from dgm.sandbox.docker import SandboxLimits

    bench = TwoTasks()
    assert bench.subsets() == []
    with pytest.raises(UsageError, match="no named subsets"):
        bench.subset("small")
    assert bench.test_timeout_s is None and bench.needs_image_preparation is False
    limits = SandboxLimits(cpus=1.0, memory_mb=512, pids=64)
    assert bench.grading_limits(limits) is limits
    assert [t.instance_id for t in bench.select(["two__b-2", "two__a-1"])] == ["two__b-2", "two__a-1"]
    assert len(bench.select(None)) == 2
    with pytest.raises(NotFound, match="nope"):
        bench.select(["nope"])


def test_default_image_preparation_checks_each_image_once():
    bench = TwoTasks()
    client = _Client({"img-a:1", "img-b:1"})
    seen = []
    tasks = bench.tasks() + bench.tasks()
    assert bench.prepare_images(client, tasks, progress=lambda task, error: seen.append((task.instance_id, error))) == {}
    assert client.images.asked == ["img-a:1", "img-b:1"]
    assert seen == [(t.instance_id, None) for t in tasks]
    with pytest.raises(ImageUnavailable, match="img-b:1 is missing"):
        bench.prepare_images(_Client({"img-a:1"}), tasks)
