"""Run an agent under the agent contract (v1) in a sandbox and take its diff.

The same function serves task runs (DGM_REPO = the task's repository) and
self-modification (DGM_REPO = a copy of the agent's own code): the agent
cannot tell them apart, which is the point.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import tarfile
import time
from dataclasses import dataclass, field

from dgm.sandbox.docker import TIMEOUT_EXIT, Mount, Sandbox, SandboxLimits, timeout_argv
from dgm.sandbox.testbed import REPO_PATH, REPO_TMPFS_MB, SETUP_FAILED, SETUP_FAILED_EXIT, unpack_repo_command

AGENT_MOUNT = "/agent"
OUTPUT_DIR = "/dgm/output"
OUTPUT_CAP_BYTES = 5_000_000
PATCH_CAP_BYTES = 5_000_000
# The finishing tar: the diff and the output files, plus headers and slack.
FINISH_TAR_CAP_BYTES = PATCH_CAP_BYTES + OUTPUT_CAP_BYTES + 1_000_000
# tmpfs size: what the agent may write to its output directory.
OUTPUT_TMPFS_MB = 64
# Seconds the finishing steps (kill leftovers, diff, tar) may take after the agent.
FINISH_TIMEOUT_S = 120


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
    patch_not_text: bool = False
    """Bytes of the diff that text cannot keep (not UTF-8, or NUL) were replaced in `patch` (`error` says where)."""

    @property
    def trajectory(self) -> dict | None:
        return load_trajectory(self.outputs.get("trajectory.json"))


def load_trajectory(raw: bytes | str | None) -> dict | None:
    """An agent's trajectory.json as a JSON object, or None.

    The agent wrote it: it may be anything (a list, garbage, nesting deep
    enough to exhaust the parser's recursion, NaN). Whoever reads it gets an
    object that is valid JSON, or nothing, never an exception.
    """
    if not raw:
        return None
    try:
        # NaN and Infinity (Python's json writes them) stay as the words: no
        # JSON reader, a browser's included, accepts them back.
        data = json.loads(raw, parse_constant=str)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def agent_sandbox(docker_client, *, image: str, agent_dir: str, gateway_socket_dir: str,
                  gateway_socket_path_in_container: str, repo_in_image: bool,
                  limits: SandboxLimits | None = None, labels: dict[str, str] | None = None) -> Sandbox:
    """A fresh sandbox (not started yet) with the agent's code and the gateway mounted, nothing else.

    `repo_in_image`: the image holds /testbed (SWE-bench); otherwise the run
    brings the repository and /testbed is an empty tmpfs for it.
    """
    mounts = [
        Mount(agent_dir, AGENT_MOUNT, read_only=True),
        Mount(gateway_socket_dir, gateway_socket_path_in_container.rsplit("/", 1)[0], read_only=True),
    ]
    tmpfs = {OUTPUT_DIR: OUTPUT_TMPFS_MB}
    if not repo_in_image:
        tmpfs[REPO_PATH] = REPO_TMPFS_MB
    return Sandbox(docker_client, image, limits=limits, mounts=mounts, labels=labels, name_hint="agent",
                   stage=True, tmpfs=tmpfs)


NO_BASE_COMMIT = "the repository no longer has its base commit (the agent removed or rewrote .git)"


def finish_script(base_commit: str) -> str:
    """Shell run by the runner once the agent is done: stop what it left
    running, take the diff, and write one tar to stdout: the diff, its exit
    code and errors, the agent's exit code and start and end times (from
    $agent_rc/$agent_t0/$agent_t1), then the output directory."""
    # The repository's own config is the agent's: nothing in it may change
    # what the diff looks like (no prefixes, relative paths, text
    # conversions, external diff drivers). --binary: a binary file, or one
    # the agent's .gitattributes marks -diff, comes back as a patch that applies.
    git = ("GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 git -c core.fsmonitor=false -c core.hooksPath=/dev/null "
           "-c diff.noprefix=false -c diff.mnemonicPrefix=false -c core.quotePath=true")
    diff_options = "--cached --binary --no-color --no-ext-diff --no-textconv --no-relative --src-prefix=a/ --dst-prefix=b/"
    output_parent, output_name = OUTPUT_DIR.rsplit("/", 1)
    return (
        # Anything the agent left behind (daemons, setsid'd children) must not
        # keep editing the repository while the diff is taken. This runs as the
        # agent user (root here has no CAP_KILL) in the runner, PID 1, which it spares.
        "for p in $(pgrep -u agent); do [ \"$p\" = $$ ] || kill -9 \"$p\" 2>/dev/null; done; "
        # A fresh directory: the agent cannot have planted anything in it.
        "d=$(mktemp -d) || exit 1; "
        # Without the base commit git's own complaint is a page of usage text: say what happened instead.
        f"if {git} rev-parse -q --verify {base_commit}^{{commit}} >/dev/null 2>&1; then "
        f"{git} add -A >/dev/null 2>&1; "
        f"{git} diff {diff_options} {base_commit} >\"$d/patch.diff\" 2>\"$d/diff.err\"; "
        "echo $? >\"$d/diff.rc\"; "
        f"else echo '{NO_BASE_COMMIT}' >\"$d/diff.err\"; : >\"$d/patch.diff\"; echo 1 >\"$d/diff.rc\"; fi; "
        "echo \"${agent_rc:-}\" >\"$d/agent.rc\"; echo \"${agent_t0:-} ${agent_t1:-}\" >\"$d/agent.time\"; "
        f"tar -c -f - -C \"$d\" patch.diff diff.rc diff.err agent.rc agent.time -C {output_parent} {output_name} "
        "2>/dev/null; true"
    )


def runner_script(*, time_limit_s: float, base_commit: str, repo_staged: str | None) -> str:
    """The sandbox's main process (`bash -c RUNNER dgm-runner PYTHON MAIN`):
    unpack the repository, run the agent under its time limit, then finish,
    the finishing tar on stdout (fd 3 while the agent runs, which the agent
    does not inherit) and the agent's own output on stderr.

    As PID 1 the runner gets no signal from the agent (the kernel drops
    signals to a namespace's init that it has no handler for, SIGKILL
    included), so the diff is taken whatever the agent kills. The agent runs
    as the same user and could still write to the runner's stdout or trace
    it: that only lets it misreport its own result, which it controls anyway
    through the repository. Timeouts are judged on the host too.
    """
    unpack = f"{unpack_repo_command(repo_staged)}\n" if repo_staged else ""
    return (
        "exec 3>&1 1>&2\n"
        f"{unpack}"
        "agent_t0=$(date +%s.%N)\n"
        f"{shlex.join(timeout_argv(time_limit_s))} \"$@\" 3>&-\n"
        "agent_rc=$?\n"
        "agent_t1=$(date +%s.%N)\n"
        f"{{ {finish_script(base_commit)}; }} >&3\n"
    )


@dataclass
class FinishedRun:
    patch: str | None
    """None when no diff could be taken (see `error`)."""
    outputs: dict[str, bytes]
    error: str | None = None
    agent_exit_code: int | None = None
    agent_duration_s: float | None = None
    not_text: bool = False
    """The diff held bytes text cannot keep (not UTF-8, or NUL): `patch` has them replaced, `error` says where."""


def read_finish_tar(raw: bytes, *, patch_cap: int = PATCH_CAP_BYTES, output_cap: int = OUTPUT_CAP_BYTES) -> FinishedRun:
    """Parse `finish_script`'s tar. Only regular files count: symlinks and
    special files are the agent's, and the host must not follow them."""
    patch: bytes | None = None
    rc, err = None, b""
    agent_rc, agent_time = None, None
    outputs: dict[str, bytes] = {}
    total = 0
    too_big = False
    prefix = OUTPUT_DIR.rsplit("/", 1)[1] + "/"
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                name = member.name
                if name == "patch.diff":
                    if member.size > patch_cap:
                        too_big = True
                        continue
                    patch = tar.extractfile(member).read()
                elif name == "diff.rc":
                    rc = tar.extractfile(member).read().strip()
                elif name == "diff.err":
                    err = tar.extractfile(member).read()[-500:]
                elif name == "agent.rc":
                    agent_rc = _int_or_none(tar.extractfile(member).read(100))
                elif name == "agent.time":
                    agent_time = _span_or_none(tar.extractfile(member).read(100))
                elif name.startswith(prefix) and total + member.size <= output_cap:
                    outputs[name[len(prefix):]] = tar.extractfile(member).read()
                    total += member.size
    except (tarfile.TarError, EOFError, OSError):
        pass  # cut at the output cap: keep what was read
    agent = dict(agent_exit_code=agent_rc, agent_duration_s=agent_time)
    if too_big:
        return FinishedRun(None, outputs, f"diff larger than {patch_cap} bytes", **agent)
    if patch is None or rc != b"0":
        detail = _gist(err.decode("utf-8", "replace")) if err else "no diff came back"
        return FinishedRun(None, outputs, f"could not take the diff: {detail}", **agent)
    # Patches are kept as text, and no database keeps NUL in text: say which
    # file would not survive that, rather than change bytes silently.
    try:
        text, problem = patch.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text, problem = patch.decode("utf-8", errors="replace"), (NOT_UTF8, exc.start)
    if problem is None and "\x00" in text:
        problem = (HOLDS_NUL, patch.index(b"\x00"))  # a file the agent's .gitattributes made git diff as text
    if problem is None:
        return FinishedRun(text, outputs, **agent)
    where = _file_at(patch, problem[1])
    return FinishedRun(text.replace("\x00", "\ufffd"), outputs,
                       f"{problem[0]}{f' (in {where})' if where else ''}; those bytes were replaced",
                       not_text=True, **agent)


NOT_UTF8 = "the diff is not UTF-8 text"
HOLDS_NUL = "the diff holds NUL bytes"


def _file_at(patch: bytes, offset: int) -> str | None:
    """The file whose part of a git diff holds byte `offset`."""
    head = patch.rfind(b"\ndiff --git ", 0, offset)
    if head >= 0:
        start = head + 1
    elif patch.startswith(b"diff --git "):
        start = 0
    else:
        return None
    end = patch.find(b"\n", start)
    line = patch[start:end if end >= 0 else len(patch)].decode("utf-8", "replace")
    parts = line.split(" b/", 1)
    return parts[1] if len(parts) == 2 else line[len("diff --git "):]


def _gist(text: str, limit: int = 300) -> str:
    """The first lines of an error output, not its tail: git puts the reason
    first and pages of usage after it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    gist = "; ".join(lines[:3])
    return gist if len(gist) <= limit else gist[: limit - 1] + "…"


def _int_or_none(raw: bytes) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _span_or_none(raw: bytes) -> float | None:
    try:
        start, end = (float(x) for x in raw.split())
    except ValueError:
        return None
    return end - start if end >= start else None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


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
    context_window: int | None = None,
    max_output_tokens: int | None = None,
) -> AgentRunResult:
    """Run the agent in a fresh sandbox; take its diff and output files.

    `context_window` and `max_output_tokens` (default: the host's
    DGM_CONTEXT_WINDOW and DGM_LLM_MAX_OUTPUT_TOKENS) tell the agent what its
    model holds, as DGM_CONTEXT_WINDOW and DGM_MAX_OUTPUT_TOKENS."""
    context_window = context_window or _env_int("DGM_CONTEXT_WINDOW")
    max_output_tokens = max_output_tokens or _env_int("DGM_LLM_MAX_OUTPUT_TOKENS")
    started = time.monotonic()
    box = agent_sandbox(docker_client, image=image, agent_dir=agent_dir, gateway_socket_dir=gateway_socket_dir,
                        gateway_socket_path_in_container=gateway_socket_path_in_container,
                        repo_in_image=repo_tar is None, limits=limits, labels=labels)
    with box:
        problem_file = box.stage_file("problem.md", problem)
        env = {
            "DGM_PROBLEM_FILE": problem_file,
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
        if context_window:
            env["DGM_CONTEXT_WINDOW"] = str(context_window)
        if max_output_tokens:
            env["DGM_MAX_OUTPUT_TOKENS"] = str(max_output_tokens)
        repo_staged = box.stage_file("repo.tar", repo_tar) if repo_tar is not None else None
        runner = runner_script(time_limit_s=time_limit_s, base_commit=base_commit, repo_staged=repo_staged)
        result = box.run(["bash", "-c", runner, "dgm-runner", python, f"{AGENT_MOUNT}/main.py"], env=env,
                         workdir=REPO_PATH, timeout_s=time_limit_s + FINISH_TIMEOUT_S,
                         channel_cap=FINISH_TAR_CAP_BYTES)
        oom = box.oom_killed()
    if result.killed_by_host:
        return AgentRunResult(
            status="timeout" if result.timed_out else "error", patch="", agent_log=result.output,
            agent_exit_code=None, agent_duration_s=result.duration_s, wall_s=time.monotonic() - started,
            error="the sandbox had to be killed from the host", oom_killed=oom,
        )
    if result.exit_code == SETUP_FAILED_EXIT and SETUP_FAILED in result.output:
        return AgentRunResult(
            status="error", patch="", agent_log=result.output, agent_exit_code=None,
            agent_duration_s=result.duration_s, wall_s=time.monotonic() - started,
            error="could not unpack the repository in the sandbox", oom_killed=oom,
        )
    finished = read_finish_tar(result.channel)
    agent_s = finished.agent_duration_s
    if agent_s is None or not 0 <= agent_s <= result.duration_s:
        agent_s = result.duration_s
    # The host's own clock decides overruns too: a report from inside the
    # sandbox could be the agent's.
    timed_out = (result.timed_out or result.duration_s >= time_limit_s + 1.0
                 or finished.agent_exit_code == TIMEOUT_EXIT
                 or (finished.agent_exit_code == 137 and agent_s >= time_limit_s - 0.5))
    status, error = "ok", None
    if timed_out:
        status, error = "timeout", f"agent overran its {time_limit_s:.0f} s limit"
    if finished.patch is None:
        status, error = "error", finished.error
    elif finished.not_text and error is None:
        error = finished.error  # a note: the run still counts, with those bytes replaced
    if oom and error is None:
        # Otherwise the run only looks like an agent that gave up.
        error = f"a process in the sandbox was killed at its {box.limits.memory_mb} MB memory limit"
    return AgentRunResult(
        status=status, patch=finished.patch or "",
        agent_log=result.output + (f"\n[dgm: output truncated at {len(result.output)} of {result.output_bytes} bytes]"
                                   if result.truncated else ""),
        agent_exit_code=finished.agent_exit_code, agent_duration_s=agent_s,
        wall_s=time.monotonic() - started, outputs=finished.outputs, error=error, oom_killed=oom,
        patch_not_text=finished.not_text,
    )
