"""One recorded sandboxed run: a `task_runs` row started before the sandbox
runs and finished after it, with the agent's outputs kept as artifacts.

Task runs (`dgm/bench/evaluate.py`), self-modification and the sanity gate
(`dgm/evolution/self_modify.py`) all follow this sequence. It lives here, not
in `dgm/sandbox/`, because it records through the archive store: sandboxes
know nothing of the archive. What each caller does with the outcome (grade
it, turn it into a child, reject it) stays with the caller.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, TypeVar

from dgm.sandbox.agent_run import run_agent

T = TypeVar("T")

# How long past a run's time limit its last LLM call may still be waited on.
CALL_GRACE_S = 15.0

if TYPE_CHECKING:
    from docker import DockerClient

    from dgm.archive.models import TaskRun
    from dgm.archive.store import ArchiveStore
    from dgm.llm.client import CallContext
    from dgm.llm.gateway import Gateway
    from dgm.sandbox.agent_run import AgentRunResult


@dataclass
class RecordedRun:
    """A task run's row and the clock of this attempt at it."""

    store: ArchiveStore
    row: TaskRun
    started: float
    """time.monotonic() when the row was started: `finish` records the time since."""

    @property
    def finished(self) -> bool:
        """The row was finished before (a resumed campaign): it must not be redone."""
        return self.row.finished

    @property
    def labels(self) -> dict[str, str]:
        """Docker labels of the run's sandboxes: which run and agent a container belongs to."""
        return {"dgm.task_run": self.row.id, "dgm.agent": self.row.agent_id}

    def run_agent(self, docker_client: DockerClient, gateway: Gateway, call: CallContext, *,
                  gateway_socket_path_in_container: str, **run_agent_args) -> AgentRunResult:
        """Run the agent in a sandbox under a gateway token of its own, for this run only.

        Raises what the gateway saw spoil the run (budget hit, model down):
        the row then stays unfinished, for a resume to redo.
        """
        result = self.under_token(gateway, call, run_agent_args.get("time_limit_s"), lambda token: run_agent(
            docker_client, gateway_socket_dir=gateway.socket_dir,
            gateway_socket_path_in_container=gateway_socket_path_in_container, token=token,
            model=call.model, labels=self.labels, **run_agent_args))
        result, overflow = result
        if overflow is not None:  # beside any other error (a timeout, say): the diagnosis looks for it
            result.error = overflow if result.error is None else f"{result.error}; {overflow}"
        return result

    def under_token(self, gateway: Gateway, call: CallContext, time_limit_s: float | None,
                    work: Callable[[str], T]) -> tuple[T, str | None]:
        """`work(token)` under a gateway token granted for this run only, and
        the context overflow the gateway saw during it, if any.

        Raises what the gateway saw spoil the run (budget hit, model down).
        """
        # Calls are not waited on past the run's own end (plus the sandbox's
        # grace to finish): an abandoned call must not hold the model.
        if time_limit_s is not None and call.deadline is None:
            call = dataclasses.replace(call, deadline=time.monotonic() + time_limit_s + CALL_GRACE_S)
        token = gateway.grant(call)
        try:
            result = work(token)
        finally:
            gateway.revoke(token)
            overflow = gateway.take_context_overflow(token)  # taken even when the run failed: none left behind
        gateway.raise_if_run_spoiled(token)
        return result, overflow

    def keep_agent_outputs(self, result: AgentRunResult) -> dict:
        """Store the agent's trajectory and log as artifacts: `finish_task_run` fields naming them."""
        artifacts = self.store.artifacts
        trajectory = artifacts.put(result.outputs["trajectory.json"]) if "trajectory.json" in result.outputs else None
        log = artifacts.put(result.agent_log) if result.agent_log else None
        return dict(trajectory_artifact=trajectory, agent_log_artifact=log)

    def finish(self, *, status: str, **fields) -> TaskRun:
        """Finish the row with `status` and `fields`, timed from its start."""
        self.row = self.store.finish_task_run(self.row.id, status=status,
                                              duration_s=time.monotonic() - self.started, **fields)
        return self.row


def start_recorded_run(store: ArchiveStore, *, campaign_id: str, agent_id: str, kind: str, benchmark: str,
                       task_id: str, stage: str, model: str, attempt: int = 0, repeat: int = 0) -> RecordedRun:
    """Start (or, after a crash, restart) the run's row; check `finished` before running anything."""
    row = store.start_task_run(campaign_id=campaign_id, agent_id=agent_id, kind=kind, benchmark=benchmark,
                               task_id=task_id, stage=stage, model=model, attempt=attempt, repeat=repeat)
    return RecordedRun(store, row, time.monotonic())
