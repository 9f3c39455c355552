"""Start-up cost of the browsing commands: CPU and wall time of `dgm ls`, `dgm status`, `dgm show AGENT`.

Browsing commands are what users type most, and nearly all their cost is
the fresh process: the interpreter, imports, opening the archive. Each
command runs N times as its own `python -m dgm ...` process; its CPU
(user + sys) is read from `os.wait4`, so only that child counts, never
this script or another command. Prints median / min / max CPU and wall per
command and whether the median meets the target (0.5 s CPU).

Builds a small synthetic archive (real rows and commits, no LLM) in a
temporary directory, or browses an existing one with --archive-dir (e.g.
the demo's `archive/`).

usage: python benchmarks/perf/cli_startup.py [--archive-dir DIR] [--runs 5] [--target 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def build_archive(directory: Path) -> str:
    """A small campaign (20 agents, 5 runs each); returns an agent id for `dgm show`."""
    from dgm.archive.store import ArchiveStore
    from tests.support.synthetic import make_synthetic_campaign

    with ArchiveStore.open(None, directory) as store:
        return make_synthetic_campaign(store, 20, 5, name="cli-startup").best_agent


def an_agent(directory: Path) -> str:
    """The newest agent of an existing archive (for `dgm show`)."""
    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, directory, create=False) as store:
        campaigns = store.list_campaigns()
        agents = [a for c in campaigns for a in store.list_agents(c.id)]
    if not agents:
        sys.exit(f"{directory}: the archive has no agents to show")
    return max(agents, key=lambda a: a.created_at).id


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh process; its output is discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive-dir", type=Path, help="browse this archive instead of a synthetic one")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (default 5)")
    parser.add_argument("--target", type=float, default=0.5, help="median CPU seconds allowed (default 0.5)")
    args = parser.parse_args()

    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "120"}
    env.pop("DGM_ARCHIVE", None)
    with tempfile.TemporaryDirectory(prefix="dgm-cli-startup-") as tmp:
        if args.archive_dir is not None:
            archive_dir = args.archive_dir.resolve()
            agent = an_agent(archive_dir)
        else:
            archive_dir = Path(tmp) / "archive"
            agent = build_archive(archive_dir)
        env.pop("DGM_ARCHIVE_DIR", None)
        base = [sys.executable, "-m", "dgm"]
        where = ["--archive-dir", str(archive_dir)]
        commands = {
            "dgm ls": [*base, "ls", *where],
            "dgm status": [*base, "status", *where],
            f"dgm show {agent}": [*base, "show", agent, *where],
        }
        run_once(commands["dgm ls"], env)  # warm the page cache and bytecode caches: not counted
        print(f"archive {archive_dir}; {args.runs} fresh processes per command; target median CPU <= "
              f"{args.target:.2f} s")
        print(f"{'command':<28} {'CPU median':>10} {'min':>6} {'max':>6} {'wall median':>12} {'min':>6} {'max':>6}  result")
        failed = 0
        for label, argv in commands.items():
            samples = [run_once(argv, env) for _ in range(args.runs)]
            cpu = [c for c, _ in samples]
            wall = [w for _, w in samples]
            ok = statistics.median(cpu) <= args.target
            failed += not ok
            print(f"{label:<28} {statistics.median(cpu):>10.3f} {min(cpu):>6.3f} {max(cpu):>6.3f} "
                  f"{statistics.median(wall):>12.3f} {min(wall):>6.3f} {max(wall):>6.3f}  {'pass' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
