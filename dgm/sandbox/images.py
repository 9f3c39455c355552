"""Sandbox images: the base image's name (the builder comes with the sandbox),
and dgm's images on the engine, listed and removed.

An image is dgm's when it carries the label `dgm.image` (its kind: `base`,
`swebench`, ... whatever a benchmark's builder writes) or a tag starting with
`dgm-`: a new kind of image shows up here without a change to this module.
Which of them are still needed is not decided here (that depends on
benchmarks and campaigns, see `dgm.bench.images`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

BASE_IMAGE_REPO = "dgm-base"
BASE_IMAGE_VERSION = "bookworm-v1"
KIND_LABEL = "dgm.image"
"""Label every image dgm builds carries: its kind."""
INSTANCE_LABEL = "dgm.instance"
"""Label of an image made for one task (its task id)."""
TAG_PREFIX = "dgm-"


def base_image_tag() -> str:
    """The tag every dgm-mini task and self-modification sandbox runs on."""
    return f"{BASE_IMAGE_REPO}:{BASE_IMAGE_VERSION}"


def build_script():
    """The offline builder (debootstrap + docker import), shipped with the repo."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "sandboxes" / "build_base_image.sh"


@dataclass(frozen=True)
class ImageInfo:
    """One of dgm's images on the engine."""

    id: str
    tags: tuple[str, ...]
    size: int
    """Bytes of all its layers, those it shares with other images included (as `docker images` shows)."""
    shared_size: int
    """Bytes of its layers that other images use too (-1: unknown)."""
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0
    """Containers (running or not) made from it: it cannot be removed while there are any."""

    @property
    def kind(self) -> str:
        return self.labels.get(KIND_LABEL) or "?"

    @property
    def instance(self) -> str | None:
        return self.labels.get(INSTANCE_LABEL)

    @property
    def dangling(self) -> bool:
        return not self.tags

    @property
    def own_size(self) -> int:
        """Bytes only this image holds: what removing it alone frees."""
        return self.size - max(self.shared_size, 0)

    @property
    def name(self) -> str:
        return self.tags[0] if self.tags else f"<untagged {self.id.removeprefix('sha256:')[:12]}>"


def _is_dgm(labels: dict[str, str], tags: list[str]) -> bool:
    return KIND_LABEL in labels or any(t.startswith(TAG_PREFIX) for t in tags)


def list_images(client, *, kind: str | None = None) -> list[ImageInfo]:
    """dgm's images (tagged and untagged), largest first; only those of `kind` when given.

    Intermediate layers of a build that a tagged image still uses are not
    listed (as `docker images` does not): they go with that image."""
    usage = client.df().get("Images") or []  # the engine's own sizes, shared ones included
    found = []
    for entry in usage:
        labels = entry.get("Labels") or {}
        tags = [t for t in entry.get("RepoTags") or [] if t != "<none>:<none>"]
        if not _is_dgm(labels, tags) or (kind is not None and labels.get(KIND_LABEL) != kind):
            continue
        found.append(ImageInfo(id=entry["Id"], tags=tuple(sorted(tags)), size=int(entry.get("Size") or 0),
                               shared_size=int(entry.get("SharedSize", -1)),
                               created=datetime.fromtimestamp(int(entry.get("Created") or 0), timezone.utc),
                               labels=dict(labels), containers=max(int(entry.get("Containers") or 0), 0)))
    return sorted(found, key=lambda i: (-i.size, i.name))


def layers_size(client) -> int:
    """Bytes the engine's image layers take on disk (each layer once)."""
    return int(client.df().get("LayersSize") or 0)


def remove_image(client, image: ImageInfo) -> str | None:
    """Remove `image` with every tag it has; None, or why it could not be removed.

    Never forced: an image a container still uses stays."""
    import docker.errors

    try:
        if image.containers:
            return f"{image.containers} container(s) use it"
        for tag in image.tags[1:]:  # all but the last tag are untagged; removing the last removes the image
            client.images.remove(tag, noprune=False)
        client.images.remove(image.tags[0] if image.tags else image.id, noprune=False)
        return None
    except docker.errors.ImageNotFound:
        return None  # gone already (another prune, or its last tag went with the one before)
    except docker.errors.APIError as exc:
        return str(exc.explanation or exc)[:200]


def image_id(client, tag: str) -> str | None:
    """The id `tag` names now, or None."""
    import docker.errors

    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def remove_replaced(client, tag: str, old_id: str | None) -> bool:
    """After a rebuild of `tag`: remove the image that held the tag before (`old_id`), now untagged,
    so a rebuild leaves no untagged copy behind. Kept when the tag still names it, when it has another
    tag, or when a container uses it (never forced). True if it was removed."""
    import docker.errors

    if old_id is None or image_id(client, tag) == old_id:
        return False
    try:
        old = client.images.get(old_id)
        if old.tags:
            return False
        client.images.remove(old_id, noprune=False)
        return True
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        return False
