"""Run an agent under the agent contract (v1) in a sandbox and take its diff.

The same function serves task runs (DGM_REPO = the task's repository) and
self-modification (DGM_REPO = a copy of the agent's own code): the agent
cannot tell them apart, which is the point.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from dgm.sandbox.docker import AGENT_UID, Mount, Sandbox, SandboxLimits, TarEntry, build_tar

AGENT_MOUNT = "/agent"
REPO_PATH = "/testbed"
PROBLEM_FILE = "/dgm/problem.md"
OUTPUT_DIR = "/dgm/output"
OUTPUT_CAP_BYTES = 5_000_000
PATCH_CAP_BYTES = 5_000_000


@dataclass
class AgentRunResult:
    status: str
    """'ok' | 'timeout' | 'error' (crashes of the agent itself are 'ok': its diff counts)."""
    patch: str
    agent_log: str
    agent_exit_code: int | None
    agent_duration_s: float
    wall_s: float
    outputs: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    oom_killed: bool = False

    @property
    def trajectory(self) -> dict | None:
        raw = self.outputs.get("trajectory.json")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None


def agent_sandbox(docker_client, *, image: str, agent_dir: str, gateway_socket_dir: str,
                  gateway_socket_path_in_container: str, limits: SandboxLimits | None = None,
                  labels: dict[str, str] | None = None) -> Sandbox:
    """A fresh, started sandbox with the agent's code and the gateway mounted, nothing else."""
    mounts = [
        Mount(agent_dir, AGENT_MOUNT, read_only=True),
        Mount(gateway_socket_dir, gateway_socket_path_in_container.rsplit("/", 1)[0], read_only=True),
    ]
    return Sandbox(docker_client, image, limits=limits, mounts=mounts, labels=labels, name_hint="agent").start()


def run_agent(
    docker_client,
    *,
    image: str,
    agent_dir: str,
    repo_tar: bytes | None,
    base_commit: str,
    problem: str,
    gateway_socket_dir: str,
    gateway_socket_path_in_container: str,
    token: str,
    model: str,
    time_limit_s: float,
    limits: SandboxLimits | None = None,
    labels: dict[str, str] | None = None,
    python: str = "python3",
    sandbox: Sandbox | None = None,
) -> AgentRunResult:
    """Run the agent; `sandbox` may be a fresh one from `agent_sandbox` started
    ahead of time (it must have been made for this agent_dir and gateway)."""
    started = time.monotonic()
    box = sandbox or agent_sandbox(docker_client, image=image, agent_dir=agent_dir,
                                   gateway_socket_dir=gateway_socket_dir,
                                   gateway_socket_path_in_container=gateway_socket_path_in_container,
                                   limits=limits, labels=labels)
    with box:
        box.put_tar("/", build_tar([
            TarEntry("/dgm", uid=0),
            TarEntry(PROBLEM_FILE, problem, uid=0),
            TarEntry(OUTPUT_DIR, uid=AGENT_UID),
        ], base=repo_tar))
        env = {
            "DGM_PROBLEM_FILE": PROBLEM_FILE,
            "DGM_REPO": REPO_PATH,
            "DGM_LLM_SOCKET": gateway_socket_path_in_container,
            "DGM_LLM_TOKEN": token,
            "DGM_MODEL": model,
            "DGM_OUTPUT_DIR": OUTPUT_DIR,
            "DGM_TIME_LIMIT_S": str(int(time_limit_s)),
            "DGM_PYTHON": python,
            "HOME": "/home/agent",
            "PYTHONUNBUFFERED": "1",
        }
        result = box.exec([python, f"{AGENT_MOUNT}/main.py"], env=env, workdir=REPO_PATH,
                          timeout_s=time_limit_s)
        agent_duration = result.duration_s
        oom = box.oom_killed()
        if result.killed_by_host or box.dead:
            return AgentRunResult(
                status="timeout" if result.timed_out else "error", patch="", agent_log=result.output,
                agent_exit_code=None, agent_duration_s=agent_duration, wall_s=time.monotonic() - started,
                error="the sandbox had to be killed from the host" if result.killed_by_host
                else "the sandbox stopped during the run", oom_killed=oom,
            )
        # Anything the agent left behind (daemons, setsid'd children) must not
        # keep editing the repository while the diff is taken. This runs as the
        # agent user (root here has no CAP_KILL) and spares only itself.
        diff_cmd = (
            "for p in $(pgrep -u agent); do case \"$p\" in $$|$PPID) ;; *) kill -9 \"$p\" 2>/dev/null;; esac; done; "
            "git -c core.fsmonitor=false -c core.hooksPath=/dev/null add -A >/dev/null 2>&1; "
            f"git -c core.fsmonitor=false -c core.hooksPath=/dev/null diff --cached --no-color {base_commit}"
        )
        diff = box.exec(["bash", "-c", diff_cmd], workdir=REPO_PATH, timeout_s=120,
                        output_cap=PATCH_CAP_BYTES)
        outputs = box.get_tree(OUTPUT_DIR, cap_bytes=OUTPUT_CAP_BYTES)
        status, error = "ok", None
        if result.timed_out:
            status, error = "timeout", f"agent overran its {time_limit_s:.0f} s limit"
        if diff.exit_code != 0:
            status, error = "error", f"could not take the diff: {diff.output[-500:]}"
        elif diff.truncated:
            status, error = "error", f"diff larger than {PATCH_CAP_BYTES} bytes"
        return AgentRunResult(
            status=status, patch=diff.output if diff.exit_code == 0 and not diff.truncated else "",
            agent_log=result.output + (f"\n[dgm: output truncated at {len(result.output)} of {result.output_bytes} bytes]"
                                       if result.truncated else ""),
            agent_exit_code=result.exit_code, agent_duration_s=agent_duration,
            wall_s=time.monotonic() - started, outputs=outputs, error=error, oom_killed=oom,
        )
