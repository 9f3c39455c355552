"""Which of dgm's images are still needed: the decision behind `dgm sandbox prune`.

Pure: images (from `dgm.sandbox.images.list_images`) and the task ids that
campaigns need in, a verdict per image out. An image is not needed when

- it is untagged: a build's leftover (a killed build's stage, a tag that
  moved to a newer build), which nothing can name to run; unless it is
  younger than a grace period, since a build in progress has such images too;
- it was made for one task (label `dgm.instance`) that no campaign or task
  run in the archive names: rebuilt on demand, it costs minutes, not a disk;
- a newer dgm no longer uses it: its kind's builder has moved on to another
  version and tags its images differently.

Any other image is kept, including kinds this module does not know: a kind
only says which of its tags are current by registering in `CURRENT_TAG`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from dgm.sandbox.images import ImageInfo, base_image_tag


def _base_current(tag: str) -> bool:
    return tag == base_image_tag()


def _swebench_current(tag: str) -> bool:
    from dgm.bench.swebench.offline_build import OFFLINE_BUILDER_VERSION
    from dgm.bench.swebench.providers import DGM_LAYER_VERSION

    repository, _, version = tag.rpartition(":")
    if repository.startswith("dgm-sweb.offline."):
        return version == OFFLINE_BUILDER_VERSION
    if repository.startswith(("dgm-sweb.pull.", "dgm-sweb.build.")):
        return version == DGM_LAYER_VERSION
    return True  # not one of the providers' names: someone else's tag on it, leave it


# Kind (the image's `dgm.image` label) -> whether a tag is one this dgm still runs.
CURRENT_TAG: dict[str, Callable[[str], bool]] = {"base": _base_current, "swebench": _swebench_current}


@dataclass(frozen=True)
class Verdict:
    image: ImageInfo
    needed: bool
    reason: str


def judge(image: ImageInfo, needed_tasks: set[str], *, untagged_grace: timedelta = timedelta(0),
          now: datetime | None = None) -> Verdict:
    """Whether `image` is needed by this dgm and the campaigns whose tasks are `needed_tasks`."""
    if image.dangling:
        if (now or datetime.now(timezone.utc)) - image.created < untagged_grace:
            return Verdict(image, True, "untagged but recent: maybe a build in progress")
        return Verdict(image, False, "untagged (left by a build)")
    current = CURRENT_TAG.get(image.kind)
    if current is not None and not any(current(tag) for tag in image.tags):
        return Verdict(image, False, "outdated (this dgm builds and uses another version)")
    if image.instance is not None:
        if image.instance in needed_tasks:
            return Verdict(image, True, "a campaign or task run in the archive uses its task")
        return Verdict(image, False, "its task is in no campaign or task run of the archive")
    return Verdict(image, True, "shared by every task of its kind" if image.kind != "?" else "not a kind dgm knows")


def judge_all(images: Iterable[ImageInfo], needed_tasks: set[str], *,
              untagged_grace: timedelta = timedelta(0)) -> list[Verdict]:
    now = datetime.now(timezone.utc)
    return [judge(image, needed_tasks, untagged_grace=untagged_grace, now=now) for image in images]
