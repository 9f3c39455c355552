"""Run `dgm` as a user does (in-process or as a child process) and check its error lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def run_dgm(args: list[str], archive_dir: Path | None = None, timeout: float = 120, *, subprocess_: bool = False,
            **kw) -> subprocess.CompletedProcess:
    """`dgm ARGS` through the real entry point `dgm.cli.main` (its exit codes, its error lines).

    In-process by default (a child interpreter costs seconds on a loaded
    machine); `subprocess_=True` runs a real child process.
    """
    if not subprocess_:
        return _run_in_process(args, archive_dir)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "200"}
    env.pop("DGM_ARCHIVE", None)
    if archive_dir is not None:
        env["DGM_ARCHIVE_DIR"] = str(archive_dir)
    return subprocess.run([sys.executable, "-c", "from dgm.cli.app import main; main()", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=kw.pop("cwd", REPO_ROOT), **kw)


def dgm_process(*args: str, env: dict | None = None, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m dgm ARGS` in a child process, with the test's environment plus `env`."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "dgm", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _run_in_process(args: list[str], archive_dir: Path | None) -> subprocess.CompletedProcess:
    import contextlib
    import io

    from dgm.cli import app as cli, browse as cli_browse

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", write_through=True)
    saved_env = {k: os.environ.get(k) for k in ("DGM_ARCHIVE_DIR", "DGM_ARCHIVE")}
    os.environ.pop("DGM_ARCHIVE", None)
    if archive_dir is not None:
        os.environ["DGM_ARCHIVE_DIR"] = str(archive_dir)
    # Wide consoles: Rich would otherwise wrap a long error line at 80 columns
    # (cli.main prints errors without soft_wrap; reported to the lead).
    from dgm.cli import compare as cli_compare

    for console in (cli.console, cli.err_console, cli_browse.console, cli_compare.console):
        console.width = 1000
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                sys.argv = ["dgm", *args]
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out.flush()
    err.flush()
    return subprocess.CompletedProcess(["dgm", *args], code, out_bytes.getvalue().decode("utf-8", "replace"),
                                       err_bytes.getvalue().decode("utf-8", "replace"))
