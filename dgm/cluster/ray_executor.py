"""`--executor ray`: the head keeps the bookkeeping, Ray runs the sandboxes.

Each item of `map_unordered` runs on a thread here, as with the thread
executor: it records the run's start, waits for its outcome and records its
end, so the archive has one writer. What it waits on is a Ray task on a node
offering `dgm_sandbox` (one unit per sandbox), carrying the run's job as
plain data and the agent's code through the object store. When a node dies
mid-run, Ray runs the task again elsewhere (`max_retries`); the head still
records that run once, when an outcome comes back.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from dgm.cluster.channel import ChannelServer
from dgm.cluster.node import RESOURCE, agent_tar, run_job_here, sweep_here
from dgm.errors import BudgetExceeded, InfrastructureError, UsageError
from dgm.executor import ThreadExecutor

if TYPE_CHECKING:
    from dgm.config import ExecutorConfig
    from dgm.executor import HeadSandboxHost
    from dgm.llm.gateway import Gateway

INSTALL_HINT = "pip install 'dgm[ray]'"


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray on this machine and every node: {INSTALL_HINT}") from None
    return ray


def connect_ray(address: str):
    """Join the Ray cluster at `address` ("local" starts one here); UsageError with one line if there is none."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=None if address == "local" else address, namespace="dgm", log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"no Ray cluster at {address!r} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         f"start one with `ray start --head --resources '{{\"{RESOURCE}\": 4}}'` "
                         "(docs/cluster.md)") from None
    return ray


def sandbox_nodes(ray) -> list[dict]:
    """The live nodes that offer sandboxes."""
    return [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(RESOURCE, 0) >= 1]


class RayExecutor(ThreadExecutor):
    def __init__(self, ray, channel: ChannelServer, *, workers: int, max_retries: int, owns_ray: bool):
        super().__init__(workers)
        self._ray = ray
        self.channel = channel
        self.max_retries = max_retries
        self._owns_ray = owns_ray
        self._remote = ray.remote(run_job_here).options(
            resources={RESOURCE: 1}, num_cpus=0, max_retries=max_retries, retry_exceptions=False,
            # Spread over the nodes: packing would leave engines idle while one queues.
            scheduling_strategy="SPREAD")
        self._code_refs: dict[str, object] = {}
        self._code_lock = threading.Lock()

    @classmethod
    def connect(cls, config: ExecutorConfig, gateway: Gateway, *, workers: int) -> "RayExecutor":
        """Join the cluster, open the gateway channel, and clear what a dead head left on the nodes.

        At most `workers` runs are in flight, and no more than the cluster's
        sandbox slots: a run queued in Ray would spend its time limit waiting."""
        ray = _ray()
        owns = not ray.is_initialized()
        connect_ray(config.address)
        slots = int(ray.cluster_resources().get(RESOURCE, 0))
        if slots < 1:
            raise UsageError(f"no node of the Ray cluster at {config.address!r} offers the {RESOURCE} resource; "
                             f"start worker nodes with `ray start --address HEAD:6379 --resources "
                             f"'{{\"{RESOURCE}\": 4}}'` (docs/cluster.md)")
        executor = cls(ray, ChannelServer(gateway, port=config.gateway_port, advertise=config.gateway_host),
                       workers=min(workers, slots), max_retries=config.max_retries, owns_ray=owns)
        executor.sweep()
        return executor

    def sweep(self) -> int:
        """Remove sandboxes of dead owners (a head killed mid-run) on every sandbox node; how many."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        sweep = self._ray.remote(sweep_here)
        refs = [sweep.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote() for n in sandbox_nodes(self._ray)]
        try:
            return sum(self._ray.get(refs, timeout=120))
        except Exception as exc:  # noqa: BLE001 - a node without an engine is reported by its first run
            raise InfrastructureError(f"clearing old sandboxes on the Ray nodes failed: {_reason(exc)}") from None

    def _code(self, host: HeadSandboxHost, commit_sha: str):
        with self._code_lock:
            ref = self._code_refs.get(commit_sha)
            if ref is None:
                ref = self._code_refs[commit_sha] = self._ray.put(agent_tar(host.agent_dir(commit_sha)))
            return ref

    def run_job(self, job, host):
        ray = self._ray
        ref = self._remote.remote(job, self.channel.address, self._code(host, job.agent_sha))
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            if isinstance(cause, (InfrastructureError, BudgetExceeded)):
                raise cause from None  # the job's own error, as the thread executor would raise it
            # The job catches the agent's and the grading's own failures: anything
            # else is the node's (its agent code store, its relay), not the agent's.
            raise InfrastructureError(f"a run's Ray task failed on its node: {_reason(cause or exc)}") from None
        except ray.exceptions.RayError as exc:
            raise InfrastructureError(f"a run's node was lost ({self.max_retries + 1} tries): {_reason(exc)}") from None

    def shutdown(self) -> None:
        try:
            super().shutdown()
        finally:
            self.channel.stop()
            if self._owns_ray:
                self._ray.shutdown()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
