"""The run stack: the machinery every run assembles the same way.

An LLM client (with the run's budgets), the gateway sandboxes reach it by,
an evaluator, and the executor task runs go through. Built in one place, so
a test, a perf script and the CLI run the same thing.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import docker

    from dgm.archive.store import ArchiveStore
    from dgm.bench.evaluate import EvalSettings, Evaluator
    from dgm.config import ExecutorConfig
    from dgm.bench.base import Benchmark
    from dgm.executor import Executor
    from dgm.llm.client import Budget, LLMClient
    from dgm.llm.gateway import Gateway


@dataclass(frozen=True)
class RunStack:
    store: ArchiveStore
    docker: docker.DockerClient
    benchmark: Benchmark
    llm: LLMClient
    gateway: Gateway
    evaluator: Evaluator
    executor: Executor


@contextmanager
def run_stack(store: ArchiveStore, docker_client: docker.DockerClient, benchmark: Benchmark,
              settings: EvalSettings, *, budgets: dict[str, Budget] | None = None,
              workers: int = 1, executor: ExecutorConfig | None = None) -> Iterator[RunStack]:
    """The stack for the block: the gateway serves it, and on the way out the
    executor is shut down (waiting for the runs in flight) before the gateway stops.

    `executor` (default: threads) says where sandbox work runs: threads on this
    machine, or Ray tasks on a cluster's nodes (`dgm.cluster`)."""
    from dgm.bench.evaluate import Evaluator
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway

    llm = LLMClient(store, budgets=budgets or {})
    with Gateway(llm) as gateway:
        if executor is not None and executor.kind == "ray":
            from dgm.cluster.ray_executor import RayExecutor

            pool = RayExecutor.connect(executor, gateway, workers=workers)
        else:
            pool = ThreadExecutor(workers)  # its threads start with the first task
        evaluator = Evaluator(store, docker_client, gateway, benchmark, settings)
        evaluator.jobs = pool
        try:
            yield RunStack(store=store, docker=docker_client, benchmark=benchmark, llm=llm, gateway=gateway,
                           evaluator=evaluator, executor=pool)
        finally:
            pool.shutdown()


def spend_cap(store: ArchiveStore, campaign_id: str, cap_usd: float | None) -> Budget:
    """The campaign's budget: its cap against what the archive says it spent."""
    from dgm.llm.client import Budget

    return Budget(cap_usd, lambda: store.campaign_spend(campaign_id))
