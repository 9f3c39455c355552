"""The offline image builder: a SWE-bench instance image made on this machine
from the local sandbox base image, a local clone of the task's repository
(--repo-mirror) and a wheelhouse that `pip download` fetched on the host for
the spec's Python; nothing is pulled and the build has no network. Python
versions the builder cannot provide are a per-instance limitation
(`Unsupported`), never a crash.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dgm.bench.swebench.cache import cache_dir
from dgm.bench.swebench.debian import download_debian_packages
from dgm.bench.swebench.images import DIFF_BASE_REF, Unsupported, docker_build, image_exists, instance_key, ImageProvider
from dgm.bench.swebench.specs import make_spec, requirements_from, specs_for
from dgm.bench.swebench.wheels import (BUILD_TOOL_CONSTRAINTS, PLATFORMS, pip_error, is_pure_wheel,
                                       missing_dependencies, pypi_cutoff, sdist_only_candidates)
from dgm.errors import ImageUnavailable, NotFound
from dgm.sandbox.docker import pid_alive
from dgm.sandbox.images import base_image_tag, image_id, remove_replaced

# Bump when the Dockerfile or setup script below changes what the final image
# holds: images are keyed by it. (v2's build-stage label changed no image.)
OFFLINE_BUILDER_VERSION = "v2"
# Label of the build stage's layers: the classic builder keeps a multi-stage
# build's earlier stages as untagged images (0.3-1.1 GB each, the wheelhouse
# and a second copy of the testbed), which `build` removes by this label, and
# `dgm sandbox prune` if a killed build left them.
BUILD_STAGE_LABEL = "dgm.build-stage"


# Pythons the offline builder can put in an image without any registry but
# PyPI and Debian's: the base image's own, and older ones as Debian packages of
# an older release, downloaded on the host and dpkg-installed in the image.
BASE_PYTHON = "3.11"
# (suite, package to install, packages only unpacked): Debian moves distutils
# (which pip needs on Python < 3.10) to python3-distutils, whose dependencies
# clash with the newer release's python3; its files alone are what is needed.
DEBIAN_PYTHONS = {"3.9": ("bullseye", "python3.9", ("python3-distutils", "python3-lib2to3"))}


def offline_tag(task) -> str:
    return f"dgm-sweb.offline.{instance_key(task.instance_id)}:{OFFLINE_BUILDER_VERSION}"


@contextmanager
def _file_lock(path: Path):
    """An exclusive lock on `path` held by this process (released when it exits, however)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, cwd=None, env=None, check=True, timeout=1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


class RepoMirror:
    """A directory of local clones: `owner__name` (work tree or bare), `owner__name.git`."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise NotFound(f"--repo-mirror {self.root} is not a directory")

    def git_dir(self, repo: str) -> Path:
        name = repo.replace("/", "__")
        for candidate in (self.root / name / ".git", self.root / name, self.root / f"{name}.git"):
            if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
                return candidate
        raise NotFound(f"no clone of {repo} in --repo-mirror {self.root} (expected {self.root / name} "
                       f"or {self.root / name}.git; make it with `git clone --mirror <url> {self.root / name}.git`)")

    def git(self, repo: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(["git", "--git-dir", str(self.git_dir(repo)), *args], env=_git_env(), check=check)

    def has_commit(self, repo: str, commit: str) -> bool:
        return self.git(repo, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0

    def read_file(self, repo: str, commit: str, path: str) -> str | None:
        proc = self.git(repo, "show", f"{commit}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None


@dataclass
class BuildPlan:
    """Everything the offline image of one instance is made from."""

    instance_id: str
    python: str
    requirements: list[str]
    """pip requirement lines for the testbed env (spec's packages + pip_packages)."""
    requirements_file: str | None
    """swebench's requirements.txt text (via the mirror), when the spec uses one."""
    host_pre_install: list[str]
    """The spec's `sed` pre-install edits, also applied on the host copy used to resolve deps."""
    install_target: str | None
    """What the spec's install command installs, as a pip requirement relative to /testbed ('.', '.[test]')."""
    repo_script: str
    """swebench's repository setup script minus the clone and the gc (run in the image)."""


def _pip_name(conda_spec: str) -> str:
    """A conda package spec (`numpy=1.2`, `pytest`) as a pip requirement."""
    spec = conda_spec.strip().strip("'\"")
    if re.match(r"^[A-Za-z0-9_.\-\[\]]+=[^=<>!]", spec):
        name, version = spec.split("=", 1)
        return f"{name}=={version}"
    return spec


class OfflineBuilder(ImageProvider):
    kind = "offline"

    def __init__(self, repo_mirror: Path, *, cache: Path | None = None, base_image: str | None = None,
                 pip: list[str] | None = None, wheelhouse: Path | None = None,
                 build_tools: tuple[str, ...] = ("pip", "setuptools", "wheel")):
        """`wheelhouse`: resolve from this local directory only (a machine with
        no PyPI either); else `pip download` from the index the host uses.
        `build_tools`: what the image keeps for the eval script's reinstalls."""
        self.mirror = RepoMirror(repo_mirror)
        self.cache = Path(cache) if cache else cache_dir()
        self.base_image = base_image or base_image_tag()
        self.pip = pip or [sys.executable, "-m", "pip"]
        self.wheelhouse = Path(wheelhouse).expanduser() if wheelhouse else None
        if self.wheelhouse is not None and not self.wheelhouse.is_dir():
            raise NotFound(f"--wheelhouse {self.wheelhouse} is not a directory")
        self.build_tools = list(build_tools)
        self.timings: dict[str, dict[str, float]] = {}
        self.nocache = False  # benchmarks measure cold builds with it
        self.cutoff = pypi_cutoff()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- naming --------------------------------------------------------------
    def tag(self, task) -> str:
        return offline_tag(task)

    # -- planning (pure: no Docker) ------------------------------------------
    def plan(self, row: dict) -> BuildPlan:
        iid, repo = row["instance_id"], row["repo"]
        specs = specs_for(row)
        python = str(specs.get("python", ""))
        if python != BASE_PYTHON and python not in DEBIAN_PYTHONS:
            raise Unsupported(f"{iid}: needs Python {python}; the offline builder provides "
                              f"{', '.join(sorted([BASE_PYTHON, *DEBIAN_PYTHONS]))} "
                              f"(use --images pull or build for this instance)")
        self.mirror.git_dir(repo)  # NotFound with the expected path
        for commit in {row["base_commit"], row.get("environment_setup_commit") or row["base_commit"]}:
            if not self.mirror.has_commit(repo, commit):
                raise NotFound(f"{iid}: commit {commit[:12]} is not in the clone {self.mirror.git_dir(repo)}; "
                               f"update it (git fetch) or use a full clone")
        pre_install = list(specs.get("pre_install") or [])
        foreign = [c for c in pre_install if not c.lstrip().startswith("sed ")]
        if foreign:
            raise Unsupported(f"{iid}: its setup runs system commands ({foreign[0][:60]}...) that need "
                              f"a network in the image; use --images pull or build")
        packages = specs.get("packages", "") or ""
        requirements_file = None
        requirements: list[str] = []
        if packages == "environment.yml":
            raise Unsupported(f"{iid}: its environment is a conda environment.yml, which the offline "
                              f"builder does not translate; use --images pull or build")
        if packages == "requirements.txt":
            from swebench.harness.test_spec import python as spec_python

            with requirements_from(self.mirror.read_file, allow_network=False):
                try:
                    requirements_file = spec_python.get_requirements(row)
                except ValueError as exc:
                    raise Unsupported(f"{iid}: {exc}") from None
        elif packages:
            requirements += [_pip_name(p) for p in shlex.split(packages)]
        requirements += [str(p) for p in specs.get("pip_packages", []) or []]
        install_target = None  # specs without `install` test the checkout as is
        if specs.get("install"):
            match = re.search(r"pip install\s+(?:-\S+\s+)*?(?:-e\s+)?(\.\S*)", specs["install"])
            install_target = match.group(1) if match else "."
        spec = make_spec(row, self.mirror.read_file, allow_network=False)
        return BuildPlan(iid, python, requirements, requirements_file,
                         [c for c in pre_install], install_target, self._repo_script(spec.install_repo_script))

    @staticmethod
    def _repo_script(script: str) -> str:
        """swebench's repo setup, with /testbed already checked out from the mirror.

        Dropped: the clone (done from the mirror), removing the (absent) remote,
        and `git gc --aggressive` (minutes on big repos, changes nothing a test
        sees). Kept: the tag pruning, the check that no later commit is visible,
        the install steps and the SWE-bench commit of setup edits."""
        keep = []
        for line in script.splitlines():
            stripped = line.strip()
            if stripped.startswith(("git clone ", "git remote remove origin", "git gc ")):
                continue
            keep.append(line)
        return "\n".join(keep) + "\n"

    # -- host-side preparation -------------------------------------------------
    def _context_dir(self, iid: str) -> Path:
        # Per process: another dgm building the same instance must not delete this one's.
        return self.cache / "build" / f"{iid}.{os.getpid()}"

    def _checkout(self, row: dict, dest: Path) -> None:
        """/testbed: the commit and its ancestors only (nothing later is visible,
        as in SWE-bench), plus the tags on that history (setuptools_scm
        versions come from them)."""
        repo, commit = row["repo"], row["base_commit"]
        git_dir = str(self.mirror.git_dir(repo))
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        env = _git_env()
        _run(["git", "init", "-q", str(dest)], env=env)
        _run(["git", "-C", str(dest), "fetch", "-q", "--no-tags", git_dir, commit], env=env)
        tags = self.mirror.git(repo, "for-each-ref", "--format=%(refname)", "--merged", commit, "refs/tags").stdout.split()
        for start in range(0, len(tags), 200):
            refspecs = [f"{t}:{t}" for t in tags[start:start + 200]]
            _run(["git", "-C", str(dest), "fetch", "-q", "--no-tags", git_dir, *refspecs], env=env)
        _run(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", commit], env=env)

    def _pip_command(self, verb: str, *, cutoff: bool = True) -> tuple[list[str], dict[str, str]]:
        """`pip VERB` with the index options every host-side resolution shares."""
        cmd = [*self.pip, verb, "--progress-bar", "off"]
        # The host's own pip constraints and find-links are for the host's
        # Python, not the image's.
        env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": ""}
        if self.wheelhouse is not None:
            cmd += ["--no-index", "--find-links", str(self.wheelhouse)]
        elif cutoff and self.cutoff:
            cmd += ["--uploaded-prior-to", self.cutoff]
            # Local indexes and find-links from the host's pip configuration
            # carry no upload dates, so pip would take today's files from
            # them whatever the cutoff: only the index is used (env settings
            # such as PIP_INDEX_URL and PIP_CERT still apply).
            env["PIP_CONFIG_FILE"] = os.devnull
        return cmd, env

    def _pip_download(self, args: list[str], dest: Path, python: str, *, binary_only: bool = True,
                      constraints: Path | None = None, build_constraints: Path | None = None,
                      cutoff: bool = True) -> subprocess.CompletedProcess:
        cmd, env = self._pip_command("download", cutoff=cutoff)
        cmd += ["--dest", str(dest), "--python-version", python, "--implementation", "cp",
                *(arg for platform in PLATFORMS for arg in ("--platform", platform))]
        cmd += ["--only-binary=:all:"] if binary_only else ["--no-deps", "--no-binary=:all:"]
        if binary_only and any(dest.glob("*.whl")):
            # Wheels built here from sdists (_wheel_from_sdist) count too.
            cmd += ["--find-links", str(dest)]
        if constraints:
            cmd += ["-c", str(constraints)]
        if build_constraints:
            # Old setup.py files are read (for their dependencies) with the
            # era's setuptools too, not today's.
            cmd += ["--build-constraint", str(build_constraints)]
        return _run(cmd + args, env=env, check=False, timeout=3600)

    def _wheel_from_sdist(self, req: str, wheels: Path, python: str, constraints: Path, *,
                          cutoff: bool = True) -> bool:
        """A dependency published only as an sdist (docopt, which coveralls
        needs): build its wheel on the host. Only a pure-Python wheel
        (`py3-none-any`) is kept, since only that one also suits the image's
        Python. True when one was added."""
        with tempfile.TemporaryDirectory(prefix="dgm-sdist-") as out:
            if self._pip_download(["--no-deps", req], Path(out), python, cutoff=cutoff).returncode == 0:
                return False  # it has a wheel: the resolution failed for another reason
            cmd, env = self._pip_command("wheel", cutoff=cutoff)
            cmd += ["--no-deps", "--no-binary=:all:", "--wheel-dir", out,
                    "--build-constraint", str(constraints), req]
            if _run(cmd, env=env, check=False, timeout=1800).returncode != 0:
                return False
            built = [w for w in Path(out).glob("*.whl") if is_pure_wheel(w.name, python)]
            for whl in built:
                shutil.copy2(whl, wheels / whl.name)
            return bool(built)

    def _download_wheelhouse(self, plan: BuildPlan, ctx: Path, host_repo: Path) -> None:
        wheels, build_wheels = ctx / "wheels", ctx / "build-wheels"
        wheels.mkdir(exist_ok=True)
        build_wheels.mkdir(exist_ok=True)
        # Build tools for the image's isolated builds (the eval script reinstalls the package).
        build_reqs = list(self.build_tools)
        pyproject = host_repo / "pyproject.toml"
        if pyproject.is_file():
            import tomllib

            try:
                build_reqs += tomllib.loads(pyproject.read_text()).get("build-system", {}).get("requires", [])
            except ValueError:
                pass
        constraints = ctx / "build-constraints.txt"
        constraints.write_text("\n".join(BUILD_TOOL_CONSTRAINTS) + "\n")
        proc = self._pip_download(build_reqs, build_wheels, plan.python, constraints=constraints)
        if proc.returncode != 0:  # a repo that needs newer build tools than the era's
            proc = self._pip_download(build_reqs, build_wheels, plan.python, cutoff=False)
        if proc.returncode != 0:
            raise Unsupported(f"{plan.instance_id}: pip download of build tools failed: {pip_error(proc)}")
        self._complete_for_markers(plan, build_wheels, constraints)

        # Resolved in the same steps as the image installs them (and as
        # swebench's env + repo scripts do): the requirements file, the extra
        # packages, then the repository itself. One resolution for all of them
        # can be impossible where the steps are not (pylint pins a newer astroid).
        (ctx / "requirements.txt").write_text(plan.requirements_file or "")
        groups = []
        if plan.requirements_file is not None:
            groups.append(["-r", str(ctx / "requirements.txt")])
        if plan.requirements:
            groups.append(list(plan.requirements))
        for args in groups:
            self._download_group(plan, args, wheels, constraints)
        if plan.install_target is not None:
            repo_req = str(host_repo) + plan.install_target[1:]
            try:
                self._download_group(plan, [repo_req], wheels, constraints)
            except Unsupported as exc:  # noqa: PERF203
                # Some old setup.py files import the package itself and cannot
                # run on the host's Python (requests 2.x on 3.11); their
                # dependencies then are the spec's packages (requests vendors
                # its own). The image's install says so if one is missing.
                if "when getting requirements" not in str(exc) and "metadata" not in str(exc):
                    raise

        self._complete_for_markers(plan, wheels, constraints)

    def _complete_for_markers(self, plan: BuildPlan, wheels: Path, constraints: Path) -> None:
        """Add the dependencies that only the image's Python needs.

        `pip download --python-version` checks wheels against that version but
        evaluates environment markers with the host's interpreter, so a 3.11
        host drops `tomli; python_version < "3.11"` for a 3.9 image. The
        wheels' own metadata, evaluated for the image's Python, says what is
        missing; it is fetched until nothing is."""
        for _ in range(6):
            missing = sorted(missing_dependencies(wheels, plan.python))
            if not missing:
                return
            proc = self._pip_download(missing, wheels, plan.python, constraints=constraints)
            if proc.returncode != 0:
                raise Unsupported(f"{plan.instance_id}: dependencies for Python {plan.python} "
                                  f"({', '.join(missing)}): {pip_error(proc)}")

    def _download_group(self, plan: BuildPlan, args: list[str], wheels: Path, constraints: Path) -> None:
        args = list(args)
        cutoff = True
        for _ in range(12):
            proc = self._pip_download(args, wheels, plan.python, constraints=constraints,
                                      build_constraints=constraints, cutoff=cutoff)
            if proc.returncode == 0:
                return
            output = proc.stdout + proc.stderr
            missing = re.search(r"No matching distribution found for (\S+)", output)
            if missing and missing.group(1) in args:
                req = missing.group(1)
                if cutoff and self.cutoff and "==" in req and self.wheelhouse is None:
                    # A pin newer than the cutoff: the spec asks for it, so
                    # this step resolves without the cutoff.
                    cutoff = False
                    continue
                # A pin that only exists as an sdist (e.g. MarkupSafe==2.1.1
                # for 3.11): take the sdist itself; it is built in the image.
                sdist = self._pip_download([req], wheels, plan.python, binary_only=False, cutoff=cutoff)
                if sdist.returncode != 0:
                    raise Unsupported(f"{plan.instance_id}: {req} has neither a wheel for Python {plan.python} "
                                      f"nor an sdist: {pip_error(sdist)}")
                args.remove(req)
                continue
            # A dependency of a dependency with no wheel at all (docopt): a
            # pure-Python one is built into a wheel here, once.
            needed = sdist_only_candidates(output, wheels)
            if needed and all(self._wheel_from_sdist(req, wheels, plan.python, constraints, cutoff=cutoff)
                              for req in needed):
                continue
            if cutoff and self.cutoff and self.wheelhouse is None:
                # The cutoff must not make impossible what today's index allows
                # (a spec pin newer than it, deep in a requirements file).
                cutoff = False
                continue
            raise Unsupported(f"{plan.instance_id}: no wheels for Python {plan.python}: {pip_error(proc)}")
        raise Unsupported(f"{plan.instance_id}: could not assemble a wheelhouse: {pip_error(proc)}")

    def _debian_python(self, python: str, ctx: Path) -> None:
        debs = ctx / "debs"
        debs.mkdir(exist_ok=True)
        if python == BASE_PYTHON:
            return
        suite, package, unpack_only = DEBIAN_PYTHONS[python]
        pool = self.cache / "debs" / f"{suite}-{package}"
        if not any(pool.glob("*.deb")) or not any((pool / "unpack").glob("*.deb")):
            download_debian_packages(self.base_image, suite, [package], pool, unpack_only=list(unpack_only))
        for deb in pool.glob("*.deb"):
            shutil.copy2(deb, debs / deb.name)
        (debs / "unpack").mkdir(exist_ok=True)
        for deb in (pool / "unpack").glob("*.deb"):
            shutil.copy2(deb, debs / "unpack" / deb.name)

    # -- the image ---------------------------------------------------------------
    def _lock(self, iid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(iid, threading.Lock())

    def ensure(self, client, task) -> str:
        tag = self.tag(task)
        iid = task.instance_id
        # A thread lock for this process's workers, a file lock for other dgm
        # processes: one builds, the others wait and then find the image.
        with self._lock(iid), _file_lock(self.cache / "build" / f"{iid}.lock"):
            if image_exists(client, tag):
                return tag
            if not image_exists(client, self.base_image):
                raise ImageUnavailable(f"the sandbox base image {self.base_image} is missing; build it with "
                                       f"`dgm sandbox build`")
            try:
                self.build(client, task.extra["row"], tag)
            except NotFound as exc:  # no clone of its repository, or not its commit: this instance only
                raise ImageUnavailable(f"{iid}: {exc}") from None
            except subprocess.CalledProcessError as exc:
                detail = (exc.stderr or exc.stdout or "").strip().splitlines()
                raise ImageUnavailable(f"{iid}: preparing its image failed: `{shlex.join(map(str, exc.cmd))[:200]}` "
                                       f"exited {exc.returncode}" + (f" ({detail[-1][:200]})" if detail else "")) from None
        return tag

    def build(self, client, row: dict, tag: str) -> dict[str, float]:
        """Prepare the context on the host and `docker build` it; returns timings (s)."""
        iid = row["instance_id"]
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        plan = self.plan(row)
        ctx = self._context_dir(iid)
        for left in ctx.parent.glob(f"{iid}.*"):  # contexts of builds killed before their clean-up
            pid = left.suffix[1:]
            if left.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
                shutil.rmtree(left, ignore_errors=True)
        ctx.mkdir(parents=True)
        try:
            self._checkout(row, ctx / "testbed")
            timings["checkout_s"] = time.monotonic() - t0
            t1 = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="dgm-resolve-") as scratch:
                # Dependencies are resolved on the host from a copy with the
                # spec's sed edits applied (sphinx pins Jinja2 that way).
                host_repo = Path(scratch) / "repo"
                # With .git: setuptools_scm reads the version from it.
                shutil.copytree(ctx / "testbed", host_repo, symlinks=True)
                for command in plan.host_pre_install:
                    _run(["bash", "-c", command], cwd=host_repo, check=False)
                self._download_wheelhouse(plan, ctx, host_repo)
            self._debian_python(plan.python, ctx)
            timings["wheelhouse_s"] = time.monotonic() - t1
            build_id = f"{iid}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
            self._write_context(plan, ctx, build_id)
            t2 = time.monotonic()
            replaced = image_id(client, tag)  # a rebuild: the image that held the tag until now
            try:
                docker_build(client, str(ctx), tag, log_path=self.cache / "build" / f"{iid}.log", nocache=self.nocache)
            finally:
                remove_build_stage(client, build_id)
            remove_replaced(client, tag, replaced)
            timings["docker_build_s"] = time.monotonic() - t2
        finally:
            # The context (repo copy + wheels) is cheap to remake and big to keep.
            shutil.rmtree(ctx, ignore_errors=True)
        timings["total_s"] = time.monotonic() - t0
        self.timings[iid] = timings
        return timings

    def _write_context(self, plan: BuildPlan, ctx: Path, build_id: str) -> None:
        conda = ctx / "conda" / "bin"
        conda.mkdir(parents=True)
        (conda / "activate").write_text(CONDA_ACTIVATE)
        (conda / "conda").write_text(CONDA_COMMAND)
        python_bin = "/usr/bin/python3" if plan.python == BASE_PYTHON else f"/usr/bin/python{plan.python}"
        env_lines = []
        if plan.requirements_file is not None:
            env_lines.append("python -m pip install -r /tmp/dgm-build/requirements.txt")
        if plan.requirements:
            env_lines.append("python -m pip install " + " ".join(shlex.quote(r) for r in plan.requirements))
        setup = SETUP_SCRIPT.format(python=python_bin, env_install="\n".join(env_lines),
                                    build_tools=" ".join(shlex.quote(t) for t in self.build_tools),
                                    repo_script=plan.repo_script, ref=DIFF_BASE_REF)
        (ctx / "setup.sh").write_text(setup)
        (ctx / "Dockerfile").write_text(OFFLINE_DOCKERFILE.format(
            base=self.base_image, instance=plan.instance_id, python=plan.python,
            version=OFFLINE_BUILDER_VERSION, testbed_pth=testbed_pth_step(plan.python),
            stage_label=BUILD_STAGE_LABEL, build_id=build_id))
        (ctx / ".dockerignore").write_text("build-constraints.txt\n")


def remove_build_stage(client, build_id: str) -> int:
    """Remove the images one build's stage left (done or failed); how many were removed.

    Removing the stage's last image also prunes its untagged parents; what
    is left after that (a failed build's several leaves) goes in further rounds."""
    import docker.errors

    removed = 0
    for _ in range(20):
        leaves = client.images.list(filters={"label": f"{BUILD_STAGE_LABEL}={build_id}", "dangling": True})
        if not leaves:
            break
        for image in leaves:
            try:
                client.images.remove(image.id, noprune=False)
                removed += 1
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError:  # in use by a container: `dgm sandbox prune` takes it later
                return removed
    return removed


CONDA_ACTIVATE = r"""# dgm conda shim: swebench's scripts source this, then `conda activate testbed`.
conda() {
  case "${1:-}" in
    activate)
      local env="${2:-base}" prefix
      if [ "$env" = base ]; then prefix=/opt/miniconda3; else prefix="/opt/miniconda3/envs/$env"; fi
      if [ ! -d "$prefix" ]; then echo "conda shim: no environment $env" >&2; return 1; fi
      export CONDA_PREFIX="$prefix" CONDA_DEFAULT_ENV="$env" CONDA_SHLVL=1
      if [ "$env" != base ]; then export VIRTUAL_ENV="$prefix"; export PATH="$prefix/bin:$PATH"; fi
      hash -r 2>/dev/null || true ;;
    deactivate)
      if [ -n "${VIRTUAL_ENV:-}" ]; then PATH=$(printf '%s' "$PATH" | sed "s#${VIRTUAL_ENV}/bin:##"); export PATH; fi
      unset VIRTUAL_ENV CONDA_PREFIX CONDA_DEFAULT_ENV; hash -r 2>/dev/null || true ;;
    *) /opt/miniconda3/bin/conda "$@" ;;
  esac
}
export CONDA_EXE=/opt/miniconda3/bin/conda
"""

CONDA_COMMAND = r"""#!/bin/sh
# dgm conda shim: only `activate`/`deactivate` (shell functions from bin/activate) exist.
echo "conda shim (dgm offline image): 'conda $*' is not available; the testbed env is a venv" >&2
exit 1
"""

SETUP_SCRIPT = r"""#!/bin/bash
set -euxo pipefail
export PIP_NO_INDEX=1 PIP_FIND_LINKS="/tmp/dgm-build/wheels /opt/dgm-wheels" PIP_DISABLE_PIP_VERSION_CHECK=1
# Build stage only (root's config is not copied to the final image): the
# context's files keep the host's owner, which git would refuse.
git config --global --add safe.directory '*'
# The testbed env: a venv of the spec's Python at conda's path.
{python} -m venv --without-pip /opt/miniconda3/envs/testbed
# pip runs from its own wheel to install itself and the build tools (conda envs have them).
/opt/miniconda3/envs/testbed/bin/python "$(ls /opt/dgm-wheels/pip-*.whl | head -1)/pip" install {build_tools}
source /opt/miniconda3/bin/activate
conda activate testbed
{env_install}
# swebench's repository setup script (install steps, tag pruning, SWE-bench commit).
{repo_script}
git -C /testbed update-ref {ref} HEAD
"""

def testbed_pth_step(python: str) -> str:
    """Dockerfile lines that make a Debian-packaged Python (used by nothing but
    the testbed) see the testbed env also when run outside it.

    A conda env's python is a real binary: a symlink to it, like the one
    tox-current-env puts in .tox/py39/bin (sphinx's test command), still
    finds the env. A venv's python is found only through pyvenv.cfg next to
    the path it was started by, so through such a symlink it is the bare
    /usr/bin/python3.9 without the env's packages. This .pth adds them. The
    base image's Python (the agent's DGM_PYTHON) is left as it is."""
    if python == BASE_PYTHON:
        return ""
    site = f"/opt/miniconda3/envs/testbed/lib/python{python}/site-packages"
    pth = f"/usr/local/lib/python{python}/dist-packages/dgm-testbed.pth"
    return (f" \\\n && mkdir -p {os.path.dirname(pth)} \\\n"
            f" && echo \"import site; site.addsitedir('{site}')\" > {pth}")


OFFLINE_DOCKERFILE = """# dgm offline SWE-bench image for {instance} (builder {version}): no registry, no network.
FROM {base} AS python
USER root
COPY debs/ /tmp/dgm-debs/
RUN if ls /tmp/dgm-debs/*.deb >/dev/null 2>&1; then dpkg -i /tmp/dgm-debs/*.deb >/dev/null; fi \
 && for deb in /tmp/dgm-debs/unpack/*.deb; do [ -e "$deb" ] && dpkg -x "$deb" /; done; rm -rf /tmp/dgm-debs
COPY conda/ /opt/miniconda3/
RUN chmod 755 /opt/miniconda3/bin/conda && mkdir -p /opt/miniconda3/envs

FROM python AS setup
# Every layer of this stage carries the build's id, so that its images (which
# the final one does not use) are found and removed after the build.
LABEL dgm.image=build-stage {stage_label}={build_id}
COPY build-wheels/ /opt/dgm-wheels/
COPY wheels/ /tmp/dgm-build/wheels/
COPY requirements.txt setup.sh /tmp/dgm-build/
COPY testbed/ /testbed/
RUN bash /tmp/dgm-build/setup.sh

# The final image leaves the wheelhouse behind but keeps the build tools: the
# eval script reinstalls the package, offline.
FROM python
COPY --from=setup --chown=1000:1000 /opt/miniconda3/envs/ /opt/miniconda3/envs/
COPY --from=setup --chown=1000:1000 /testbed/ /testbed/
COPY --from=setup /opt/dgm-wheels/ /opt/dgm-wheels/
RUN printf '[global]\\nno-index = true\\nfind-links = /opt/dgm-wheels\\ndisable-pip-version-check = true\\n' \\
      > /opt/miniconda3/envs/testbed/pip.conf{testbed_pth}
ENV PATH=/opt/miniconda3/envs/testbed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /testbed
LABEL dgm.image=swebench dgm.provider=offline dgm.instance={instance} dgm.python={python} dgm.builder={version}
"""
