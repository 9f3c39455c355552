"""The tar a sandbox's repository (/testbed) is unpacked from, and the shell
that unpacks it inside the sandbox (for the agent's run and for grading alike).

One builder for every caller (dgm-mini's repositories, an agent's own code
for self-modification, test fixtures), so all of them reach the sandbox the
same way: members under `testbed/`, owned by the agent user, 0755/0644 modes
(the owner's execute bit kept), fixed mtimes, in a stable order. The same
tree always gives the same bytes.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from dgm.errors import DgmError
from dgm.sandbox.docker import AGENT_UID

# 2024-01-01T00:00:00Z: git decides what changed from content, not mtimes.
FIXED_MTIME = 1704067200

REPO_PATH = "/testbed"
# Size of the tmpfs the repository is unpacked into: what may be written to it.
REPO_TMPFS_MB = 1024
SETUP_FAILED = ">>>>> DGM SETUP FAILED"
# Exit code of the setup wrapper when the repository could not be unpacked.
SETUP_FAILED_EXIT = 125


def unpack_repo_command(stage_path: str) -> str:
    """Shell that unpacks a staged `testbed/` tar at / (into the tmpfs at /testbed)."""
    return (f"tar -xf {stage_path} -C / 2>&1 || {{ echo '{SETUP_FAILED}'; exit {SETUP_FAILED_EXIT}; }}")


def make_tree_readable(root: Path | str) -> None:
    """Directories 0755, files 0644 under `root`: the sandbox's agent user reads
    them, only the owner writes. Never through a symlink (it may point anywhere)."""
    for base, dirs, files in os.walk(root):
        os.chmod(base, 0o755)
        for name in files:
            path = os.path.join(base, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def links_leading_out(tree: Path | str) -> list[str]:
    """Symlinks under `tree` that point outside it, as "link -> target": agent
    code must be self-contained (no copy of it may be made with them)."""
    root = os.path.realpath(tree)
    found = []
    for base, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = os.path.join(base, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if target != root and not target.startswith(root + os.sep):
                    found.append(f"{os.path.relpath(path, tree)} -> {os.readlink(path)}")
    return found


def special_files(tree: Path | str, ignore: tuple[str, ...] = (), onerror=None) -> list[tuple[str, str]]:
    """Entries under `tree` that are neither files, directories nor links, as
    (relative path, "a FIFO" / "a socket" / "a device"): agent code cannot hold
    them, and copying a FIFO would block. Names matching an `ignore` pattern
    (files, or directories with all they hold) are not looked at; `onerror` as
    for os.walk. Links are not followed."""
    import fnmatch

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in ignore)

    found = []
    for base, dirs, files in os.walk(tree, onerror=onerror):
        dirs[:] = [d for d in dirs if not ignored(d)]
        for name in files:
            if ignored(name):
                continue
            path = os.path.join(base, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
                found.append((os.path.relpath(path, tree), kind))
    return found


# Header lines of a git diff that name a path (the rest of the line, maybe C-quoted).
_PATH_HEADERS = ("--- ", "+++ ", "copy from ", "copy to ", "rename from ", "rename to ", "rename old ", "rename new ")


def unquote_path(path: str) -> str:
    """A path as git writes it in a diff header: C-quoted when it has odd characters."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        import codecs

        try:
            return codecs.escape_decode(path[1:-1].encode("utf-8", "surrogateescape"))[0].decode(
                "utf-8", "surrogateescape")
        except ValueError:
            return path  # not valid quoting: checked as it stands
    return path


def unsafe_patch_paths(patch: str) -> list[str]:
    """Paths in a diff's file headers that are absolute or climb out with "..".

    A diff applied on the host (a child's self-modification, an imported DGM
    node) may come from untrusted code, and `git apply` does not check every
    header: a `copy from /etc/shadow` made the host copy that file into an
    agent's code. Only header lines count (a removed line "-- ../x" in a hunk
    is content).
    """
    found: list[str] = []
    in_header = False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            in_header = True
            continue
        if line.startswith("@@") or line.startswith("GIT binary patch"):
            in_header = False
            continue
        if not in_header:
            continue
        header = next((h for h in _PATH_HEADERS if line.startswith(h)), None)
        if header is None:
            continue
        raw = line[len(header):]
        if header in ("--- ", "+++ "):
            raw = raw.split("\t", 1)[0]  # a timestamp may follow
            if raw == "/dev/null":
                continue
        path = unquote_path(raw)
        if path.startswith("/") or ".." in path.split("/") or "\0" in path:
            found.append(f"{header.strip()} {path}")
    return found


def testbed_tar(root: Path, *, prefix: str = "testbed", allow_symlinks: bool = False) -> bytes:
    """An uncompressed tar of `root` with members under `prefix/`.

    Symlinks are stored as links (never followed) when allowed, refused
    otherwise; anything but files, directories and symlinks is refused.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(path: Path, arcname: str) -> None:
            st = path.lstat()
            info = tarfile.TarInfo(arcname)
            info.uid = info.gid = AGENT_UID
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if stat.S_ISLNK(st.st_mode):
                if not allow_symlinks:
                    raise DgmError(f"{path}: symlinks are not allowed here")
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                for child in sorted(os.listdir(path)):
                    add(path / child, f"{arcname}/{child}")
            elif stat.S_ISREG(st.st_mode):
                info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                info.size = st.st_size
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                raise DgmError(f"{path}: not a regular file, directory or symlink")

        add(Path(root), prefix)
    return buf.getvalue()
