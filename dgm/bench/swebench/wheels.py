"""Reading pip's answers and wheel metadata for the offline builder's
wheelhouse: which requirement has only an sdist, which wheel suits which
Python, what the wheels still need, and the upload-date cutoff."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# Build tools of the time SWE-bench's images were made: today's setuptools no
# longer builds some old setup.py files. Used unless a repo demands newer.
BUILD_TOOL_CONSTRAINTS = ("setuptools<70.1", "setuptools_scm<8.1", "wheel<0.44")
# Unpinned dependencies resolve to what PyPI held after swebench 4.x's pins
# (such as tox==4.16.0, July 2024), close to when SWE-bench built its
# environment images, not to today's releases (docutils 0.22+ drops the
# `roman` module sphinx 3.x imports). A pin newer than the cutoff lifts it for
# that resolution step. $DGM_SWEBENCH_PYPI_CUTOFF overrides it (ISO date, "none").
PYPI_CUTOFF = "2024-10-01T00:00:00Z"
# Wheel platforms the image can load (bookworm has glibc 2.36). pip does not
# expand a manylinux tag to the older ones, so every one is listed.
PLATFORMS = ("linux_x86_64", "manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64",
             *(f"manylinux_2_{minor}_x86_64" for minor in range(5, 37)))


def _dist_name(filename: str) -> str:
    from packaging.utils import canonicalize_name

    stem = filename[:-4] if filename.endswith(".whl") else filename.rsplit(".tar", 1)[0].rsplit(".zip", 1)[0]
    return canonicalize_name(stem.split("-")[0] if filename.endswith(".whl") else stem.rsplit("-", 1)[0])


def pypi_cutoff() -> str | None:
    """The upload-date cutoff for unpinned dependencies ($DGM_SWEBENCH_PYPI_CUTOFF, else PYPI_CUTOFF)."""
    value = os.environ.get("DGM_SWEBENCH_PYPI_CUTOFF", PYPI_CUTOFF).strip()
    return None if value.lower() in ("", "none", "off", "0") else value


def is_pure_wheel(filename: str, python: str) -> bool:
    """Whether a wheel file installs on any platform with CPython `python`."""
    from packaging.utils import parse_wheel_filename

    try:
        _name, _version, _build, tags = parse_wheel_filename(filename)
    except ValueError:
        return False
    major, minor = python.split(".")[:2]
    accepted = {f"py{major}", f"py{major}{minor}", f"cp{major}{minor}"}
    return any(t.abi == "none" and t.platform == "any" and t.interpreter in accepted for t in tags)


def sdist_only_candidates(pip_output: str, wheels: Path) -> list[str]:
    """Requirements pip could not satisfy with wheels in a failed resolution,
    as named in its messages, minus those already in `wheels`."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    present = {_dist_name(f.name) for f in wheels.glob("*.whl")}
    found: dict[str, str] = {}
    patterns = (r"No matching distribution found for (\S+)", r" depends on (\S+)")
    for pattern in patterns:
        for text in re.findall(pattern, pip_output):
            try:
                req = Requirement(text.rstrip(".,;"))
            except InvalidRequirement:
                continue
            name = canonicalize_name(req.name)
            if name not in present:
                found.setdefault(name, str(req))
    if " depends on " in pip_output:
        # ResolutionImpossible lists every candidate of the parent package
        # ("coveralls 3.3.1 depends on docopt>=0.6.1"); the parents resolve.
        parents = {canonicalize_name(m) for m in re.findall(r"(\S+) \S+ depends on ", pip_output)}
        found = {k: v for k, v in found.items() if k not in parents}
    return list(found.values())


def missing_dependencies(wheels: Path, python: str) -> set[str]:
    """Requirements of the wheels in `wheels` that apply on Python `python`
    (markers evaluated for it) and that no file there provides."""
    import zipfile

    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0",
           "implementation_version": f"{python}.0", "extra": ""}
    present = {_dist_name(f.name) for f in wheels.iterdir() if f.name.endswith((".whl", ".tar.gz", ".zip"))}
    missing: set[str] = set()
    for whl in wheels.glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
            if meta is None:
                continue
            text = zf.read(meta).decode("utf-8", "replace")
        for line in text.split("\n\n", 1)[0].splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            try:
                req = Requirement(line.split(":", 1)[1].strip())
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if canonicalize_name(req.name) not in present:
                missing.add(str(req).split(";")[0].strip())
    return missing


def pip_error(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or "") + (proc.stdout or "")
    lines = [ln.strip() for ln in text.splitlines()
             if ln.startswith("ERROR") or "error" in ln.lower() or " depends on " in ln]
    return (" | ".join(lines[-3:]) if lines else text.strip()[-200:])[:500]
