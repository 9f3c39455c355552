"""Docker sandboxes for untrusted code: every limit is set here, nowhere else.

A sandbox is one container, used in one of two ways. `run` makes a command
the container's own main process and waits for it to end: the way task runs
and grading use it, since an exec costs the runtime a second process set-up
(~70 ms of CPU, a fifth of a container's life cycle). `start` keeps the
container up with a `sleep` under docker-init, for any number of `exec`s.

Why each setting:
- `network_mode="none"`: the only way out is the LLM gateway's Unix socket.
  The (loopback-only) network namespace is one of a pool, each held by an idle
  "netns" container and lent to one sandbox at a time: creating and tearing
  down a namespace was half of a container's start-up CPU (~0.19 of ~0.36
  core-s). A sandbox never shares its namespace with a running one; what a
  later borrower can find of an earlier one is at most sockets in TIME_WAIT,
  since with `cap_drop=ALL` no sandbox can change interfaces, routes or
  firewall rules.
- memory == memory+swap, cpu quota, pids limit: a runaway agent hurts only itself.
- `cap_drop=ALL` + `no-new-privileges`: root inside has no special powers and
  setuid binaries cannot grant any.
- Wall clock: enforced twice: `timeout` inside (so the diff can still be taken
  after an agent overruns) and a host-side deadline that kills the whole
  container if the inside one does not work (fork bombs, a wedged exec).
- Labels: containers of a crashed run are found and removed on the next start.
- A failure of Docker itself (the engine stops answering, an image is gone,
  a container will not start) raises an `InfrastructureError` instead of
  ending as a run's result: it is not the agent's doing, and must neither
  score against it nor let a campaign go on without sandboxes.

Files go in through a host directory mounted read-only at /dgm/in (the
"stage"), not through Docker's archive API: every `put_archive` or
`get_archive` makes dockerd re-execute itself (~90 ms of CPU each), which on a
small machine was a fifth of a task's cost. Writable places the agent needs
(its repository, its output directory) are tmpfs mounts owned by its user:
their size is capped and they count against the container's memory limit, so
nothing the agent writes lands on a host path.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dgm.errors import DockerUnavailable, ImageUnavailable, InfrastructureError, SandboxKilled, SandboxLaunchFailed

if TYPE_CHECKING:
    from dgm.sandbox.limits import SandboxLimits


def __getattr__(name: str):
    # `from dgm.sandbox.docker import SandboxLimits`, as before the type had its own
    # module; imported on first use, so `dgm ls` (pid checks) does not load pydantic.
    if name == "SandboxLimits":
        from dgm.sandbox.limits import SandboxLimits

        return SandboxLimits
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

LABEL = "dgm.sandbox"
OWNER_PID_LABEL = "dgm.owner_pid"
AGENT_UID = 1000
AGENT_USER = "agent"
# Exit code of coreutils `timeout` when the command overran.
TIMEOUT_EXIT = 124
# Where a sandbox's stage (host files, read-only) appears inside it.
STAGE_MOUNT = "/dgm/in"
STAGE_PREFIX = "dgm-stage-"


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = True


@dataclass
class ExecResult:
    exit_code: int | None
    output: str
    duration_s: float
    truncated: bool = False
    timed_out: bool = False
    """The command overran its time limit (inside or host-side)."""
    killed_by_host: bool = False
    """The host had to kill the container: nothing more can be run in it."""
    output_bytes: int = 0
    channel: bytes = b""
    """stdout, when it was kept apart (`channel_cap`)."""


def timeout_argv(seconds: float) -> list[str]:
    """The `timeout` prefix for a wall-clock limit (--kill-after: a process
    that ignores SIGTERM still ends)."""
    return ["timeout", "--kill-after=3", f"{max(1, int(seconds))}"]


def shell_under_timeout(script: str, seconds: float) -> list[str]:
    """argv for `Sandbox.run`: a shell as PID 1 (it reaps whatever the script
    leaves orphaned) running `script` under `timeout` (exit 124 on overrun)."""
    return ["bash", "-c", f'{shlex.join(timeout_argv(seconds))} bash -c "$0"; exit $?', script]


def owner_labels() -> dict[str, str]:
    """Labels every dgm container carries, so `remove_orphans` can tell whose it is."""
    return {LABEL: "1", OWNER_PID_LABEL: str(os.getpid()), "dgm.host": os.uname().nodename}


def engine_answers(client) -> bool:
    """Whether the Docker engine answers a ping now."""
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means no
        return False


def reason_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's reason as one line. For the engine's API errors that is
    the engine's own explanation (e.g. why a pull failed), not the HTTP status
    line and URL the SDK puts first."""
    explanation = getattr(exc, "explanation", None)
    text = explanation if isinstance(explanation, str) and explanation.strip() else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:limit]


def _engine_gone(when: str, reason: str) -> DockerUnavailable:
    return DockerUnavailable(f"the Docker engine stopped answering {when} ({reason}); "
                             "start it again (e.g. `scripts/ensure_docker.sh`)")


def docker_client():
    """A docker SDK client, or DockerUnavailable with one clear line."""
    try:
        import docker  # imported lazily: `dgm --help` should not need it

        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        reason = reason_line(exc, 200)
        raise DockerUnavailable(
            f"no Docker engine answers ({reason}); start one (e.g. `scripts/ensure_docker.sh`)"
        ) from None


_removal_lock = threading.Lock()
_pending_removals: list = []
_removal_executor = None


def _removal_pool():
    global _removal_executor
    if _removal_executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _removal_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dgm-rm")
        atexit.register(drain_removals)
    return _removal_executor


def _remove_container(container, stage_dir: str | None = None, netns: str | None = None) -> None:
    removed = True
    try:
        container.remove(force=True)
    except Exception as exc:  # noqa: BLE001 - already removed (e.g. by orphan cleanup)
        removed = "No such container" in str(exc) or "404" in str(exc)
    if stage_dir:
        shutil.rmtree(stage_dir, ignore_errors=True)
    if netns:
        # Only a namespace whose borrower is surely gone goes back to the pool.
        NETNS_POOL.give_back(netns) if removed else NETNS_POOL.discard(netns)


class NetnsPool:
    """Loopback-only network namespaces, each held by an idle container, lent
    to one sandbox at a time (see the module docstring for why)."""

    ROLE_LABEL = "dgm.role"

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[tuple[str, object]] = []
        self._all: dict[str, object] = {}
        self._atexit = False

    def borrow(self, client, image: str) -> str:
        """The id of a holder container whose namespace nobody uses now."""
        with self._lock:
            if self._idle:
                return self._idle.pop()[0]
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True
        holder = client.api.create_container(
            image, command=["sleep", "infinity"], name=f"dgm-netns-{uuid.uuid4().hex[:10]}",
            labels={**owner_labels(), self.ROLE_LABEL: "netns"},
            host_config=client.api.create_host_config(
                init=True, network_mode="none", mem_limit="32m", memswap_limit="32m", pids_limit=8,
                cap_drop=["ALL"], security_opt=["no-new-privileges"], log_config={"type": "none", "config": {}},
            ),
        )["Id"]
        try:
            client.api.start(holder)
        except BaseException:
            client.api.remove_container(holder, force=True)
            raise
        with self._lock:
            self._all[holder] = client
        return holder

    def holder_running(self, holder: str) -> bool:
        with self._lock:
            client = self._all.get(holder)
        try:
            return bool(client.api.inspect_container(holder)["State"]["Running"])
        except Exception:  # noqa: BLE001 - gone
            return False

    def give_back(self, holder: str) -> None:
        with self._lock:
            if holder in self._all:
                self._idle.append((holder, self._all[holder]))

    def discard(self, holder: str) -> None:
        with self._lock:
            client = self._all.pop(holder, None)
            self._idle = [(h, c) for h, c in self._idle if h != holder]
        if client is not None:
            try:
                client.api.remove_container(holder, force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        """Remove every holder (sandboxes first: at exit, after the removals)."""
        drain_removals()
        with self._lock:
            holders = list(self._all)
        for holder in holders:
            self.discard(holder)


NETNS_POOL = NetnsPool()


def drain_removals() -> None:
    """Wait until every background removal has finished."""
    with _removal_lock:
        pending = list(_pending_removals)
        _pending_removals.clear()
    for future in pending:
        future.result()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(client, *, all_owners: bool = False) -> int:
    """Remove dgm sandboxes whose owning process is gone (a crashed run).

    Containers of live processes on this host are left alone so that two
    concurrent `dgm` commands do not kill each other's sandboxes.
    """
    removed = 0
    # The low-level listing returns labels in one call; the high-level one
    # inspects each container and fails if another process removes it meanwhile.
    # Namespace holders go last, after the sandboxes that may use them.
    summaries = client.api.containers(all=True, filters={"label": LABEL})
    summaries.sort(key=lambda c: (c.get("Labels") or {}).get(NetnsPool.ROLE_LABEL) == "netns")
    for summary in summaries:
        labels = summary.get("Labels") or {}
        owner = labels.get(OWNER_PID_LABEL, "")
        host = labels.get("dgm.host", "")
        if not all_owners and owner.isdigit() and host == os.uname().nodename and pid_alive(int(owner)):
            continue
        try:
            client.api.remove_container(summary["Id"], force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
    _remove_orphan_stages(all_owners)
    return removed


def _remove_orphan_stages(all_owners: bool) -> None:
    """Stage directories of dead processes (named dgm-stage-<pid>-...)."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{STAGE_PREFIX}*"):
        pid = path.name[len(STAGE_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        if all_owners or not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def ensure_image(client, tag: str) -> None:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        raise ImageUnavailable(
            f"sandbox image {tag} is missing; build it with `dgm sandbox build`"
        ) from None


class Sandbox:
    """One running container. Use as a context manager: it is always removed."""

    def __init__(
        self,
        client,
        image: str,
        *,
        limits: SandboxLimits | None = None,
        mounts: list[Mount] | None = None,
        labels: dict[str, str] | None = None,
        name_hint: str = "run",
        stage: bool = False,
        tmpfs: dict[str, int] | None = None,
    ):
        """`stage`: give the sandbox a host directory, read-only at STAGE_MOUNT,
        filled with `stage_file`. `tmpfs`: container path -> size in MB of a
        writable in-memory directory owned by the agent user."""
        self.client = client
        self.image = image
        if limits is None:
            from dgm.sandbox.limits import SandboxLimits

            limits = SandboxLimits()
        self.limits = limits
        self.mounts = mounts or []
        self.labels = labels or {}
        self.name = f"dgm-{name_hint}-{uuid.uuid4().hex[:10]}"
        self.container = None
        self._dead = False
        self._want_stage = stage
        self.stage_dir: str | None = None
        self.tmpfs = tmpfs or {}
        self._netns: str | None = None
        self._launched_at: float | None = None
        """Wall-clock time of the launch: the engine's events about this sandbox come after it."""

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "Sandbox":
        """Start the container, kept up by `sleep`, for `exec`."""
        self.container = self._launch(["sleep", "infinity"], init=True)
        return self

    def run(
        self,
        cmd: list[str],
        *,
        user: str = AGENT_USER,
        env: dict[str, str] | None = None,
        workdir: str = "/testbed",
        timeout_s: float = 600.0,
        output_cap: int | None = None,
        channel_cap: int | None = None,
    ) -> ExecResult:
        """Start the container with `cmd` as its main process (PID 1) and wait
        for it to end; the sandbox is then spent (only `remove` is left).

        No `timeout` is put around `cmd` (callers put their own inside): PID 1
        gets no signal from inside the container that it has no handler for,
        so a shell as PID 1 outlives anything its children do, `kill -9 -1`
        included. The host still kills the container past `timeout_s` + grace.
        Output and `channel_cap` are as for `exec`.
        """
        if self.container is not None:
            raise RuntimeError("run() starts the sandbox itself; this one is already started")
        holder: dict = {}

        def attach(container) -> None:
            # Attached before the start, so no output is missed.
            holder["stream"] = self.client.api.attach(
                container.id, stdout=True, stderr=True, stream=True, logs=False, demux=channel_cap is not None)

        started = time.monotonic()
        self.container = self._launch(cmd, init=False, user=user, env=env, workdir=workdir, before_start=attach)
        stream = holder["stream"]

        def exit_code() -> int | None:
            return self.client.api.wait(self.container.id, timeout=30).get("StatusCode")

        result = self._collect(stream, started=started, timeout_s=timeout_s, output_cap=output_cap,
                               channel_cap=channel_cap, exit_code=exit_code)
        self._dead = True  # its one process has ended
        return result

    def _launch(self, command: list[str], *, init: bool, user: str | None = None, env: dict[str, str] | None = None,
                workdir: str | None = None, before_start=None):
        labels = {**owner_labels(), **self.labels}
        self._launched_at = time.time()
        mounts = list(self.mounts)
        if self._want_stage:
            mounts.append(Mount(self._ensure_stage(), STAGE_MOUNT, read_only=True))
        try:
            return self._run_in_pooled_netns(
                mounts, labels, dict(command=command, init=init, user=user, environment=env or {},
                                     working_dir=workdir), before_start)
        except BaseException as exc:
            self._drop_stage()
            if isinstance(exc, Exception) and not isinstance(exc, InfrastructureError):
                raise self._launch_error(exc) from None
            raise

    def _launch_error(self, exc: Exception) -> InfrastructureError:
        """What a failed launch means: the image is gone, the engine is, or the
        engine refused this one container (nothing of the agent ran yet)."""
        import docker.errors

        reason = reason_line(exc)
        if isinstance(exc, docker.errors.ImageNotFound):
            return ImageUnavailable(f"sandbox image {self.image} is missing ({reason})")
        if not engine_answers(self.client):
            return _engine_gone("while starting a sandbox", reason)
        return SandboxLaunchFailed(f"Docker would not start a sandbox from {self.image}: {reason}")

    def _ensure_stage(self) -> str:
        if self.stage_dir is None:
            self.stage_dir = tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-{self.name}-")
            os.chmod(self.stage_dir, 0o755)  # the agent user reads it; only the host writes it
        return self.stage_dir

    def _run_in_pooled_netns(self, mounts: list[Mount], labels: dict[str, str], process: dict, before_start):
        import docker.errors

        for attempt in (1, 2):
            netns = NETNS_POOL.borrow(self.client, self.image)
            try:
                container = self._create(mounts, labels, netns, process)
                if before_start is not None:
                    before_start(container)
                container.start()
            except docker.errors.APIError:
                self._remove_leftover()
                if NETNS_POOL.holder_running(netns) or attempt == 2:
                    NETNS_POOL.give_back(netns)
                    raise
                # The holder died (or was removed as an orphan): drop it, try a fresh one.
                NETNS_POOL.discard(netns)
                continue
            except BaseException:
                self._remove_leftover()
                NETNS_POOL.give_back(netns)
                raise
            self._netns = netns
            return container

    def _remove_leftover(self) -> None:
        """A failed launch may have created the container before starting it."""
        try:
            self.client.api.remove_container(self.name, force=True)
        except Exception:  # noqa: BLE001 - nothing was created
            pass

    def _create(self, mounts: list[Mount], labels: dict[str, str], netns: str, process: dict):
        import docker.types

        limits = self.limits
        process = {k: v for k, v in process.items() if v is not None}
        return self.client.containers.create(
            self.image,
            name=self.name,
            network_mode=f"container:{netns}",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            labels=labels,
            mounts=[
                docker.types.Mount(m.container_path, m.host_path, type="bind", read_only=m.read_only)
                for m in mounts
            ],
            tmpfs={path: f"rw,exec,nosuid,nodev,size={size_mb}m,uid={AGENT_UID},gid={AGENT_UID},mode=0755"
                   for path, size_mb in self.tmpfs.items()},
            # Output is read from the attached streams, never from a log: a
            # log would only make dockerd write a copy of it to disk.
            log_config=docker.types.LogConfig(type="none"),
            **process,
        )

    def _drop_stage(self) -> None:
        stage, self.stage_dir = self.stage_dir, None
        if stage:
            shutil.rmtree(stage, ignore_errors=True)

    def remove(self, *, wait: bool = True) -> None:
        """Remove the container; with wait=False in the background (it costs
        ~0.1 s that nobody needs to wait for; `drain_removals` waits at exit)."""
        if self.container is None:
            self._drop_stage()
            return
        container, self.container = self.container, None
        stage, self.stage_dir = self.stage_dir, None
        netns, self._netns = self._netns, None
        if wait:
            _remove_container(container, stage, netns)
        else:
            with _removal_lock:
                _pending_removals.append(_removal_pool().submit(_remove_container, container, stage, netns))

    def __enter__(self) -> "Sandbox":
        """`with box:` removes the sandbox (in the background) on leaving. It
        does not start it: `run` starts it itself, `start` is for `exec`."""
        return self

    def __exit__(self, *exc) -> None:
        self.remove(wait=False)

    # -- files -------------------------------------------------------------
    def stage_file(self, name: str, content: bytes | str, *, mode: int = 0o644) -> str:
        """Put a file in the stage (a host write, visible at once inside);
        returns its path in the container."""
        if not self._want_stage:
            raise RuntimeError("this sandbox was made without a stage")
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"stage file names are plain names, not {name!r}")
        path = os.path.join(self._ensure_stage(), name)
        with open(path, "wb") as fh:
            fh.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        return f"{STAGE_MOUNT}/{name}"

    # -- exec --------------------------------------------------------------
    def exec(
        self,
        cmd: list[str],
        *,
        user: str = AGENT_USER,
        env: dict[str, str] | None = None,
        workdir: str = "/testbed",
        timeout_s: float = 600.0,
        output_cap: int | None = None,
        channel_cap: int | None = None,
    ) -> ExecResult:
        """Run cmd; never longer than timeout_s (+ host grace), output capped.

        With `channel_cap`, stdout and stderr are kept apart: stderr is the
        output (the log), stdout a byte channel for the harness (`channel`).
        """
        if self._dead or self.container is None:
            return ExecResult(None, "sandbox is no longer running", 0.0, killed_by_host=True)
        wrapped = [*timeout_argv(timeout_s), *cmd]
        api = self.client.api
        demux = channel_cap is not None
        started = time.monotonic()
        try:
            exec_id = api.exec_create(
                self.container.id, wrapped, user=user, environment=env or {}, workdir=workdir,
                stdout=True, stderr=True,
            )["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=demux)
        except Exception as exc:  # noqa: BLE001 - e.g. pids exhausted, container gone
            if not engine_answers(self.client):
                raise _engine_gone("while running a command in a sandbox", reason_line(exc)) from None
            return ExecResult(None, f"exec failed: {str(exc)[:300]}", time.monotonic() - started,
                              killed_by_host=self._check_dead())

        def exit_code() -> int | None:
            return api.exec_inspect(exec_id).get("ExitCode")

        return self._collect(stream, started=started, timeout_s=timeout_s, output_cap=output_cap,
                             channel_cap=channel_cap, exit_code=exit_code)

    def _collect(self, stream, *, started: float, timeout_s: float, output_cap: int | None,
                 channel_cap: int | None, exit_code) -> ExecResult:
        """Read a process's output stream to its end, within the deadline."""
        cap = output_cap if output_cap is not None else self.limits.output_cap_bytes
        demux = channel_cap is not None
        buf, channel = bytearray(), bytearray()
        state = {"total": 0}

        def keep(target: bytearray, chunk: bytes, limit: int) -> None:
            if len(target) < limit:
                target.extend(chunk[: limit - len(target)])

        def drain() -> None:
            # Keep reading past the caps so the process never blocks on a full pipe.
            try:
                for chunk in stream:
                    if demux:
                        out, err = chunk
                        if out:
                            keep(channel, out, channel_cap)
                        chunk = err or b""
                    state["total"] += len(chunk)
                    keep(buf, chunk, cap)
            except Exception:  # noqa: BLE001 - the stream ends when the container is killed
                pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        reader.join(timeout_s + self.limits.host_grace_s)
        killed = False
        if reader.is_alive():
            killed = True
            self.kill()
            reader.join(10)
        duration = time.monotonic() - started
        code = None
        if not killed:
            try:
                code = exit_code()
            except Exception as exc:  # noqa: BLE001
                # A stream that ends because the engine died looks like a
                # process that ended: only the engine's silence tells them apart.
                if not engine_answers(self.client):
                    self._dead = True
                    raise _engine_gone("during a sandbox run", type(exc).__name__) from None
                code = None
        # Killed by a signal, and not by us: if someone asked the engine to kill
        # the container, the run's end says nothing about the agent (or the
        # patch under test). PID 1 ignores kills from inside the sandbox, so
        # only the engine's own record can tell.
        if not killed and (code is None or code >= 128) and self._killed_outside():
            self._dead = True
            raise SandboxKilled(f"sandbox {self.name} was killed from outside dgm (docker kill, stop or rm -f) "
                                "while it ran; the run is not scored")
        return ExecResult(
            exit_code=code,
            output=bytes(buf).decode("utf-8", errors="replace"),
            duration_s=duration,
            truncated=state["total"] > cap,
            # `timeout` exits 124 on overrun, 137 when it had to SIGKILL.
            timed_out=killed or code == TIMEOUT_EXIT
            or (code == 137 and duration >= timeout_s - 0.5),
            killed_by_host=killed,
            output_bytes=state["total"],
            channel=bytes(channel),
        )

    def _killed_outside(self) -> bool:
        """Whether the engine logged a kill of this container since its launch
        (asked of it by anyone: dgm's own kills never reach this check)."""
        if self.container is None or self._launched_at is None:
            return False
        try:
            events = self.client.api.events(
                since=f"{self._launched_at - 1:.9f}", until=f"{time.time():.9f}",
                filters={"container": self.container.id, "event": "kill"}, decode=True)
            return any(True for _ in events)
        except Exception:  # noqa: BLE001 - no record: judge the run as it ended
            return False

    def kill(self) -> None:
        self._dead = True
        try:
            self.container.kill()
        except Exception:  # noqa: BLE001 - already stopped
            pass

    def _check_dead(self) -> bool:
        try:
            self.container.reload()
            self._dead = self.container.status != "running"
        except Exception:  # noqa: BLE001
            self._dead = True
        return self._dead

    def oom_killed(self) -> bool:
        try:
            self.container.reload()
            return bool(self.container.attrs.get("State", {}).get("OOMKilled"))
        except Exception:  # noqa: BLE001
            return False
