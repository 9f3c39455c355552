"""The `dgm` command line. Every user-facing command lives here; the work is elsewhere.

Errors meant for the user (`DgmError`) are one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from dgm.errors import DgmError, UsageError

app = typer.Typer(
    help="Evolve self-modifying coding agents (Darwin Gödel Machine style), evaluated in Docker sandboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: list tasks, validate the harness.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Sandbox images.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(sandbox_app, name="sandbox")

console = Console()
err_console = Console(stderr=True)

ArchiveOpt = typer.Option(
    None, "--archive", envvar="DGM_ARCHIVE",
    help="SQLAlchemy URL of the archive database (default: sqlite:///<archive-dir>/dgm.db).")
ArchiveDirOpt = typer.Option(
    Path("archive"), "--archive-dir", envvar="DGM_ARCHIVE_DIR",
    help="Directory for agent code (agents.git), artifacts and the default SQLite file.")


def open_store(archive: Optional[str], archive_dir: Path):
    from dgm.archive.store import ArchiveStore

    return ArchiveStore.open(archive, root=archive_dir)


def model_label(model: str) -> str:
    from dgm.llm.scripted import is_scripted

    return f"{model} [scripted]" if is_scripted(model) else model


def check_model(model: str) -> None:
    """Fail early, in one line, on a scripted model that cannot be loaded."""
    from dgm.llm import scripted

    if scripted.is_scripted(model):
        scripted.load_spec(scripted.litellm_name(model).split("/", 1)[1])


STATUS_STYLE = {"resolved": "green", "unresolved": "yellow", "empty_patch": "dim", "error": "red",
                "timeout": "magenta", "running": "cyan"}


# --------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    agent: Optional[str] = typer.Option(None, "--agent", help="'seed' or an archived agent id (prefix ok)."),
    agent_dir: Optional[Path] = typer.Option(None, "--agent-dir", help="A directory with main.py (agent contract v1)."),
    benchmark: str = typer.Option("dgm-mini", "--benchmark", "-b", help="Benchmark name (see `dgm bench ls`)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task ids (default: all)."),
    model: str = typer.Option(os.environ.get("DGM_MODEL", "scripted:gold"), "--model", "-m",
                              help="Model the agent talks to (litellm name, or scripted:gold / scripted:noop / scripted:PATH)."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Tasks run in parallel."),
    time_limit: float = typer.Option(900.0, "--time-limit", min=1, help="Wall-clock seconds per agent run."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write one object per task to this file."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Run one agent on benchmark tasks in sandboxes, grade each diff, record every run."""
    from dgm.bench.evaluate import EvalSettings, Evaluator, SEED_AGENT_DIR, commit_agent_dir
    from dgm.bench.registry import load_benchmark
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway
    from dgm.sandbox.docker import docker_client, ensure_image, remove_orphans

    if (agent is None) == (agent_dir is None):
        raise UsageError("give exactly one of --agent (seed or an agent id) and --agent-dir")
    if agent_dir is not None and not (agent_dir / "main.py").is_file():
        raise UsageError(f"agent directory {agent_dir} has no main.py (see the agent contract in the README)")
    bench = load_benchmark(benchmark)
    selected = bench.select([t.strip() for t in tasks.split(",") if t.strip()] if tasks else None)
    check_model(model)
    store = open_store(archive, archive_dir)
    client = docker_client()
    for image in sorted({bench.image(t) for t in selected}):
        ensure_image(client, image)
    remove_orphans(client)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if agent_dir is not None:
        sha = commit_agent_dir(store, agent_dir, f"agent from {agent_dir}")
        label = agent_dir.name
    elif agent == "seed":
        sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        label = "seed"
    else:
        archived = store.get_agent(agent)
        sha, label = archived.commit_sha, archived.id
    campaign = store.create_campaign(
        name=f"eval-{label}-{stamp}-{os.getpid()}", kind="eval",
        config={"benchmark": benchmark, "model": model, "tasks": [t.instance_id for t in selected],
                "time_limit_s": time_limit, "workers": workers, "agent": agent or str(agent_dir)},
    )
    if agent is not None and agent != "seed":
        the_agent = archived
    else:
        the_agent = store.add_agent(campaign.id, sha, status="seed" if agent == "seed" else "admitted",
                                    origin="seed" if agent == "seed" else "dir", generation=0)

    settings = EvalSettings(model=model, time_limit_s=time_limit)
    console.print(f"evaluating agent [bold]{the_agent.id}[/] ({label}, commit {sha[:10]}) on "
                  f"{len(selected)} {benchmark} task(s) with model [bold]{model_label(model)}[/], "
                  f"{workers} worker(s); campaign {campaign.id}")
    runs = _run_with_progress(store, client, bench, settings, the_agent, selected, campaign.id, workers,
                              stage="eval", llm_client_cls=LLMClient, gateway_cls=Gateway,
                              executor=ThreadExecutor(workers))
    store.set_campaign_status(campaign.id, "completed", finished=True)
    _print_runs(runs, model)
    if json_out is not None:
        json_out.write_text(json.dumps([
            {"instance_id": r.task_id, "status": r.status, "patch": r.patch or "",
             "duration_s": r.duration_s, "cost_usd": r.cost_usd, "task_run_id": r.id}
            for r in runs], indent=2))
    resolved = sum(r.status == "resolved" for r in runs)
    console.print(f"resolved {resolved}/{len(runs)}")


def _run_with_progress(store, client, bench, settings, agent, tasks, campaign_id, workers, *, stage,
                       llm_client_cls, gateway_cls, executor):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dgm.bench.evaluate import Evaluator

    llm = llm_client_cls(store)
    counts: dict[str, int] = {}
    with gateway_cls(llm) as gateway, Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}"), TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        bar = progress.add_task("tasks", total=len(tasks), tally="")
        evaluator = Evaluator(store, client, gateway, bench, settings)

        def done(task, run):
            counts[run.status] = counts.get(run.status, 0) + 1
            progress.update(bar, advance=1, tally=" ".join(f"{k}={v}" for k, v in sorted(counts.items())))

        try:
            return evaluator.run_tasks(agent, tasks, campaign_id=campaign_id, stage=stage,
                                       executor=executor, on_done=done)
        finally:
            executor.shutdown()


def _print_runs(runs, model: str) -> None:
    table = Table(title=f"results ({model_label(model)})")
    for col in ("task", "status", "F2P", "P2P", "patch lines", "seconds", "cost $"):
        table.add_column(col, justify="right" if col in ("patch lines", "seconds", "cost $") else "left")
    for r in runs:
        ts = r.tests_status or {}
        f2p = ts.get("FAIL_TO_PASS", {})
        p2p = ts.get("PASS_TO_PASS", {})
        frac = lambda d: f"{len(d.get('success', []))}/{len(d.get('success', [])) + len(d.get('failure', []))}" if d else "-"  # noqa: E731
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(r.task_id, f"[{style}]{r.status}[/]", frac(f2p), frac(p2p),
                      str(len((r.patch or "").splitlines())), f"{(r.duration_s or 0):.1f}", f"{r.cost_usd:.4f}")
    console.print(table)


# --------------------------------------------------------------------------- bench
@bench_app.command("ls")
def bench_ls(benchmark: str = typer.Argument("dgm-mini", help="Benchmark name.")):
    """List a benchmark's task ids with a one-line summary each."""
    from dgm.bench.registry import load_benchmark

    bench = load_benchmark(benchmark)
    table = Table(title=f"{benchmark}")
    table.add_column("task id")
    table.add_column("difficulty", justify="right")
    table.add_column("summary")
    for task in bench.tasks():
        table.add_row(task.instance_id, str(task.difficulty), task.summary)
    console.print(table)


# --------------------------------------------------------------------------- sandbox
@sandbox_app.command("build")
def sandbox_build(force: bool = typer.Option(False, "--force", help="Rebuild even if the image exists.")):
    """Build the sandbox base image offline (debootstrap from the host's apt mirror + docker import)."""
    import subprocess

    from dgm.sandbox.docker import docker_client
    from dgm.sandbox.images import base_image_tag, build_script

    docker_client()
    cmd = ["bash", str(build_script())] + (["--force"] if force else []) + [base_image_tag()]
    if subprocess.call(cmd) != 0:
        raise DgmError("building the base image failed (see the lines above)")


# --------------------------------------------------------------------------- doctor
@app.command("doctor")
def doctor(
    model: str = typer.Option(os.environ.get("DGM_MODEL", "scripted:gold"), "--model", "-m"),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Check Docker, the base image, the archive and the model settings."""
    from dgm.sandbox.docker import docker_client, ensure_image
    from dgm.sandbox.images import base_image_tag

    checks: list[tuple[str, bool, str]] = []

    def check(name, fn):
        try:
            checks.append((name, True, fn() or "ok"))
        except DgmError as exc:
            checks.append((name, False, str(exc)))

    client_box = {}

    def docker_ok():
        client_box["c"] = docker_client()
        return f"engine {client_box['c'].version().get('Version', '?')}"

    check("docker", docker_ok)
    if "c" in client_box:
        check("base image", lambda: (ensure_image(client_box["c"], base_image_tag()), base_image_tag())[1])
    check("archive", lambda: f"{open_store(archive, archive_dir).url}")

    def model_ok():
        from dgm.llm.scripted import is_scripted

        check_model(model)
        if is_scripted(model):
            return f"{model}: scripted (offline stand-in, no API key needed)"
        keys = [k for k in os.environ if k.endswith("_API_KEY")]
        return f"{model}: provider keys set on the host: {', '.join(sorted(keys)) or 'none'}"

    check("model", model_ok)
    table = Table(title="dgm doctor")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail")
    for name, ok, detail in checks:
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", detail)
    console.print(table)
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except DgmError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
