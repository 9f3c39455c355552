"""Synthetic campaigns for performance work and tests: real rows, real commits, no LLM.

Agents are real git commits (each one edits its parent's code), made with one
`git fast-import` stream instead of a process per agent, so 100,000 agents
take seconds. Rows go through the store's bulk methods. Shapes follow DGM:
generations of similar size, parents drawn from earlier generations with
weights that favour good scores, child scores near their parent's.

Clearly labelled: campaigns are named `synthetic-...`, proposals say so, and
task runs use the model name `synthetic`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dgm.archive.store import new_id

SEED_MAIN = '"""synthetic agent"""\n\nSTEPS = 0\n\n\ndef main():\n    return STEPS\n'


@dataclass
class SyntheticCampaign:
    campaign_id: str
    agent_ids: list[str]
    best_agent: str
    seconds: dict[str, float]


def _fast_import_commits(git_dir: Path, parents: np.ndarray) -> list[str]:
    """One commit per agent (parent index -1 = root); returns shas in agent order."""
    n = len(parents)
    stamp = 946684800  # 2000-01-01, like the code store's fixed date
    with tempfile.TemporaryDirectory(prefix="dgm-synth-") as tmp:
        marks = Path(tmp) / "marks"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        proc = subprocess.Popen(["git", f"--git-dir={git_dir}", "fast-import", "--quiet", f"--export-marks={marks}"],
                                stdin=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        out = proc.stdin
        seed_blob = SEED_MAIN.encode()
        out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (n + 1, len(seed_blob), seed_blob))
        for i in range(n):
            note = f"# agent {i}: synthetic self-modification of agent {int(parents[i])}\nSTEP_{i} = {i}\n".encode()
            msg = f"synthetic agent {i}".encode()
            out.write(b"commit refs/dgm-synthetic/head\nmark :%d\ncommitter dgm <dgm@localhost> %d +0000\n"
                      b"data %d\n%s\n" % (i + 1, stamp, len(msg), msg))
            if parents[i] >= 0:
                out.write(b"from :%d\n" % (parents[i] + 1))
                out.write(b"M 100644 inline notes/agent_%d.py\ndata %d\n%s\n" % (i, len(note), note))
            else:
                out.write(b"deleteall\nM 100644 :%d main.py\n" % (n + 1))
            out.write(b"\n")
        out.close()
        if proc.wait() != 0:
            raise RuntimeError("git fast-import failed")
        by_mark = {}
        for line in marks.read_text().splitlines():
            mark, sha = line.split()
            by_mark[int(mark[1:])] = sha
    # No ref per synthetic agent (100,000 loose refs cost more than the data):
    # the commits live in the pack fast-import wrote, and the code store is
    # never garbage-collected. The temporary branch ref is dropped.
    subprocess.run(["git", f"--git-dir={git_dir}", "update-ref", "-d", "refs/dgm-synthetic/head"], env=env, check=False)
    return [by_mark[i + 1] for i in range(n)]


def make_synthetic_campaign(
    store,
    n_agents: int,
    runs_per_agent: int,
    *,
    n_tasks: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    name: str | None = None,
    status: str = "completed",
    progress: Callable[[str, int, int], None] | None = None,
) -> SyntheticCampaign:
    rng = np.random.default_rng(seed)
    seconds: dict[str, float] = {}
    n_tasks = n_tasks or max(runs_per_agent, 60)
    generations = generations or max(2, min(80, n_agents // 2 or 1))
    t0 = time.perf_counter()
    campaign = store.create_campaign(name or f"synthetic-{n_agents}x{runs_per_agent}-{new_id(3)}", "evolution",
                                     {"synthetic": True, "agents": n_agents, "runs_per_agent": runs_per_agent})
    # Generation sizes: agent 0 is the seed; the rest split evenly.
    gen = np.zeros(n_agents, dtype=np.int64)
    if n_agents > 1:
        gen[1:] = 1 + (np.arange(n_agents - 1) * (generations - 1)) // max(1, n_agents - 1)
    parents = np.full(n_agents, -1, dtype=np.int64)
    score = np.zeros(n_agents)
    score[0] = 0.2
    first_of_gen = np.searchsorted(gen, np.arange(generations + 1))
    for g in range(1, generations):
        lo, hi = first_of_gen[g], first_of_gen[g + 1]
        if lo >= hi:
            continue
        pool = np.arange(0, lo)
        # DGM-like: sigmoid of score; recent generations slightly preferred.
        w = 1.0 / (1.0 + np.exp(-10 * (score[pool] - 0.5))) + 1e-3
        w /= w.sum()
        chosen = rng.choice(pool, size=hi - lo, p=w)
        parents[lo:hi] = chosen
        score[lo:hi] = np.clip(score[chosen] + rng.normal(0.01, 0.06, size=hi - lo), 0, 1)
    # Generation = depth in the tree (parent's + 1), as the loop records it.
    depth = np.zeros(n_agents, dtype=np.int64)
    for i in range(1, n_agents):
        depth[i] = depth[parents[i]] + 1 if parents[i] >= 0 else 0
    seconds["plan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    shas = _fast_import_commits(store.code.path, parents)
    seconds["commits"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = [new_id(6) for _ in range(n_agents)]
    statuses = np.where(rng.random(n_agents) < 0.8, "admitted", "rejected")
    rows = []
    for i in range(n_agents):
        rows.append({
            "id": ids[i], "campaign_id": campaign.id, "parent_id": ids[parents[i]] if parents[i] >= 0 else None,
            "generation": int(depth[i]), "commit_sha": shas[i],
            "status": "seed" if i == 0 else str(statuses[i]),
            "rejection_reason": "synthetic: below threshold" if i and statuses[i] == "rejected" else None,
            "origin": "seed" if i == 0 else "child", "score": float(round(score[i], 4)),
            "stage_reached": 2 if score[i] >= 0.4 else 1,
            "proposal": None if i == 0 else {"synthetic": True, "improvement": f"synthetic change #{i}"},
            "diagnosis_target": None if i == 0 else {"task_id": f"synthetic__task-{i % n_tasks}"},
        })
    for start in range(0, n_agents, 20_000):
        store.bulk_add_agents(rows[start:start + 20_000], refs=False)
        if progress:
            progress("agents", min(n_agents, start + 20_000), n_agents)
    seconds["agents"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    task_names = [f"synthetic__task-{k}" for k in range(n_tasks)]
    chunk = max(1, 100_000 // max(1, runs_per_agent))
    for start in range(0, n_agents, chunk):
        run_rows = []
        calls = []
        for i in range(start, min(n_agents, start + chunk)):
            tasks = rng.choice(n_tasks, size=min(runs_per_agent, n_tasks), replace=False)
            solved = rng.random(len(tasks)) < score[i]
            for k, (t, ok) in enumerate(zip(tasks, solved)):
                run_rows.append({
                    "campaign_id": campaign.id, "agent_id": ids[i], "kind": "task", "benchmark": "synthetic",
                    "task_id": task_names[t], "stage": "small" if k < 10 else "medium",
                    "status": "resolved" if ok else "unresolved", "model": "synthetic",
                    "duration_s": 30.0, "cost_usd": 0.01,
                })
            calls.append({"campaign_id": campaign.id, "agent_id": ids[i], "purpose": "self_modify", "seq": 0,
                          "model": "synthetic", "request_hash": "0" * 64, "cost_usd": 0.05, "scripted": True})
        store.bulk_add_task_runs(run_rows)
        store.bulk_add_llm_calls(calls)
        if progress:
            progress("task runs", min(n_agents, start + chunk) * runs_per_agent, n_agents * runs_per_agent)
    seconds["task_runs"] = time.perf_counter() - t0
    store.set_campaign_status(campaign.id, status, finished=status != "running")
    best = int(np.argmax(score))
    return SyntheticCampaign(campaign.id, ids, ids[best], seconds)
