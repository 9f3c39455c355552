"""Self-modification: the parent agent runs on a copy of its own code, in a
sandbox, under the ordinary agent contract; its diff becomes the child's commit.

Then the sanity gate: before any benchmark time, the child's code must
compile and its own tests (if it has any) must pass, also in a sandbox —
the child is untrusted code and never runs on the host.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dgm.errors import UsageError
from dgm.executor import HeadSandboxHost, JobRunner, LocalJobs
from dgm.llm.client import CallContext
from dgm.recorded_run import start_recorded_run
from dgm.sandbox.agent_run import AgentRunResult, run_agent
from dgm.sandbox.docker import ExecResult, Mount, Sandbox, shell_under_timeout
from dgm.sandbox.testbed import links_leading_out, make_tree_readable, testbed_tar, unsafe_patch_paths

if TYPE_CHECKING:
    from docker import DockerClient

    from dgm.agent_code import AgentCodeCache
    from dgm.archive.models import Agent
    from dgm.archive.store import ArchiveStore
    from dgm.llm.gateway import Gateway
    from dgm.llm.roles import RoleModel
    from dgm.sandbox.limits import SandboxLimits

SELF_TASK_ID = "self"
SELF_BENCHMARK = "self"
SANITY_TASK_ID = "sanity"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "dgm", "GIT_AUTHOR_EMAIL": "dgm@localhost",
    "GIT_COMMITTER_NAME": "dgm", "GIT_COMMITTER_EMAIL": "dgm@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}

SELF_MODIFY_PREAMBLE = """You are working on the code of a coding agent: this repository is a copy of
YOUR OWN code (its entry point is main.py; it follows the dgm agent contract,
see README.md if present). Implement the change below in this code. Keep the
agent working: it must still run as `python3 main.py`, use only the Python
standard library, and its tests (if any) must pass.

"""


class RejectChild(Exception):
    """The child cannot be admitted; the message is the recorded reason."""


@dataclass
class SelfModifyResult:
    patch: str
    task_run_id: str
    error: str | None = None
    """Why the diff is missing or cannot be used as it is (not taken, over the cap, not text: not UTF-8 or NUL), if so."""
    usable: bool = True
    """False when the patch must not become the child's code (its bytes were altered, or it is missing)."""


def _git(cwd: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          env={**os.environ, **_GIT_ENV})


def repo_tar_of(code_dir: str) -> tuple[bytes, str]:
    """The agent's code as a one-commit git repository, tarred for the sandbox (`testbed_tar`).

    Deterministic (fixed identity and date), so a resumed run sees the same base.
    """
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "testbed"
        subprocess.run(["cp", "-a", f"{code_dir}/.", str(repo)], check=True)
        _git(str(repo), "init", "-q", "-b", "main")
        _git(str(repo), "add", "-A")
        _git(str(repo), "commit", "-q", "--no-gpg-sign", "-m", "agent code")
        base = _git(str(repo), "rev-parse", "HEAD").stdout.strip()
        # The agent's code may hold symlinks: kept as links, never followed.
        return testbed_tar(repo, allow_symlinks=True), base


@dataclass
class SelfModifyJob:
    """A self-modification's sandbox work as plain data (see `dgm.bench.task_job`)."""

    agent_sha: str
    image: str
    repo_tar: bytes
    base_commit: str
    problem: str
    socket_path_in_container: str
    token: str
    model: str
    time_limit_s: float
    limits: SandboxLimits
    labels: dict[str, str]
    context_window: int | None = None
    max_output_tokens: int | None = None

    @property
    def images(self) -> list[str]:
        return [self.image]

    def run(self, host) -> AgentRunResult:
        return run_agent(host.docker, image=self.image, agent_dir=host.agent_dir(self.agent_sha),
                         repo_tar=self.repo_tar, base_commit=self.base_commit, problem=self.problem,
                         gateway_socket_dir=host.gateway_socket_dir,
                         gateway_socket_path_in_container=self.socket_path_in_container, token=self.token,
                         model=self.model, time_limit_s=self.time_limit_s, limits=self.limits, labels=self.labels,
                         context_window=self.context_window, max_output_tokens=self.max_output_tokens)


@dataclass
class SanityJob:
    """The sanity gate's sandbox work as plain data: the child's checks, their exit and output."""

    agent_sha: str
    image: str
    limits: SandboxLimits
    labels: dict[str, str]
    time_limit_s: float

    @property
    def images(self) -> list[str]:
        return [self.image]

    def run(self, host) -> ExecResult:
        mounts = [Mount(host.agent_dir(self.agent_sha), "/agent", read_only=True)]
        with Sandbox(host.docker, self.image, limits=self.limits, mounts=mounts, name_hint="sanity",
                     labels=self.labels) as box:
            return box.run(shell_under_timeout(SANITY_SCRIPT, self.time_limit_s), workdir="/tmp",
                           timeout_s=self.time_limit_s)


def run_self_modification(*, store: ArchiveStore, docker_client: DockerClient, gateway: Gateway,
                          code_cache: AgentCodeCache, campaign_id: str, parent: Agent, child: Agent,
                          proposal: dict, role: RoleModel, time_limit_s: float, limits: SandboxLimits, image: str,
                          socket_path_in_container: str, jobs: JobRunner | None = None,
                          host: HeadSandboxHost | None = None) -> SelfModifyResult:
    """The parent edits a copy of its own code, talking to the self_modify role's model; returns the diff (maybe empty).

    The sandbox work is a job (`SelfModifyJob`) that `jobs` (the campaign's
    executor; default: here) may run on another node; the record is written here."""
    model = role.name
    recorded = start_recorded_run(store, campaign_id=campaign_id, agent_id=child.id, kind="self_modify",
                                  benchmark=SELF_BENCHMARK, task_id=SELF_TASK_ID, stage="self_modify", model=model)
    run = recorded.row
    if recorded.finished:
        # As recorded below: an unusable diff (not taken, or not text) finished the run as an error.
        return SelfModifyResult(run.patch or "", run.id, run.error, usable=run.status != "error")
    parent_dir = code_cache.path(parent.commit_sha)
    repo_tar, base = repo_tar_of(parent_dir)
    call = CallContext(purpose="self_modify", model=model, campaign_id=campaign_id, agent_id=child.id,
                       task_run_id=run.id, task_id=SELF_TASK_ID, role=role)
    jobs = jobs or LocalJobs()
    host = host or HeadSandboxHost(docker_client, gateway.socket_dir, code_cache)
    result, overflow = recorded.under_token(gateway, call, time_limit_s, lambda token: jobs.run_job(SelfModifyJob(
        agent_sha=parent.commit_sha, image=image, repo_tar=repo_tar, base_commit=base,
        problem=SELF_MODIFY_PREAMBLE + proposal["problem_statement"], socket_path_in_container=socket_path_in_container,
        token=token, model=model, time_limit_s=time_limit_s, limits=limits, labels=recorded.labels,
        context_window=role.context_window, max_output_tokens=role.max_output_tokens), host))
    if overflow is not None:  # beside any other error (a timeout, say): the diagnosis looks for it
        result.error = overflow if result.error is None else f"{result.error}; {overflow}"
    outputs = recorded.keep_agent_outputs(result)
    status = "ok" if result.status == "ok" else result.status
    if status == "ok" and not result.patch.strip():
        status = "empty_patch"
    if result.patch_not_text:
        status = "error"  # the child's code would not be the bytes its parent wrote
    recorded.finish(status=status, patch=result.patch, error=result.error,
                    agent_duration_s=result.agent_duration_s, **outputs)
    return SelfModifyResult(result.patch, run.id, result.error, usable=status != "error")


def commit_child(store: ArchiveStore, code_cache: AgentCodeCache, parent: Agent, patch: str, message: str, *,
                 error: str | None = None,
                 usable: bool = True) -> str:
    """Apply the self-modification diff to the parent's tree; commit it as the child.

    `error`/`usable` come from the run (`SelfModifyResult`): a diff that could
    not be taken, or not kept byte for byte, rejects the child with that reason."""
    if not usable or (error and not patch.strip()):
        raise RejectChild(f"self-modification gave no usable diff: {error or 'the run failed'}")
    if not patch.strip():
        raise RejectChild("self-modification changed nothing (empty diff)")
    unsafe = unsafe_patch_paths(patch)
    if unsafe:
        raise RejectChild(f"self-modification diff names a path outside the agent's code: {unsafe[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "agent"
        subprocess.run(["cp", "-a", f"{code_cache.path(parent.commit_sha)}/.", str(tree)], check=True)
        make_tree_readable(tree)  # the copy is ours to patch
        patch_file = Path(tmp) / "change.patch"
        patch_file.write_text(patch if patch.endswith("\n") else patch + "\n")
        applied = _git(str(tree), "apply", "--whitespace=nowarn", str(patch_file))
        if applied.returncode != 0:
            raise RejectChild(f"self-modification diff does not apply: {applied.stderr.strip()[:300]}")
        if not (tree / "main.py").is_file():
            raise RejectChild("self-modification removed main.py")
        escaping = links_leading_out(tree)
        if escaping:
            raise RejectChild(f"self-modification added a symlink leading out of the agent's code: {escaping[0]}")
        try:
            sha = store.code.commit_tree(str(tree), parent_sha=parent.commit_sha, message=message)
        except UsageError as exc:  # e.g. a file name the store cannot keep: the child's doing
            raise RejectChild(f"self-modification left code that cannot be stored: {exc}") from None
    if sha == parent.commit_sha or store.code.diff(parent.commit_sha, sha).strip() == "":
        # Caches are not agent code: say so when they were all the patch held.
        dropped = " (agent code never keeps __pycache__ or *.pyc files)" if (
            "__pycache__/" in patch or ".pyc" in patch) else ""
        raise RejectChild(f"self-modification changed nothing (the tree is identical to the parent's){dropped}")
    return sha


SANITY_SCRIPT = r"""
set -u
cp -a /agent/. /tmp/agent_check && cd /tmp/agent_check
python3 - <<'PY' || exit 3
import pathlib, sys
bad = []
for path in sorted(pathlib.Path('.').rglob('*.py')):
    try:
        compile(path.read_text(), str(path), 'exec')
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        bad.append(f'{path}: {exc}')
if bad:
    print('does not compile:\n' + '\n'.join(bad))
    sys.exit(1)
print('compiles')
PY
if [ -d tests ]; then
  python3 -m pytest -q -p no:cacheprovider tests || exit 4
fi
echo DGM_SANITY_OK
"""


def _line_after(output: str, marker: str) -> str | None:
    """The first line after `marker` in `output` (the first file that does not compile)."""
    head, found, rest = output.partition(marker)
    lines = [line for line in rest.splitlines() if line.strip()] if found else []
    return lines[0].strip() if lines else None


def _pytest_summary(output: str) -> str | None:
    """pytest's last summary line ("1 failed, 3 passed in 0.21s"), if it printed one."""
    for line in reversed(output.splitlines()):
        if " in " in line and any(word in line for word in ("failed", "error", "passed", "no tests ran")):
            return line.strip("= ").strip()
    return None


def _detail(text: str | None) -> str:
    """`: text`, cut to one short line, for a rejection reason; nothing when there is none."""
    return f": {text[:200]}" if text else ""


def sanity_gate(*, store: ArchiveStore, docker_client: DockerClient, code_cache: AgentCodeCache, campaign_id: str,
                child: Agent, image: str, limits: SandboxLimits, time_limit_s: float, jobs: JobRunner | None = None,
                host: HeadSandboxHost | None = None) -> None:
    """Raise RejectChild unless the child compiles and passes its own tests (in a sandbox, run by `jobs`)."""
    recorded = start_recorded_run(store, campaign_id=campaign_id, agent_id=child.id, kind="sanity",
                                  benchmark=SELF_BENCHMARK, task_id=SANITY_TASK_ID, stage="sanity", model="-")
    if not recorded.finished:
        jobs = jobs or LocalJobs()
        host = host or HeadSandboxHost(docker_client, "", code_cache)  # the gate reaches no model
        result = jobs.run_job(SanityJob(agent_sha=child.commit_sha, image=image, limits=limits,
                                        labels=recorded.labels, time_limit_s=time_limit_s), host)
        ok = result.exit_code == 0 and "DGM_SANITY_OK" in result.output
        if ok:
            error = None
        elif result.timed_out:
            error = f"sanity gate: the child's own checks hang (over {time_limit_s:.0f} s)"
        elif result.exit_code == 3 or "does not compile" in result.output:
            error = "sanity gate: the child does not compile" + _detail(_line_after(result.output, "does not compile:"))
        elif result.exit_code == 4:
            error = "sanity gate: the child's own tests fail" + _detail(_pytest_summary(result.output))
        else:
            error = f"sanity gate failed (exit {result.exit_code})"
        recorded.finish(status="ok" if ok else "error", error=error,
                        agent_log_artifact=store.artifacts.put(result.output or "(no output)"))
    run = recorded.row
    if run.status != "ok":
        raise RejectChild(run.error or "sanity gate failed")
