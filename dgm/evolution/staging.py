"""Staged evaluation policy: which tasks an agent meets, in which order, and
when it stops early. Pure: a plan is a function of the config and the
benchmark's task ids, so a resumed campaign rebuilds the very same plan."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dgm.errors import UsageError

HELDOUT = "heldout"
DEFAULT_SMALL = 6
DEFAULT_SMALL_THRESHOLD = 0.4
DEFAULT_HELDOUT_FRACTION = 0.25


@dataclass(frozen=True)
class Stage:
    name: str
    task_ids: tuple[str, ...]
    advance_threshold: float
    """Resolve rate over all stages so far needed to go on to the next stage."""
    repeats: int = 1
    """Runs of an agent on each task of the stage."""


@dataclass(frozen=True)
class StagePlan:
    stages: tuple[Stage, ...]
    heldout: tuple[str, ...]
    """Never used for selection or diagnosis; only the best agents meet them."""

    @property
    def selection_task_ids(self) -> tuple[str, ...]:
        return tuple(t for s in self.stages for t in s.task_ids)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)


def _resolve_ids(spec, all_ids: list[str], unused: list[str], rng: random.Random, benchmark, what: str) -> list[str]:
    if isinstance(spec, bool) or isinstance(spec, float) or (isinstance(spec, int) and spec < 0):
        # The config refuses these; a campaign recorded before it did must not end in a traceback.
        raise UsageError(f"{what}: expected task ids, a count (0 or more), 'rest' or 'subset:NAME', got {spec!r}")
    if isinstance(spec, int):
        if spec > len(unused):
            raise UsageError(f"{what}: asks for {spec} tasks but only {len(unused)} are left")
        return sorted(rng.sample(unused, spec), key=all_ids.index)
    if isinstance(spec, str):
        if spec == "rest":
            return list(unused)
        if spec.startswith("subset:"):
            if not benchmark.subsets():
                raise UsageError(f"{what}: benchmark {benchmark.name} has no named subsets")
            ids = list(benchmark.subset(spec.split(":", 1)[1]))
        else:
            raise UsageError(f"{what}: expected task ids, a count, 'rest' or 'subset:NAME', got '{spec}'")
    else:
        ids = list(spec)
    known = set(all_ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise UsageError(f"{what}: unknown task id(s): {', '.join(missing[:5])}")
    return ids


def build_plan(config, benchmark) -> StagePlan:
    """The campaign's stages and held-out set, deterministic in the config's seed."""
    all_ids = [t.instance_id for t in benchmark.tasks()]
    rng = random.Random(f"dgm-plan-{config.seed}")
    heldout_spec = config.heldout
    if heldout_spec is None:
        heldout_spec = max(1, round(len(all_ids) * DEFAULT_HELDOUT_FRACTION)) if len(all_ids) >= 4 else 0
    heldout = _resolve_ids(heldout_spec, all_ids, list(all_ids), rng, benchmark, "heldout") if heldout_spec else []
    unused = [i for i in all_ids if i not in set(heldout)]
    stage_specs = config.stages
    if stage_specs is None:
        small = min(DEFAULT_SMALL, len(unused))
        stage_specs = [{"name": "small", "tasks": small, "advance_threshold": DEFAULT_SMALL_THRESHOLD},
                       {"name": "rest", "tasks": "rest", "advance_threshold": 0.0}]
    stages = []
    empty: list[str] = []
    for spec in stage_specs:
        spec = spec if isinstance(spec, dict) else spec.model_dump()
        ids = _resolve_ids(spec["tasks"], all_ids, unused, rng, benchmark, f"stage {spec['name']}")
        overlap = set(ids) & set(heldout)
        if overlap:
            raise UsageError(f"stage {spec['name']}: held-out task(s) may not be used for selection: "
                             f"{', '.join(sorted(overlap)[:5])}")
        ids = [i for i in ids if i in set(unused)]
        unused = [i for i in unused if i not in set(ids)]
        if ids:
            stages.append(Stage(spec["name"], tuple(ids), float(spec.get("advance_threshold", 0.0)),
                                int(spec.get("repeats", 1))))
        else:
            empty.append(spec["name"])
    if not stages:
        why = (f"stage(s) {', '.join(empty)} select no task (their `tasks` are empty, or all held out or "
               "taken by earlier stages)") if empty else "no stage is configured"
        raise UsageError(f"the evaluation plan has no selection tasks: {why}")
    return StagePlan(tuple(stages), tuple(heldout))


def should_advance(stage: Stage, resolved_so_far: int, evaluated_so_far: int) -> bool:
    """DGM's rule: go on only if the resolve rate so far reaches the stage's threshold."""
    if evaluated_so_far == 0:
        return False
    return resolved_so_far / evaluated_so_far >= stage.advance_threshold
