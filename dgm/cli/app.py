"""The `dgm` command line. Every user-facing command lives here; the work is elsewhere.

Errors meant for the user (`DgmError`) are one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TYPE_CHECKING

import typer
from rich.markup import escape
from rich.text import Text
from rich.table import Table

from dgm.cli.tables import add_whole_column, make_console, model_label, print_table, usd_text
from dgm.errors import ArchiveUnavailable, DgmError, NotFound, OutputNotWritten, UsageError

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

from dgm.cli.options import DEFAULT_ARCHIVE_DIR, ArchiveDirOpt, ArchiveOpt, ExecutorOpt, RayAddressOpt, check_output_file, open_reads, open_store  # noqa: E402,F401 - shared by browse.py


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
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task ids, or one named subset "
                                                             "(e.g. dgm-small; default: all)."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model the agent talks to (litellm name, or scripted:gold / scripted:noop / "
                                    "scripted:rehearsal / scripted:PATH); default: --models' task model, else "
                                    "$DGM_MODEL, else scripted:gold."),
    api_base: Optional[str] = typer.Option(None, "--api-base",
                                           help="Endpoint of the model, e.g. http://127.0.0.1:8080/v1 (default: "
                                                "the provider's)."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the model's key (never the key "
                                    "itself; default: the provider's own variable)."),
    models_file: Optional[Path] = typer.Option(
        None, "--models", help="Take the model and its settings (endpoint, key variable, pricing, limits, params) "
                               "from this file's \\[campaign.models.task] table; a campaign.toml does. Options "
                               "given win over it."),
    allow_unpriced: bool = typer.Option(
        False, "--allow-unpriced", help="With --budget-usd: run even if the model has no known price (the cap "
                                        "then covers priced calls only)."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Tasks run in parallel."),
    time_limit: float = typer.Option(900.0, "--time-limit", min=1, help="Wall-clock seconds per agent run."),
    repeats: int = typer.Option(1, "--repeats", "-k", min=1, max=100,
                                help="Runs of the agent on each task (a real model is stochastic): the summary "
                                     "gives each task's resolve rate, the score as the mean of all runs, and its "
                                     "spread between repeats."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write one object per task run to this file."),
    budget_usd: Optional[float] = typer.Option(
        None, "--budget-usd",  # no `min`: the help would say x>=0.0, and 0 is refused below
        help="Hard cap on this evaluation's LLM spend, USD, more than 0; runs it cuts short are recorded as errors."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="SWE-bench: dataset file or hub name; "
                                                                 "polyglot: a polyglot-benchmark checkout (required)."),
    images: str = typer.Option("auto", "--images", help="SWE-bench image provider: auto, pull, build, offline."),
    repo_mirror: Optional[Path] = typer.Option(None, "--repo-mirror", help="SWE-bench --images offline: local clones."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Run one agent on benchmark tasks in sandboxes, grade each diff, record every run."""
    from dgm.runs.eval import EvalHooks, run_eval

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
    from dgm.bench.swebench.cli import benchmark_options
    from dgm.config import task_role_of_options

    role = task_role_of_options(models_file, model=model, api_base=api_base, api_key_env=api_key_env,
                                default_model=os.environ.get("DGM_MODEL", "scripted:gold"))
    model = role.name

    # Once each, in the order given: a task named twice is one task.
    task_ids = None if tasks is None else list(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))

    def on_image(task, error):
        console.print(Text(f"  image {task.instance_id}: {'unavailable' if error else 'ready'}"), highlight=False)

    def on_start(run):
        sha = run.agent.commit_sha
        console.print(f"evaluating agent [bold]{run.agent.id}[/] ({escape(run.label)}, commit {sha[:10]}) on "
                      f"{len(run.tasks)} {escape(benchmark)} task(s)"
                      + (f" × {repeats} repeats" if repeats > 1 else "")
                      + f" with model [bold]{escape(model_label(model))}[/], "
                      f"{workers} worker(s); campaign {run.campaign.id}")

    def on_stopped(run, reason):
        unpriced = run.store.unpriced_calls("task_run_id", campaign_id=run.campaign.id)
        if reason == "budget_exhausted":
            _print_runs(run.runs, model, unpriced)
            _write_eval_json_of_a_stop(json_out, run.runs, unpriced)
            _print_repeats(run.runs, repeats)
            return
        err_console.print(Text(f"{len(run.runs)} of {len(run.tasks)} task(s) recorded in campaign {run.campaign.id}"))
        if _write_eval_json_of_a_stop(json_out, run.runs, unpriced):
            err_console.print(Text(f"wrote those to {json_out}"))

    hooks = EvalHooks(
        on_inputs_checked=lambda: json_out is not None and check_output_file(json_out, "--json"),  # before the runs
        on_preparing_images=lambda n: console.print(
            f"preparing images for {n} task(s) (present ones are used as they are; building one takes minutes)"),
        on_image=on_image,
        on_no_image=lambda task_id, reason: err_console.print(Text(f"no image for {task_id}: {reason}"),
                                                              highlight=False, soft_wrap=True),
        on_start=on_start, track=_eval_progress, on_stopped=on_stopped)
    run = run_eval(lambda create: open_store(archive, archive_dir, create=create), agent=agent, agent_dir=agent_dir,
                   benchmark=benchmark, benchmark_options=benchmark_options(dataset, images, repo_mirror),
                   task_ids=task_ids, model=model, workers=workers, time_limit_s=time_limit, budget_usd=budget_usd,
                   hooks=hooks, role=role, allow_unpriced=allow_unpriced, repeats=repeats)
    unpriced = run.store.unpriced_calls("task_run_id", campaign_id=run.campaign.id)
    _print_runs(run.runs, model, unpriced)
    _print_repeats(run.runs, repeats)
    _print_language_breakdown(run.tasks, run.runs)
    if json_out is not None:
        try:
            _write_eval_json(json_out, run.runs, unpriced)
        except OSError as exc:
            raise OutputNotWritten(f"cannot write {json_out}: {exc.strerror or exc}; the runs are kept in "
                                   f"campaign {run.campaign.id} (see `dgm ls {run.campaign.id}`)") from None
    from dgm.stats.intervals import rate_label

    console.print(f"resolved {run.resolved}/{len(run.runs)}: {rate_label(run.resolved, len(run.runs))} "
                  "(95 % Wilson interval)")


def _print_language_breakdown(tasks, runs) -> None:
    """Resolved per language, for benchmarks whose tasks have one (Polyglot)."""
    language = {t.instance_id: t.extra.get("language") for t in tasks}
    if not any(language.values()):
        return
    tally: dict[str, list[int]] = {}
    for r in runs:
        counts = tally.setdefault(language.get(r.task_id) or "-", [0, 0])
        counts[0] += r.status == "resolved"
        counts[1] += 1
    table = Table(title="resolved per language")
    table.add_column("language")
    table.add_column("resolved", justify="right")
    table.add_column("%", justify="right")
    for name, (won, total) in sorted(tally.items()):
        table.add_row(name, f"{won}/{total}", f"{100 * won / total:.0f}")
    print_table(console, table)


def _write_eval_json_of_a_stop(path: Path | None, runs, unpriced: dict[str, int] | None = None) -> bool:
    """--json of an evaluation that stopped early: what finished is the user's
    too. Whether it was written (the stop is the news; the runs are in the archive)."""
    if path is None:
        return False
    try:
        _write_eval_json(path, runs, unpriced)
    except OSError:
        return False
    return True


def _write_eval_json(path: Path, runs, unpriced: dict[str, int] | None = None) -> None:
    """`dgm eval --json`: one object per task run, in task order. `unpriced_calls`: its calls
    that had no known price (its cost_usd leaves them out)."""
    unpriced = unpriced or {}
    path.write_text(json.dumps([
        {"instance_id": r.task_id, "repeat": r.repeat, "status": r.status, "patch": r.patch or "",
         "duration_s": r.duration_s, "cost_usd": r.cost_usd, "unpriced_calls": unpriced.get(r.id, 0),
         "task_run_id": r.id,
         "error": r.error, "tests_status": r.tests_status, "model": r.model, "agent_id": r.agent_id,
         "campaign_id": r.campaign_id}
        for r in runs], indent=2))


@contextmanager
def _eval_progress(total: int):
    """The evaluation's progress bar; yields what to call as each run finishes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    counts: dict[str, int] = {}
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}"), TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        bar = progress.add_task("tasks", total=total, tally="")

        def done(task, run):
            counts[run.status] = counts.get(run.status, 0) + 1
            progress.update(bar, advance=1, tally=" ".join(f"{k}={v}" for k, v in sorted(counts.items())))

        try:
            yield done
        except KeyboardInterrupt:
            # Shutting the executor down waits for the runs in flight (up to their time limit): say so.
            progress.stop()
            err_console.print("interrupted: letting the runs in flight finish and be recorded "
                              "(interrupt again to quit at once)")
            raise


def _print_runs(runs, model: str, unpriced: dict[str, int] | None = None) -> None:
    """`unpriced`: task run id -> its calls that had no known price (`store.unpriced_calls`)."""
    unpriced = unpriced or {}
    def frac(d: dict) -> str:
        return f"{len(d.get('success', []))}/{len(d.get('success', [])) + len(d.get('failure', []))}" if d else "-"

    from dgm.lineage.details import grading_note

    repeated = any(getattr(r, "repeat", 0) for r in runs)
    cells = []
    for r in runs:
        ts = r.tests_status or {}
        # Why a run failed, or what the harness changed about it (bytes replaced, files kept out of grading).
        note = ((r.error or "").strip().splitlines() or [grading_note(r.tests_status) or ""])[0][:100]
        cells.append([Text(r.task_id + (f" #{r.repeat}" if repeated else "")),
                      Text(r.status, style=STATUS_STYLE.get(r.status, "")),
                      frac(ts.get("FAIL_TO_PASS", {})), frac(ts.get("PASS_TO_PASS", {})),
                      str(len((r.patch or "").splitlines())), f"{(r.duration_s or 0):.1f}",
                      usd_text(r.cost_usd, unpriced.get(r.id, 0)),
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


def _print_repeats(runs, repeats: int) -> None:
    """With repeats: each task's resolve rate, and how much the score moves between repeats."""
    if repeats < 2:
        return
    from dgm.repeats import summarize_repeats

    summary = summarize_repeats(runs)
    if summary.score is None:
        return
    cells = [[Text(task), f"{resolved}/{n}", f"{resolved / n:.2f}"]
             for task, (resolved, n) in summary.task_rates.items()]
    table = Table(title=Text(f"resolve rate per task ({repeats} repeats)"))
    for i, col in enumerate(("task", "resolved", "rate")):
        add_whole_column(table, col, [c[i] for c in cells], justify="right" if i else "left")
    for c in cells:
        table.add_row(*c)
    print_table(console, table)
    per_repeat = " ".join(f"{s:.3f}" for s in summary.repeat_scores)
    spread = ("-" if summary.spread is None else
              f"{summary.spread:.3f} (standard error of the score {summary.standard_error:.3f})")
    unstable = summary.unstable_tasks
    console.print(Text(f"score {summary.score:.3f}: the mean of {summary.runs} runs; per repeat {per_repeat}; "
                       f"spread between repeats (sd) {spread}; {len(unstable)} of {len(summary.task_rates)} "
                       "task(s) resolved in some runs and not others"), soft_wrap=True)


# --------------------------------------------------------------------------- run / resume / status
@app.command("run")
def run_cmd(
    config_path: Optional[Path] = typer.Option(None, "--config", "-c", help="campaign.toml (see campaign.example.toml)."),
    name: Optional[str] = typer.Option(None, "--name", help="Campaign name (default: generated)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Benchmark (default dgm-mini)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model of the agents (default $DGM_MODEL or scripted:rehearsal)."),
    proposer_model: Optional[str] = typer.Option(None, "--proposer-model", help="Model that diagnoses failures (default: --model)."),
    api_base: Optional[str] = typer.Option(
        None, "--api-base", help="Endpoint of the task model (and of the roles that take the task role's settings), "
                                 "e.g. http://127.0.0.1:8080/v1; as \\[campaign.models.task] api_base."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the task model's key (never the key "
                                    "itself); as \\[campaign.models.task] api_key_env."),
    proposer_api_base: Optional[str] = typer.Option(None, "--proposer-api-base",
                                                    help="Endpoint of the proposer model (\\[campaign.models.proposer])."),
    proposer_api_key_env: Optional[str] = typer.Option(
        None, "--proposer-api-key-env", help="NAME of the variable holding the proposer model's key."),
    allow_unpriced: bool = typer.Option(
        False, "--allow-unpriced", help="With a budget: start even if a role's model has no known price (the "
                                        "budget then covers priced calls only)."),
    generations: Optional[int] = typer.Option(
        None, "--generations", "-g", help="Generations to run (default 5); with --schedule async, the total number "
                                          "of children."),
    schedule: Optional[str] = typer.Option(
        None, "--schedule", help="generations (default; DGM's: each generation's children start together, the next "
                                 "waits for them all) or async (a child starts as soon as a sandbox slot is free, "
                                 "its parent chosen from the archive as it stands; --generations counts children)."),
    children: Optional[int] = typer.Option(None, "--children-per-generation", help="Children per generation (default 2)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Task runs in parallel (default 2)."),
    selection: Optional[str] = typer.Option(None, "--selection", help="Parent selector (default score_child_prop)."),
    executor: Optional[str] = ExecutorOpt,
    ray_address: Optional[str] = RayAddressOpt,
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Hard cap on LLM spend, USD (default: none)."),
    max_hours: Optional[float] = typer.Option(None, "--max-hours", help="Stop after this much wall time (default: none)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every random choice (default 0)."),
    stages: Optional[str] = typer.Option(None, "--stages", help="Comma-separated stage subsets, e.g. dgm-small,dgm-medium."),
    heldout: Optional[str] = typer.Option(None, "--heldout", help="Held-out tasks: a count, a subset name or comma-separated task ids."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="SWE-bench: dataset file or hub name; "
                                                                 "polyglot: a polyglot-benchmark checkout."),
    images: Optional[str] = typer.Option(None, "--images", help="SWE-bench image provider: auto, pull, build, offline."),
    repo_mirror: Optional[Path] = typer.Option(None, "--repo-mirror", help="SWE-bench --images offline: local clones."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only estimate the campaign's runs, LLM calls, tokens and "
                                                          "cost (as `dgm estimate`); start nothing, write nothing."),
):
    """Start an evolution campaign: select, diagnose, self-modify, evaluate, admit; resumable."""
    from dgm.config import load_config

    overrides = {"name": name, "benchmark": benchmark, "model": model, "proposer_model": proposer_model,
                 "generations": generations, "schedule": schedule, "children_per_generation": children,
                 "workers": workers,
                 "selection": selection, "budget_usd": budget_usd, "max_hours": max_hours, "seed": seed,
                 "allow_unpriced": allow_unpriced or None, "executor": _executor_options(executor, ray_address)}
    role_options = {role: {k: v for k, v in fields.items() if v is not None} for role, fields in (
        ("task", {"api_base": api_base, "api_key_env": api_key_env}),
        ("proposer", {"api_base": proposer_api_base, "api_key_env": proposer_api_key_env}))}
    overrides["models"] = {role: fields for role, fields in role_options.items() if fields} or None
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
    if dry_run:
        from dgm.cli.estimate import estimate_and_print

        return estimate_and_print(config, lambda: open_reads(archive, archive_dir),
                                  str(config_path) if config_path else "the options given")
    from dgm.runs.campaign import start_campaign

    _show_campaign(start_campaign(config, lambda: open_store(archive, archive_dir), _campaign_hooks()))


@app.command("resume")
def resume_cmd(
    campaign_id: str = typer.Argument(..., help="Campaign id or name."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Raise (or set) the spending cap."),
    generations: Optional[int] = typer.Option(
        None, "--generations", "-g", help="Run to this many generations (a campaign with schedule async: this many "
                                          "children in all)."),
    max_hours: Optional[float] = typer.Option(
        None, "--max-hours", help="Stop after this much more wall time (this resume only; later ones keep the "
                                  "campaign's own limit, if it has one)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Task runs in parallel from now on."),
    executor: Optional[str] = ExecutorOpt,
    ray_address: Optional[str] = RayAddressOpt,
    allow_unpriced: bool = typer.Option(
        False, "--allow-unpriced", help="With a budget: go on even if a role's model has no known price (the "
                                        "budget then covers priced calls only); kept for later resumes."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Continue a campaign after Ctrl-C, kill -9, a crash, a budget stop or a Docker/model outage; nothing done is redone."""
    from dgm.runs.campaign import resume_campaign

    store = open_store(archive, archive_dir, create=False)
    _show_campaign(resume_campaign(store, campaign_id, budget_usd=budget_usd, generations=generations,
                                   max_hours=max_hours, workers=workers, hooks=_campaign_hooks(),
                                   allow_unpriced=allow_unpriced, executor=_executor_options(executor, ray_address)))


def _executor_options(kind: str | None, address: str | None) -> dict | None:
    """--executor / --ray-address as a [campaign.executor] table laid over the config's."""
    options = {k: v for k, v in {"kind": kind, "address": address}.items() if v is not None}
    return options or None


@app.command("status")
def status_cmd(
    campaign_id: Optional[str] = typer.Argument(None, help="Campaign id or name (default: the latest evolution campaign)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Show a campaign's progress, including one running in another process.

    Scores carry their 95 % Wilson interval and n: `0.73 [0.55–0.86] n=22`."""
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


def _campaign_hooks():
    """How `dgm run`/`dgm resume` show a campaign: a live dashboard on a
    terminal, else one line per event; messages on the signals."""
    from dgm.runs.campaign import CampaignHooks

    live_enabled = console.is_terminal

    def on_start(runner) -> None:
        config, campaign = runner.config, runner.campaign
        if config.model.startswith("scripted:"):
            console.print(f"[yellow]scripted rehearsal[/]: the model {escape(config.model)} is an offline stand-in; "
                          "scores measure the machinery, not a model")
        shape = (f"{config.generations} child(ren), schedule async, {config.workers} slot(s)"
                 if config.schedule == "async" else
                 f"{config.generations} generation(s) x {config.children_per_generation} child(ren)")
        console.print(f"campaign [bold]{escape(campaign.name)}[/] ({campaign.id}): {shape} on {escape(config.benchmark)}, "
                      f"stages {escape(', '.join(f'{s.name}:{len(s.task_ids)}' for s in runner.plan.stages))}, "
                      f"held-out {len(runner.plan.heldout)}")

    def on_quit_at_once(campaign_id: str, signame: str):
        console.show_cursor(True)
        err_console.print(f"quit at once (second {signame}); `dgm resume {campaign_id}` redoes what was in flight")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)

    return CampaignHooks(
        on_orphans_removed=lambda n: console.print(f"removed {n} sandbox(es) left by a crashed run"),
        on_start=on_start,
        on_event=None if live_enabled else (
            lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)),
        watch=_watch_live if live_enabled else None,
        on_stop_requested=lambda signame: console.print(
            "stopping: finishing in-flight work (send the signal again to quit at once; "
            "`dgm resume` picks up either way)"),
        on_quit_at_once=on_quit_at_once)


def _watch_live(runner, run) -> str:
    """Run the campaign on a thread while the main one redraws the dashboard
    (and takes the signals); its status, or its exception raised here."""
    from rich.live import Live

    from dgm.cli.dashboard import live_view

    with Live(live_view(runner), console=console, refresh_per_second=2) as live:
        result = {}

        def drive() -> None:
            try:
                result["status"] = run()
            except BaseException as exc:  # noqa: BLE001 - raised again below, in the main thread
                result["error"] = exc

        worker = threading.Thread(target=drive, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            live.update(live_view(runner))
        if "error" in result:
            raise result["error"]
        return result["status"]


def _show_campaign(result) -> None:
    """The lineage and figures of a campaign that stopped; then the failure that stopped it, if any."""
    try:
        _print_campaign_summary(result.store, result.store.get_campaign(result.campaign.id), result.status)
    except ArchiveUnavailable:
        if result.broken is None:
            raise
    result.raise_if_broken()


def _print_campaign_summary(store: ArchiveStore, campaign, status: str) -> None:
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
    unpriced = store.unpriced_calls("campaign_id", campaign_id=campaign.id).get(campaign.id, 0)
    admitted = sum(a.status == "admitted" for a in agents)
    twins = sum(a.status == "twin" for a in agents)
    task_runs = sum(store.task_run_counts(campaign.id).values())
    console.print(f"status {status}; {len(agents)} agents ({admitted} admitted"
                  + (f"; {twins} twin{'s' if twins != 1 else ''} of earlier agents, not evaluated" if twins else "")
                  + f"); {task_runs} task runs; "
                  f"spent {usd_text(spent, unpriced, dollar=True)}"
                  + (f" of ${campaign.budget_usd:.2f}" if campaign.budget_usd is not None else "")
                  + (f" ({unpriced} call(s) to an unpriced model, not in any dollar figure)" if unpriced else ""))
    best = lin.best()
    if best is not None:
        row = lin.rows[best]
        gap = ""
        if row.heldout_score is not None:
            gap = (f", held-out {lin.score_label(best, 'heldout')} "
                   f"(generalisation gap {(row.score or 0) - row.heldout_score:+.3f})")
        console.print(f"best agent {row.id}: selection score {lin.score_label(best)}{gap}", soft_wrap=True)


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
def sandbox_build(force: bool = typer.Option(False, "--force", help="Rebuild even if the image exists."),
                  benchmark: Optional[str] = typer.Option(
                      None, "--benchmark", "-b",
                      help="Build that benchmark's image instead: polyglot (six toolchains from the host's apt "
                           "mirror and npm registry, built on the base image; ~10 minutes).")):
    """Build the sandbox base image offline (debootstrap from the host's apt mirror + docker import)."""
    import subprocess

    from dgm.sandbox.docker import docker_client
    from dgm.sandbox.images import base_image_tag, build_script

    docker_client()
    if benchmark is not None:
        from dgm.bench.registry import known_name

        if known_name(benchmark) != "polyglot":
            raise UsageError(f"--benchmark {benchmark}: only polyglot has an image of its own to build here")
        from dgm.bench.polyglot.benchmark import build_script as polyglot_script, image_tag

        cmd = ["bash", str(polyglot_script())] + (["--force"] if force else []) + [image_tag(), base_image_tag()]
        if subprocess.call(cmd) != 0:
            raise DgmError("building the polyglot image failed (see the lines above)")
        return
    cmd = ["bash", str(build_script())] + (["--force"] if force else []) + [base_image_tag()]
    if subprocess.call(cmd) != 0:
        raise DgmError("building the base image failed (see the lines above)")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f}"


KindOpt = typer.Option(None, "--kind", help="Only images of this kind (their dgm.image label: base, swebench, ...).")


GraceOpt = typer.Option(60.0, "--grace-minutes", min=0,
                        help="Untagged images younger than this are kept: a build in progress has such images.")


def _image_verdicts(archive, archive_dir, kind, *, need_archive: bool, grace_minutes: float = 60.0):
    from dgm.runs.images import image_verdicts
    from dgm.sandbox.docker import docker_client

    store = None
    if need_archive or archive is not None or archive_dir is not None or (DEFAULT_ARCHIVE_DIR / "dgm.db").exists():
        store = open_store(archive, archive_dir, create=False)
    try:
        client = docker_client()
        verdicts, needs = image_verdicts(client, store, kind=kind, untagged_grace_minutes=grace_minutes)
    finally:
        if store is not None:
            store.close()
    for warning in needs.warnings:
        err_console.print(f"warning: {escape(warning)}", soft_wrap=True)
    return client, verdicts, store is not None


@sandbox_app.command("ls")
def sandbox_ls(
    kind: Optional[str] = KindOpt,
    grace_minutes: float = GraceOpt,
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """dgm's images (by label or dgm- tag) with their sizes; with an archive, whether its campaigns need each."""
    _client, verdicts, judged = _image_verdicts(archive, archive_dir, kind, need_archive=False,
                                                grace_minutes=grace_minutes)
    table = Table(title="dgm images")
    add_whole_column(table, "image", [v.image.name for v in verdicts])
    table.add_column("kind")
    table.add_column("task")
    table.add_column("MB", justify="right")
    table.add_column("own MB", justify="right")
    table.add_column("created")
    if judged:
        table.add_column("needed")
    for v in verdicts:
        image = v.image
        cells = [Text(image.name), Text(image.kind), Text(image.instance or "-"), _mb(image.size),
                 _mb(image.own_size), image.created.strftime("%Y-%m-%d %H:%M")]
        if judged:
            cells.append(Text("yes" if v.needed else f"no: {v.reason}", style="" if v.needed else "yellow"))
        table.add_row(*cells)
    print_table(console, table)
    total = sum(v.image.own_size for v in verdicts)
    console.print(f"{len(verdicts)} image(s); {_mb(total)} MB not shared with other images"
                  + ("" if judged else " (give --archive to see which ones its campaigns need)"))


@sandbox_app.command("prune")
def sandbox_prune(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    kind: Optional[str] = KindOpt,
    grace_minutes: float = GraceOpt,
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Remove dgm's images no campaign of the archive needs: untagged build leftovers, outdated
    versions, and images of tasks that no campaign plans or ran. Asks nothing; never forced."""
    from dgm.runs.images import prune

    client, verdicts, _ = _image_verdicts(archive, archive_dir, kind, need_archive=True, grace_minutes=grace_minutes)
    unneeded = [v for v in verdicts if not v.needed]
    for v in unneeded:
        verb = "would remove" if dry_run else "removing"
        console.print(f"{verb} {escape(v.image.name)} ({_mb(v.image.own_size)} MB own): {v.reason}", soft_wrap=True)
    if dry_run:
        console.print(f"{len(unneeded)} of {len(verdicts)} image(s) would be removed, "
                      f"up to {_mb(sum(v.image.own_size for v in unneeded))} MB (their own layers); nothing removed")
        return
    result = prune(client, verdicts)
    for v, why in result.kept_in_use:
        err_console.print(f"kept {escape(v.image.name)}: {escape(why)}", soft_wrap=True)
    console.print(f"removed {len(result.removed)} image(s), freed {_mb(result.freed_bytes)} MB "
                  f"({result.freed_bytes} bytes, their own layers); kept {len(verdicts) - len(result.removed)}. "
                  f"Image layers on the engine: {_mb(result.layers_before)} -> {_mb(result.layers_after)} MB")


# --------------------------------------------------------------------------- doctor
@app.command("doctor")
def doctor(
    model: str = typer.Option(os.environ.get("DGM_MODEL", "scripted:gold"), "--model", "-m",
                              help="Model to check: that litellm can route it and its provider key is set."),
    config_path: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Check every role's model of this campaign.toml instead of --model: provider, "
                                     "key variable, endpoint answering, price under a budget."),
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
        from dgm.llm.model_names import is_scripted
        from dgm.runs.checks import check_model

        check_model(model)  # as a run checks it, the provider key included
        if is_scripted(model):
            return f"{model}: scripted (offline stand-in, no API key needed)"
        return f"{model}: its provider key is set on the host (sandboxes never see it)"

    if config_path is None:
        check("model", model_ok)
    else:
        from dgm.config import load_config
        from dgm.llm.client import has_price
        from dgm.runs.checks import check_role

        config = load_config(config_path, {})

        def role_ok(names, role):
            def run():
                check_role(role, names, budget_usd=config.budget_usd, allow_unpriced=config.allow_unpriced)
                where = f" at {role.api_base}" if role.api_base else ""
                return f"{role.name}{where}: ok" + ("" if has_price(role) else " (unpriced)")
            return run

        for names, role in config.roles.distinct():
            check(f"model ({names})", role_ok(names, role))
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
from dgm.cli import simulate as cli_simulate  # noqa: E402 - simulate

cli_simulate.register(app)
from dgm.cli import compare as cli_compare  # noqa: E402 - compare: two agents, paired on shared tasks

cli_compare.register(app)
from dgm.cli import estimate as cli_estimate  # noqa: E402 - estimate (dgm run's options, --dry-run set)

cli_estimate.register(app, run_cmd)
from dgm.bench.swebench import cli as swebench_cli  # noqa: E402 - bench validate, SWE-bench options

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

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
        # Python keeps SIGINT ignored when its parent ignored it, as a shell without
        # job control does for `dgm eval ... &` (a script, CI, nohup): Ctrl-C and
        # `kill -INT` were then lost and the evaluation ran to its end. Taken back here.
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
