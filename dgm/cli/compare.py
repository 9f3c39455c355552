"""`dgm compare A B`: two agents, paired on the tasks both ran.

The statistics are dgm.stats.paired's (exact McNemar with one run per agent
and task, Wilcoxon signed-rank on per-task rates with repeats); the runs are
read through the browsing reads; this module parses, asks and renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from dgm.cli.options import ArchiveDirOpt, ArchiveOpt, open_reads
from dgm.cli.tables import make_console, print_table, table_of
from dgm.errors import UsageError

console = make_console()


def _cell(resolved: int, runs: int) -> str:
    if runs == 1:
        return "resolved" if resolved else "not resolved"
    return f"{resolved}/{runs} resolved"


def compare_cmd(
    agent_a: str = typer.Argument(..., metavar="A", help="Agent id (a unique prefix is enough)."),
    agent_b: str = typer.Argument(..., metavar="B", help="The agent to compare it with."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t",
                                        help="Comma-separated task ids: compare on these only (each must have "
                                             "been run by both agents). Default: every task both ran."),
    campaign: Optional[str] = typer.Option(None, "--campaign", "-c",
                                           help="Count only the runs recorded in this campaign (id or name); "
                                                "default: every finished run of each agent."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the test: a difference is claimed when "
                                                       "its two-sided p-value is below it."),
    json_out: bool = typer.Option(False, "--json", help="JSON instead of tables."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Path = ArchiveDirOpt,
):
    """Paired comparison of two agents on the tasks both ran: which is better, or no evidence of a difference.

    With one run per agent and task, the exact McNemar test on the tasks only
    one of them resolved; with repeats (several runs per task), the Wilcoxon
    signed-rank test on the per-task resolve rates. The verdict is at level
    --alpha (default 0.05): "A better", "B better" or "no evidence of a
    difference". Rates carry their 95 % Wilson interval and n.
    """
    from dgm.stats.intervals import interval_fields, rate_label
    from dgm.stats.paired import MCNEMAR, NO_EVIDENCE, check_alpha, compare_outcomes

    try:
        check_alpha(alpha)
    except ValueError as exc:
        raise UsageError(f"--alpha: {exc}") from None
    task_ids = None if tasks is None else list(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
    if task_ids == []:
        raise UsageError("--tasks names no task id (leave it out to compare on every task both ran)")
    store = open_reads(archive, archive_dir)
    a, b = store.get_agent(agent_a), store.get_agent(agent_b)
    if a.id == b.id:
        raise UsageError(f"A and B are the same agent ({a.id}): give two agents")
    campaign_id = store.get_campaign(campaign).id if campaign is not None else None
    outcomes = store.task_run_outcomes([a.id, b.id], campaign_id=campaign_id)
    runs_a, runs_b = outcomes.get(a.id, {}), outcomes.get(b.id, {})
    if task_ids is not None:
        unshared = [t for t in task_ids if t not in runs_a or t not in runs_b]
        if unshared:
            raise UsageError(f"--tasks: not run by both agents: {', '.join(unshared[:5])}"
                             + (" ..." if len(unshared) > 5 else ""))
        runs_a = {t: runs_a[t] for t in task_ids}
        runs_b = {t: runs_b[t] for t in task_ids}
    result = compare_outcomes(runs_a, runs_b, alpha)
    if result.shared_tasks == 0:
        raise UsageError(f"agents {a.id} and {b.id} have no task both ran "
                         f"({len(runs_a)} and {len(runs_b)} task(s) run): nothing to compare on")
    if json_out:
        out = result.as_dict()
        out["a"] = {"id": a.id, **out["a"], "interval": interval_fields(result.a_resolved, result.a_runs)}
        out["b"] = {"id": b.id, **out["b"], "interval": interval_fields(result.b_resolved, result.b_runs)}
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    shared = f"on the {result.shared_tasks} task(s) both ran"
    head.add_row("A", Text(f"{a.id}  {rate_label(result.a_resolved, result.a_runs)}  {shared}"))
    head.add_row("B", Text(f"{b.id}  {rate_label(result.b_resolved, result.b_runs)}"))
    if result.only_a or result.only_b:
        head.add_row("left out", f"{result.only_a} task(s) only A ran, {result.only_b} only B ran")
    if result.test == MCNEMAR:
        how = (f"exact McNemar on the {len(result.differing)} task(s) only one resolved: "
               f"A {result.a_wins}, B {result.b_wins}")
    else:
        how = (f"Wilcoxon signed-rank on per-task resolve rates (repeats): A higher on {result.a_wins} "
               f"task(s), B on {result.b_wins}")
    head.add_row("test", f"{how}; p = {result.p_value:.3g}")
    style = "bold" if result.verdict != NO_EVIDENCE else ""
    head.add_row("verdict", Text(f"{result.verdict} (level {alpha:g}, two-sided)", style=style))
    console.print(head)
    if result.differing:
        rows = [[Text(d.task_id), _cell(d.a_resolved, d.a_runs), _cell(d.b_resolved, d.b_runs), d.winner]
                for d in result.differing]
        print_table(console, table_of(f"tasks that differ ({len(rows)})", ("task", "A", "B", "higher"), rows,
                                      free=("task",)))
    else:
        console.print("no task differs: both agents resolved the same tasks")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
