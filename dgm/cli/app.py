"""The `dgm` command line. Every user-facing command lives here; the work is elsewhere.

Errors meant for the user (`DgmError`) are one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.text import Text
from rich.table import Table

from dgm.cli.tables import add_whole_column, make_console, model_label, print_table
from dgm.errors import (ArchiveUnavailable, BudgetExceeded, DgmError, EvaluationStopped, InfrastructureError,
                        NotFound, OutputNotWritten, UsageError)

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


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"dgm {version('dgm')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("dgm (not installed)")
        raise typer.Exit()


@app.callback()
def _main_options(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print dgm's version and exit."),
) -> None:
    """Evolve self-modifying coding agents (Darwin Gödel Machine style), evaluated in Docker sandboxes."""

console = make_console()
err_console = make_console(stderr=True)

from dgm.cli.options import DEFAULT_ARCHIVE_DIR, ArchiveDirOpt, ArchiveOpt, check_output_file, open_reads, open_store  # noqa: E402,F401 - shared by browse.py


def start_loading_litellm() -> None:
    from dgm.llm.client import start_loading_litellm as start

    start()


def check_model(model: str) -> None:
    """Fail early, in one line, on a scripted model that cannot be loaded, or a
    model whose provider litellm cannot tell (every call would fail)."""
    from dgm.llm import scripted

    if scripted.is_scripted(model):
        scripted.load_spec(scripted.litellm_name(model).split("/", 1)[1])
        return
    from dgm.llm.client import load_litellm

    try:
        load_litellm().get_llm_provider(model)
    except Exception:  # noqa: BLE001 - litellm's BadRequestError, or anything it cannot parse
        raise UsageError(f"unknown model {model!r}: litellm cannot tell its provider "
                         "(write it as provider/model, e.g. openai/gpt-4o-mini)") from None
    # Without its key every call fails: say so now, not after retrying each as an outage.
    try:
        missing = load_litellm().validate_environment(model).get("missing_keys") or []
    except Exception:  # noqa: BLE001 - a provider litellm cannot check: its calls will tell
        missing = []
    if missing:
        raise UsageError(f"{model}: {', '.join(missing)} not set on the host (the gateway needs it; "
                         "sandboxes never see it)")


STATUS_STYLE = {"resolved": "green", "unresolved": "yellow", "empty_patch": "dim", "error": "red",
                "timeout": "magenta", "running": "cyan", "unfinished": "dim cyan"}


# --------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    agent: Optional[str] = typer.Option(None, "--agent", help="The agent: 'seed' or an archived agent id (prefix ok). "
                                                             "This or --agent-dir is required."),
    agent_dir: Optional[Path] = typer.Option(None, "--agent-dir", help="The agent, from a directory with main.py "
                                                                     "(agent contract v1), instead of --agent."),
    benchmark: str = typer.Option("dgm-mini", "--benchmark", "-b", help="Benchmark name (see `dgm bench ls`)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task ids (default: all)."),
    model: str = typer.Option(os.environ.get("DGM_MODEL", "scripted:gold"), "--model", "-m",
                              help="Model the agent talks to (litellm name, or scripted:gold / scripted:noop / "
                                   "scripted:rehearsal / scripted:PATH)."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Tasks run in parallel."),
    time_limit: float = typer.Option(900.0, "--time-limit", min=1, help="Wall-clock seconds per agent run."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write one object per task to this file."),
    budget_usd: Optional[float] = typer.Option(
        None, "--budget-usd",  # no `min`: the help would say x>=0.0, and 0 is refused below
        help="Hard cap on this evaluation's LLM spend, USD, more than 0; runs it cuts short are recorded as errors."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="SWE-bench: dataset file or hub name."),
    images: str = typer.Option("auto", "--images", help="SWE-bench image provider: auto, pull, build, offline."),
    repo_mirror: Optional[Path] = typer.Option(None, "--repo-mirror", help="SWE-bench --images offline: local clones."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Run one agent on benchmark tasks in sandboxes, grade each diff, record every run."""
    from dgm.bench.evaluate import EvalSettings, SEED_AGENT_DIR, check_agent_dir, commit_agent_dir
    from dgm.bench.registry import load_benchmark
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import LLMClient
    from dgm.llm.gateway import Gateway
    from dgm.sandbox.docker import docker_client, ensure_image, remove_orphans

    if (agent is None) == (agent_dir is None):
        raise UsageError("give exactly one of --agent (seed or an agent id) and --agent-dir")
    if budget_usd is not None and budget_usd < 0:
        raise UsageError(f"--budget-usd: a cap must be more than $0, not {budget_usd:g}")
    if budget_usd is not None and budget_usd == 0:
        raise UsageError("--budget-usd: a cap of $0 pays for nothing; give a positive amount, or leave it out "
                         "for no cap")
    if budget_usd is not None and not math.isfinite(budget_usd):
        # nan passes every comparison; inf is no cap (leave the option out), refused as in campaign.toml
        raise UsageError(f"--budget-usd: give a finite number of dollars, not {budget_usd:g}")
    if agent_dir is not None:
        check_agent_dir(agent_dir)  # now, not after the images are ready
    from dgm.bench.swebench.cli import benchmark_options

    bench = load_benchmark(benchmark, **benchmark_options(dataset, images, repo_mirror))
    # Once each, in the order given: a task named twice is one task.
    task_ids = None if tasks is None else list(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
    if task_ids == []:
        raise UsageError("--tasks names no task id (leave it out to run them all)")
    selected = bench.select(task_ids)
    check_model(model)
    if json_out is not None:
        check_output_file(json_out, "--json")  # now, not after an hour of runs
    client = docker_client()  # before the archive is opened: without an engine, no archive is made
    # An archived agent is looked up in an archive that exists; seed or a directory may start one.
    store = open_store(archive, archive_dir, create=agent is None or agent == "seed")
    archived = None
    if agent is not None and agent != "seed":
        archived = store.get_agent(agent)  # an unknown id fails here, before any image is prepared
        from dgm.lineage.details import require_runnable

        require_runnable(store, archived)
    # Seconds of import, overlapping the engine's work below (orphans, images): started only
    # now, so an error above is not slowed down by it.
    start_loading_litellm()
    remove_orphans(client)
    if hasattr(bench, "prepare_images"):
        # A cold offline build takes minutes per instance: say what is going on.
        console.print(f"preparing images for {len(selected)} task(s) (present ones are used as they are; "
                      "building one takes minutes)")

        def on_image(task, error):
            console.print(Text(f"  image {task.instance_id}: {'unavailable' if error else 'ready'}"), highlight=False)

        failed = bench.prepare_images(client, selected, progress=on_image)
        if failed:
            for task_id, reason in failed.items():
                err_console.print(Text(f"no image for {task_id}: {reason}"), highlight=False, soft_wrap=True)
            selected = [t for t in selected if t.instance_id not in failed]
            if not selected:
                raise DgmError("no task has an image; see the reasons above")
    else:
        for image in sorted({bench.image(t) for t in selected}):
            ensure_image(client, image)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if agent_dir is not None:
        sha = commit_agent_dir(store, agent_dir, f"agent from {agent_dir}")
        label = agent_dir.name
    elif agent == "seed":
        sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        label = "seed"
    else:
        sha, label = archived.commit_sha, archived.id
    campaign = store.create_campaign(
        name=f"eval-{label}-{stamp}-{os.getpid()}", kind="eval",
        config={"benchmark": benchmark, "model": model, "tasks": [t.instance_id for t in selected],
                "time_limit_s": time_limit, "workers": workers, "agent": agent or str(agent_dir)},
        budget_usd=budget_usd,
    )
    if agent is not None and agent != "seed":
        the_agent = archived
    else:
        the_agent = store.add_agent(campaign.id, sha, status="seed" if agent == "seed" else "admitted",
                                    origin="seed" if agent == "seed" else "dir", generation=0)

    settings = EvalSettings(model=model, time_limit_s=time_limit)
    console.print(f"evaluating agent [bold]{the_agent.id}[/] ({escape(label)}, commit {sha[:10]}) on "
                  f"{len(selected)} {escape(benchmark)} task(s) with model [bold]{escape(model_label(model))}[/], "
                  f"{workers} worker(s); campaign {campaign.id}")
    try:
        runs = _run_with_progress(store, client, bench, settings, the_agent, selected, campaign.id, workers,
                                  stage="eval", llm_client_cls=LLMClient, gateway_cls=Gateway,
                                  executor=ThreadExecutor(workers), budget_usd=budget_usd)
    except BudgetExceeded:
        # Runs the cap cut are not the agent's results: closed as errors saying why, the rest kept.
        spent = store.campaign_spend(campaign.id)
        cut = store.close_campaign(campaign.id, "budget_exhausted",
                                   unfinished_error=f"cut short by the ${budget_usd:g} --budget-usd cap")
        recorded = store.list_task_runs(campaign_id=campaign.id)
        _print_runs(recorded, model)
        _write_eval_json_of_a_stop(json_out, recorded)
        raise EvaluationStopped(
            f"the ${budget_usd:g} budget is spent (${spent:.4f}; what is left cannot pay for another call): "
            f"{len(recorded) - cut} of {len(selected)} task(s) "
            f"finished, {cut} cut short (recorded as errors), the rest not started; campaign {campaign.id}") from None
    except KeyboardInterrupt:
        # The runs in flight were let finish (and recorded); the evaluation is closed, not left 'running'.
        store.close_campaign(campaign.id, "interrupted", unfinished_error="interrupted before it finished")
        recorded = store.list_task_runs(campaign_id=campaign.id)
        err_console.print(Text(f"{len(recorded)} of {len(selected)} task(s) recorded in campaign {campaign.id}"))
        if _write_eval_json_of_a_stop(json_out, recorded):
            err_console.print(Text(f"wrote those to {json_out}"))
        raise
    except InfrastructureError as exc:
        # An evaluation is not resumed: the runs the failure cut short are closed as errors of the harness.
        try:
            cut = store.close_campaign(campaign.id, "failed",
                                       unfinished_error=f"cut short by the sandbox machinery: {exc}")
            finished = len(store.list_task_runs(campaign_id=campaign.id)) - cut
        except ArchiveUnavailable:
            raise InfrastructureError(f"{exc}. The evaluation stopped (campaign {campaign.id}); "
                                      "its unfinished runs could not be closed") from None
        raise InfrastructureError(
            f"{exc}. The evaluation stopped: {finished} of {len(selected)} task(s) finished (kept in campaign "
            f"{campaign.id}), {cut} cut short (recorded as errors), the rest not started") from None
    store.set_campaign_status(campaign.id, "completed", finished=True)
    _print_runs(runs, model)
    if json_out is not None:
        try:
            _write_eval_json(json_out, runs)
        except OSError as exc:
            raise OutputNotWritten(f"cannot write {json_out}: {exc.strerror or exc}; the runs are kept in "
                                   f"campaign {campaign.id} (see `dgm ls {campaign.id}`)") from None
    resolved = sum(r.status == "resolved" for r in runs)
    console.print(f"resolved {resolved}/{len(runs)}")


def _write_eval_json_of_a_stop(path: Path | None, runs) -> bool:
    """--json of an evaluation that stopped early: what finished is the user's
    too. Whether it was written (the stop is the news; the runs are in the archive)."""
    if path is None:
        return False
    try:
        _write_eval_json(path, runs)
    except OSError:
        return False
    return True


def _write_eval_json(path: Path, runs) -> None:
    """`dgm eval --json`: one object per task run, in task order."""
    path.write_text(json.dumps([
        {"instance_id": r.task_id, "status": r.status, "patch": r.patch or "",
         "duration_s": r.duration_s, "cost_usd": r.cost_usd, "task_run_id": r.id,
         "error": r.error, "tests_status": r.tests_status, "model": r.model, "agent_id": r.agent_id,
         "campaign_id": r.campaign_id}
        for r in runs], indent=2))


def _run_with_progress(store, client, bench, settings, agent, tasks, campaign_id, workers, *, stage,
                       llm_client_cls, gateway_cls, executor, budget_usd: float | None = None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dgm.bench.evaluate import Evaluator
    from dgm.liveness import heartbeat
    from dgm.llm.client import Budget

    budgets = {} if budget_usd is None else {campaign_id: Budget(budget_usd, lambda: store.campaign_spend(campaign_id))}
    llm = llm_client_cls(store, budgets=budgets)
    counts: dict[str, int] = {}
    with heartbeat(store, campaign_id), gateway_cls(llm) as gateway, Progress(
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
        except KeyboardInterrupt:
            # Shutting the executor down waits for the runs in flight (up to their time limit): say so.
            progress.stop()
            err_console.print("interrupted: letting the runs in flight finish and be recorded "
                              "(interrupt again to quit at once)")
            raise
        finally:
            executor.shutdown()


def _print_runs(runs, model: str) -> None:
    def frac(d: dict) -> str:
        return f"{len(d.get('success', []))}/{len(d.get('success', [])) + len(d.get('failure', []))}" if d else "-"

    from dgm.lineage.details import grading_note

    cells = []
    for r in runs:
        ts = r.tests_status or {}
        # Why a run failed, or what the harness changed about it (bytes replaced, files kept out of grading).
        note = ((r.error or "").strip().splitlines() or [grading_note(r.tests_status) or ""])[0][:100]
        cells.append([Text(r.task_id), Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                      frac(ts.get("FAIL_TO_PASS", {})), frac(ts.get("PASS_TO_PASS", {})),
                      str(len((r.patch or "").splitlines())), f"{(r.duration_s or 0):.1f}", f"{r.cost_usd:.4f}",
                      Text(note, style="dim")])
    columns = ["task", "status", "F2P", "P2P", "patch lines", "seconds", "cost $"]
    table = Table(title=Text(f"results ({model_label(model)})"))
    for i, col in enumerate(columns):
        add_whole_column(table, col, [c[i] for c in cells], justify="right" if i >= 4 else "left")
    if any(c[-1].plain for c in cells):
        table.add_column("note")  # free text: wraps, unlike the figures
    else:
        cells = [c[:-1] for c in cells]
    for c in cells:
        table.add_row(*c)
    print_table(console, table)
    if any(r.status != "resolved" for r in runs):
        console.print(Text(f"`dgm show {runs[0].agent_id}` lists these runs with their ids; `dgm show-run RUN` shows "
                           "one in full (trajectory, patch, the agent's own output, test log)", style="dim"))


# --------------------------------------------------------------------------- run / resume / status
@app.command("run")
def run_cmd(
    config_path: Optional[Path] = typer.Option(None, "--config", "-c", help="campaign.toml (see campaign.example.toml)."),
    name: Optional[str] = typer.Option(None, "--name", help="Campaign name (default: generated)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Benchmark (default dgm-mini)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model of the agents (default $DGM_MODEL or scripted:rehearsal)."),
    proposer_model: Optional[str] = typer.Option(None, "--proposer-model", help="Model that diagnoses failures (default: --model)."),
    generations: Optional[int] = typer.Option(None, "--generations", "-g", help="Generations to run (default 5)."),
    children: Optional[int] = typer.Option(None, "--children-per-generation", help="Children per generation (default 2)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Task runs in parallel (default 2)."),
    selection: Optional[str] = typer.Option(None, "--selection", help="Parent selector (default score_child_prop)."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Hard cap on LLM spend, USD (default: none)."),
    max_hours: Optional[float] = typer.Option(None, "--max-hours", help="Stop after this much wall time (default: none)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
    stages: Optional[str] = typer.Option(None, "--stages", help="Comma-separated stage subsets, e.g. dgm-small,dgm-medium."),
    heldout: Optional[str] = typer.Option(None, "--heldout", help="Held-out tasks: a count, a subset name or comma-separated task ids."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="SWE-bench: dataset file or hub name."),
    images: Optional[str] = typer.Option(None, "--images", help="SWE-bench image provider: auto, pull, build, offline."),
    repo_mirror: Optional[Path] = typer.Option(None, "--repo-mirror", help="SWE-bench --images offline: local clones."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Start an evolution campaign: select, diagnose, self-modify, evaluate, admit; resumable."""
    from dgm.config import load_config

    overrides = {"name": name, "benchmark": benchmark, "model": model, "proposer_model": proposer_model,
                 "generations": generations, "children_per_generation": children, "workers": workers,
                 "selection": selection, "budget_usd": budget_usd, "max_hours": max_hours, "seed": seed}
    if stages is not None:
        names = [s.strip() for s in stages.split(",") if s.strip()]
        if not names:
            raise UsageError("--stages names no stage (give subset names, e.g. dgm-small,dgm-medium)")
        overrides["stages"] = [{"name": n, "tasks": f"subset:{n}", "advance_threshold": 0.4 if i + 1 < len(names) else 0.0}
                               for i, n in enumerate(names)]
    if heldout and heldout.strip().lstrip("+-").isdigit():
        # A count, as `heldout = 3` in a config file (a negative one is refused there, not taken for a subset name).
        overrides["heldout"] = int(heldout)
    elif heldout:
        # Task ids (one or more: they have "__"), else a subset name.
        overrides["heldout"] = heldout.split(",") if "," in heldout or "__" in heldout else (
            heldout if heldout.startswith("subset:") else f"subset:{heldout}")
    bench_options = {k: str(v) for k, v in {"dataset": dataset, "images": images,
                                             "repo_mirror": repo_mirror}.items() if v is not None}
    if bench_options:
        overrides["benchmark_options"] = bench_options
    config = load_config(config_path, overrides)
    checked = _check_config(config)  # bad ids and models before anything is written, the archive included
    from dgm.sandbox.docker import docker_client

    # Likewise the engine and the limits it can grant: refused, no archive is made (images are checked below).
    _check_sandbox_cpus(docker_client(), config.sandbox.cpus, resuming=False)
    store = open_store(archive, archive_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    _preflight(*checked)
    campaign = store.create_campaign(name=config.name or f"campaign-{stamp}-{os.getpid()}", kind="evolution",
                                     config=config.model_dump(mode="json"), seed=config.seed,
                                     budget_usd=config.budget_usd)
    _launch_or_mark_stopped(store, config, campaign)


@app.command("resume")
def resume_cmd(
    campaign_id: str = typer.Argument(..., help="Campaign id or name."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Raise (or set) the spending cap."),
    generations: Optional[int] = typer.Option(None, "--generations", "-g", help="Run to this many generations."),
    max_hours: Optional[float] = typer.Option(
        None, "--max-hours", help="Stop after this much more wall time (this resume only; later ones keep the "
                                  "campaign's own limit, if it has one)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Task runs in parallel from now on."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Continue a campaign after Ctrl-C, kill -9, a crash, a budget stop or a Docker/model outage; nothing done is redone."""
    from dgm.config import validate_config

    store = open_store(archive, archive_dir, create=False)
    campaign = store.get_campaign(campaign_id)
    if campaign.kind != "evolution":
        raise UsageError(f"campaign {campaign.name} is {_NOT_RESUMABLE.get(campaign.kind, f'a {campaign.kind} run')}, "
                         f"not an evolution campaign: only those are resumed"
                         + (f"; {_INSTEAD[campaign.kind]}" if campaign.kind in _INSTEAD else ""))
    _refuse_if_running(campaign)
    given = {k: v for k, v in {"budget_usd": budget_usd, "generations": generations, "max_hours": max_hours,
                               "workers": workers}.items() if v is not None}
    data = {**(campaign.config or {}), **given}
    if isinstance(data.get("name"), str) and not data["name"].strip():
        data["name"] = campaign.name  # recorded before blank names were refused: it ran under a generated one
    agents = store.list_agents(campaign.id)
    absent = set(store.code.missing(sorted({a.commit_sha for a in agents})))
    missing = [a.id for a in agents if a.commit_sha in absent]
    if missing:
        raise UsageError(f"the code of {len(missing)} agent(s) of campaign {campaign.name} (e.g. {missing[0]}) is not "
                         f"in {store.code.path}: pass the --archive-dir the campaign was started with")
    config = validate_config(data, "options", from_options=frozenset(given))
    spent = store.campaign_spend(campaign.id)
    if budget_usd is not None and budget_usd <= spent:
        raise UsageError(f"--budget-usd {budget_usd:g} is not above what campaign {campaign.name} has spent already "
                         f"(${spent:.4f}): give a larger cap")
    _preflight(*_check_config(config), config.sandbox, resuming=True)
    # Claimed only now, against the campaign as read above: another resume
    # that started meanwhile has either claimed it already (this one stops
    # here, having changed nothing) or will find this one's claim.
    if not store.claim_runner(campaign.id, campaign):
        other = store.get_campaign(campaign.id)
        raise UsageError(f"campaign {campaign.name} was taken over by another runner (pid {other.pid}) while this "
                         f"resume was starting; nothing was changed here (see `dgm status {campaign.name}`)")
    if set(given) - {"max_hours"}:
        # A resume's --max-hours is for this session: kept out of the campaign's
        # config, or every later resume would stop after it too.
        kept = {**config.model_dump(mode="json"), "max_hours": (campaign.config or {}).get("max_hours")}
        campaign = store.update_campaign(campaign.id, config=kept, budget_usd=config.budget_usd)
    _launch_or_mark_stopped(store, config, campaign)


_NOT_RESUMABLE = {"eval": "an evaluation (`dgm eval`)", "import": "an import of a DGM run (`dgm import-dgm`)",
                  "replay": "a replay (`dgm replay`)"}
_INSTEAD = {"eval": "run `dgm eval` again for the tasks it did not finish (`dgm ls` shows what it recorded)",
            "import": "it is there to be browsed (`dgm ls`, `dgm lineage`), not continued",
            "replay": "run `dgm replay` again"}


@app.command("status")
def status_cmd(
    campaign_id: Optional[str] = typer.Argument(None, help="Campaign id or name (default: the latest evolution campaign)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Show a campaign's progress, including one running in another process."""
    from dgm.cli.dashboard import status_view

    store = open_reads(archive, archive_dir)  # browsing never makes an archive
    if campaign_id is None:
        campaigns = [c for c in store.list_campaigns() if c.kind == "evolution"]
        if not campaigns:
            raise UsageError("no evolution campaign in this archive (start one with `dgm run`)")
        campaign = max(campaigns, key=lambda c: c.created_at)
    else:
        campaign = store.get_campaign(campaign_id)
    console.print(status_view(store, campaign))


def _refuse_if_running(campaign) -> None:
    """Two runners on one campaign would redo each other's runs and pay twice:
    refuse while its runner is alive: a fresh heartbeat and, when it ran on
    this machine, a live pid (a killed runner's pid is gone at once)."""
    from dgm.cli.dashboard import heartbeat_age, runner_checks_in

    if not runner_checks_in(campaign) or campaign.pid == os.getpid():
        return
    where = "" if campaign.runner_host in (None, socket.gethostname()) else f" on {campaign.runner_host}"
    raise UsageError(f"campaign {campaign.name} is running (pid {campaign.pid}{where}, heartbeat "
                     f"{heartbeat_age(campaign):.0f} s ago); stop it first (kill -INT {campaign.pid}), then resume")


def _check_config(config):
    """The checks that need neither the archive nor Docker: models, benchmark, task ids."""
    from dgm.bench.registry import load_benchmark
    from dgm.evolution.staging import build_plan

    check_model(config.model)
    check_model(config.diagnosis_model)
    bench = load_benchmark(config.benchmark, **config.benchmark_options)
    return bench, build_plan(config, bench)


def _preflight(bench, plan, sandbox=None, *, resuming: bool = False) -> None:
    """With `_check_config`'s benchmark and plan: the sandbox limits the engine
    can grant and the sandboxes' images, before anything is spent."""
    from dgm.sandbox.docker import docker_client, ensure_image
    from dgm.sandbox.images import base_image_tag

    client = docker_client()
    if sandbox is not None:
        _check_sandbox_cpus(client, sandbox.cpus, resuming)
    # Seconds of import, overlapping the engine's work (image builds take minutes): started
    # only once the engine answers, so the errors before this are not slowed down by it.
    start_loading_litellm()
    ensure_image(client, base_image_tag())  # self-modification and the sanity gate run on it
    if hasattr(bench, "prepare_images"):
        wanted = set(plan.selection_task_ids) | set(plan.heldout)
        failed = bench.prepare_images(client, [t for t in bench.tasks() if t.instance_id in wanted])
        if failed:
            first = next(iter(failed.items()))
            raise DgmError(f"{len(failed)} task(s) have no image (e.g. {first[0]}: {first[1]}); "
                           "choose other tasks or another --images provider")


def _check_sandbox_cpus(client, cpus: float, resuming: bool) -> None:
    """Docker refuses every sandbox asking for more CPUs than the engine has:
    taken for an outage, that was half an hour of retries, then a failed campaign."""
    try:
        available = int(client.info().get("NCPU") or 0)
    except Exception:  # noqa: BLE001 - an engine that will not say: its sandboxes will tell
        return
    if available and cpus > available:
        what = f"[campaign.sandbox] cpus = {cpus:g} is more than the Docker engine's {available} CPU(s)"
        if resuming:
            raise UsageError(f"the campaign's {what}: its sandboxes cannot start on this engine (a resume keeps "
                             "the campaign's sandbox limits)")
        raise UsageError(f"{what}; give {available} or less")


def _launch_or_mark_stopped(store, config, campaign) -> None:
    """`_launch`; if it ends by an exception before its runner recorded how the
    campaign stopped (a Ctrl-C or an error in the seconds before the runner
    starts), record it here: the campaign must not stay `running` with no runner."""
    try:
        _launch(store, config, campaign)
    except BaseException as exc:
        try:
            now = store.get_campaign(campaign.id)
            if now.status == "running" and now.pid == os.getpid():
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                store.set_campaign_status(campaign.id, status, finished=True)
                why = "interrupted" if status == "interrupted" else f"{type(exc).__name__}: {str(exc)[:200]}"
                store.add_event(campaign.id, "campaign_stopped", {
                    "status": status, "reason": f"stopped before its runner started ({why}); `dgm resume` goes on"})
        except Exception:  # noqa: BLE001 - best effort: the archive may be what failed
            pass
        raise


def _launch(store, config, campaign) -> None:
    import signal

    from rich.live import Live

    from dgm.bench.evaluate import EvalSettings, Evaluator
    from dgm.bench.registry import load_benchmark
    from dgm.cli.dashboard import live_view
    from dgm.evolution.loop import CampaignRunner
    from dgm.executor import ThreadExecutor
    from dgm.llm.client import Budget, LLMClient
    from dgm.llm.gateway import Gateway
    from dgm.sandbox.docker import SandboxLimits, docker_client, drain_removals, remove_orphans

    bench = load_benchmark(config.benchmark, **config.benchmark_options)
    client = docker_client()
    removed = remove_orphans(client)
    if removed:
        console.print(f"removed {removed} sandbox(es) left by a crashed run")
    budget = Budget(config.budget_usd, lambda: store.campaign_spend(campaign.id))
    llm = LLMClient(store, budgets={campaign.id: budget})
    limits = SandboxLimits(memory_mb=config.sandbox.memory_mb, cpus=config.sandbox.cpus, pids=config.sandbox.pids)
    settings = EvalSettings(model=config.model, time_limit_s=config.time_limit_s, limits=limits)
    executor = ThreadExecutor(config.workers)
    if config.model.startswith("scripted:"):
        console.print(f"[yellow]scripted rehearsal[/]: the model {escape(config.model)} is an offline stand-in; "
                      "scores measure the machinery, not a model")
    live_enabled = console.is_terminal
    with Gateway(llm) as gateway:
        evaluator = Evaluator(store, client, gateway, bench, settings)
        runner = CampaignRunner(store=store, config=config, campaign=campaign, benchmark=bench,
                                docker_client=client, llm=llm, gateway=gateway, evaluator=evaluator,
                                task_executor=executor,
                                on_event=None if live_enabled else (
                                    lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)))
        interrupts = {"n": 0}

        def on_signal(signum, frame):
            interrupts["n"] += 1
            if interrupts["n"] > 1:
                _quit_at_once(store, campaign, signal.Signals(signum).name)
            runner.request_stop(signal.Signals(signum).name)
            console.print("stopping: finishing in-flight work (send the signal again to quit at once; "
                          "`dgm resume` picks up either way)")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        console.print(f"campaign [bold]{escape(campaign.name)}[/] ({campaign.id}): {config.generations} generation(s) x "
                      f"{config.children_per_generation} child(ren) on {escape(config.benchmark)}, "
                      f"stages {escape(', '.join(f'{s.name}:{len(s.task_ids)}' for s in runner.plan.stages))}, "
                      f"held-out {len(runner.plan.heldout)}")
        broken = None
        try:
            if live_enabled:
                with Live(live_view(runner), console=console, refresh_per_second=2) as live:
                    result = {}

                    def drive() -> None:
                        try:
                            result["status"] = runner.run()
                        except BaseException as exc:  # noqa: BLE001 - raised again below, in the main thread
                            result["error"] = exc

                    worker = threading.Thread(target=drive, daemon=True)
                    worker.start()
                    while worker.is_alive():
                        worker.join(0.5)
                        live.update(live_view(runner))
                    if "error" in result:
                        raise result["error"]
                    status = result["status"]
            else:
                status = runner.run()
        except InfrastructureError as exc:
            broken, status = exc, "failed"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            executor.shutdown()
            drain_removals()
    try:
        _print_campaign_summary(store, store.get_campaign(campaign.id), status)
    except ArchiveUnavailable:
        if broken is None:
            raise
    if broken is not None:
        raise InfrastructureError(f"{broken}. The campaign stopped; nothing finished is lost and the runs it "
                                  f"interrupted are not counted: once fixed, `dgm resume {campaign.id}` redoes them")


def _quit_at_once(store, campaign, signame: str) -> None:
    """The second signal: exit now, as a kill would, but say so. Unwinding the
    threads instead (children waiting on task runs the executor no longer
    takes) hung for good or rejected healthy children. What was in flight
    stays unfinished, for `dgm resume` to redo; the sandboxes are left to
    the next dgm command's orphan sweep: removing them here would make the
    runs still in flight record their own sandbox's death as the agent's
    error. The campaign is marked interrupted, given a few seconds at most
    (the interrupted thread may hold the archive's lock)."""

    def mark() -> None:
        try:
            store.set_campaign_status(campaign.id, "interrupted", finished=True)
            store.add_event(campaign.id, "campaign_stopped", {
                "status": "interrupted", "reason": f"second {signame}: quit at once; `dgm resume` redoes the work "
                                                  "that was in flight"})
        except Exception:  # noqa: BLE001 - best effort: a stale heartbeat tells the same later
            pass

    worker = threading.Thread(target=mark, daemon=True)
    worker.start()
    worker.join(3)
    console.show_cursor(True)
    err_console.print(f"quit at once (second {signame}); `dgm resume {campaign.id}` redoes what was in flight")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _print_campaign_summary(store, campaign, status: str) -> None:
    from dgm.lineage.forest import Lineage
    from dgm.lineage.tree import print_lineage

    lin = Lineage.load(store, campaign.id)
    print_lineage(console, lin, f"lineage of {campaign.name}", max_nodes=None)
    agents = store.list_agents(campaign.id)
    for agent in agents:
        if agent.status == "rejected":
            console.print(Text(f"rejected {agent.id} (generation {agent.generation}): {agent.rejection_reason}",
                               style="dim"), soft_wrap=True)
    spent = store.campaign_spend(campaign.id)
    admitted = sum(a.status == "admitted" for a in agents)
    console.print(f"status {status}; {len(agents)} agents ({admitted} admitted); "
                  f"spent ${spent:.4f}" + (f" of ${campaign.budget_usd:.2f}" if campaign.budget_usd is not None else ""))
    best = lin.best()
    if best is not None:
        row = lin.rows[best]
        gap = ""
        if row.heldout_score is not None:
            gap = f", held-out {row.heldout_score:.3f} (generalisation gap {(row.score or 0) - row.heldout_score:+.3f})"
        console.print(f"best agent {row.id}: selection score {row.score or 0:.3f}{gap}", soft_wrap=True)


# --------------------------------------------------------------------------- bench
@bench_app.command("ls")
def bench_ls(
    benchmark: str = typer.Argument("dgm-mini", help="Benchmark name."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="SWE-bench: dataset file or hub name."),
):
    """List a benchmark's task ids with a one-line summary each."""
    from dgm.bench.registry import load_benchmark

    bench = load_benchmark(benchmark, **({"dataset": dataset} if dataset else {}))
    table = Table(title=Text(benchmark))
    tasks = bench.tasks()
    add_whole_column(table, "task id", [t.instance_id for t in tasks])
    table.add_column("difficulty", justify="right")
    table.add_column("summary")
    for task in tasks:
        difficulty = str(task.difficulty) if task.extra.get("difficulty_known", True) else "-"
        table.add_row(Text(task.instance_id), difficulty, Text(task.summary))  # issue text, not markup
    print_table(console, table)


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
    model: str = typer.Option(os.environ.get("DGM_MODEL", "scripted:gold"), "--model", "-m",
                              help="Model to check: that litellm can route it and its provider key is set."),
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
    def archive_ok():
        # Looked at, never created: a typo in --archive-dir must not leave a new archive behind.
        try:
            return open_store(archive, archive_dir, create=False).url
        except NotFound as exc:
            where = f"in {archive_dir or DEFAULT_ARCHIVE_DIR}" if archive is None else f"({exc})"
            return f"none yet {where}; `dgm run` or `dgm eval` creates it"

    check("archive", archive_ok)

    def model_ok():
        from dgm.llm.scripted import is_scripted

        check_model(model)  # the provider key included
        if is_scripted(model):
            return f"{model}: scripted (offline stand-in, no API key needed)"
        return f"{model}: its provider key is set on the host (sandboxes never see it)"

    check("model", model_ok)
    table = Table(title="dgm doctor")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail")
    for name, ok, detail in checks:
        table.add_row(name, "[green]yes[/]" if ok else "[red]no[/]", detail)
    print_table(console, table)
    if not all(ok for _, ok, _ in checks):
        raise typer.Exit(1)


from dgm.cli import browse as cli_browse  # noqa: E402 - ls, show, diff, lineage, plot, export, replay, serve, import-dgm

cli_browse.register(app)
from dgm.bench.swebench import cli as swebench_cli  # noqa: E402 - bench validate, SWE-bench options

swebench_cli.register(app, bench_app)


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken like Ctrl-C: what is in flight is closed and recorded
    on the way out instead of being left 'running' by a silent death."""


_terminated = threading.Event()


def _raise_terminated(signum, frame):
    _terminated.set()
    raise Terminated


def main() -> None:
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)  # `dgm run` puts its own graceful stop on top
    try:  # newer Typer carries its own copy of Click; older ones use Click itself
        from typer._click import exceptions as click_errors
    except ImportError:
        from click import exceptions as click_errors

    try:
        # Not standalone: Click's usage errors come here, to be said in one line like every other error.
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        if exc.format_message().strip():  # Typer's Rich help prints itself while the error is made
            print(exc.format_message(), file=sys.stderr)
        sys.exit(2)
    except click_errors.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path if exc.ctx else 'dgm'} --help`)"
        err_console.print(Text.assemble(("error:", "red"), " ", exc.format_message() + hint),
                          highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:  # Click's name for a KeyboardInterrupt it caught
        _exit_interrupted()
    except click_errors.ClickException as exc:
        err_console.print(Text.assemble(("error:", "red"), " ", exc.format_message()), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except DgmError as exc:
        # The message is data (ids, paths, config keys): never parse it as markup.
        err_console.print(Text.assemble(("error:", "red"), " ", str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _exit_interrupted()
    if code == 130:  # Typer's own code for a KeyboardInterrupt (Ctrl-C, or SIGTERM above)
        _exit_interrupted()
    if isinstance(code, int) and code:  # `typer.Exit(n)`, handed back when not standalone
        sys.exit(code)


def _exit_interrupted() -> None:
    terminated = _terminated.is_set()
    err_console.print("terminated" if terminated else "interrupted")
    sys.exit(143 if terminated else 130)


if __name__ == "__main__":
    main()
