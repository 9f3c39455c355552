"""How files and network namespaces reach a sandbox.

Files go in through a read-only host "stage" and come out as one tar from a
finishing exec; network namespaces come from a pool and are lent to one
sandbox at a time. These tests pin the isolation that must survive both.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

LISTEN = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 7777)); s.listen(); "
          "open('/tmp/listening', 'w').close(); time.sleep(60)")
CONNECT = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 7777), timeout=2); print('CONNECTED')\n"
           "except OSError as e:\n    print('REFUSED', type(e).__name__)")


def _netns(box) -> str:
    result = box.exec(["readlink", "/proc/self/ns/net"], workdir="/")
    assert result.exit_code == 0, result.output
    return result.output.strip()


def _listen(box) -> None:
    result = box.exec(["bash", "-c", f"nohup python3 -c \"{LISTEN}\" >/dev/null 2>&1 & "
                       "for i in $(seq 50); do [ -e /tmp/listening ] && exit 0; sleep 0.1; done; exit 1"],
                      workdir="/", timeout_s=30)
    assert result.exit_code == 0, result.output


def _connect(box) -> str:
    return box.exec(["python3", "-c", CONNECT], workdir="/", timeout_s=30).output.strip()


@pytest.mark.docker
def test_running_sandboxes_never_share_a_network_namespace(docker_client, base_image):
    from dgm.sandbox.docker import Sandbox

    with Sandbox(docker_client, base_image).start() as a, Sandbox(docker_client, base_image).start() as b:
        assert _netns(a) != _netns(b)
        _listen(a)
        assert _connect(a) == "CONNECTED"  # the listener works...
        assert _connect(b).startswith("REFUSED")  # ...and only inside its own sandbox
        devices = b.exec(["cat", "/proc/net/dev"], workdir="/").output
        interfaces = {line.split(":")[0].strip() for line in devices.splitlines()[2:]}
        assert interfaces == {"lo"}, devices


@pytest.mark.docker
def test_a_reused_network_namespace_keeps_nothing_of_its_last_sandbox(docker_client, base_image):
    from dgm.sandbox.docker import Sandbox

    first = Sandbox(docker_client, base_image).start()
    namespace = _netns(first)
    _listen(first)
    first.remove(wait=True)
    with Sandbox(docker_client, base_image).start() as second:
        # The pool lent the same namespace again (that is the saving), and the
        # earlier sandbox's listener died with it.
        assert _netns(second) == namespace
        assert _connect(second).startswith("REFUSED")


@pytest.mark.docker
def test_the_stage_is_read_only_inside_and_removed_with_the_sandbox(docker_client, base_image):
    from dgm.sandbox.docker import STAGE_MOUNT, Sandbox

    box = Sandbox(docker_client, base_image, stage=True, tmpfs={"/work": 16}).start()
    stage_dir = Path(box.stage_dir)
    path = box.stage_file("problem.md", "fix the bug\n")
    assert path == f"{STAGE_MOUNT}/problem.md"
    assert box.exec(["cat", path], workdir="/").output == "fix the bug\n"
    for user in ("agent", "root"):
        wrote = box.exec(["bash", "-c", f"echo x > {STAGE_MOUNT}/evil; echo x >> {path}"], user=user, workdir="/")
        assert wrote.exit_code != 0, f"{user} wrote into the stage: {wrote.output}"
    assert sorted(os.listdir(stage_dir)) == ["problem.md"] and (stage_dir / "problem.md").read_text() == "fix the bug\n"
    # The tmpfs is the agent's to write, and capped.
    assert box.exec(["bash", "-c", "echo ok > /work/f && cat /work/f"], workdir="/").output == "ok\n"
    full = box.exec(["bash", "-c", "head -c 20000000 /dev/zero > /work/big"], workdir="/")
    assert full.exit_code != 0 and "No space left" in full.output
    box.remove(wait=True)
    assert not stage_dir.exists()


@pytest.mark.docker
def test_stages_of_dead_processes_are_removed_as_orphans(docker_client, tmp_path):
    import tempfile

    from dgm.sandbox.docker import STAGE_PREFIX, remove_orphans

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = Path(tempfile.gettempdir())
    orphan = root / f"{STAGE_PREFIX}{dead.pid}-dgm-agent-0123456789-x"
    mine = root / f"{STAGE_PREFIX}{os.getpid()}-dgm-agent-0123456789-y"
    for d in (orphan, mine):
        d.mkdir()
        (d / "repo.tar").write_bytes(b"x")
    try:
        remove_orphans(docker_client)
        assert not orphan.exists()
        assert mine.exists()  # a live process's stage is left alone
    finally:
        subprocess.run(["rm", "-rf", str(orphan), str(mine)], check=True)


def _run(docker_client, image, tmp_path, main_py: str, *, repo_tar: bytes, base_commit: str, time_limit_s=30):
    from dgm.sandbox.agent_run import run_agent

    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "main.py").write_text(main_py)
    os.chmod(agent_dir, 0o755)
    os.chmod(agent_dir / "main.py", 0o644)
    sockets = tmp_path / "sock"
    sockets.mkdir()
    return run_agent(docker_client, image=image, agent_dir=str(agent_dir), repo_tar=repo_tar,
                     base_commit=base_commit, problem="p", gateway_socket_dir=str(sockets),
                     gateway_socket_path_in_container="/run/dgm/llm.sock", token="t", model="scripted:noop",
                     time_limit_s=time_limit_s)


@pytest.mark.docker
def test_a_repository_that_does_not_unpack_is_an_error_not_an_agent_failure(docker_client, base_image, tmp_path):
    result = _run(docker_client, base_image, tmp_path, "print('the agent ran')\n",
                  repo_tar=b"not a tar" * 100, base_commit="HEAD")
    assert result.status == "error" and "could not unpack the repository" in result.error
    assert "the agent ran" not in result.agent_log


KILLS_ITS_RUNNER = """
import os, subprocess, sys
try:
    os.fstat(3)
    print("FD3 OPEN")
except OSError:
    print("FD3 CLOSED")
with open("calc.py", "a") as fh:
    fh.write("# edited by the agent\\n")
for sig in ("-TERM", "-HUP", "-INT", "-KILL"):
    subprocess.run(["pkill", sig, "-f", "dgm-runner"])
print("runner signalled", flush=True)
os.kill(-1, 9)  # everything this user may signal, the runner included
"""


@pytest.mark.docker
def test_the_diff_is_taken_even_when_the_agent_tries_to_kill_the_runner(docker_client, base_image, tmp_path):
    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    result = _run(docker_client, base_image, tmp_path, KILLS_ITS_RUNNER, repo_tar=bench.repo_tar(task),
                  base_commit=task.base_commit)
    assert "FD3 CLOSED" in result.agent_log and "runner signalled" in result.agent_log
    assert result.status == "ok", result.error
    assert "+# edited by the agent" in result.patch
    # The runner (PID 1) outlived it and reports how it ended: killed by its own signal.
    assert result.agent_exit_code == 137


@pytest.mark.docker
def test_the_runner_reports_the_agents_exit_code_and_its_diff(docker_client, base_image, tmp_path):
    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    main_py = ("import os, sys\nopen(os.path.join(os.environ['DGM_OUTPUT_DIR'], 'note.txt'), 'w').write('hi')\n"
               "open('new_file.py', 'w').write('x = 1\\n')\nprint('to stdout'); print('to stderr', file=sys.stderr)\n"
               "sys.exit(7)\n")
    result = _run(docker_client, base_image, tmp_path, main_py, repo_tar=bench.repo_tar(task),
                  base_commit=task.base_commit)
    assert result.status == "ok" and result.agent_exit_code == 7
    assert "+x = 1" in result.patch and result.outputs == {"note.txt": b"hi"}
    assert "to stdout" in result.agent_log and "to stderr" in result.agent_log
    assert 0 < result.agent_duration_s < result.wall_s


@pytest.mark.docker
@pytest.mark.parametrize("wreck", ["import shutil; shutil.rmtree('.git')",
                                   "import shutil, subprocess; shutil.rmtree('.git'); subprocess.run(['git', 'init', '-q'])"])
def test_an_agent_that_wrecks_git_gets_an_error_that_says_so(docker_client, base_image, tmp_path, wreck):
    """Not a page of git's usage text cut to its tail: the reason, first."""
    from dgm.sandbox.agent_run import NO_BASE_COMMIT
    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    result = _run(docker_client, base_image, tmp_path, f"open('x.py', 'w').write('1')\n{wreck}\n",
                  repo_tar=bench.repo_tar(task), base_commit=task.base_commit)
    assert result.status == "error" and result.patch == ""
    assert result.error == f"could not take the diff: {NO_BASE_COMMIT}", result.error


ODD_FILES = r"""
import subprocess
open("data.bin", "wb").write(bytes(range(256)) * 4)
open(".gitattributes", "w").write("*.py -diff\n")  # git would show calc.py as "Binary files differ"
open("calc.py", "a").write("# edited\n")
subprocess.run(["git", "config", "diff.noprefix", "true"], check=True)  # no a/ b/ in the agent's own config
subprocess.run(["git", "config", "diff.external", "/bin/false"], check=True)
"""


@pytest.mark.docker
def test_binary_files_and_the_agents_git_config_do_not_spoil_the_diff(docker_client, base_image, tmp_path):
    """The diff applies and gives back exactly the bytes the agent wrote,
    whatever the agent did to its repository's attributes and config."""
    import io
    import tarfile

    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    result = _run(docker_client, base_image, tmp_path, ODD_FILES, repo_tar=bench.repo_tar(task),
                  base_commit=task.base_commit)
    assert result.status == "ok" and result.error is None, result.error
    assert "GIT binary patch" in result.patch and "diff --git a/data.bin b/data.bin" in result.patch
    work = tmp_path / "apply"
    with tarfile.open(fileobj=io.BytesIO(bench.repo_tar(task))) as tar:
        tar.extractall(work, filter="data")
    repo = work / "testbed"
    subprocess.run(["git", "apply", "-"], cwd=repo, input=result.patch.encode(), check=True)
    assert (repo / "data.bin").read_bytes() == bytes(range(256)) * 4
    assert (repo / "calc.py").read_text().endswith("# edited\n")


@pytest.mark.docker
def test_a_diff_that_is_not_utf8_says_so_and_where(docker_client, base_image, tmp_path):
    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    result = _run(docker_client, base_image, tmp_path, "open('latin1.txt', 'wb').write(b'caf\\xe9\\n')\n",
                  repo_tar=bench.repo_tar(task), base_commit=task.base_commit)
    assert result.patch_not_text and "+caf\ufffd" in result.patch
    assert result.error == "the diff is not UTF-8 text (in latin1.txt); those bytes were replaced", result.error


@pytest.mark.docker
def test_a_diff_holding_nul_says_so_and_where(docker_client, base_image, tmp_path):
    """Git diffs a file with NUL as text when the agent's .gitattributes says
    so; no database keeps NUL in text (PostgreSQL refuses the write)."""
    from tests.support.tiny_bench import TinyBenchmark

    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    task = bench.tasks()[0]
    result = _run(docker_client, base_image, tmp_path,
                  "open('.gitattributes', 'w').write('nul.txt diff\\n')\n"
                  "open('nul.txt', 'wb').write(b'a\\x00b\\n')\n",
                  repo_tar=bench.repo_tar(task), base_commit=task.base_commit)
    assert result.patch_not_text and "+a\ufffdb" in result.patch and "\x00" not in result.patch, result.patch
    assert result.error == "the diff holds NUL bytes (in nul.txt); those bytes were replaced", result.error


# --------------------------------------------------------------------------- the repository tar
def test_testbed_tar_is_deterministic_owned_by_the_agent_and_never_follows_links(tmp_path):
    from dgm.errors import DgmError
    from dgm.sandbox.docker import AGENT_UID
    from dgm.sandbox.testbed import testbed_tar

    root = tmp_path / "code"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o700)
    (tmp_path / "secret").write_text("host secret")
    first = testbed_tar(root)
    os.utime(root / "pkg" / "mod.py", (0, 0))  # mtimes and owners on the host do not matter
    assert testbed_tar(root) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"testbed", "testbed/pkg", "testbed/pkg/mod.py", "testbed/run.sh"}
    assert all((m.uid, m.gid) == (AGENT_UID, AGENT_UID) for m in members.values())
    assert members["testbed/run.sh"].mode == 0o755 and members["testbed/pkg/mod.py"].mode == 0o644

    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(DgmError, match="symlinks are not allowed"):
        testbed_tar(root)
    with tarfile.open(fileobj=io.BytesIO(testbed_tar(root, allow_symlinks=True))) as tar:
        link = tar.getmember("testbed/link")
        assert link.issym() and link.linkname == str(tmp_path / "secret")
        assert all(b"host secret" not in (tar.extractfile(m).read() if m.isfile() else b"") for m in tar)


# --------------------------------------------------------------------------- the finishing tar
def _tar(members: dict[str, bytes | str]) -> bytes:
    """members: name -> content, or 'symlink:TARGET' for a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str) and content.startswith("symlink:"):
                info.type, info.linkname = tarfile.SYMTYPE, content.split(":", 1)[1]
                tar.addfile(info)
                continue
            data = content.encode() if isinstance(content, str) else content
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_finish_tar_gives_the_diff_and_regular_output_files_only():
    from dgm.sandbox.agent_run import read_finish_tar

    raw = _tar({"patch.diff": "diff --git a/x b/x\n", "diff.rc": "0\n", "diff.err": "",
                "output": b"", "output/trajectory.json": '{"steps": []}',
                "output/secret": "symlink:/etc/shadow", "output/sub/notes.txt": "n"})
    done = read_finish_tar(raw)
    assert done.error is None and done.patch == "diff --git a/x b/x\n"
    assert done.outputs == {"trajectory.json": b'{"steps": []}', "sub/notes.txt": b"n"}


def test_finish_tar_refuses_an_oversized_diff_and_keeps_outputs_under_the_cap():
    from dgm.sandbox.agent_run import read_finish_tar

    raw = _tar({"patch.diff": "x" * 2000, "diff.rc": "0", "output/a": "a" * 600, "output/b": "b" * 600})
    done = read_finish_tar(raw, patch_cap=1000, output_cap=1000)
    assert done.patch is None and "diff larger than 1000 bytes" in done.error
    assert done.outputs == {"a": b"a" * 600}


@pytest.mark.parametrize("members, message", [
    ({"patch.diff": "", "diff.rc": "128", "diff.err": "fatal: bad revision 'abc'"}, "fatal: bad revision"),
    ({}, "no diff came back"),
])
def test_finish_tar_without_a_good_diff_says_why(members, message):
    from dgm.sandbox.agent_run import read_finish_tar

    done = read_finish_tar(_tar(members) if members else b"")
    assert done.patch is None and message in done.error
