"""`dgm estimate` and `dgm run --dry-run`: a campaign's cost before it starts, rendered.

`dgm estimate` takes exactly `dgm run`'s options (its signature is `run`'s
without --dry-run), so a flag added to `dgm run` is there too.
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Callable

import typer
from rich.table import Table
from rich.text import Text

from dgm.cli.tables import add_whole_column, make_console, model_label, money, print_table, table_of

if TYPE_CHECKING:
    from dgm.config import CampaignConfig
    from dgm.evolution.estimate import Span
    from dgm.runs.estimate import EstimateResult

console = make_console()


def _count(span: Span) -> str:
    """An expected count with its range: `52 (30–80)`; one number when the range is a point."""
    def whole(x: float) -> str:
        return f"{x:,.0f}"
    if whole(span.low) == whole(span.high):
        return whole(span.mid)
    return f"{whole(span.mid)} ({whole(span.low)}–{whole(span.high)})"


def _usd(span: Span | None) -> str:
    if span is None:
        return money(None)
    if money(span.low) == money(span.high):
        return money(span.mid)
    return f"{money(span.mid)} ({money(span.low)}–{money(span.high)})"


def _price(price) -> str:
    if price is None:
        return money(None)
    return f"{money(price.input_usd * 1e6)} in / {money(price.output_usd * 1e6)} out per million tokens"


def print_estimate(result: EstimateResult, source: str) -> None:
    from dgm.evolution.estimate import ROLE_LABELS, ROLES

    config, plan, est = result.config, result.plan, result.estimate
    stages = " → ".join(f"{s.name}:{len(s.task_ids)}" + (f" (go on at {s.advance_threshold:g})"
                                                         if i + 1 < len(plan.stages) else "")
                        for i, s in enumerate(plan.stages))
    shape = (f"{config.generations} child(ren), schedule async" if config.schedule == "async" else
             f"{config.generations} generation(s) x {config.children_per_generation} child(ren)")
    console.print(Text(f"estimate for {source}: {shape} on {config.benchmark}; stages {stages}; held-out {len(plan.heldout)} "
                       f"(top {config.heldout_top_k})"), soft_wrap=True)
    for role in ROLES:
        model = result.models[role]
        console.print(Text(f"  {ROLE_LABELS[role]:<18} {model_label(model)}: {_price(est.prices.get(role))}"),
                      soft_wrap=True)
    cells = []
    for g in est.generations:
        cells.append([str(g.generation), _count(g.task_runs), _count(g.calls), _count(g.tokens), _usd(g.usd)])
    cells.append(["all", _count(est.task_runs), _count(est.calls), _count(est.tokens), _usd(est.usd)])
    table = Table(title=Text("per generation: expected (low–high)"))
    for i, col in enumerate(("generation", "task runs", "LLM calls", "tokens", "cost")):
        add_whole_column(table, col, [row[i] for row in cells], justify="right" if i else "left")
    for row in cells[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*cells[-1], style="bold")
    print_table(console, table)
    rows = []
    for role in ROLES:
        r = est.roles[role]
        rows.append([ROLE_LABELS[role], _count(r.units), _count(r.calls), _count(r.tokens), _usd(r.usd)])
    print_table(console, table_of(Text("by role, whole campaign (units: task runs, or children)"),
                                  ("role", "units", "LLM calls", "tokens", "cost"), rows,
                                  right=("units", "LLM calls", "tokens", "cost")))
    sources = "; ".join(f"{ROLE_LABELS[role]}: {est.calibration.roles[role].source}" for role in ROLES)
    console.print(Text(f"figures from {sources}", style="dim"), soft_wrap=True)
    cal = est.calibration
    advance = ", ".join(f"{s.name} {cal.advance[i].mid:.0%}" for i, s in enumerate(plan.stages[:-1]))
    console.print(Text(f"child outcomes ({cal.source}): {cal.evaluated.mid:.0%} reach evaluation"
                       + (f"; going on past {advance}" if advance else ""), style="dim"), soft_wrap=True)
    total = est.usd
    if total is None:
        priced = [ROLE_LABELS[r] for r in ROLES if est.roles[r].usd is not None]
        console.print(Text("total: unpriced (" + (f"{', '.join(priced)} come to {_usd(est.priced_usd)}; "
                                                   if priced else "") +
                           "litellm knows no price for the other models: the tokens above are what they will use)"),
                      soft_wrap=True)
    else:
        line = f"total: {money(total.mid)} expected, {money(total.low)} to {money(total.high)}"
        if config.budget_usd is not None:
            line += f"; budget_usd {money(config.budget_usd)}" + (
                " (the high end passes it: the campaign may stop at the cap)" if total.high > config.budget_usd else "")
        console.print(Text(line, style="bold"), soft_wrap=True)
    if result.archive is None:
        console.print(Text("no earlier runs to learn from: `dgm estimate` with the --archive of earlier campaigns "
                           "on the same model and benchmark gives a calibrated estimate", style="dim"), soft_wrap=True)


def estimate_and_print(config: CampaignConfig, open_reads: Callable[[], object], source: str) -> None:
    """Estimate `config`'s campaign (calibrated from the archive `open_reads` opens, if there is one) and print it."""
    from dgm.errors import NotFound
    from dgm.runs.estimate import estimate

    opened = []

    def reads_or_none():
        try:
            opened.append(open_reads())
        except NotFound:  # no archive yet: the defaults
            return None
        return opened[-1]

    try:
        # litellm (for its price table) takes seconds to import.
        with console.status("checking the config and reading prices and earlier runs"):
            result = estimate(config, reads_or_none)
    finally:
        for reads in opened:
            reads.close()
    print_estimate(result, source)


def register(app: typer.Typer, run_cmd: Callable) -> None:
    """`dgm estimate`: `run_cmd` with --dry-run set, under `run`'s own options."""

    def estimate_cmd(**options):
        return run_cmd(**options, dry_run=True)

    signature = inspect.signature(run_cmd)
    hints = typing.get_type_hints(run_cmd)  # resolved here: Typer would look them up in this module
    estimate_cmd.__signature__ = signature.replace(
        parameters=[p.replace(annotation=hints[name]) for name, p in signature.parameters.items()
                    if name != "dry_run"])
    estimate_cmd.__doc__ = ("Estimate a campaign's task runs, LLM calls, tokens and cost per generation and in all "
                            "(expected, with a low–high range), before running it; takes `dgm run`'s options, "
                            "writes nothing. Calibrated from earlier runs in the archive when it has some.")
    app.command("estimate")(estimate_cmd)

