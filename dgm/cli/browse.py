"""Browse, compare and replay archived agents: ls, show, show-run, diff,
lineage, plot, export, replay, serve, import-dgm.

Registered onto the main Typer app by `register(app)` (kept apart from app.py
so several people can add commands without editing the same file). Same
conventions as app.py: user errors are `UsageError`/`NotFound` (one line, exit
2 via `dgm.cli.app.main`), `--archive`/`--archive-dir` select the archive.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dgm.cli.tables import add_whole_column, make_console, money, print_table, table_of, usd_text
from dgm.errors import NotFound, UsageError

console = make_console()
err_console = make_console(stderr=True)

from dgm.cli.options import ArchiveDirOpt, ArchiveOpt, check_output_file, open_reads, open_store  # noqa: E402

STATUS_STYLE = {"resolved": "green", "unresolved": "yellow", "empty_patch": "dim", "error": "red",
                "timeout": "magenta", "running": "cyan", "admitted": "green", "rejected": "dim", "seed": "bold",
                "twin": "magenta"}


# How much of a proposal or diagnosis target `dgm show` prints.
SHOWN_TEXT_CHARS = 6000


def _store(archive: Optional[str], archive_dir: Optional[Path]):
    return open_store(archive, archive_dir, create=False)  # browsing never makes an archive


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _fmt_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def _score_text(score: float | None, counts: tuple[int, int] | None = None) -> Text:
    """A score with its 95 % Wilson interval and n (dgm.stats.intervals), coloured by score."""
    from dgm.lineage.forest import score_hex
    from dgm.stats.intervals import score_label

    resolved, n = counts or (0, 0)
    return Text(score_label(score, resolved, n), style=score_hex(score))


def _score_json(score: float | None, counts: tuple[int, int] | None) -> dict:
    """A score's interval as JSON fields: n, resolved, low, high."""
    from dgm.stats.intervals import interval_fields

    resolved, n = counts or (0, 0)
    return interval_fields(resolved, n) if score is not None else interval_fields(None, 0)


def _rate_label(resolved: int, n: int) -> str:
    from dgm.stats.intervals import rate_label

    return rate_label(resolved, n)


def _counts(fields: dict) -> tuple[int, int]:
    return fields.get("resolved") or 0, fields.get("n") or 0


def _campaign_model(campaign) -> str | None:
    """The model a campaign's agents ran with (None for an import: the run's own is not recorded)."""
    model = (campaign.config or {}).get("model")
    return model if isinstance(model, str) else None


def _model_text(model: str | None) -> str:
    """A model as results show it: a scripted stand-in is labelled so (plain text, never markup)."""
    from dgm.cli.tables import model_label

    return model_label(model) if model else "-"


def _echo_json(obj) -> None:
    # Plain stdout, not Rich: JSON must not be wrapped or highlighted.
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")


def _print_diff(diff: str, title: str, *, patch_stream: bool = True) -> None:
    """A diff, highlighted on a terminal. Piped: the raw diff when the output
    is meant for `git apply` (`patch_stream`), else with control characters
    escaped, so `| less -R` or a log file cannot be driven by what an agent wrote."""
    if not diff.strip():
        console.print(Text(f"{title}: no changes", style="dim"))
        return
    if console.is_terminal:
        from rich.syntax import Syntax  # Pygments: only for a diff shown on a terminal

        console.print(Panel(Syntax(diff, "diff", theme="ansi_dark", word_wrap=False), title=Text(title), expand=False))
    else:
        # Piped: the raw diff, so `dgm diff A B | git apply` works.
        _write_plain(diff, raw=patch_stream)


def _write_plain(text: str, *, raw: bool) -> None:
    from dgm.safe_text import terminal_safe

    text = text if raw else terminal_safe(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def ls_cmd(
    campaign: Optional[str] = typer.Argument(None, help="A campaign id or name: list its agents."),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of a table."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Show at most N agents (best first with --sort score)."),
    sort: str = typer.Option("generation", "--sort", help="Agent order: generation or score."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """List campaigns, or one campaign's agents (id, parent, generation, status, score per stage, cost).

    Every score is shown as `0.73 [0.55–0.86] n=22`: the score, its 95 % Wilson
    interval and the number of task runs behind it."""
    if sort not in ("generation", "score"):
        raise UsageError(f"--sort must be generation or score, not {sort!r}")
    if campaign is None and (sort != "generation" or limit is not None):
        raise UsageError("--sort and --limit order and cut a campaign's agents: give a campaign")
    store = open_reads(archive, archive_dir)  # browsing never makes an archive
    if campaign is None:
        from dgm.liveness import shown_status

        overview = store.campaign_overview()
        best_ids = store.best_agents()
        best_counts = store.score_counts(agent_ids=list(best_ids.values())) if best_ids else {}
        unpriced = store.unpriced_calls("campaign_id")
        rows = []
        for c in store.list_campaigns():
            o = overview.get(c.id, {})
            counts = best_counts.get(best_ids.get(c.id), {}).get("score")
            rows.append({"id": c.id, "name": c.name, "kind": c.kind, "status": shown_status(c),
                         "model": _campaign_model(c),
                         "agents": o.get("agents", 0), "admitted": o.get("admitted", 0),
                         "best_score": o.get("best_score"), "best_agent": best_ids.get(c.id),
                         "best_interval": _score_json(o.get("best_score"), counts), "spent_usd": c.spent_usd,
                         "unpriced_calls": unpriced.get(c.id, 0), "budget_usd": c.budget_usd, "created_at": c.created_at.isoformat()})
        if json_out:
            return _echo_json(rows)
        if not rows:
            console.print(f"no campaigns in {escape(str(store.url))}")
            return
        cells = [[r["id"], Text(r["name"]), r["kind"], r["status"], Text(_model_text(r["model"])), str(r["agents"]),
                  str(r["admitted"]), _score_text(r["best_score"], _counts(r["best_interval"])),
                  usd_text(r["spent_usd"], r["unpriced_calls"]),
                  r["created_at"][:16].replace("T", " ")]
                 for r in rows]
        print_table(console, table_of(
            Text(f"campaigns ({store.url})"),
            ("id", "name", "kind", "status", "model", "agents", "admitted", "best", "spent $", "created"), cells,
            free=("name", "kind", "model"), right=("agents", "admitted", "best", "spent $")))
        return
    c = store.get_campaign(campaign)
    agents = store.lineage_rows(c.id)  # with the archived agents an eval or replay ran
    if sort == "score":
        from dgm.ranking import best_key

        agents = sorted(agents, key=lambda a: (a.score is None, best_key(a.score, a.heldout_score, a.generation, a.id)))
    if limit is not None:
        agents = agents[:limit]
    ids = [a.id for a in agents]
    # This campaign's figures only (an agent's later evals and replays are other campaigns'), with or without --limit.
    only = None if limit is None else ids
    stages = store.stage_results(campaign_id=c.id, agent_ids=only)
    costs = store.agent_costs(campaign_id=c.id, agent_ids=only)
    unpriced = store.unpriced_calls("agent_id", campaign_id=c.id)
    # Stages in the campaign's own order; the held-out runs last, beside the held-out score.
    planned = [st.get("name") for st in (c.config or {}).get("stages", []) if isinstance(st, dict)]
    found = {s for per in stages.values() for s in per}
    stage_names = [s for s in planned if s in found] + sorted(found - set(planned) - {"heldout"}) \
        + (["heldout"] if "heldout" in found else [])
    rejections = store.rejections(c.id)  # one query; rejected agents are few
    # The runs behind each score, in the agent's own campaign (an eval's agents earned theirs elsewhere).
    counts = store.score_counts(campaign_id=c.id, agent_ids=only)
    elsewhere = [a.id for a in agents if a.id not in counts and a.score is not None]
    if elsewhere:
        counts.update(store.score_counts(agent_ids=elsewhere))
    rows = [{"id": a.id, "parent_id": a.parent_id, "generation": a.generation, "status": a.status,
             "origin": a.origin, "score": a.score, "heldout_score": a.heldout_score,
             "score_interval": _score_json(a.score, counts.get(a.id, {}).get("score")),
             "heldout_interval": _score_json(a.heldout_score, counts.get(a.id, {}).get("heldout")),
             "stages": {s: {"resolved": r, "finished": n} for s, (r, n) in stages.get(a.id, {}).items()},
             "cost_usd": costs.get(a.id, 0.0), "unpriced_calls": unpriced.get(a.id, 0),
             "rejection_reason": rejections.get(a.id, (None, True))[0]}
            for a in agents]
    if json_out:
        return _echo_json({"campaign": {"id": c.id, "name": c.name, "kind": c.kind, "status": c.status},
                           "agents": rows})
    cells = []
    for r in rows:
        per = [f"{r['stages'][s]['resolved']}/{r['stages'][s]['finished']}" if s in r["stages"] else "-"
               for s in stage_names]
        st = r["status"]
        cells.append([r["id"], r["parent_id"] or "-", str(r["generation"]), Text(st, style=STATUS_STYLE.get(st, "")),
                      _score_text(r["score"], _counts(r["score_interval"])), *per,
                      _score_text(r["heldout_score"], _counts(r["heldout_interval"])),
                      usd_text(r["cost_usd"], r["unpriced_calls"]),
                      Text((r["rejection_reason"] or "")[:80], style="dim")])
    model = _campaign_model(c)
    table = Table(title=Text(f"campaign {c.name} ({c.id}, {c.kind}, {c.status}) — {len(rows)} agent(s)"
                             + (f", model {_model_text(model)}" if model else "")))
    headers = [("held-out runs" if s == "heldout" else s) for s in stage_names]
    columns = ["agent", "parent", "gen", "status", "score", *headers, "held-out", "cost $"]
    if any(r["rejection_reason"] for r in rows):
        columns.append("why rejected")
    else:
        cells = [row[:-1] for row in cells]
    for i, col in enumerate(columns):
        if col == "why rejected":
            table.add_column(col)  # wraps, unlike the figures
            continue
        add_whole_column(table, escape(col), [row[i] for row in cells],
                         justify="right" if col not in ("agent", "parent", "status") else "left")
    for row in cells:
        table.add_row(*row)
    print_table(console, table)


def show_cmd(
    agent: str = typer.Argument(..., help="Agent id (a unique prefix is enough), or a campaign id or name "
                                          "(its status and spend by role)."),
    no_diff: bool = typer.Option(False, "--no-diff", help="Leave out the diff against the parent."),
    json_out: bool = typer.Option(False, "--json", help="JSON (details and the diff) instead of panels."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """One agent: proposal and diagnosis, scores per stage and held-out, per-task results, cost by role, diff vs
    parent. Given a campaign instead: its status and spend by role.

    Scores carry their 95 % Wilson interval and n: `0.73 [0.55–0.86] n=22`."""
    from dgm.lineage.details import agent_details, parent_diff

    store = open_reads(archive, archive_dir)  # browsing never makes an archive
    try:
        d = agent_details(store, agent)
    except NotFound as not_an_agent:
        try:  # a campaign id or name: its status, spend by role included
            campaign = store.get_campaign(agent)
        except NotFound:
            raise not_an_agent from None
        if json_out:
            return _echo_json(_campaign_json(store, campaign))
        from dgm.cli.dashboard import status_view

        console.print(status_view(store, campaign))
        return
    a = store.get_agent(d["id"])
    diff = None
    if not no_diff and a.parent_id:
        diff = parent_diff(store, a)[1]
    if json_out:
        return _echo_json({**d, "diff_vs_parent": diff})
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("agent", f"{d['id']}  (campaign {d['campaign_id']}, generation {d['generation']}, {d['origin']})")
    head.add_row("parent", d["parent_id"] or "- (root)")
    if d["twin_of"]:
        head.add_row("twin of", Text(f"{d['twin_of']}: the same code, " + (
            f"so not evaluated again; its record is that agent's ({d['twin_of_status']}, score "
            f"{_fmt_score(d['twin_of_score'])})" if d["status"] == "twin"
            else "evaluated anyway as a second sample (evaluate_twins)")))
    if d["twins"]:
        head.add_row("twins", ", ".join(d["twins"][:12]) + (" ..." if len(d["twins"]) > 12 else "")
                     + " (later children with the same code)")
    head.add_row("status", Text(d["status"] + (f" — {d['rejection_reason']}" if d["rejection_reason"] else "")))
    head.add_row("commit", d["commit"] or Text("none: rejected before its code was committed", style="dim"))
    head.add_row("score", Text.assemble(_score_text(d["score"], _counts(d["score_interval"])), "   held-out ",
                                        _score_text(d["heldout_score"], _counts(d["heldout_interval"])),
                                        f"   stage reached {d['stage_reached']}"))
    for stage, s in d["stages"].items():
        cut = f"; {s['unfinished']} unfinished, so far only" if s["unfinished"] else ""
        head.add_row(Text(f"  stage {stage}"), f"{s['resolved']}/{s['finished']} resolved "
                                               f"({_rate_label(s['resolved'], s['finished'])}{cut})")
    cost = d["cost"]
    from dgm.cli.dashboard import ROLE_NAMES

    purposes = ", ".join(f"{ROLE_NAMES.get(p, p)} {usd_text(v['cost_usd'], v['unpriced_calls'], dollar=True)} "
                         f"({_n(v['calls'], 'call')})" for p, v in cost["by_purpose"].items())
    line = f"{usd_text(cost['campaign_usd'], cost['campaign_unpriced_calls'], dollar=True)} in " \
        f"{_n(cost['campaign_calls'], 'LLM call')} in campaign {d['campaign_id']}" + (f": {purposes}" if purposes else "")
    if cost["elsewhere_by_kind"]:
        later = ", ".join(f"{k} {usd_text(v['cost_usd'], v['unpriced_calls'], dollar=True)} ({_n(v['calls'], 'call')})"
                          for k, v in sorted(cost["elsewhere_by_kind"].items()))
        line += f"; later, in other campaigns: {later}; {usd_text(cost['total_usd'], cost['unpriced_calls'], dollar=True)} in all"
    head.add_row("cost", Text(line + (" [scripted models]" if cost["scripted"] else "")))
    if d["children"]:
        head.add_row("children", ", ".join(d["children"][:12]) + (" ..." if len(d["children"]) > 12 else ""))
    if d["meta"]:
        head.add_row("meta", Text(json.dumps(d["meta"], default=str)[:300]))
    console.print(Panel(head, title=f"agent {d['id']}", expand=False))
    for label, value in (("diagnosis target", d["diagnosis_target"]), ("proposal", d["proposal"])):
        if value:
            from rich.syntax import Syntax  # Pygments: only when there is JSON to highlight

            text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
            if len(text) > SHOWN_TEXT_CHARS:  # a model's reply can be megabytes; --json has all of it
                text = text[:SHOWN_TEXT_CHARS] + f"\n[... {len(text) - SHOWN_TEXT_CHARS} more characters: --json]"
            console.print(Panel(Syntax(text, "json", theme="ansi_dark", word_wrap=True), title=label))
    runs = [r for r in d["task_runs"]]
    if runs:
        # Why a run failed, when the harness knows (the whole text is in `--json` and the explorer).
        why = [(r["error"] or "").strip().splitlines()[0][:100] if (r["error"] or "").strip()
               else (r["grading_note"] or "")[:100] for r in runs]
        for i, r in enumerate(runs):
            if r["status"] == "unfinished":
                why[i] = why[i] or r["cut_short"]
        cells = [[r["id"][:10], r["kind"], Text(r["stage"]), Text(r["task_id"]),
                  Text(r["status"], style=STATUS_STYLE.get(r["status"], "")), r["f2p"] or "-", r["p2p"] or "-",
                  str(r["patch_lines"]), f"{r['duration_s'] or 0:.1f}", usd_text(r["cost_usd"], r["unpriced_calls"]),
                  Text(r["model"]),
                  Text(note, style="dim")]
                 for r, note in zip(runs, why)]
        columns = ["run", "kind", "stage", "task", "status", "F2P", "P2P", "patch lines", "seconds", "cost $", "model"]
        if any(why):
            columns.append("why")
        else:
            cells = [row[:-1] for row in cells]
        table = Table(title=f"task runs ({len(runs)})")
        for i, col in enumerate(columns):
            justify = "right" if col in ("patch lines", "seconds", "cost $") else "left"
            if col in ("kind", "stage", "model", "why"):
                table.add_column(col, justify=justify)
            else:
                add_whole_column(table, col, [row[i] for row in cells], justify=justify)
        for row in cells:
            table.add_row(*row)
        print_table(console, table)
    else:
        console.print("[dim]no task runs[/]")
    if no_diff:
        return
    if not d["own_code"]:
        if d["attempted_patch"]:
            title = f"attempted change to {a.parent_id}'s code (never committed)"
            if not console.is_terminal:
                console.print(title + ":")  # the raw diff follows: say what it is
            _print_diff(d["attempted_patch"], title, patch_stream=False)
        else:
            console.print("[dim]no code of its own, and no self-modification diff was recorded[/]")
    elif a.parent_id is None:
        files = store.code.tree_files(a.commit_sha)
        console.print(f"[dim]root agent: no parent to diff against; its code has {len(files)} file(s) "
                      f"(`dgm export {a.id} DIR` writes it out; `dgm diff {a.id} OTHER` compares it)[/]")
    else:
        _print_diff(diff or "", f"diff {a.parent_id} → {a.id}", patch_stream=False)
    if runs:
        console.print(Text("one run in full (trajectory, patch, logs, LLM calls): `dgm show-run RUN`", style="dim"))


def _campaign_json(store, campaign) -> dict:
    """`dgm show CAMPAIGN --json`: the campaign's figures, its spend split by role."""
    return {"id": campaign.id, "name": campaign.name, "kind": campaign.kind, "status": campaign.status,
            "budget_usd": campaign.budget_usd, "spent_usd": store.campaign_spend(campaign.id),
            "spend_by_role": store.spend_by_purpose(campaign.id), "config": campaign.config}


# How much of a run `dgm show-run` prints by default; its flags print the whole of one part.
SHOWN_STEPS = 25
SHOWN_REPLY_LINES = 8
SHOWN_PATCH_LINES = 300
SHOWN_LOG_LINES = 40


def show_run_cmd(
    run: str = typer.Argument(..., help="Task run id, or a unique prefix (`dgm show AGENT` lists them)."),
    patch: bool = typer.Option(False, "--patch", help="Only the run's whole patch (raw when piped: `| git apply`)."),
    agent_log: bool = typer.Option(False, "--agent-log",
                                   help="Only the agent's whole output (of a sanity run: its checks' output)."),
    eval_log: bool = typer.Option(False, "--eval-log", help="Only the whole test log of the run's grading."),
    trajectory: bool = typer.Option(False, "--trajectory",
                                    help="Only the trajectory the agent wrote, as JSON (as written, if it is not JSON)."),
    json_out: bool = typer.Option(False, "--json",
                                  help="Everything as JSON: the run, its patch, trajectory, logs and LLM calls."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """One task run in full: what the agent did, its patch, its own output, the test log and its LLM calls.

    By default the start of the trajectory and the patch and the end of each
    log; `--patch`, `--agent-log`, `--eval-log` or `--trajectory` print the
    whole of one (raw when piped; on a terminal control characters are shown
    as escapes).
    """
    from dgm.lineage.details import run_details, step_notes, step_reply

    only = [name for name, on in (("--patch", patch), ("--agent-log", agent_log), ("--eval-log", eval_log),
                                  ("--trajectory", trajectory), ("--json", json_out)) if on]
    if len(only) > 1:
        raise UsageError(f"give one of {', '.join(only)}, not several")
    from dgm.errors import DgmError
    from dgm.lineage.import_dgm import IMPORT_MODEL

    store = _store(archive, archive_dir)
    try:
        r = store.get_task_run(run)
    except NotFound as missing:
        try:
            agent = store.get_agent(run)
        except DgmError:
            raise missing from None
        raise NotFound(f"{run} is agent {agent.id}, not a task run: `dgm show {agent.id}` lists its runs") from None
    imported = r.model == IMPORT_MODEL and not (r.patch or "").strip()
    if patch:
        if imported:
            raise NotFound(f"task run {r.id} came from an imported DGM run, whose metadata keeps outcomes, not patches")
        if not (r.patch or "").strip():
            raise NotFound(f"task run {r.id} has an empty patch ({r.status})")
        return _print_diff(r.patch, f"patch of task run {r.id}")
    details = run_details(store, r)
    # What each part is called in messages.
    what = {"trajectory": "trajectory (the agent wrote none, or too much)", "agent_log": "output of its agent",
            "eval_log": "test log"}

    def required(part: str, artifact_id: str | None, value: str | None) -> str:
        """The whole of one part the user asked for: there, or a one-line NotFound saying why not."""
        if not artifact_id:
            raise NotFound(f"task run {r.id} kept no {what[part]}")
        if part in details.unreadable:
            raise NotFound(f"task run {r.id}: its {what[part]} cannot be read ({details.unreadable[part]})")
        return value

    if agent_log or eval_log:
        part = "agent_log" if agent_log else "eval_log"
        text = required(part, r.agent_log_artifact if agent_log else r.eval_log_artifact,
                        details.agent_log if agent_log else details.eval_log)
        return _write_plain(text, raw=not console.is_terminal)
    raw_trajectory = details.trajectory_text
    steps = details.trajectory
    if trajectory:
        required("trajectory", r.trajectory_artifact, raw_trajectory)
        if steps is None:
            return _write_plain(raw_trajectory, raw=not console.is_terminal)  # not JSON: as the agent wrote it
        return _echo_json(steps)
    summary = details.summary
    calls = details.llm_calls
    logs = {"agent_log": details.agent_log, "eval_log": details.eval_log}
    unreadable = [f"{what[part]}: {why}" for part, why in details.unreadable.items()]
    if json_out:
        return _echo_json({**summary, "agent_id": r.agent_id, "patch": r.patch, "tests_status": r.tests_status,
                           "trajectory": steps if steps is not None else raw_trajectory, **logs, "llm_calls": calls,
                           "unreadable": unreadable})

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("run", Text(f"{r.id}  ({r.kind}, stage {r.stage}, attempt {r.attempt}; campaign {r.campaign_id})"))
    head.add_row("agent", r.agent_id)
    head.add_row("task", Text(f"{r.task_id}  ({r.benchmark})"))
    head.add_row("model", Text(r.model))
    status = Text(summary["status"], style=STATUS_STYLE.get(summary["status"], ""))
    if summary.get("cut_short"):
        status.append(f" — {summary['cut_short']}", style="dim")
    head.add_row("status", status)
    if summary["f2p"] or summary["p2p"]:
        head.add_row("hidden tests", f"FAIL_TO_PASS {summary['f2p'] or '-'}, PASS_TO_PASS {summary['p2p'] or '-'}")
    if summary["grading_note"]:
        head.add_row("grading", Text(summary["grading_note"]))
    times = [f"{label} {value:.1f} s" for label, value in (("in all", r.duration_s), ("agent", r.agent_duration_s),
                                                            ("tests", r.test_duration_s)) if value is not None]
    head.add_row("time", ", ".join(times) or "-")
    head.add_row("cost", Text(f"{usd_text(r.cost_usd, summary['unpriced_calls'], dollar=True)} in {_n(len(calls), 'LLM call')}"
                              + (" [scripted models]" if any(c["scripted"] for c in calls) else "")))
    if r.error:
        head.add_row("error", Text(r.error))
    console.print(Panel(head, title=f"task run {r.id}", expand=False))

    if steps is not None:
        listed = [s for s in steps.get("steps") or [] if isinstance(s, dict)] if isinstance(steps.get("steps"),
                                                                                              list) else []
        exit_status = steps.get("exit_status")
        console.print(Text(f"trajectory: {_n(len(listed), 'step')}"
                           + (f", {exit_status}" if isinstance(exit_status, str) else ""), style="bold"))
        for step in listed[:SHOWN_STEPS]:
            rc = step.get("returncode")
            notes = step_notes(step)
            console.print(Text(f"step {step.get('step', '?')}" + (f" · rc {rc}" if rc is not None else "")
                               + "".join(f" · {note}" for note in notes), style="dim"))
            reply = step_reply(step)
            if reply is not None:
                shown = reply.splitlines()[:SHOWN_REPLY_LINES]
                more = len(reply.splitlines()) - len(shown)
                console.print(Text("\n".join("> " + line for line in shown)
                                   + (f"\n  [... {more} more lines of the reply]" if more > 0 else ""),
                                   style="green"))
            for key, style, lines in (("command", "cyan", 6), ("output", "", 8)):
                value = step.get(key)
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value)
                shown = text.splitlines()[:lines]
                more = len(text.splitlines()) - len(shown)
                console.print(Text("\n".join(("$ " if key == "command" else "  ") + line for line in shown)
                                   + (f"\n  [... {more} more lines]" if more > 0 else ""), style=style))
        if len(listed) > SHOWN_STEPS:
            console.print(Text(f"[... {len(listed) - SHOWN_STEPS} more steps: --trajectory]", style="dim"))
    elif raw_trajectory is not None:
        console.print(Text("trajectory: not readable JSON (--trajectory prints it as written)", style="dim"))
    elif r.trajectory_artifact is None:
        console.print(Text("trajectory: none kept" + (" (the sanity gate runs checks, not the agent)"
                                                      if r.kind == "sanity" else ""), style="dim"))

    patch_lines = (r.patch or "").splitlines(True)
    shown_patch = "".join(patch_lines[:SHOWN_PATCH_LINES])
    if imported:
        console.print(Text("patch: not imported (a DGM run's metadata keeps outcomes, not per-task patches)",
                           style="dim"))
    else:
        _print_diff(shown_patch, f"patch of task run {r.id}", patch_stream=False)
    if len(patch_lines) > SHOWN_PATCH_LINES:
        console.print(Text(f"[... {len(patch_lines) - SHOWN_PATCH_LINES} more patch lines: --patch]", style="dim"))
    for key, label, flag in (("agent_log", "checks' output" if r.kind == "sanity" else "agent's own output",
                              "--agent-log"), ("eval_log", "test log", "--eval-log")):
        text = logs[key]
        if text is None:
            continue
        lines = text.splitlines()
        cut = len(lines) - SHOWN_LOG_LINES
        console.print(Text(f"{label}" + (f" (last {SHOWN_LOG_LINES} of {len(lines)} lines; {flag} for all)"
                                         if cut > 0 else ""), style="bold"))
        console.print(Text("\n".join(lines[-SHOWN_LOG_LINES:])), soft_wrap=True)
    if calls:
        cells = [[str(c["seq"]), c["purpose"], Text(c["model"]), Text(c["api_base"] or "-"), c["status"],
                  str(c["prompt_tokens"] + c["completion_tokens"]), f"{c['latency_s']:.2f}",
                  usd_text(c["cost_usd"], 0 if c["priced"] else 1), c["id"]] for c in calls]
        print_table(console, table_of(
            f"LLM calls ({len(calls)})", ("#", "purpose", "model", "endpoint", "status", "tokens", "seconds", "cost $",
                                          "call"),
            cells, free=("model", "endpoint"), right=("#", "tokens", "seconds", "cost $")))
    for problem in unreadable:  # what is there is shown; what is not, said
        err_console.print(Text(f"cannot read the {problem}"), soft_wrap=True)


def diff_cmd(
    agent: str = typer.Argument(..., help="Agent id."),
    other: Optional[str] = typer.Argument(None, help="Another agent: show AGENT → OTHER (default: parent → AGENT)."),
    from_root: bool = typer.Option(False, "--from-root", help="Everything AGENT's lineage changed since its root."),
    stat: bool = typer.Option(False, "--stat", help="Files changed and line counts only."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Diff between any two agents' code (default: AGENT against its parent)."""
    from dgm.lineage.details import require_own_code

    store = _store(archive, archive_dir)
    a = store.get_agent(agent)
    if other is not None and from_root:
        raise UsageError("give either OTHER or --from-root, not both")
    require_own_code(a)
    if other is not None:
        b = store.get_agent(other)
        require_own_code(b)
        old, new, title = a.commit_sha, b.commit_sha, f"diff {a.id} → {b.id}"
    elif from_root:
        root = store.ancestors(a.id)[-1]
        if root.id == a.id:
            raise UsageError(f"agent {a.id} is a root: it has no lineage to diff (use `dgm export` for its code)")
        old, new, title = root.commit_sha, a.commit_sha, f"diff root {root.id} → {a.id}"
    else:
        if a.parent_id is None:
            raise UsageError(f"agent {a.id} has no parent; give OTHER to compare it with another agent")
        parent = store.get_agent(a.parent_id)
        old, new, title = parent.commit_sha, a.commit_sha, f"diff {parent.id} → {a.id}"
    diff = store.code.diff(old, new)
    if stat:
        _print_stat(diff)
        return
    _print_diff(diff, title)


def _print_stat(diff: str) -> None:
    files: dict[str, list[int]] = {}
    counts: list[int] = [0, 0]
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            # The header's names may be quoted, or hold " b/": the ---/+++ lines name the file, when there are any.
            counts, in_hunk = [0, 0], False
            files[_header_name(line)] = counts
        elif not in_hunk and line.startswith(("--- ", "+++ ")) and files:
            name = _patch_path(line[4:])
            if name is not None:
                files[name] = files.pop(next(reversed(files)))
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            counts[0] += 1
        elif in_hunk and line.startswith("-"):
            counts[1] += 1
    for name, (plus, minus) in files.items():
        console.print(Text.assemble(name, "  ", (f"+{plus}", "green"), " ", (f"-{minus}", "red")))
    console.print(f"{len(files)} file(s) changed")


def _patch_path(raw: str) -> str | None:
    """The path of a ---/+++ line without its a/ or b/ (None for /dev/null), unquoted as git quotes it."""
    from dgm.sandbox.testbed import unquote_path

    raw = raw.rstrip("\t")
    if raw == "/dev/null":
        return None
    # Bytes that are not UTF-8 come back as surrogates: shown as U+FFFD, which a terminal can print.
    raw = unquote_path(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return raw[2:] if raw[:2] in ("a/", "b/") else raw


def _header_name(line: str) -> str:
    """A file's name from its `diff --git` line, for diffs without ---/+++ lines (a mode change, a binary)."""
    rest = line[len("diff --git "):]
    if rest.endswith('"'):
        start = rest.rfind(' "')
        return _patch_path(rest[start + 1:]) or rest
    half = rest[len(rest) // 2 + 1:] if len(rest) % 2 else ""  # "a/X b/X": the second half, when both are one name
    return half[2:] if half.startswith("b/") and rest[:len(rest) // 2] == "a/" + half[2:] else rest.split(" b/", 1)[-1]


def lineage_cmd(
    campaign: str = typer.Argument(..., help="Campaign id or name."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Write the graph as graphml, json or dot instead of a tree."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File for --format (default: stdout)."),
    max_nodes: int = typer.Option(300, "--max-nodes", min=1, help="Tree: print at most about N agents (best path and best agents first)."),
    show_all: bool = typer.Option(False, "--all", help="Tree: print every agent."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """The lineage tree coloured by score, best agent's path marked ★; or its networkx graph as a file."""
    from dgm.lineage.forest import Lineage
    from dgm.lineage.graph import FORMATS, build_graph, export
    from dgm.lineage.tree import print_lineage

    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if out is not None and fmt is None:
        raise UsageError("--out needs --format (graphml, json or dot)")
    if out is not None:
        check_output_file(out, "--out")
    store = _store(archive, archive_dir)
    c = store.get_campaign(campaign)
    if fmt is not None:
        graph = build_graph(store, c.id)
        graph.graph["name"] = c.name
        data = export(graph, fmt)
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            try:
                out.write_bytes(data)
            except OSError as exc:
                raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
            console.print(f"wrote {fmt} with {graph.number_of_nodes()} agents and {graph.number_of_edges()} edges to {escape(str(out))}")
        return
    lin = Lineage.load(store, c.id)
    if not len(lin):
        console.print(Text(f"campaign {c.name} has no agents"))
        return
    model = _campaign_model(c)
    print_lineage(console, lin, f"{c.name} ({c.id}): {len(lin)} agents" + (f", model {_model_text(model)}" if model else ""),
                  None if show_all else max_nodes)


def plot_cmd(
    campaign: str = typer.Argument(..., help="Campaign id or name."),
    out: Path = typer.Option(..., "--out", "-o", help="Image file (.png, .svg or .pdf)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Best and mean archive score per generation (the best with its 95 % Wilson interval as error bars),
    coverage and diversity, spend."""
    from dgm.lineage.plot import generation_series, plot_series

    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--out must end in .png, .svg or .pdf, not {out.name!r}")
    check_output_file(out, "--out")
    store = _store(archive, archive_dir)
    c = store.get_campaign(campaign)
    points, source = generation_series(store, c.id)
    if not points:
        raise UsageError(f"campaign {c.name} has no agents to plot")
    unpriced = store.unpriced_calls("campaign_id", campaign_id=c.id).get(c.id, 0)
    try:
        plot_series(points, out, f"{c.name} ({c.kind}) — {source} per generation", unpriced_calls=unpriced)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    last = points[-1]
    cut = f", generation {last.generation} cut short" if last.partial else ""
    console.print(f"wrote {escape(str(out))}: {len(points)} generation(s) ({source}{cut}); last: best {last.best_label}, "
                  f"mean {_fmt_score(last.mean_score)}, coverage {last.coverage_fraction:.0%}, "
                  f"spent {usd_text(last.spent_usd, unpriced, dollar=True)}")


def export_cmd(
    agent: str = typer.Argument(..., help="Agent id."),
    dest: Path = typer.Argument(..., help="Directory to write the code into (must be empty or not exist)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Write the agent's full code tree (runnable on its own: `python DIR/main.py`, see the agent contract)."""
    from dgm.lineage.details import require_own_code

    store = _store(archive, archive_dir)
    a = store.get_agent(agent)
    require_own_code(a)
    if not store.code.tree_files(a.commit_sha):
        raise UsageError(f"agent {a.id} has no code to export: its commit holds no files (an imported root "
                         "without --initial-dir?)")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    try:
        store.code.materialize(a.commit_sha, dest)
    except OSError as exc:
        raise UsageError(f"cannot write to {dest}: {exc.strerror or exc}") from None
    n = sum(1 for p in dest.rglob("*") if p.is_file())
    console.print(f"exported agent {a.id} (commit {a.commit_sha[:12]}, {n} files) to {escape(str(dest))}")


def _recorded_benchmark_options(store, source, bench_name: str) -> dict:
    """The benchmark options (SWE-bench's dataset, images, repo mirror) of the
    campaign that made `source`, when it ran the benchmark replayed on: where
    its tasks come from is not known otherwise on a machine without the hub."""
    if source is None or source.benchmark != bench_name:
        return {}
    config = store.get_campaign(source.campaign_id).config or {}
    return dict(config.get("benchmark_options") or {}) if config.get("benchmark") == bench_name else {}


def replay_cmd(
    agent: str = typer.Argument(..., help="Agent id."),
    task: str = typer.Option(..., "--task", "-t", help="Task id (any task of the benchmark, seen or not)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Benchmark (default: the replayed run's, else dgm-mini)."),
    recorded: bool = typer.Option(False, "--recorded", help="Serve the recorded LLM responses (default): offline, free."),
    live: bool = typer.Option(False, "--live", help="Call the model again and store the new run."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="--live: model to use (default: --models' task model, else the recorded run's)."),
    api_base: Optional[str] = typer.Option(None, "--api-base", help="--live: endpoint of the model, e.g. http://127.0.0.1:8080/v1."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="--live: NAME of the environment variable holding the model's key (never the key itself)."),
    models_file: Optional[Path] = typer.Option(None, "--models", help="--live: the model and its settings from this file's \\[campaign.models.task] table (a campaign.toml does); options given win over it."),
    run_id: Optional[str] = typer.Option(None, "--run", help="--recorded: the task run whose recording to serve (default: the agent's latest evaluation run on the task, else its latest live replay)."),
    time_limit: float = typer.Option(900.0, "--time-limit", min=1, help="Wall-clock seconds for the agent."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Re-run an archived agent on a task: from the recording (reports divergence) or live."""
    from dgm.bench.registry import load_benchmark
    from dgm.lineage.replay import VOLATILE_NOTE, default_source_run, find_source_run
    from dgm.runs.replay import replay_on_task

    if recorded and live:
        raise UsageError("give --recorded or --live, not both")
    mode = "live" if live else "recorded"
    if mode == "live" and run_id is not None:
        raise UsageError("--run selects a recording; it goes with --recorded")
    if mode == "recorded" and model is not None:
        raise UsageError("--model goes with --live (a recorded replay uses the recorded run's model)")
    if mode == "recorded" and (api_base or api_key_env or models_file):
        raise UsageError("--api-base, --api-key-env and --models go with --live (a recorded replay calls no model)")
    role = None
    if mode == "live" and (model is not None or api_base or api_key_env or models_file):
        from dgm.config import task_role_of_options
        from dgm.runs.checks import check_role

        # Without --model, the recorded run's model (found below) is filled in then.
        role = task_role_of_options(models_file, model=model, api_base=api_base, api_key_env=api_key_env,
                                    default_model=None)
        if role.model:
            check_role(role)
            model = role.name
    from dgm.lineage.details import require_runnable

    store = _store(archive, archive_dir)
    a = store.get_agent(agent)
    require_runnable(store, a)  # either way the agent's code runs again, in a sandbox
    source = None
    notes: list[str] = []
    if mode == "recorded":
        try:
            source = find_source_run(store, a, task, run_id)
        except NotFound:
            load_benchmark(benchmark or "dgm-mini").select([task])  # an unknown task is that, not a missing run
            raise
        if run_id is not None and source.task_id != task:
            notes.append(f"run {source.id} was on task {source.task_id}; its recording is served on {task}")
    else:
        source = default_source_run(store, a, task)
        if source is None:
            load_benchmark(benchmark or "dgm-mini").select([task])
        if source is None and model is None:
            raise UsageError(f"agent {a.id} has no earlier run on {task}: give --model for a live replay")
        if role is not None and not role.model:
            from dgm.runs.checks import check_role

            role = role.model_copy(update={"model": source.model})
            check_role(role)
            model = role.name
    bench_name = benchmark or (source.benchmark if source is not None else "dgm-mini")
    bench = load_benchmark(bench_name, **_recorded_benchmark_options(store, source, bench_name))
    (the_task,) = bench.select([task])
    if mode == "recorded":
        what = f"recording of run {source.id}"
    else:
        what = f"model {model or (source.model if source is not None else '?')}"

    def on_start() -> None:
        if not json_out:
            console.print(f"replaying agent [bold]{a.id}[/] on {escape(f'{bench_name}/{task}')} ({mode}: {escape(what)})")

    report = replay_on_task(store, bench, a, the_task, mode=mode, source=source, model=model, time_limit_s=time_limit,
                            on_start=on_start, role=role)
    report.notes[:0] = notes
    if json_out:
        return _echo_json(report.as_dict())
    run = report.run
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    unpriced = store.unpriced_calls("task_run_id", campaign_id=report.campaign_id).get(run.id, 0)
    grid.add_row("replay run", f"{run.id} (campaign {report.campaign_id}, kind replay) — "
                 f"[{STATUS_STYLE.get(run.status, '')}]{run.status}[/], model {escape(run.model)}, "
                 f"{usd_text(run.cost_usd, unpriced, dollar=True)}")
    if source is not None:
        grid.add_row("compared with", Text(f"run {source.id} ({source.kind}, {source.status}, model {source.model})"))
        grid.add_row("patch", "[green]byte-identical[/]" if report.patch_identical else "[red]differs[/]")
    if mode == "recorded":
        grid.add_row("requests", f"{report.replayed_steps} replayed of {report.recorded_steps} recorded")
        ex = report.exact_divergence
        grid.add_row("exact check", "every request hash matched" if ex is None else
                     Text(f"step {ex['step'] + 1}: {ex['reason']}"))
        grid.add_row("normalised check", "no divergence" if report.divergence is None else
                     Text(f"step {report.divergence['step'] + 1}: {report.divergence['reason']}"))
        grid.add_row("", Text(f"({VOLATILE_NOTE})", style="dim"))
    for note in report.notes:
        grid.add_row("note", Text(note))
    style = "green" if (report.divergence is None and report.patch_identical is not False) else "yellow"
    console.print(Panel(grid, title=Text(report.verdict), border_style=style, expand=False))  # quotes the agent
    if report.patch_identical is False and source is not None:
        import difflib

        delta = "".join(difflib.unified_diff((source.patch or "").splitlines(True), (run.patch or "").splitlines(True),
                                             f"run {source.id}", f"run {run.id}"))
        _print_diff(delta, "recorded patch → replay patch")


def serve_cmd(
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="TCP port (0: any free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (the archive is not protected: keep it local)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Lineage explorer in the browser (offline: nothing is fetched from the network)."""
    from dgm.web.server import ExplorerServer

    if not host.strip():
        raise UsageError("--host is empty: give an address (127.0.0.1 keeps the explorer on this machine)")
    store = _store(archive, archive_dir)
    server = ExplorerServer(store, host=host, port=port)
    if host in ("0.0.0.0", "::"):
        err_console.print(Text(f"warning: --host {host} serves the archive (code, trajectories, LLM transcripts) "
                               "to every machine that can reach this one, with no password"))
    console.print(f"dgm explorer on [bold]{server.url}[/] (archive {escape(str(store.url))}); Ctrl-C stops it")
    try:
        server.serve_forever()
    finally:
        server.close()


def import_dgm_cmd(
    output_dir: Path = typer.Argument(..., help="A DGM run directory (with dgm_metadata.jsonl and node subdirectories)."),
    initial_dir: Optional[Path] = typer.Option(None, "--initial-dir", help="The agent code the DGM run started from (root tree; default: empty)."),
    name: Optional[str] = typer.Option(None, "--name", help="Campaign name (default: dgm-<directory name>)."),
    benchmark: str = typer.Option("swebench-verified", "--benchmark", help="Benchmark the DGM run used, recorded on its task runs (replays use it)."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Import a run of the original DGM implementation (see README: Importing DGM runs)."""
    from dgm.lineage.import_dgm import check_initial_dir, check_name, import_run, scan

    from dgm.bench.registry import known_name

    benchmark = known_name(benchmark)
    # Every file and option checked before the archive is even opened (a fresh one would be made).
    scan(output_dir)
    check_name(name)
    if initial_dir is not None:
        check_initial_dir(initial_dir)
    store = open_store(archive, archive_dir)
    campaign, ids = import_run(store, output_dir, initial_dir=initial_dir, name=name, benchmark=benchmark)
    n_runs = sum(store.task_run_counts(campaign.id).values())
    console.print(f"imported {len(ids)} DGM nodes as campaign {escape(campaign.name)} ({campaign.id}) with {n_runs} task "
                  f"run(s); browse with `dgm lineage {campaign.id}` or `dgm serve`")


def register(app: typer.Typer) -> None:
    app.command("ls")(ls_cmd)
    app.command("show")(show_cmd)
    app.command("show-run")(show_run_cmd)
    app.command("diff")(diff_cmd)
    app.command("lineage")(lineage_cmd)
    app.command("plot")(plot_cmd)
    app.command("export")(export_cmd)
    app.command("replay")(replay_cmd)
    app.command("serve")(serve_cmd)
    app.command("import-dgm")(import_dgm_cmd)


__all__ = ["register", "NotFound"]
