"""AgentCodeStore: deterministic commits, lossless materialisation, diffs, concurrency."""

from __future__ import annotations

import os
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dgm.archive.code import AgentCodeStore
from dgm.errors import NotFound, UsageError


def make_tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "main.py").write_text("print('agent')\n")
    (root / "main.py").chmod(0o755)
    (root / "pkg" / "tools.py").write_text("def run():\n    return 1\n")
    (root / "pkg" / "__pycache__" / "tools.cpython-311.pyc").write_bytes(b"\0junk")
    (root / "stale.pyc").write_bytes(b"\0junk")
    (root / "crlf.txt").write_bytes(b"a\r\nb\r\n")
    # A user's ignore and attribute files must not change what is stored.
    (root / ".gitignore").write_text("*.txt\nmain.py\n")
    (root / ".gitattributes").write_text("* text=auto\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/x\n")
    os.symlink("main.py", root / "entry")
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    """path -> (content or link target, executable?) for everything a commit should hold."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if ".git" in path.relative_to(root).parts or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        if path.is_symlink():
            out[rel] = (os.readlink(path).encode(), False)
        elif path.is_file():
            out[rel] = (path.read_bytes(), bool(path.stat().st_mode & 0o100))
    return out


def test_commit_is_deterministic_across_repositories(tmp_path):
    src = make_tree(tmp_path / "src")
    a = AgentCodeStore(tmp_path / "a.git")
    b = AgentCodeStore(tmp_path / "b.git")
    sha_a, sha_b = a.commit_tree(src, None, "seed"), b.commit_tree(src, None, "seed")
    assert sha_a == sha_b and len(sha_a) == 40
    assert a.commit_tree(src, None, "other message") != sha_a
    assert a.commit_tree(src, None, "seed", date=datetime(2024, 1, 1, tzinfo=timezone.utc)) != sha_a
    child_a = a.commit_tree(src, sha_a, "child")
    assert child_a == b.commit_tree(src, sha_b, "child")
    log = subprocess.run(["git", f"--git-dir={a.path}", "log", "--format=%P|%an <%ae>|%cn", child_a],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log[0] == f"{sha_a}|dgm <dgm@localhost>|dgm"


def test_commit_ignores_caches_and_git_and_keeps_everything_else(tmp_path):
    src = make_tree(tmp_path / "src")
    store = AgentCodeStore(tmp_path / "agents.git")
    sha = store.commit_tree(src)
    assert store.tree_files(sha) == [".gitattributes", ".gitignore", "crlf.txt", "entry", "main.py", "pkg/tools.py"]
    assert store.read_file(sha, "crlf.txt") == b"a\r\nb\r\n"
    with pytest.raises(NotFound):
        store.read_file(sha, "nope.py")


def test_materialize_round_trip(tmp_path):
    src = make_tree(tmp_path / "src")
    store = AgentCodeStore(tmp_path / "agents.git")
    sha = store.commit_tree(src)
    out = store.materialize(sha, tmp_path / "out" / "agent")
    assert snapshot(out) == snapshot(src)
    assert store.commit_tree(out) == sha  # and back again
    with pytest.raises(UsageError, match="non-empty"):
        store.materialize(sha, out)


def test_diff_refs_and_lookup(tmp_path):
    src = make_tree(tmp_path / "src")
    store = AgentCodeStore(tmp_path / "agents.git")
    parent = store.commit_tree(src, None, "seed")
    (src / "pkg" / "tools.py").write_text("def run():\n    return 2\n")
    child = store.commit_tree(src, parent, "child")
    diff = store.diff(parent, child)
    assert "--- a/pkg/tools.py\n+++ b/pkg/tools.py" in diff and "-    return 1\n+    return 2" in diff
    assert "main.py" not in diff
    assert store.diff(child, child) == ""
    assert "+++ b/main.py" in store.diff(None, child)

    store.set_ref("a1b2", child)
    assert store.get_ref("a1b2") == child and store.get_ref("zzzz") is None
    assert store.has(child) and store.has(child[:10]) and not store.has("0" * 40) and not store.has("--all")
    assert store.resolve(child[:12]) == child
    with pytest.raises(NotFound):
        store.resolve("HEAD")
    with pytest.raises(UsageError, match="git ref"):
        store.set_ref("bad..id", child)


def test_empty_directory_commits_the_empty_tree(tmp_path):
    (tmp_path / "empty").mkdir()
    store = AgentCodeStore(tmp_path / "agents.git")
    sha = store.commit_tree(tmp_path / "empty")
    assert store.tree_files(sha) == []
    with pytest.raises(NotFound):
        store.commit_tree(tmp_path / "missing")


def test_inherited_git_environment_is_ignored(tmp_path, monkeypatch):
    src = make_tree(tmp_path / "src")
    expected = AgentCodeStore(tmp_path / "ref.git").commit_tree(src)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "other-index"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "someone")
    assert AgentCodeStore(tmp_path / "agents.git").commit_tree(src) == expected


def test_concurrent_commits_and_refs(tmp_path):
    store = AgentCodeStore(tmp_path / "agents.git")
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            src = tmp_path / f"src{i}"
            src.mkdir()
            (src / "main.py").write_text(f"print({i % 4})\n")  # pairs of identical trees
            sha = store.commit_tree(src, None, "agent")
            store.set_ref(f"agent{i}", sha)
            store.set_ref("shared", sha)
            results[i] = sha
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results.values())) == 4
    for i, sha in results.items():
        assert store.get_ref(f"agent{i}") == sha
        assert store.read_file(sha, "main.py") == f"print({i % 4})\n".encode()
    assert store.get_ref("shared") in results.values()


@pytest.mark.parametrize("name", ['"\\057etc\\057hostname"', '"unclosed', '"-"', '" spaced"'])
def test_a_file_named_like_a_quoted_path_stores_its_own_bytes_not_the_host_file_it_spells(tmp_path, name):
    """Git reads a --stdin-paths line that starts with a double quote as a
    C-quoted path: an agent naming a file '"\\057etc\\057hostname"' must not
    get the host's /etc/hostname committed as its code."""
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_bytes(b"innocent\n")
    (src / "main.py").write_text("print(1)\n")
    store = AgentCodeStore(tmp_path / "agents.git")
    sha = store.commit_tree(src, message="x")
    assert sorted(store.tree_files(sha)) == sorted([name, "main.py"])
    assert store.read_file(sha, name) == b"innocent\n"
    out = tmp_path / "out"
    store.materialize(sha, out)
    assert snapshot(out) == snapshot(src)
