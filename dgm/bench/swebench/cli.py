"""SWE-bench's face on the command line: its options (--dataset, --images
pull|build|offline|auto, --repo-mirror, --wheelhouse) and `dgm bench validate`,
registered on the CLI's `bench` group by `register`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from dgm.cli.options import check_output_file
from dgm.cli.tables import make_console, print_table
from dgm.errors import UsageError

console = make_console()
err_console = make_console(stderr=True)

DatasetOpt = typer.Option(None, "--dataset", help="SWE-bench dataset: a JSON/JSONL/parquet file or a hub name "
                                                  "(default: local copy, else the HuggingFace hub).")
ImagesOpt = typer.Option("auto", "--images", help="Image provider for SWE-bench: auto, pull (prebuilt swebench "
                                                  "images), build (swebench's builder, online), offline.")
MirrorOpt = typer.Option(None, "--repo-mirror", help="Directory of local clones (owner__name or owner__name.git) "
                                                     "for --images offline.")

WheelhouseOpt = typer.Option(None, "--wheelhouse", help="For --images offline with no PyPI either: resolve the "
                                                        "spec's packages from this local directory only.")


def benchmark_options(dataset: Optional[str], images: str, repo_mirror: Optional[Path],
                      wheelhouse: Optional[Path] = None) -> dict:
    """CLI flags as `load_benchmark` options (defaults dropped, so dgm-mini takes none)."""
    options: dict = {}
    if dataset is not None:
        options["dataset"] = dataset
    if images != "auto":
        options["images"] = images
    if repo_mirror is not None:
        options["repo_mirror"] = repo_mirror
    if wheelhouse is not None:
        options["wheelhouse"] = wheelhouse
    return options


def parse_tasks(bench, tasks: Optional[str], subset: Optional[str]) -> list:
    if tasks and subset:
        raise UsageError("give --tasks or --subset, not both")
    if subset:
        if not bench.subsets():
            raise UsageError(f"benchmark {bench.name} has no named subsets")
        return bench.select(bench.subset(subset))
    ids = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    if ids is not None and len(ids) == 1 and ids[0] in bench.subsets():
        return bench.select(bench.subset(ids[0]))  # `--tasks full`: a named subset
    return bench.select(ids)


def _print_per_repo(results) -> None:
    """Agreement and times per repository (per language for Polyglot), when there are several."""
    groups: dict[str, list] = {}
    for v in results:
        groups.setdefault(v.repo, []).append(v)
    if len(groups) < 2:
        return
    table = Table(title="per repository")
    for col in ("repo", "instances", "agree", "disagree", "unavailable", "gold s (median)", "empty s (median)", "total s"):
        table.add_column(col, justify="left" if col == "repo" else "right")
    from statistics import median

    for repo, vs in sorted(groups.items()):
        agree = sum(v.agrees for v in vs)
        unavailable = sum(v.error is not None for v in vs)
        table.add_row(repo, str(len(vs)), str(agree), str(len(vs) - agree - unavailable), str(unavailable),
                      f"{median(v.gold_s for v in vs):.1f}", f"{median(v.empty_s for v in vs):.1f}",
                      f"{sum(v.gold_s + v.empty_s + v.image_s for v in vs):.0f}")
    print_table(console, table)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @bench_app.command("validate")
    def bench_validate(
        benchmark: str = typer.Argument(..., help="Benchmark name (swebench-lite, swebench-verified, dgm-mini)."),
        tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated instance ids, or one named subset "
                                                                  "(e.g. full)."),
        subset: Optional[str] = typer.Option(None, "--subset", help="Named subset: dgm-small, dgm-medium, dgm-big, full."),
        dataset: Optional[str] = DatasetOpt,
        images: str = ImagesOpt,
        repo_mirror: Optional[Path] = MirrorOpt,
        wheelhouse: Optional[Path] = WheelhouseOpt,
        test_timeout: float = typer.Option(1800.0, "--test-timeout", min=1, help="Seconds per test run."),
        cpus: float = typer.Option(2.0, "--cpus", min=0.1, help="CPUs per grading sandbox."),
        memory_mb: int = typer.Option(4096, "--memory-mb", min=256, help="Memory per grading sandbox."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the per-instance results here."),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Instances validated in parallel."),
    ):
        """Grade the gold patch and the empty patch of each instance: the harness agrees when
        gold resolves and empty does not. Exit 1 on any disagreement, or when no instance could be validated."""
        from dgm.bench.registry import load_benchmark
        from dgm.bench.validate import validate
        from dgm.sandbox.docker import SandboxLimits, docker_client, remove_orphans

        bench = load_benchmark(benchmark, **benchmark_options(dataset, images, repo_mirror, wheelhouse))
        selected = parse_tasks(bench, tasks, subset)
        if not tasks and not subset and len(selected) > 20:
            raise UsageError(f"{benchmark} has {len(selected)} instances; choose some with --tasks or --subset")
        if json_out is not None:
            check_output_file(json_out, "--json")
        client = docker_client()
        remove_orphans(client)
        if not bench.needs_image_preparation:
            bench.prepare_images(client, selected)  # images that must exist: checked before any grading
        limits = SandboxLimits(memory_mb=memory_mb, cpus=cpus, pids=1024)
        console.print(f"validating {len(selected)} {benchmark} instance(s): gold must resolve, empty must not")

        def on_image(task, error):
            console.print(f"  image {escape(task.instance_id)}: " + (f"[yellow]{escape(error)}[/]" if error else "ready"),
                          highlight=False)

        def on_done(v):
            style = {"agrees": "green", "DISAGREES": "red"}.get(v.verdict, "yellow")
            console.print(f"  {v.instance_id}: [{style}]{v.verdict}[/] (gold {v.gold_resolved}, "
                          f"empty {v.empty_resolved})", highlight=False)

        results = validate(client, bench, selected, limits=limits, test_timeout_s=test_timeout,
                           on_done=on_done, on_image=on_image, workers=workers)
        table = Table(title=f"{benchmark}: harness validation")
        for col in ("instance", "repo", "gold", "empty", "verdict", "image s", "gold s", "empty s", "note"):
            table.add_column(col, justify="right" if col.endswith(" s") else "left")
        yn = {True: "resolved", False: "unresolved", None: "-"}
        for v in results:
            style = {"agrees": "green", "DISAGREES": "red"}.get(v.verdict, "yellow")
            note = v.error or "; ".join(v.gold_report.get("failed", [])[:2])
            table.add_row(v.instance_id, v.repo, yn[v.gold_resolved], yn[v.empty_resolved], f"[{style}]{v.verdict}[/]",
                          f"{v.image_s:.0f}", f"{v.gold_s:.1f}", f"{v.empty_s:.1f}", (note or "")[:120])
        print_table(console, table)
        _print_per_repo(results)
        agree = sum(v.agrees for v in results)
        unavailable = sum(v.error is not None for v in results)
        disagree = len(results) - agree - unavailable
        console.print(f"agree {agree}, disagree {disagree}, unavailable {unavailable} (of {len(results)})")
        if json_out is not None:
            json_out.write_text(json.dumps({"benchmark": benchmark, "images": images,
                                            "results": [v.to_json() for v in results]}, indent=2))
        if disagree:
            raise typer.Exit(1)
        if results and not agree:  # nothing could be checked: no verdict to pass a CI on
            err_console.print("no instance could be validated (every one was unavailable; see the notes)")
            raise typer.Exit(1)
