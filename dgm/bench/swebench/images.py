"""What every SWE-bench instance image offers, and what the providers that make
one share (see `providers` for who makes it, `offline_build` for the offline one).

Every image a task runs in ends up with the same dgm contract, whoever made it:
- /testbed: the repository after swebench's setup, owned by the agent user
  (uid 1000), with `refs/dgm/base` (DIFF_BASE_REF) on the post-setup commit
  (agents' diffs are taken against it);
- /opt/miniconda3/bin/activate + `conda activate testbed`: what swebench's eval
  script starts with (a real conda in swebench's images, a shim offline);
- /usr/bin/python3 >= 3.8 for the agent itself (AGENT_PYTHON, its DGM_PYTHON).
"""

from __future__ import annotations

import time
from pathlib import Path

from dgm.errors import ImageUnavailable

# Ref the image builders leave on the repository's post-setup commit. SWE-bench
# images commit their setup edits (e.g. sphinx's tox.ini) on top of
# base_commit, so an agent's diff must be taken against that commit.
DIFF_BASE_REF = "refs/dgm/base"
# The interpreter that runs agents inside instance images (the dgm base
# image's Debian python3, >= 3.8 as the seed agent needs); the testbed's own
# Python lives in the conda(-shim) env and may be older.
AGENT_PYTHON = "/usr/bin/python3"


class Unsupported(ImageUnavailable):
    """An instance this provider cannot produce an image for (one clear reason)."""


def options_hint(failed: str | None = None) -> str:
    """The --images choices, less the one (`failed`) that just failed."""
    choices = {"pull": "--images pull (prebuilt swebench images from a registry)",
               "build": "--images build (swebench's builder, online)",
               "offline": "--images offline --repo-mirror DIR (local clones + PyPI wheels)"}
    rest = [text for kind, text in choices.items() if kind != failed]
    return "choose " + ", ".join(rest[:-1]) + " or " + rest[-1]


def image_exists(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def instance_key(instance_id: str) -> str:
    return instance_id.lower().replace("__", "_1776_")


class ImageProvider:
    kind = "?"

    def tag(self, task) -> str:
        raise NotImplementedError

    def ensure(self, client, task) -> str:
        raise NotImplementedError

    def ensure_all(self, client, tasks, *, progress=None) -> dict[str, str]:
        """Produce every task's image; {instance_id: reason} for those that failed.

        One failure does not stop the others: validation reports them per
        instance, as SWE-bench does."""
        failures: dict[str, str] = {}
        for task in tasks:
            try:
                self.ensure(client, task)
            except ImageUnavailable as exc:
                failures[task.instance_id] = str(exc).removeprefix(f"{task.instance_id}: ")  # keyed by it already
            if progress:
                progress(task, failures.get(task.instance_id))
        return failures


def docker_build(client, context: str, tag: str, log_path: Path | None = None, nocache: bool = False) -> float:
    """`docker build` of a local context (no registry involved: every FROM is local)."""
    import docker.errors

    started = time.monotonic()
    lines: list[str] = []
    try:
        for chunk in client.api.build(path=context, tag=tag, rm=True, forcerm=True, decode=True,
                                      network_mode="none", nocache=nocache):
            if "stream" in chunk:
                lines.append(chunk["stream"])
            if "error" in chunk:
                lines.append(chunk["error"])
                raise ImageUnavailable(_build_failure(tag, lines, log_path))
    except docker.errors.APIError as exc:
        lines.append(str(exc))
        raise ImageUnavailable(_build_failure(tag, lines, log_path)) from None
    if log_path:
        log_path.write_text("".join(lines))
    if not image_exists(client, tag):
        raise ImageUnavailable(_build_failure(tag, lines, log_path))
    return time.monotonic() - started


def _build_failure(tag: str, lines: list[str], log_path: Path | None) -> str:
    text = "".join(lines)
    if log_path:
        log_path.write_text(text)
    tail = [ln for ln in text.splitlines() if ln.strip()][-3:]
    where = f" (full log: {log_path})" if log_path else ""
    return f"building {tag} failed: {' | '.join(t.strip()[:200] for t in tail)}{where}"
