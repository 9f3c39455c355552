"""What `dgm run` shows while it works, and what `dgm status` shows from elsewhere.

Both read only: the live view reads the runner's in-memory state plus the
archive; `dgm status` reads only the archive (so it works for a campaign
running in another process or on another machine sharing the database).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import time

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dgm.cli.tables import money
from dgm.evolution.budget_marks import marks_passed
from dgm.liveness import heartbeat_age, runner_checks_in, runner_process_gone
from dgm.ranking import best_key, can_be_best
from dgm.stats.intervals import rate_label, score_label

if TYPE_CHECKING:
    from dgm.archive.reads import ArchiveReader

def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _spend_line(spent: float, budget: float | None, unpriced_calls: int = 0, allow_unpriced: bool = False) -> Text:
    """`allow_unpriced`: the campaign was let start on an unpriced model (--allow-unpriced)."""
    from dgm.cli.tables import usd_text

    unpriced = f"; {unpriced_calls} call(s) to an unpriced model" if unpriced_calls else ""
    if budget is None:
        return Text(f"{usd_text(spent, unpriced_calls, dollar=True)} (no cap{unpriced})")
    if unpriced_calls or allow_unpriced:
        unpriced += (", not in the cap" if unpriced_calls else "; --allow-unpriced") + \
            ": the cap covers priced calls only"
    if not budget:
        return Text(f"${spent:.4f} of $0{unpriced}")
    line = Text(f"{money(spent)} of {money(budget)} ({100 * spent / budget:.0f} %){unpriced}")
    passed = marks_passed(spent, budget)
    if passed:  # the budget marks the runner announces (events `budget_mark`)
        line.append(f" — past {passed[-1]} % of the budget", style="red" if passed[-1] >= 80 else "yellow")
    return line


ROLE_ORDER = ("task", "diagnose", "self_modify")
ROLE_NAMES = {"task": "task runs", "diagnose": "diagnosis", "self_modify": "self-modification"}


def spend_by_role_line(by_purpose: dict[str, dict]) -> Text:
    """`task runs $x (n calls) · diagnosis $y (m) · self-modification $z (k)`: a campaign's spend split by role."""
    purposes = [p for p in ROLE_ORDER if p in by_purpose] + sorted(p for p in by_purpose if p not in ROLE_ORDER)
    from dgm.cli.tables import usd_text

    parts = [f"{ROLE_NAMES.get(p, p)} {usd_text(by_purpose[p]['cost_usd'], by_purpose[p].get('unpriced_calls', 0), dollar=True)} "
             f"({by_purpose[p]['calls']} call{'s' if by_purpose[p]['calls'] != 1 else ''})" for p in purposes]
    return Text(" · ".join(parts) if parts else "no LLM calls yet")


def _role_lines(config: dict) -> list[tuple[str, str]]:
    """(role, 'model at endpoint') for a campaign whose roles differ in model or endpoint (from its config snapshot)."""
    models = config.get("models")
    if not isinstance(models, dict):
        return []
    roles = [(name, models[name]) for name in ("task", "proposer", "self_modify") if isinstance(models.get(name), dict)]
    shown = {(r.get("model"), r.get("api_base")) for _, r in roles}
    if len(shown) < 2:
        return []
    return [(name, f"{r.get('model')}" + (f" at {r['api_base']}" if r.get("api_base") else "")) for name, r in roles]


def slots_label(busy: int, total: int) -> str:
    """`3 busy / 8`: the executor's sandbox slots running a task now, of all it has."""
    return f"{busy} busy / {total}"


def live_view(runner) -> Panel:
    state = runner.state
    config = runner.config
    spent = runner.store.campaign_spend(runner.campaign.id)
    elapsed = time.monotonic() - state.started_at
    with state.lock:
        in_flight = dict(state.in_flight)
        log = list(state.log[-6:])
        gen_times = list(state.generation_times)
    remaining = max(0, config.generations - state.generation + (1 if in_flight else 0))
    eta = (sum(gen_times) / len(gen_times)) * remaining if gen_times else None
    head = Table.grid(padding=(0, 2))
    # Names, models, phases and events hold text from users, models and agents:
    # always plain Text, never Rich markup (a stray "[/x]" would crash the view).
    head.add_row("campaign", Text(f"{runner.campaign.name} ({runner.campaign.id})"),
                 "models", Text(f"{config.model} / {config.diagnosis_model}"))
    if config.schedule == "async":  # one child per generation, numbered as they start
        head.add_row("children", f"{state.generation} finished of {config.generations}", "phase", Text(state.phase))
    else:
        head.add_row("generation", f"{state.generation} of {config.generations}", "phase", Text(state.phase))
    head.add_row("schedule", config.schedule, "sandbox slots", slots_label(runner.tasks.busy, runner.tasks.workers))
    best = "-"
    if state.best_score is not None:
        counts = runner.store.score_counts(agent_ids=[state.best_agent]).get(state.best_agent, {})
        best = f"{score_label(state.best_score, *counts.get('score', (0, 0)))} ({state.best_agent})"
    head.add_row("best score", best, "archive", str(state.archive_size))
    unpriced = runner.store.unpriced_calls("campaign_id", campaign_id=runner.campaign.id).get(runner.campaign.id, 0)
    head.add_row("spend", _spend_line(spent, config.budget_usd, unpriced, config.allow_unpriced), "elapsed / ETA",
                 f"{_duration(elapsed)} / {_duration(eta)}")
    flight = Table(title="in flight", expand=True, show_edge=False)
    flight.add_column("agent")
    flight.add_column("doing")
    for agent_id, what in sorted(in_flight.items()):
        flight.add_row(agent_id, Text(what))
    if not in_flight:
        flight.add_row("-", "-")
    events = Text("\n".join(log), style="dim")
    scripted = " \\[scripted rehearsal]" if config.model.startswith("scripted:") else ""
    return Panel(Group(head, flight, events), title=f"dgm run{scripted}")


def status_view(store: ArchiveReader, campaign) -> Group:
    config = campaign.config or {}
    agents = store.list_agents(campaign.id)
    by_status: dict[str, int] = {}
    for agent in agents:
        by_status[agent.status] = by_status.get(agent.status, 0) + 1
    best = min((a for a in agents if can_be_best(a.score, a.status)),
               key=lambda a: best_key(a.score, a.heldout_score, a.generation, a.id), default=None)
    age = heartbeat_age(campaign)
    alive = runner_checks_in(campaign)
    events = store.list_events(campaign.id)
    state = campaign.status
    if campaign.status == "running" and not alive:
        why = (f"its runner, pid {campaign.pid} on this machine, is gone" if runner_process_gone(campaign)
               else f"no heartbeat for {_duration(age)}")
        then = ("resume with `dgm resume`" if campaign.kind == "evolution"
                else f"a{'n' if campaign.kind in ('eval', 'import') else ''} {campaign.kind} is not resumed: "
                     "its finished runs are kept; run it again for the rest")
        state = f"running? ({why}; {then})"
    elif campaign.status in ("failed", "interrupted", "budget_exhausted") and campaign.kind == "evolution":
        # Why it stopped, and what to do: the first thing to read in the morning.
        stop = next((e for e in reversed(events) if e.kind == "campaign_stopped"), None)
        reason = (stop.payload or {}).get("reason") if stop is not None else None
        state += (f" — {reason}" if reason and reason != "done" else "") + f"; `dgm resume {campaign.id}` continues it"
    table = Table.grid(padding=(0, 2))
    table.add_row("campaign", Text(f"{campaign.name} ({campaign.id}), kind {campaign.kind}"))
    table.add_row("status", Text(state + (f" (pid {campaign.pid}, heartbeat {age:.0f} s ago)" if alive else "")))
    if campaign.kind == "evolution":
        started = max((a.generation for a in agents), default=0)
        if config.get("schedule") == "async":  # one child per generation, numbered as they start
            table.add_row("children", f"{started} started of {config.get('generations', '?')}, schedule async")
        else:
            table.add_row("generation", f"{started} of {config.get('generations', '?')}")
        if alive:
            # A task run holds a slot from its 'running' row to its end (the runner's
            # executor has `workers` slots); a dead runner's 'running' rows hold none.
            busy = sum(r.status == "running" for r in store.list_task_runs(campaign_id=campaign.id, kind="task"))
            table.add_row("sandbox slots", slots_label(busy, int(config.get("workers") or 1)))
    else:  # an eval, replay or import: its task runs are what there is to follow
        runs = store.list_task_runs(campaign_id=campaign.id)
        planned = len(config.get("tasks") or [])
        finished = sum(1 for r in runs if r.status != "running")
        resolved = sum(1 for r in runs if r.status == "resolved")
        table.add_row("task runs", f"{finished} finished" + (f" of {planned}" if planned else "")
                      + (f"; resolved {resolved}/{finished}: {rate_label(resolved, finished)}" if finished else ""))
    table.add_row("agents", ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none")
    if best is not None:
        counts = store.score_counts(agent_ids=[best.id]).get(best.id, {})
        held = (f", held-out {score_label(best.heldout_score, *counts.get('heldout', (0, 0)))}"
                if best.heldout_score is not None else "")
        score = score_label(best.score, *counts.get("score", (0, 0)))
        table.add_row("best", f"{best.id}: score {score}{held} (generation {best.generation})")
    unpriced = store.unpriced_calls("campaign_id", campaign_id=campaign.id).get(campaign.id, 0)
    table.add_row("spend", _spend_line(store.campaign_spend(campaign.id), campaign.budget_usd, unpriced,
                                       bool(config.get("allow_unpriced"))))
    table.add_row("by role", spend_by_role_line(store.spend_by_purpose(campaign.id)))
    model = config.get("model", "?")
    table.add_row("model", Text(str(model) + (" [scripted]" if str(model).startswith("scripted:") else "")))
    for role, line in _role_lines(config):
        table.add_row(f"  {role}", Text(line))
    recent = Table(title="recent events", show_edge=False)
    recent.add_column("time")
    recent.add_column("event")
    for event in events[-8:]:
        payload = ", ".join(f"{k}={v}" for k, v in (event.payload or {}).items())
        recent.add_row(event.created_at.strftime("%H:%M:%S"), Text(f"{event.kind}: {payload}"[:120]))
    return Group(table, recent)
