"""Archive scale benchmark (not a test): lineage, show and the explorer on big archives.

Builds (or reuses) a synthetic SQLite archive with one campaign of 100,000
agents x 50 task runs (5 million rows, real git commits per agent) and one of
10,000 agents x 50 runs, then reports medians of:

- `dgm lineage CAMPAIGN` (100k agents)  target < 2 s
- `dgm show AGENT`                       target < 0.3 s
- explorer first render of the 10,000-agent tree in Chromium, target < 2 s

Each CLI figure is given twice: end to end (a fresh `dgm` process, so Python
start-up and imports are included) and in-process (the command's own work
with the interpreter warm, which is what the targets are about). Nothing is
cached between runs except by the OS and SQLite's page cache; the explorer's
graph payload is cached by the server per campaign fingerprint, so its first
(cold) load is reported separately from warm reloads.

    .venv/bin/python benchmarks/perf/archive_scale.py [--dir /tmp/dgm-perf] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dgm.archive import ArchiveStore  # noqa: E402
from tests.support.synthetic import make_synthetic_campaign  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build(root: Path, name: str, agents: int, runs: int) -> dict:
    store = ArchiveStore.open(None, root)
    for c in store.list_campaigns():
        if c.name == name and c.status == "completed":
            rows = store.lineage_rows(c.id)
            best = max(rows, key=lambda r: (r.score or 0))
            return {"campaign": c.id, "best": best.id, "built": False}
    t0 = time.perf_counter()
    last = [0.0]

    def progress(what, done, total):
        if time.perf_counter() - last[0] > 10:
            last[0] = time.perf_counter()
            print(f"  {name}: {what} {done:,}/{total:,} ({time.perf_counter() - t0:.0f} s)", flush=True)

    synth = make_synthetic_campaign(store, agents, runs, n_tasks=200, generations=80, seed=1, name=name,
                                    progress=progress)
    print(f"  built {name}: {agents:,} agents x {runs} runs in {time.perf_counter() - t0:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in synth.seconds.items())})", flush=True)
    store.close()
    return {"campaign": synth.campaign_id, "best": synth.best_agent, "built": True}


def timed_process(args: list[str], root: Path, repeats: int) -> list[float]:
    env = {**os.environ, "DGM_ARCHIVE_DIR": str(root), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([str(REPO / ".venv/bin/dgm"), *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"dgm {' '.join(args)} failed: {proc.stderr.decode()}")
    return times


def timed_in_process(args: list[str], root: Path, repeats: int) -> list[float]:
    from dgm.cli import app as cli

    os.environ["DGM_ARCHIVE_DIR"] = str(root)
    times = []
    cpu = []
    for _ in range(repeats):
        sink = io.StringIO()
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sink):
            try:
                cli.app([*args], standalone_mode=False)
            except SystemExit:
                pass
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU_TIMES[" ".join(a if len(a) < 20 else "…" for a in args)] = cpu
    return times


CPU_TIMES: dict[str, list[float]] = {}


def explorer(root: Path, campaign: str, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    from dgm.web.server import ExplorerServer

    chromium = os.environ.get("DGM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    store = ArchiveStore.open(None, root)
    result: dict = {}
    with ExplorerServer(store, port=0) as server, sync_playwright() as p:
        profile = tempfile.mkdtemp(prefix="dgm-bench-chromium-")
        ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium, args=CHROMIUM_ARGS,
                                                   headless=True, viewport={"width": 1500, "height": 900})
        try:
            walls, in_page, draws = [], [], []
            for k in range(repeats + 1):
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(server.url + f"#campaign={campaign}")
                page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=120_000)
                wall = time.perf_counter() - t0
                nodes = page.evaluate("window.dgmExplorer.nodeCount")
                first = page.evaluate("window.dgmExplorer.firstRenderMs") / 1000
                # Responsiveness: a zoom + pan redraw with every node in view.
                page.mouse.move(700, 400)
                page.mouse.wheel(0, -300)
                page.wait_for_timeout(100)
                redraw = page.evaluate("window.dgmExplorer.lastDrawMs") / 1000
                if k == 0:
                    result["cold"] = {"wall_s": wall, "first_render_s": first}
                    page.screenshot(path=str(REPO / "test-artifacts" / f"perf-explorer-{nodes}.png"))
                else:
                    walls.append(wall)
                    in_page.append(first)
                    draws.append(redraw)
                page.close()
            result.update(nodes=nodes, wall_s=walls, first_render_s=in_page, redraw_s=draws)
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)
    store.close()
    return result


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s (min {min(values):.3f}, n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "dgm-perf-archive")
    ap.add_argument("--agents", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--render-agents", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    print(f"archive: {args.dir} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", flush=True)
    big = build(args.dir, f"perf-{args.agents}x{args.runs}", args.agents, args.runs)
    small = build(args.dir, f"perf-{args.render_agents}x{args.runs}", args.render_agents, args.runs)
    r = args.repeats
    report: dict = {}
    baseline = []
    for _ in range(r):
        t0 = time.perf_counter()
        subprocess.run([str(REPO / ".venv/bin/python"), "-c", "import dgm.cli"], check=True)
        baseline.append(time.perf_counter() - t0)
    report["python + import dgm.cli"] = baseline
    report["dgm lineage (process)"] = timed_process(["lineage", big["campaign"]], args.dir, r)
    report["dgm lineage (in-process)"] = timed_in_process(["lineage", big["campaign"]], args.dir, r)
    report["dgm show (process)"] = timed_process(["show", big["best"]], args.dir, r)
    report["dgm show (in-process)"] = timed_in_process(["show", big["best"]], args.dir, r)
    report["dgm lineage --format graphml (in-process)"] = timed_in_process(
        ["lineage", big["campaign"], "--format", "graphml", "--out", str(args.dir / "big.graphml")], args.dir, 1)
    print(f"\nresults (medians; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for name, values in report.items():
        print(f"  {name:45s} {med(values)}")
    for name, values in CPU_TIMES.items():
        print(f"  CPU time, in-process dgm {name:20s} {med(values)}")
    ex = explorer(args.dir, small["campaign"], r)
    print(f"  explorer {ex['nodes']:,} agents, cold first load   wall {ex['cold']['wall_s']:.3f} s, "
          f"first render at {ex['cold']['first_render_s']:.3f} s after navigation start")
    print(f"  explorer first render (warm server cache)     {med(ex['first_render_s'])} after navigation start; "
          f"wall from goto {med(ex['wall_s'])}")
    print(f"  explorer redraw after zoom                    {med(ex['redraw_s'])}")
    ex_big = explorer(args.dir, big["campaign"], 1)
    print(f"  explorer {ex_big['nodes']:,} agents (extra)       cold first render {ex_big['cold']['first_render_s']:.3f} s, "
          f"warm {med(ex_big['first_render_s'])}, redraw {med(ex_big['redraw_s'])}")
    out = args.dir / "results.json"
    out.write_text(json.dumps({"cli": report, "cpu": CPU_TIMES, "explorer_10k": ex, "explorer_100k": ex_big},
                              indent=1))
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
