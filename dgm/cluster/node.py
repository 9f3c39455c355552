"""What runs on a worker node: a run's sandbox work on the node's own Docker
engine, and the sweep of sandboxes a dead head left there.

A node is any Ray node offering the `dgm_sandbox` resource. It needs Docker
(its engine is the one DOCKER_HOST names in the node's environment, as for
`ray start`) and dgm installed; nothing of the archive. Agent code arrives as
a tarball through Ray's object store and is unpacked once per node; the
gateway is reached through a `Relay` to the head.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

from dgm.cluster.channel import ChannelAddress, Relay
from dgm.errors import InfrastructureError
from dgm.sandbox.testbed import make_tree_readable

RESOURCE = "dgm_sandbox"
"""The Ray custom resource a node offers, one unit per sandbox it may run at once."""


class NodeNotReady(InfrastructureError):
    """This node cannot run sandboxes (no engine, no image): one line saying what to do."""


def agent_tar(agent_dir: str) -> bytes:
    """An agent's code directory as a tarball, for the object store."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        tar.add(agent_dir, arcname=".")
    return buffer.getvalue()


class NodeSandboxHost:
    """This node as a place for sandboxes (one per worker process)."""

    _lock = threading.Lock()
    _current: "NodeSandboxHost | None" = None

    def __init__(self):
        from dgm.sandbox.docker import docker_client

        try:
            self.docker = docker_client()
        except Exception as exc:  # noqa: BLE001 - DockerUnavailable: say which node
            raise NodeNotReady(f"node {os.uname().nodename}: {exc}") from None
        self.code_root = Path(tempfile.gettempdir()) / f"dgm-node-agents-{os.getuid()}"
        self._checked: set[str] = set()
        self._code_lock = threading.Lock()

    @classmethod
    def get(cls) -> "NodeSandboxHost":
        with cls._lock:
            if cls._current is None:
                cls._current = cls()
            return cls._current

    def check_images(self, images: list[str]) -> None:
        """Every image the job needs is on this node's engine, or one line saying how to put it there."""
        for image in images:
            if image in self._checked:
                continue
            try:
                self.docker.images.get(image)
            except Exception:  # noqa: BLE001 - ImageNotFound or the engine's error: either way not usable
                engine = os.environ.get("DOCKER_HOST", "the default socket")
                raise NodeNotReady(
                    f"node {os.uname().nodename}: image {image} is missing on its Docker engine ({engine}); build it "
                    f"there (`dgm sandbox build` for the base image; a benchmark's with its --images option) or copy "
                    f"it: docker save {image} | DOCKER_HOST={engine} docker load") from None
            self._checked.add(image)

    def unpack_agent(self, commit_sha: str, tar: bytes) -> str:
        """The agent's code at `commit_sha` in a directory sandboxes can mount, unpacked once."""
        dest = self.code_root / commit_sha
        with self._code_lock:
            if not dest.is_dir():
                self.code_root.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{commit_sha[:12]}-", dir=self.code_root))
                try:
                    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:gz") as archive:
                        archive.extractall(tmp, filter="data")
                    make_tree_readable(tmp)
                    os.replace(tmp, dest)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
        return str(dest)


class _RelayedHost:
    """The node's engine and agent code, and one run's relay as its gateway."""

    def __init__(self, node: NodeSandboxHost, relay: Relay, agent_dirs: dict[str, str]):
        self.docker = node.docker
        self.gateway_socket_dir = relay.socket_dir
        self._agent_dirs = agent_dirs

    def agent_dir(self, commit_sha: str) -> str:
        return self._agent_dirs[commit_sha]


def run_job_here(job, channel: ChannelAddress, code: bytes):
    """The body of the Ray task: run `job` on this node and return its outcome."""
    node = NodeSandboxHost.get()
    node.check_images(job.images)
    agent_dirs = {job.agent_sha: node.unpack_agent(job.agent_sha, code)}
    label = job.labels.get("dgm.task_run") or "run"
    with Relay(channel, label) as relay:
        try:
            relay.check()
        except OSError as exc:
            raise NodeNotReady(f"node {os.uname().nodename} cannot reach the head's gateway channel at "
                               f"{channel.host}:{channel.port} ({exc}); open that port to the worker nodes") from None
        return job.run(_RelayedHost(node, relay, agent_dirs))


def sweep_here() -> int:
    """Remove the sandboxes on this node whose owning process is gone (a head killed mid-run)."""
    from dgm.sandbox.docker import docker_client, remove_orphans

    return remove_orphans(docker_client())

