"""The Polyglot harness self-check over a real polyglot-benchmark checkout,
with times per language: for every exercise the reference solution must
resolve and the untouched stub must not (target: at least 220 of 225).

Prints one line per exception with its reason (the failing tests or the
grading error), then per language: exercises, agreements, the median seconds
of the reference's and the stub's test runs (the language's own build and
test time), and the total.

usage: python benchmarks/perf/polyglot_validate.py --dataset DIR [--tasks full|dgm-small|ID,...]
       [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dgm.bench.registry import load_benchmark  # noqa: E402
from dgm.bench.validate import validate  # noqa: E402
from dgm.sandbox.docker import SandboxLimits, docker_client, remove_orphans  # noqa: E402


def _round_robin(tasks: list) -> list:
    """One exercise of each language in turn: a run cut short still covers every language."""
    queues: dict[str, list] = {}
    for task in tasks:
        queues.setdefault(task.extra["language"], []).append(task)
    out = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                out.append(queue.pop(0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True, help="a polyglot-benchmark checkout")
    parser.add_argument("--tasks", default="full", help="a subset name or comma-separated ids")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--test-timeout", type=float, default=None,
                        help="seconds per test run (default: the benchmark's, DGM's 120 s; a loaded machine needs more)")
    args = parser.parse_args()
    bench = load_benchmark("polyglot", dataset=args.dataset)
    ids = bench.subset(args.tasks) if args.tasks in bench.subsets() else args.tasks.split(",")
    tasks = _round_robin(bench.select(ids))
    client = docker_client()
    remove_orphans(client)
    bench.prepare_images(client, tasks)
    started = time.monotonic()
    done = []

    def on_done(v):
        done.append(v)
        mark = "ok" if v.agrees else v.verdict
        print(f"[{len(done)}/{len(tasks)}] {v.instance_id}: {mark} (gold {v.gold_s:.1f} s, stub {v.empty_s:.1f} s)",
              flush=True)

    results = validate(client, bench, tasks, limits=SandboxLimits(memory_mb=2048, cpus=1.0, pids=1024),
                       test_timeout_s=args.test_timeout or bench.test_timeout_s, on_done=on_done, workers=args.workers)
    wall = time.monotonic() - started
    print("\nexceptions:")
    for v in results:
        if not v.agrees:
            reason = v.error or ("stub resolves" if v.empty_resolved else
                                 "; ".join(v.gold_report.get("failed", [])[:3]) or str(v.gold_report.get("error")))
            print(f"  {v.instance_id}: gold {v.gold_resolved}, stub {v.empty_resolved}: {reason}")
    print(f"\n{'language':12} {'n':>4} {'agree':>6} {'gold s (median)':>16} {'stub s (median)':>16} {'total s':>8}")
    by_lang: dict[str, list] = {}
    for v in results:
        by_lang.setdefault(v.instance_id.split("__")[0], []).append(v)
    for lang, vs in sorted(by_lang.items()):
        print(f"{lang:12} {len(vs):4d} {sum(v.agrees for v in vs):6d} {statistics.median(v.gold_s for v in vs):16.1f} "
              f"{statistics.median(v.empty_s for v in vs):16.1f} {sum(v.gold_s + v.empty_s for v in vs):8.0f}")
    agree = sum(v.agrees for v in results)
    print(f"\nagree {agree}/{len(results)} (target >= 220 of 225 on the full set); wall {wall:.0f} s "
          f"with {args.workers} worker(s)")
    if args.json:
        args.json.write_text(json.dumps([v.to_json() for v in results], indent=2))


if __name__ == "__main__":
    main()
