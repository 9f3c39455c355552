"""Task runs against the true quality of the pick: DGM's schedule, HGM's loop and
sequential staging, by `dgm simulate`, on the synthetic worlds and a recorded campaign.

Target: sequential staging reaches DGM's final true quality (the paired 95 %
interval of the difference includes 0, or lies above it) with at least 3×
fewer task runs, over at least 100 seeds per world.

The recorded campaign: --from NAME with --archive-dir/--archive, or, without
them, a scripted campaign on dgm-mini run now into a temporary archive (real
sandboxes; needs Docker and the base image; a few minutes): campaign.example.toml
with the task model `scripted:rate:0.5` (--record-model), rehearsal's rewrites
and diagnoses, and twins evaluated, so its agents' recorded outcomes differ.

usage: python benchmarks/perf/evaluation_efficiency.py [--seeds 100] [--generations 20]
           [--from CAMPAIGN --archive-dir DIR] [--no-recorded]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DGM = [sys.executable, "-m", "dgm"]
TARGET_RATIO = 3.0


def dgm(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "200"}
    return subprocess.run([*DGM, *args], cwd=ROOT, env=env, text=True, **kw)


def recorded_config(tmp: Path) -> Path:
    """campaign.example.toml with the children's rewrites and diagnoses by `scripted:rehearsal` while
    the task model resolves at a fixed rate, and twins evaluated: agents whose recorded outcomes
    differ, as a stochastic model's do (with rehearsal as the task model every child is a perfect
    twin of its parent, and the recorded world is degenerate)."""
    text = (ROOT / "campaign.example.toml").read_text()
    if "evaluate_twins = false" not in text:
        sys.exit("campaign.example.toml has no `evaluate_twins = false` line to turn on")
    text = text.replace("evaluate_twins = false", "evaluate_twins = true", 1)
    text += ('\n[campaign.models.proposer]\nmodel = "scripted:rehearsal"\n'
             '\n[campaign.models.self_modify]\nmodel = "scripted:rehearsal"\n')
    path = tmp / "recorded.toml"
    path.write_text(text)
    return path


def recorded_campaign(tmp: Path, generations: int, model: str) -> tuple[str, Path]:
    """A scripted campaign on dgm-mini (campaign.example.toml, task model `model`), recorded into tmp."""
    archive_dir = tmp / "archive"
    name = "efficiency-recorded"
    print(f"recording a scripted campaign ({generations} generations, task model {model}) into "
          f"{archive_dir} ...", flush=True)
    started = time.monotonic()
    config = recorded_config(tmp) if model != "scripted:rehearsal" else ROOT / "campaign.example.toml"
    proc = dgm("run", "--config", str(config), "--model", model,
               "--generations", str(generations), "--name", name, "--workers", "2",
               "--archive-dir", str(archive_dir), capture_output=True)
    if proc.returncode != 0:
        sys.exit(f"the recorded campaign failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    print(f"  recorded in {time.monotonic() - started:.0f} s", flush=True)
    return name, archive_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--from", dest="campaign")
    ap.add_argument("--archive-dir", type=Path)
    ap.add_argument("--archive")
    ap.add_argument("--record-generations", type=int, default=4,
                    help="generations of the scripted campaign recorded when no --from is given")
    ap.add_argument("--record-model", default="scripted:rate:0.5",
                    help="task model of the recorded scripted campaign (scripted:rehearsal: the demo's, "
                         "whose children are perfect twins)")
    ap.add_argument("--no-recorded", action="store_true", help="synthetic worlds only")
    ap.add_argument("--no-synthetic", action="store_true", help="the recorded campaign only")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="dgm-efficiency-") as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "simulate.json"
        cmd = ["simulate", "--seeds", str(args.seeds), "--generations", str(args.generations), "--json", str(out)]
        if not args.no_synthetic:
            cmd += ["--world", "gentle", "--world", "harsh", "--world", "noisy", "--world", "flat"]
        if not args.no_recorded:
            name, archive_dir = (args.campaign, args.archive_dir) if args.campaign else \
                recorded_campaign(tmp, args.record_generations, args.record_model)
            cmd += ["--from", name]
            if archive_dir:
                cmd += ["--archive-dir", str(archive_dir)]
            if args.archive:
                cmd += ["--archive", args.archive]
        print("$ dgm " + " ".join(cmd), flush=True)
        started = time.monotonic()
        proc = dgm(*cmd)
        if proc.returncode != 0:
            sys.exit(f"dgm simulate failed ({proc.returncode})")
        elapsed = time.monotonic() - started
        results = json.loads(out.read_text())["results"]

    print(f"\ndgm simulate took {elapsed:.0f} s wall for {args.seeds} seeds × "
          f"{len({r['world'] for r in results})} worlds × {len({r['policy'] for r in results})} policies\n")
    header = f"{'world':28} {'policy':11} {'task runs':>9} {'× fewer':>8} {'true quality':>13} {'Δ vs dgm [95 %]':>24}"
    print(header)
    print("-" * len(header))
    verdicts = []
    for r in results:
        delta = r.get("delta_quality", 0.0)
        ci = r.get("delta_quality_ci95", 0.0)
        print(f"{r['world']:28} {r['policy']:11} {r['task_runs_mean']:9.0f} {r['runs_ratio']:8.2f} "
              f"{r['pick_quality_mean']:13.3f} {delta:+9.3f} [{delta - ci:+.3f}, {delta + ci:+.3f}]")
        if r["policy"] == "sequential":
            within = delta + ci >= 0.0
            verdicts.append((r["world"], r["runs_ratio"], within, r["runs_ratio"] >= TARGET_RATIO and within))
    print("\nsequential vs dgm (target: ≥ 3× fewer task runs, true quality not below DGM's beyond noise):")
    for world, ratio, within, ok in verdicts:
        print(f"  {world:28} {ratio:5.2f}× fewer, quality {'within noise' if within else 'BELOW'} -> "
              f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
