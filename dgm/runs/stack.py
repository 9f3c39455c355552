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
              workers: int = 1) -> Iterator[RunStack]:
    """The stack for the block: the gateway serves it, and on the way out the
    executor is shut down (waiting for the runs in flight) before the gateway stops."""
    from dgm.bench.evaluate import Evaluator
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway

    llm = LLMClient(store, budgets=budgets or {})
    executor = ThreadExecutor(workers)  # its threads start with the first task
    with Gateway(llm) as gateway:
        try:
            yield RunStack(store=store, docker=docker_client, benchmark=benchmark, llm=llm, gateway=gateway,
                           evaluator=Evaluator(store, docker_client, gateway, benchmark, settings),
                           executor=executor)
        finally:
            executor.shutdown()


def spend_cap(store: ArchiveStore, campaign_id: str, cap_usd: float | None) -> Budget:
    """The campaign's budget: its cap against what the archive says it spent."""
    from dgm.llm.client import Budget

    return Budget(cap_usd, lambda: store.campaign_spend(campaign_id))
