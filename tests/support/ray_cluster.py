"""A Ray cluster on this machine for the cluster tests: a head that offers no
sandboxes (as the `dgm run` machine of a real cluster need not), and two
worker nodes, each with `dgm_sandbox` slots and a Docker engine of its own:
the default engine, and the second one `scripts/ensure_second_dockerd.sh` runs."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SECOND_ENGINE = os.environ.get("DGM_DOCKERD2_HOST", "unix:///run/dgm-dockerd2.sock")
FIRST_ENGINE = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
SLOTS_PER_NODE = 2
REPO_ROOT = Path(__file__).resolve().parents[2]


def second_engine_client():
    """A client of the second engine, or None when it is not up (and cannot be started)."""
    import docker

    try:
        client = docker.DockerClient(base_url=SECOND_ENGINE, timeout=60)
        client.ping()
        return client
    except Exception:  # noqa: BLE001
        pass
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts/ensure_second_dockerd.sh")], capture_output=True,
                          text=True)
    if done.returncode != 0:
        return None
    client = docker.DockerClient(base_url=SECOND_ENGINE, timeout=60)
    client.ping()
    return client


@dataclass
class LocalRayCluster:
    cluster: object
    engines: dict[str, str] = field(default_factory=dict)
    """Worker node name -> DOCKER_HOST of its engine."""
    nodes: dict[str, object] = field(default_factory=dict)

    @classmethod
    def start(cls) -> "LocalRayCluster":
        from ray.cluster_utils import Cluster

        # The nodes' processes must not inherit a key a test sets later on the head, nor any now.
        cluster = Cluster(initialize_head=True, shutdown_at_exit=True,
                          head_node_args={"num_cpus": 1, "include_dashboard": False})
        made = cls(cluster)
        made.add("node-a", FIRST_ENGINE)
        made.add("node-b", SECOND_ENGINE)
        return made

    @property
    def address(self) -> str:
        return self.cluster.address

    def add(self, name: str, engine: str):
        env = {"DOCKER_HOST": engine, "PYTHONPATH": str(REPO_ROOT)}
        node = self.cluster.add_node(num_cpus=2, resources={"dgm_sandbox": SLOTS_PER_NODE, f"dgm-test-{name}": 1},
                                     env_vars=env)
        self.engines[name], self.nodes[name] = engine, node
        return node

    def kill(self, name: str) -> None:
        """The node's processes die at once (SIGKILL), as when a machine goes down."""
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def ensure(self, name: str, engine: str) -> None:
        if name not in self.nodes:
            self.add(name, engine)
            self.cluster.wait_for_nodes()

    def shutdown(self) -> None:
        self.cluster.shutdown()
