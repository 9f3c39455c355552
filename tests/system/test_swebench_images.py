"""SWE-bench image providers against the real Docker engine."""

from __future__ import annotations

import json

import pytest

from dgm.bench.registry import load_benchmark
from dgm.bench.swebench import offline_build, providers
from dgm.bench.swebench.images import image_exists
from dgm.errors import ImageUnavailable
from tests.support.harness import FIXTURES

LITE_FILE = FIXTURES / "swebench" / "swebench-rows.json"
FLASK = "pallets__flask-5101"  # a fixture row with a pytest parser and requirements files


@pytest.fixture(scope="module")
def lite():
    assert any(r["instance_id"] == FLASK for r in json.loads(LITE_FILE.read_text()))
    return load_benchmark("swebench-lite", dataset=str(LITE_FILE))


def test_a_failed_pull_says_the_engines_reason_not_its_http_status(lite, docker_client):
    """The real engine refuses the pull (offline: no registry; online: no such
    repository); the message carries its explanation, not the SDK's
    "500 Server Error for http+docker://..." line that used to hide it."""
    task = lite.select([FLASK])[0]
    provider = providers.PullProvider(namespace="dgm-test-no-such-namespace")
    with pytest.raises(ImageUnavailable) as caught:
        provider.ensure(docker_client, task)
    message = str(caught.value)
    assert "cannot pull dgm-test-no-such-namespace/sweb.eval.x86_64.pallets_1776_flask-5101:latest (" in message
    assert "http+docker" not in message and "Server Error" not in message
    reason, hint = message.split(":latest (", 1)[1].split("); choose", 1)
    assert reason.strip()
    assert "--images pull" not in hint and "--images offline" in hint  # not the choice that just failed


def test_auto_uses_an_offline_image_built_earlier_without_a_mirror(lite, docker_client, base_image):
    task = lite.select([FLASK])[0]
    tag = offline_build.offline_tag(task)
    present = image_exists(docker_client, tag)
    if not present:  # stand one in: only its name matters to the provider
        docker_client.images.get(base_image).tag(*tag.split(":"))
    try:
        assert providers.AutoProvider(None).ensure(docker_client, task) == tag
    finally:
        if not present:
            docker_client.images.remove(tag, noprune=True)
