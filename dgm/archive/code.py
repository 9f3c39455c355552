"""Agent code store: a bare git repository with one commit per agent.

A child's commit has its parent agent's commit as git parent, so `git log`
is the lineage and `git diff` is what self-modification changed.
Materialising an agent is one `git archive`, never a replay of patches.

Commits are built with plumbing (hash-object, update-index on a private
temporary index, write-tree, commit-tree): there is no work tree to share, so
concurrent callers cannot step on each other, and no .gitignore, attribute
filter or user config can change what gets stored. Identity and date are
fixed, so the same tree + parent + message always gives the same sha, which
makes two campaigns with the same seed produce the same archive.

The git CLI is called directly: plumbing needs
stdin, and every call runs with a scrubbed environment, which GitPython's
Repo objects do not offer (they honour an inherited GIT_DIR, for one).
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from dgm.errors import NotFound, UsageError

IDENTITY_NAME = "dgm"
IDENTITY_EMAIL = "dgm@localhost"
DEFAULT_COMMIT_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)
"""Used when no date is given: wall-clock time would make shas irreproducible."""

EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Ids that are always valid ref names (dgm's own hex ids, DGM run ids).
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{4,40}$")
_SKIP_DIRS = {".git", "__pycache__"}
_SKIP_SUFFIXES = (".pyc",)


class AgentCodeStore:
    """Bare git repo at `path` (created if missing)."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                if not (self.path / "HEAD").exists():
                    # Not git.Repo.init: it honours an inherited GIT_DIR and would init that instead.
                    _run_git(["init", "--bare", "--quiet", str(self.path)])

    # -- writing -----------------------------------------------------------

    def commit_tree(
        self,
        src_dir: Path | str,
        parent_sha: str | None = None,
        message: str = "agent",
        *,
        date: datetime | int | None = None,
    ) -> str:
        """Commit every file under `src_dir` (minus .git, __pycache__, *.pyc); return the sha."""
        src = Path(src_dir)
        if not src.is_dir():
            raise NotFound(f"agent code directory does not exist: {src}")
        parents = ["-p", self.resolve(parent_sha)] if parent_sha else []
        files, links = _collect(src)
        with tempfile.TemporaryDirectory(prefix="dgm-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            entries: list[str] = []
            if files:
                # "./": git reads a line that starts with a double quote as a
                # C-quoted path, so a file the agent names '"\057etc\057shadow"'
                # would have the host's git store the host's file instead.
                paths = [f"./{rel}" for rel, _ in files]
                # --no-filters: store the bytes as they are, whatever .gitattributes says.
                shas = self._git("hash-object", "-w", "--no-filters", "--stdin-paths",
                                 input="\n".join(paths) + "\n", cwd=src).split()
                entries += [f"{mode} {sha}\t{rel}" for (rel, mode), sha in zip(files, shas, strict=True)]
            for rel, target in links:
                sha = self._git("hash-object", "-w", "--stdin", input=target).strip()
                entries.append(f"120000 {sha}\t{rel}")
            if entries:
                self._git("update-index", "--add", "-z", "--index-info", input="\0".join(entries) + "\0", env=env)
                tree = self._git("write-tree", env=env).strip()
            else:
                tree = self._git("hash-object", "-w", "-t", "tree", "--stdin", input="").strip()
        # The message can come from a model (a proposal's summary): git takes no NUL in an argument.
        message = message.replace("\x00", "\ufffd")
        return self._git("commit-tree", tree, *parents, "-m", message, env=_identity_env(date)).strip()

    def set_ref(self, agent_id: str, sha: str) -> None:
        """Point `refs/agents/<agent_id>` at `sha` (keeps the commit reachable forever)."""
        full = self.resolve(sha)
        ref = self._agent_ref(agent_id)
        with self._locked():  # update-ref fails rather than waits on a held ref lock
            self._git("update-ref", ref, full)

    def set_refs(self, shas_by_agent: dict[str, str]) -> None:
        """`set_ref` for many agents in one git call (bulk imports)."""
        if not shas_by_agent:
            return
        lines = "".join(f"update {self._agent_ref(agent_id)} {sha}\n" for agent_id, sha in shas_by_agent.items())
        with self._locked():
            self._git("update-ref", "--stdin", input=lines)

    def drop_ref(self, agent_id: str) -> None:
        """Remove `refs/agents/<agent_id>` (an agent whose row could not be written)."""
        with self._locked():
            try:
                self._git("update-ref", "-d", self._agent_ref(agent_id))
            except _GitFailed:
                pass

    # -- reading -----------------------------------------------------------

    def resolve(self, sha: str) -> str:
        """Full sha of a commit given its sha or a unique prefix."""
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise NotFound(f"not a commit sha: {sha!r}")
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}").strip()
        except _GitFailed:
            raise NotFound(f"no commit {sha} in agent code store {self.path}") from None

    def has(self, sha: str) -> bool:
        try:
            self.resolve(sha)
        except NotFound:
            return False
        return True

    def missing(self, shas: list[str]) -> list[str]:
        """Those of `shas` (full commit shas) the store does not hold, in one git call."""
        if not shas:
            return []
        out = self._git("cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(shas) + "\n")
        held = {line.split()[0] for line in out.splitlines() if line.endswith(" commit")}
        return [sha for sha in shas if sha not in held]

    def trees(self, shas: list[str]) -> dict[str, str]:
        """Commit sha -> the sha of its code tree, for the given full commit shas, in one git call.
        Two agents with equal trees have the same code, whatever their commits' parents or messages."""
        wanted = sorted(set(shas))
        if not wanted:
            return {}
        out = self._git("cat-file", "--batch-check=%(objectname)", input="".join(f"{sha}^{{tree}}\n" for sha in wanted))
        lines = out.splitlines()
        return {sha: line.strip() for sha, line in zip(wanted, lines) if not line.endswith(" missing")}

    def get_ref(self, agent_id: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", self._agent_ref(agent_id)).strip()
        except _GitFailed:
            return None

    def tree_files(self, sha: str) -> list[str]:
        out = self._git("ls-tree", "-r", "-z", "--name-only", self.resolve(sha))
        return [p for p in out.split("\0") if p]

    def read_file(self, sha: str, path: str) -> bytes:
        full = self.resolve(sha)
        try:
            return self._git_bytes("cat-file", "blob", f"{full}:{path}")
        except _GitFailed:
            raise NotFound(f"no file {path!r} in commit {full[:12]}") from None

    def diff(self, sha_a: str | None, sha_b: str) -> str:
        """Unified diff from `sha_a` (None: the empty tree) to `sha_b`."""
        a = self.resolve(sha_a) if sha_a else EMPTY_TREE_SHA
        return self._git("diff", "--no-color", "--no-ext-diff", "--no-renames", a, self.resolve(sha_b))

    def materialize(self, sha: str, dest_dir: Path | str) -> Path:
        """Write the agent's files into `dest_dir` (created; must be empty if it exists)."""
        full = self.resolve(sha)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise UsageError(f"cannot materialize agent code into non-empty directory {dest}")
        if not self.tree_files(full):
            return dest  # `git archive` of an empty tree is no tar stream Python reads
        proc = subprocess.Popen(
            [_git_exe(), f"--git-dir={self.path}", "archive", "--format=tar", full],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_clean_env(),
        )
        assert proc.stdout is not None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                tar.extractall(dest, filter="data")  # refuses absolute paths and links out of dest
        except tarfile.FilterError as exc:
            proc.kill()
            proc.wait()
            raise UsageError(f"the code of commit {full[:12]} cannot be written out: {exc}") from None
        stderr = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise _GitFailed(f"git archive {full} failed: {stderr.decode(errors='replace').strip()}")
        return dest

    # -- plumbing ----------------------------------------------------------

    def _agent_ref(self, agent_id: str) -> str:
        ref = f"refs/agents/{agent_id}"
        if _PLAIN_ID.match(agent_id or ""):
            return ref  # the common case, without a git process per id
        if not agent_id or subprocess.run([_git_exe(), "check-ref-format", ref], env=_clean_env()).returncode:
            raise UsageError(f"agent id cannot be used as a git ref name: {agent_id!r}")
        return ref

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock on a fresh descriptor excludes other threads as well as other processes.
        with open(self._lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _git(self, *args: str, input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        return self._git_bytes(*args, input=input, env=env, cwd=cwd).decode("utf-8", errors="surrogateescape")

    def _git_bytes(self, *args: str, input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None) -> bytes:
        return _run_git([f"--git-dir={self.path}", *args], input=input, env=env, cwd=cwd)


class _GitFailed(RuntimeError):
    """A git command failed for a reason that is a bug or a broken repository."""


def _collect(src: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(relative path, git mode) of regular files, and (relative path, target) of symlinks."""
    files: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        subdirs = []
        for name in sorted(dirnames + filenames):
            if name in _SKIP_DIRS or name.endswith(_SKIP_SUFFIXES):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, src).replace(os.sep, "/")
            if "\n" in rel:
                raise UsageError(f"file name with a newline cannot be stored: {rel!r}")
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(name)
            elif stat.S_ISLNK(st.st_mode):  # stored as a link, never followed
                links.append((rel, os.readlink(full)))
            elif stat.S_ISREG(st.st_mode):
                files.append((rel, "100755" if st.st_mode & 0o111 else "100644"))
        dirnames[:] = subdirs
    return files, links


def _run_git(args: list[str], input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None) -> bytes:
    proc = subprocess.run(
        [_git_exe(), *args],
        input=input.encode("utf-8", errors="surrogateescape") if input is not None else None,
        capture_output=True, env=_clean_env(env), cwd=cwd,
    )
    if proc.returncode != 0:
        command = next(a for a in args if not a.startswith("--git-dir="))
        raise _GitFailed(f"git {command} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _identity_env(date: datetime | int | None) -> dict[str, str]:
    if date is None:
        date = DEFAULT_COMMIT_DATE
    ts = int(date.timestamp()) if isinstance(date, datetime) else int(date)
    stamp = f"@{ts} +0000"
    return {
        "GIT_AUTHOR_NAME": IDENTITY_NAME, "GIT_AUTHOR_EMAIL": IDENTITY_EMAIL, "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": IDENTITY_NAME, "GIT_COMMITTER_EMAIL": IDENTITY_EMAIL, "GIT_COMMITTER_DATE": stamp,
    }


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Inherited GIT_DIR / GIT_INDEX_FILE (e.g. when run from a git hook) or a
    # user's config (signing, autocrlf) must not change what we store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    env.update(extra or {})
    return env


def _git_exe() -> str:
    # The git GitPython would run (it reads the same variable), without
    # importing it: that costs a tenth of a second and a `git version`
    # process, a fifth of what `dgm show` otherwise costs.
    return os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
