"""`dgm sandbox ls` / `dgm sandbox prune`: dgm's images against what an
archive's campaigns need (the tasks of their stages and held-out sets, as
their plans resolve them, and every task any run was on)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dgm.archive.store import ArchiveStore
from dgm.bench.images import Verdict, judge_all
from dgm.errors import DgmError


@dataclass
class Needs:
    tasks: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    """Campaigns whose plan could not be rebuilt (only the tasks they ran count for them)."""


def needed_tasks(store: ArchiveStore) -> Needs:
    """The task ids the archive's campaigns may still run: planned or run."""
    from dgm.config import validate_config
    from dgm.runs.campaign import check_config

    needs = Needs()
    for tasks in store.task_ids_run().values():
        needs.tasks |= tasks
    for campaign in store.list_campaigns():
        if campaign.kind != "evolution":
            continue  # evals, replays and imports plan nothing more than they ran
        config = campaign.config or {}
        try:
            _bench, plan = check_config(validate_config(dict(config), f"campaign {campaign.name}"))
        except DgmError as exc:  # its dataset moved, a model name this dgm refuses, ...
            # What the config names outright still counts.
            named = [t for s in config.get("stages") or [] if isinstance(s.get("tasks"), list) for t in s["tasks"]]
            named += config["heldout"] if isinstance(config.get("heldout"), list) else []
            needs.tasks |= set(named)
            needs.warnings.append(f"campaign {campaign.name}: its plan could not be rebuilt ({exc}); "
                                  f"only the tasks it names or ran are kept")
            continue
        needs.tasks |= set(plan.selection_task_ids) | set(plan.heldout)
    return needs


def image_verdicts(client, store: ArchiveStore | None, *, kind: str | None = None,
                   untagged_grace_minutes: float = 0.0) -> tuple[list[Verdict], Needs]:
    """Every dgm image (of `kind`) with whether it is needed; without an archive, no task is."""
    from datetime import timedelta

    from dgm.sandbox.images import list_images

    needs = needed_tasks(store) if store is not None else Needs()
    grace = timedelta(minutes=untagged_grace_minutes)
    return judge_all(list_images(client, kind=kind), needs.tasks, untagged_grace=grace), needs


@dataclass
class PruneResult:
    removed: list[Verdict]
    kept_in_use: list[tuple[Verdict, str]]
    """Unneeded images that could not be removed, with why (a container uses it)."""
    freed_bytes: int
    """The removed images' own layers (a layer only they shared among themselves is
    not counted, so this is at least what was freed; unlike the engine's total,
    other work on the engine meanwhile does not change it)."""
    layers_before: int
    layers_after: int
    """The engine's image layers in bytes, before and after (other work counts too)."""


def prune(client, verdicts: list[Verdict]) -> PruneResult:
    """Remove the images `verdicts` finds unneeded; never forced."""
    from dgm.sandbox.images import layers_size, remove_image

    before = layers_size(client)
    removed, kept = [], []
    for verdict in verdicts:
        if verdict.needed:
            continue
        why = remove_image(client, verdict.image)
        if why is None:
            removed.append(verdict)
        else:
            kept.append((verdict, why))
    return PruneResult(removed, kept, sum(v.image.own_size for v in removed), before, layers_size(client))
