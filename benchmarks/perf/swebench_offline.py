"""Offline SWE-bench images: build time per instance, and per-task evaluation
overhead on real instances versus dgm-mini.

Run (needs Docker, the base image, the local clones and PyPI on the host):

    python benchmarks/perf/swebench_offline.py --repo-mirror /work/mirrors \\
        --tasks pallets__flask-4992,pytest-dev__pytest-7373 [--cold] [--repeats 3] [--json out.json]

Figures:
* build: the offline builder's phases per instance: checkout from the mirror,
  wheelhouse (`pip download`, Debian Python packages), `docker build`, total.
  With --cold the image is removed and built without Docker's layer cache
  (pip's own HTTP cache still helps a second run; a first run is slower).
* grading overhead per task = wall time of one `grade()` (fresh sandbox,
  patch applied, tests run, parsed, decided) minus the time the test command
  itself took, median of R gold gradings; shown with the test time and the
  container start+remove time, for each real instance and for dgm-mini tasks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.bench.grade import grade  # noqa: E402
from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.sandbox.docker import Sandbox, SandboxLimits, docker_client  # noqa: E402


def grading_figures(client, bench, task, repeats: int, limits) -> dict:
    walls, tests, starts = [], [], []
    for _ in range(repeats):
        t0 = time.monotonic()
        box = Sandbox(client, bench.image(task), limits=limits).start()
        box.remove(wait=True)
        starts.append(time.monotonic() - t0)
        t0 = time.monotonic()
        result = grade(client, bench, task, task.patch, limits=limits, test_timeout_s=1800)
        walls.append(time.monotonic() - t0)
        tests.append(result.test_duration_s)
        if not result.resolved:
            print(f"  warning: gold did not resolve {task.instance_id}", file=sys.stderr)
    med = statistics.median
    return {"instance_id": task.instance_id, "grade_wall_s": med(walls), "test_run_s": med(tests),
            "overhead_s": med(w - t for w, t in zip(walls, tests)), "container_start_remove_s": med(starts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo-mirror", required=True)
    parser.add_argument("--tasks", required=True)
    parser.add_argument("--mini-tasks", default=None, help="dgm-mini ids (default: the first three)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="rebuild images without Docker's layer cache")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    client = docker_client()
    limits = SandboxLimits(memory_mb=4096, cpus=2.0, pids=1024)
    bench = load_benchmark("swebench-lite", images="offline", repo_mirror=args.repo_mirror)
    tasks = bench.select(args.tasks.split(","))
    builds = []
    for task in tasks:
        tag = bench.image(task)
        if args.cold:
            try:
                client.images.remove(tag, force=True)
            except Exception:  # noqa: BLE001 - not built yet
                pass
            bench.provider.nocache = True
        if not bench.provider.timings.get(task.instance_id):
            t0 = time.monotonic()
            failures = bench.prepare_images(client, [task])
            entry = {"instance_id": task.instance_id, "python": task.extra["python"],
                     **bench.provider.timings.get(task.instance_id, {"total_s": time.monotonic() - t0,
                                                                     "note": "image already present"})}
            if failures:
                entry["error"] = failures[task.instance_id]
            entry["image_mb"] = round(client.images.get(tag).attrs["Size"] / 1e6) if not failures else None
            builds.append(entry)
            print("build", json.dumps(entry), flush=True)

    mini = load_benchmark("dgm-mini")
    mini_tasks = mini.select(args.mini_tasks.split(",")) if args.mini_tasks else mini.tasks()[:3]
    grading = {"swebench": [], "dgm-mini": []}
    for task in tasks:
        if any(b.get("error") for b in builds if b["instance_id"] == task.instance_id):
            continue
        grading["swebench"].append(grading_figures(client, bench, task, args.repeats, limits))
        print("grade", json.dumps(grading["swebench"][-1]), flush=True)
    for task in mini_tasks:
        grading["dgm-mini"].append(grading_figures(client, mini, task, args.repeats, limits))
        print("grade", json.dumps(grading["dgm-mini"][-1]), flush=True)

    print("\n| instance | Python | checkout s | wheelhouse s | docker build s | total s | image MB |")
    print("|---|---|---|---|---|---|---|")
    for b in builds:
        f = lambda k: f"{b[k]:.1f}" if isinstance(b.get(k), (int, float)) else "-"  # noqa: E731
        print(f"| {b['instance_id']} | {b['python']} | {f('checkout_s')} | {f('wheelhouse_s')} | "
              f"{f('docker_build_s')} | {f('total_s')} | {b.get('image_mb') or '-'} |")
    print("\n| benchmark | task | grade wall s | test run s | overhead s | container start+remove s |")
    print("|---|---|---|---|---|---|")
    for name, rows in grading.items():
        for r in rows:
            print(f"| {name} | {r['instance_id']} | {r['grade_wall_s']:.1f} | {r['test_run_s']:.1f} | "
                  f"{r['overhead_s']:.2f} | {r['container_start_remove_s']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"builds": builds, "grading": grading}, indent=2))


if __name__ == "__main__":
    main()
