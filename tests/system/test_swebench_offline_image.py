"""The offline image builder end to end on a small synthetic SWE-bench instance:
a tiny repository cloned into a local mirror, a synthetic swebench spec, a
local wheelhouse (no network), then swebench's own eval script graded in the
image: gold resolves, empty does not; and the image keeps the agent contract."""

from __future__ import annotations

import os

import pytest

from dgm.bench.grade import grade
from dgm.bench.swebench.offline_build import BUILD_STAGE_LABEL
from dgm.sandbox.docker import Sandbox
from tests.support.swebench_synthetic import IID, REPO, load_bench, make_instance, register_spec

pytestmark = pytest.mark.docker


def _drop_image(client, tag: str) -> None:
    """Remove the image `tag` names, not only the tag: a forced removal of a tag whose image a
    finished sandbox still references leaves that image behind, untagged (0.3 GB a run)."""
    import docker.errors

    from dgm.sandbox.docker import drain_removals

    drain_removals()  # the sandboxes of earlier tests, removed in the background
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return
    for container in client.containers.list(all=True, filters={"ancestor": image.id}):
        container.remove(force=True)
    client.images.remove(image.id, force=True)


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    register_spec(monkeypatch.setitem)
    return load_bench(make_instance(tmp_path), tmp_path / "cache")


def test_offline_image_grades_gold_and_empty_and_keeps_agent_contract(synthetic, docker_client):
    bench = synthetic
    task = bench.select([IID])[0]
    tag = bench.image(task)
    _drop_image(docker_client, tag)  # really build (layers may come from cache)
    failures = bench.prepare_images(docker_client, [task])
    assert failures == {}
    assert bench.provider.timings[IID]["docker_build_s"] > 0
    # The build stage (wheelhouse, a second testbed) is not left behind as an untagged image.
    ours = f"{IID}.{os.getpid()}."
    left = [image.id for image in docker_client.images.list(all=True, filters={"label": BUILD_STAGE_LABEL})
            if image.labels.get(BUILD_STAGE_LABEL, "").startswith(ours)]
    assert left == []
    # Nor is any earlier image of this instance: dropping the tag above removed its image, not untagged it.
    assert docker_client.images.list(filters={"dangling": True, "label": f"dgm.instance={IID}"}) == []

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
    _drop_image(docker_client, bench.image(task))  # an existing image would be used as is
    failures = bench.prepare_images(docker_client, [task])
    assert "needs Python 3.7" in failures[IID] and "--images pull" in failures[IID]
