"""Who makes a SWE-bench instance's image (the --images choice).

- `pull`: swebench's prebuilt `swebench/sweb.eval.x86_64.*` images + a thin dgm layer;
- `build`: swebench's own builder (needs GitHub, conda and PyPI) + the same layer;
- `offline`: built here without a registry (see `offline_build`);
- `auto`: an image already present wins; else offline when a mirror is given, else pull.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from dgm.bench.swebench.images import DIFF_BASE_REF, ImageProvider, docker_build, image_exists, instance_key, options_hint
from dgm.bench.swebench.offline_build import OfflineBuilder, offline_tag
from dgm.bench.swebench.specs import make_spec
from dgm.errors import ImageUnavailable, UsageError
from dgm.sandbox.docker import docker_client, reason_line

PROVIDERS = ("auto", "pull", "build", "offline")
DGM_LAYER_VERSION = "v1"
SWEBENCH_NAMESPACE = "swebench"


# --------------------------------------------------------------------------- dgm layer on swebench images
_DGM_LAYER = """FROM {source}
USER root
# The agent user the sandbox runs as; /testbed and the env must be its own
# (agents edit the repo, the eval script reinstalls the package), and the
# post-setup commit is where agents' diffs start.
RUN (id -u agent >/dev/null 2>&1 || useradd --uid 1000 --create-home --shell /bin/bash agent) \\
 && mkdir -p /dgm \\
 && git -C /testbed update-ref {ref} HEAD \\
 && chown -R 1000:1000 /testbed /opt/miniconda3/envs/testbed \\
 && test -x /usr/bin/python3
WORKDIR /testbed
LABEL dgm.image=swebench dgm.provider={kind} dgm.source={source} dgm.instance={instance}
"""


def add_dgm_layer(client, source: str, tag: str, kind: str, instance: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dgm-layer-") as ctx:
        Path(ctx, "Dockerfile").write_text(_DGM_LAYER.format(source=source, ref=DIFF_BASE_REF, kind=kind,
                                                             instance=instance))
        docker_build(client, ctx, tag)


class PullProvider(ImageProvider):
    """swebench's prebuilt instance images from a registry, plus the dgm layer."""

    kind = "pull"

    def __init__(self, namespace: str = SWEBENCH_NAMESPACE):
        self.namespace = namespace
        self._lock = threading.Lock()

    def source(self, task) -> str:
        return f"{self.namespace}/sweb.eval.x86_64.{instance_key(task.instance_id)}:latest"

    def tag(self, task) -> str:
        return f"dgm-sweb.pull.{instance_key(task.instance_id)}:{DGM_LAYER_VERSION}"

    def ensure(self, client, task) -> str:
        tag = self.tag(task)
        if image_exists(client, tag):
            return tag
        source = self.source(task)
        if not image_exists(client, source):
            try:
                repository, version = source.rsplit(":", 1)
                client.images.pull(repository, tag=version)
            except Exception as exc:  # noqa: BLE001 - no registry, no such image, rate limit
                reason = reason_line(exc, 200)
                raise ImageUnavailable(f"{task.instance_id}: cannot pull {source} ({reason}); {options_hint('pull')}") from None
        with self._lock:
            add_dgm_layer(client, source, tag, self.kind, task.instance_id)
        return tag


class BuildProvider(ImageProvider):
    """swebench's own image builder (online: GitHub, conda, PyPI), plus the dgm layer."""

    kind = "build"

    def tag(self, task) -> str:
        return f"dgm-sweb.build.{instance_key(task.instance_id)}:{DGM_LAYER_VERSION}"

    def ensure(self, client, task) -> str:
        tag = self.tag(task)
        if image_exists(client, tag):
            return tag
        row = task.extra["row"]
        spec = make_spec(row)
        if not image_exists(client, spec.instance_image_key):
            try:
                from swebench.harness.docker_build import build_env_images, build_instance_image

                build_env_images(client, [row], max_workers=1)
                build_instance_image(spec, client, None, nocache=False)
            except Exception as exc:  # noqa: BLE001 - swebench's BuildImageError and network errors
                reason = reason_line(exc, 200)
                raise ImageUnavailable(f"{task.instance_id}: swebench's builder failed ({reason}); {options_hint('build')}") from None
        add_dgm_layer(client, spec.instance_image_key, tag, self.kind, task.instance_id)
        return tag


class _OfflineTags(ImageProvider):
    """Offline images built earlier, when no --repo-mirror is given to build more."""

    kind = "offline"

    def tag(self, task) -> str:
        return offline_tag(task)

    def ensure(self, client, task) -> str:
        raise ImageUnavailable(f"{task.instance_id}: no offline image yet (building one needs --repo-mirror)")


class AutoProvider(ImageProvider):
    """An image already present wins; else offline when a mirror is given, else pull."""

    kind = "auto"

    def __init__(self, repo_mirror: Path | None, wheelhouse: Path | None = None):
        self.offline = OfflineBuilder(repo_mirror, wheelhouse=wheelhouse) if repo_mirror else None
        self.pull = PullProvider()
        self.build = BuildProvider()
        self._chosen: dict[str, str] = {}
        # An offline image built earlier counts even without --repo-mirror now (its tag needs no mirror).
        self._candidates = [self.offline or _OfflineTags(), self.pull, self.build]

    def tag(self, task) -> str:
        if task.instance_id in self._chosen:
            return self._chosen[task.instance_id]
        client = _client_or_none()
        if client is not None:
            for provider in self._candidates:
                if image_exists(client, provider.tag(task)):
                    return provider.tag(task)
        return (self.offline or self.pull).tag(task)

    def ensure(self, client, task) -> str:
        for provider in self._candidates:
            if image_exists(client, provider.tag(task)):
                self._chosen[task.instance_id] = provider.tag(task)
                return self._chosen[task.instance_id]
        tried = []
        for provider in ([self.offline] if self.offline else []) + [self.pull]:
            try:
                self._chosen[task.instance_id] = provider.ensure(client, task)
                return self._chosen[task.instance_id]
            except ImageUnavailable as exc:
                tried.append(f"{provider.kind}: {str(exc).removeprefix(task.instance_id + ': ')}")
        raise ImageUnavailable(f"{task.instance_id}: no image ({'; '.join(tried)})")


def _client_or_none():
    try:
        return docker_client()
    except Exception:  # noqa: BLE001 - tag() must work without an engine
        return None


def check_provider_choice(kind: str, repo_mirror: Path | None = None) -> None:
    """UsageError for an --images choice that cannot work: checked when the
    options are read, before any archive, campaign or image work."""
    if kind not in PROVIDERS:
        raise UsageError(f"unknown --images {kind!r} (choose one of: {', '.join(PROVIDERS)})")
    if kind == "offline" and repo_mirror is None:
        raise UsageError("--images offline needs --repo-mirror DIR (one clone per owner__name, or bare repos)")


def make_provider(kind: str, *, repo_mirror: Path | None = None, wheelhouse: Path | None = None) -> ImageProvider:
    check_provider_choice(kind, repo_mirror)
    if kind == "offline":
        return OfflineBuilder(repo_mirror, wheelhouse=wheelhouse)
    if kind == "pull":
        return PullProvider()
    if kind == "build":
        return BuildProvider()
    return AutoProvider(repo_mirror, wheelhouse)
