"""Which images `dgm sandbox prune` keeps: the pure decision (dgm/bench/images.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dgm.bench.images import judge
from dgm.bench.swebench.offline_build import OFFLINE_BUILDER_VERSION
from dgm.sandbox.images import ImageInfo, base_image_tag


def image(tags=(), **labels) -> ImageInfo:
    return ImageInfo(id="sha256:" + "ab" * 32, tags=tuple(tags), size=10, shared_size=4,
                     created=datetime(2026, 1, 1, tzinfo=timezone.utc), labels=labels)


def test_untagged_images_are_never_needed_even_for_a_needed_task_once_past_the_grace():
    leftover = image((), **{"dgm.image": "swebench", "dgm.instance": "a__b-1"})
    verdict = judge(leftover, {"a__b-1"})
    assert not verdict.needed and "untagged" in verdict.reason
    soon = datetime(2026, 1, 1, 0, 30, tzinfo=timezone.utc)
    assert judge(leftover, set(), untagged_grace=timedelta(hours=1), now=soon).needed  # maybe a build in progress
    assert not judge(leftover, set(), untagged_grace=timedelta(minutes=20), now=soon).needed


def test_a_task_image_is_needed_only_while_the_archive_names_its_task():
    offline = image([f"dgm-sweb.offline.a_1776_b-1:{OFFLINE_BUILDER_VERSION}"],
                    **{"dgm.image": "swebench", "dgm.instance": "a__b-1"})
    assert judge(offline, {"a__b-1"}).needed
    assert not judge(offline, {"other"}).needed


def test_outdated_versions_go_whatever_the_archive_needs():
    old = image(["dgm-sweb.offline.a_1776_b-1:v1"], **{"dgm.image": "swebench", "dgm.instance": "a__b-1"})
    verdict = judge(old, {"a__b-1"})
    assert not verdict.needed and "outdated" in verdict.reason
    assert judge(image([base_image_tag()], **{"dgm.image": "base"}), set()).needed
    assert not judge(image(["dgm-base:bookworm-v0"], **{"dgm.image": "base"}), set()).needed


def test_kinds_dgm_does_not_know_are_kept_unless_untagged_or_of_an_unused_task():
    assert judge(image(["dgm-polyglot:v9"], **{"dgm.image": "polyglot"}), set()).needed
    assert not judge(image(["dgm-x:v1"], **{"dgm.image": "x", "dgm.instance": "t"}), set()).needed
    assert image(["t:1"]).own_size == 6
