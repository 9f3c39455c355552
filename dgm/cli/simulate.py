"""`dgm simulate`: campaign policies against a ground truth, at no cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from dgm.cli.options import ArchiveDirOpt, ArchiveOpt, check_output_file, open_reads
from dgm.cli.tables import make_console, print_table
from dgm.errors import UsageError

DEFAULT_POLICIES = ("dgm", "dgm60", "hgm", "sequential")


def simulate_cmd(
    worlds: Optional[List[str]] = typer.Option(
        None, "--world", "-w",
        help="A synthetic world (gentle, harsh, noisy, flat; see docs/simulate.md); repeat for several. "
             "Default: all of them, unless --from is given."),
    from_campaign: Optional[str] = typer.Option(
        None, "--from", help="A recorded campaign (name or id) whose observed outcomes and lineage are the truth."),
    archive: Optional[str] = ArchiveOpt,
    archive_dir: Optional[Path] = ArchiveDirOpt,
    policies: Optional[List[str]] = typer.Option(
        None, "--policy", "-p",
        help="dgm (DGM's 10/50/200 schedule), dgm60 (10/50, as DGM's code runs), hgm (Huxley-Gödel Machine's "
             "loop), sequential (this project's); repeat for several. Default: all four."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Also simulate this campaign.toml's own policy (selector, staging, "
                                     "admission, generations), as policy 'config'."),
    seeds: int = typer.Option(100, "--seeds", "-n", min=1, help="Simulated campaigns per world and policy."),
    first_seed: int = typer.Option(0, "--first-seed", min=0, help="Seed of the first simulated campaign."),
    generations: int = typer.Option(20, "--generations", "-g", min=1, help="Generations per simulated campaign."),
    children: int = typer.Option(2, "--children", min=1, help="Children per generation."),
    selection: str = typer.Option("score_child_prop", "--selection",
                                  help="Parent selector of the generation-based policies (the campaign's own code)."),
    admission: str = typer.Option("keep_all", "--admission", help="keep_all or keep_better."),
    batch: int = typer.Option(3, "--batch", min=1, help="sequential: tasks between two looks."),
    max_tasks: int = typer.Option(21, "--max-tasks", min=1, help="sequential: tasks a child runs unless stopped."),
    confidence: float = typer.Option(0.9, "--confidence", min=0.5, max=0.999,
                                     help="sequential: stop a child when P(it beats the best) < 1 − this."),
    settle_confidence: float = typer.Option(0.9, "--settle-confidence", min=0.5, max=0.999,
                                            help="sequential: the best and its challenger run on while "
                                                 "P(challenger better) ≥ 1 − this."),
    settle_margin: float = typer.Option(0.03, "--settle-margin", min=0.0, max=0.5,
                                        help="sequential: settling, only a challenger better by more than this "
                                             "resolve rate counts."),
    hgm_budget: Optional[int] = typer.Option(None, "--hgm-budget", min=1,
                                             help="hgm: task runs on children (default: the budget at which "
                                                  "HGM's n^0.6 rule makes as many children as the others)."),
    baseline: str = typer.Option("dgm", "--baseline", help="The policy the others are compared with."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures to this file."),
) -> None:
    """Run campaign policies against a known truth over many seeds: task runs spent, the true
    quality of the agent each would pick, regret, how often it picks the truly best. No model,
    no sandbox, no cost."""
    from dgm.evolution.staging import SequentialRule
    from dgm.simulate.policies import from_config, standard_policies
    from dgm.simulate.run import simulate
    from dgm.simulate.world import SYNTHETIC_WORLDS, RecordedWorld, SyntheticWorld, recorded_world_data

    if json_out is not None:
        check_output_file(json_out, "--json")
    rule = SequentialRule(batch=batch, max_tasks=max_tasks, confidence=confidence,
                          settle_confidence=settle_confidence, settle_margin=settle_margin)
    known = standard_policies(generations, children, selection, admission, rule, hgm_budget)
    names = list(policies or DEFAULT_POLICIES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"--policy {unknown[0]}: unknown policy (known: {', '.join(known)})")
    chosen = [known[n] for n in dict.fromkeys(names)]
    if config is not None:
        from dgm.config import load_config

        chosen.append(from_config(load_config(config, {}), "config"))
    if baseline not in {p.name for p in chosen}:
        raise UsageError(f"--baseline {baseline}: not among the simulated policies ({', '.join(p.name for p in chosen)})")

    makers = []
    for name in (worlds or ([] if from_campaign else list(SYNTHETIC_WORLDS))):
        if name not in SYNTHETIC_WORLDS:
            raise UsageError(f"--world {name}: unknown world (known: {', '.join(SYNTHETIC_WORLDS)})")
        params = SYNTHETIC_WORLDS[name]
        makers.append((name, lambda seed, params=params, name=name: SyntheticWorld(params, seed, name)))
    if from_campaign:
        with open_reads(archive, archive_dir) as reads:
            name, agents, tasks = recorded_world_data(reads, from_campaign)
        RecordedWorld(name, agents, tasks, 0)  # bad input fails here, in one line, before any work
        makers.append((f"recorded:{name}",
                       lambda seed, name=name: RecordedWorld(name, agents, tasks, seed)))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = make_console(stderr=True)
    summaries = []
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        for world_name, make in makers:
            bar = progress.add_task(f"simulating {world_name}", total=seeds * len(chosen))
            summaries.append(simulate(make, world_name, chosen, seeds, first_seed=first_seed,
                                      on_done=lambda bar=bar: progress.advance(bar)))
    _render(summaries, baseline, seeds)
    if json_out is not None:
        rows = []
        for per_world in summaries:
            base = next(s for s in per_world if s.policy == baseline)
            rows += [s.as_dict(base) for s in per_world]
        json_out.write_text(json.dumps({"seeds": seeds, "first_seed": first_seed, "generations": generations,
                                        "children_per_generation": children, "baseline": baseline,
                                        "results": rows}, indent=2) + "\n")


def _render(summaries, baseline: str, seeds: int) -> None:
    console = make_console()
    table = Table(title=f"dgm simulate: {seeds} seeds per world; ± is a 95 % interval over seeds; "
                        f"Δ is paired by seed against {baseline}")
    for column, justify in [("world", "left"), ("policy", "left"), ("task runs", "right"),
                            (f"× fewer than {baseline}", "right"), ("true quality of pick", "right"),
                            (f"Δ quality vs {baseline}", "right"), ("regret", "right"),
                            ("picks truly best", "right")]:
        table.add_column(column, justify=justify)
    for per_world in summaries:
        base = next(s for s in per_world if s.policy == baseline)
        for s in per_world:
            delta, ci = s.delta_quality(base)
            table.add_row(s.world, s.policy, f"{s.mean_runs:,.0f}", f"{base.mean_runs / s.mean_runs:.2f}",
                          f"{s.mean_quality:.3f} ± {s.quality_ci:.3f}",
                          "—" if s is base else f"{delta:+.3f} [{delta - ci:+.3f}, {delta + ci:+.3f}]",
                          f"{s.mean_regret:.3f}", f"{100 * s.p_best:.0f} %")
        table.add_section()
    print_table(console, table)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
