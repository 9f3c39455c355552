"""Older Pythons for offline images: Debian packages of an older release,
downloaded with apt on the host (the image has no network)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from dgm.errors import ImageUnavailable


def apt_mirror() -> str:
    """The host's Debian mirror, read from its apt configuration (never hard-coded)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for block in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line and not line.startswith("#"))
            uris = fields.get("URIs", "").split()
            if uris and "security" not in uris[0] and "deb" in fields.get("Types", "deb").split():
                return uris[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                for part in parts[1:]:
                    if part.startswith(("http:", "https:", "file:")):
                        return part
    raise ImageUnavailable("no Debian mirror in /etc/apt/sources.list{,.d}: cannot fetch an older Python for "
                           "the offline image")


def download_debian_packages(base_image: str, suite: str, packages: list[str], dest: Path, *,
                             unpack_only: list[str] = ()) -> None:
    """Download `packages` of Debian `suite` and whatever they need beyond what
    the base image has installed, with apt on the host (the image has no network).

    apt resolves against the base image's own dpkg status, so only the missing
    libraries come along (for bullseye's python3.9: libssl1.1, libffi7, ...)."""
    if shutil.which("apt-get") is None:
        raise ImageUnavailable("apt-get is needed on the host to fetch an older Python from Debian")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dgm-apt-") as work:
        w = Path(work)
        for sub in ("etc", "state/lists/partial", "cache/archives/partial"):
            (w / sub).mkdir(parents=True)
        (w / "etc" / "sources.list").write_text(f"deb {apt_mirror()} {suite} main\n")
        status = subprocess.run(["docker", "run", "--rm", "--network", "none", base_image, "cat",
                                 "/var/lib/dpkg/status"], capture_output=True, timeout=120)
        if status.returncode != 0:
            raise ImageUnavailable(f"cannot read the dpkg status of {base_image}")
        (w / "status").write_bytes(status.stdout)
        opts = [f"-oDir::Etc::SourceList={w}/etc/sources.list", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State={w}/state", f"-oDir::State::status={w}/status", f"-oDir::Cache={w}/cache",
                "-oDebug::NoLocking=1", "-oAcquire::Languages=none", "-oAPT::Install-Recommends=false",
                "-oAPT::Architecture=amd64"]
        (dest / "unpack").mkdir(exist_ok=True)
        steps = [(["update", "-q"], None), (["install", "-y", "-q", "--download-only", *packages], None)]
        if unpack_only:
            steps.append((["download", *unpack_only], dest / "unpack"))
        for args, cwd in steps:
            proc = subprocess.run(["apt-get", *opts, *args], capture_output=True, text=True, timeout=900, cwd=cwd)
            if proc.returncode != 0:
                raise ImageUnavailable(f"apt-get {args[0]} for Debian {suite} failed: "
                                       f"{(proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}")
        for deb in (w / "cache" / "archives").glob("*.deb"):
            shutil.copy2(deb, dest / deb.name)


# The conda the eval script expects (`source /opt/miniconda3/bin/activate;
# conda activate testbed`), for an env that is a plain venv. Nothing else of
