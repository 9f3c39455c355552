"""Failure diagnosis: the proposer model reads one target of the parent and
returns an improvement proposal as JSON, validated against a schema.

Targets follow DGM: usually one failed task (its trajectory, patch and test
results); special targets when the parent's runs show a pattern: many empty
patches, inconsistent results on the same task, context-length overflow.
Held-out tasks are never shown: the caller passes selection-stage runs only.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from pydantic import BaseModel, Field, ValidationError

from dgm.llm.client import CallContext
from dgm.sandbox.agent_run import load_trajectory

EMPTY_PATCH_SHARE = 0.5
CONTEXT_MARKERS = ("context length", "context_length", "maximum context", "too many tokens", "ContextWindow")
AGENT_CODE_CHARS = 40_000
# Characters per token when fitting the prompt to a proposer's window without its
# tokenizer: low for code and English (3.5-4 with GPT-style tokenizers), so a
# prompt is cut a little short rather than refused whole.
CHARS_PER_TOKEN = 3
# Room kept for the chat template's own tokens and one retry's complaint.
WINDOW_MARGIN_TOKENS = 96
SHORTEST_SECTION_CHARS = 200


class Proposal(BaseModel):
    """What the proposer must return."""

    summary: str = Field(min_length=1)
    """What went wrong, in a few sentences."""
    improvement_proposal: str = Field(min_length=1)
    """One general improvement to the agent (not a fix for this one task)."""
    implementation_plan: str = Field(min_length=1)
    """How to implement it in the agent's code."""
    problem_statement: str = Field(min_length=1)
    """The task given to the agent to modify its own code, written as an issue."""


class DiagnosisFailed(Exception):
    """The proposer never produced a valid proposal; the child is rejected with this reason."""


@dataclass(frozen=True)
class Target:
    kind: str  # failed_task | empty_patches | stochasticity | context_length | general
    task_id: str | None = None
    task_run_id: str | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "task_id": self.task_id, "task_run_id": self.task_run_id}


def choose_target(runs: list, rng: random.Random) -> Target:
    """Pick what to diagnose from the parent's selection-stage task runs (pure)."""
    finished = [r for r in runs if r.status in ("resolved", "unresolved", "empty_patch", "error", "timeout")]
    if not finished:
        return Target("general")
    # Before empty patches: a run cut off by its context window usually ends
    # with nothing to show, and the overflow is the cause to fix.
    overflow = [r for r in finished if any(m in (r.error or "") for m in CONTEXT_MARKERS)]
    if overflow:
        pick = overflow[rng.randrange(len(overflow))]
        return Target("context_length", pick.task_id, pick.id)
    empty = [r for r in finished if r.status == "empty_patch"]
    if len(finished) >= 2 and len(empty) / len(finished) >= EMPTY_PATCH_SHARE:
        pick = empty[rng.randrange(len(empty))]
        return Target("empty_patches", pick.task_id, pick.id)
    by_task: dict[str, set] = {}
    for r in finished:
        by_task.setdefault(r.task_id, set()).add(r.status == "resolved")
    inconsistent = sorted(t for t, outcomes in by_task.items() if len(outcomes) > 1)
    if inconsistent:
        task = inconsistent[rng.randrange(len(inconsistent))]
        run = next(r for r in finished if r.task_id == task and r.status != "resolved")
        return Target("stochasticity", task, run.id)
    failed = sorted((r for r in finished if r.status != "resolved"), key=lambda r: r.task_id)
    if failed:
        pick = failed[rng.randrange(len(failed))]
        return Target("failed_task", pick.task_id, pick.id)
    return Target("general")


SYSTEM_PROMPT = """You improve coding agents. You read an agent's code and evidence of how it
did on a task, find the cause of a failure in the AGENT (not in the task), and
propose one general improvement to the agent's code that would help on many
tasks. Reply with only a JSON object with exactly these string fields:
"summary", "improvement_proposal", "implementation_plan", "problem_statement".
"problem_statement" is given to the agent itself, which will implement the
improvement in its own code; write it like a GitHub issue."""

TARGET_TEXT = {
    "failed_task": "The agent failed the task below. Find why, in the agent.",
    "empty_patches": "The agent often finishes without changing anything (empty patch). One example is below.",
    "stochasticity": "The agent's results on this task are inconsistent between attempts. One failing attempt is below.",
    "context_length": "The agent ran out of context length. One such run is below.",
    "general": "The agent has no recorded failure. Propose a general improvement.",
}


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return text[:head] + f"\n[... {len(text) - limit} characters elided ...]\n" + text[-tail:]


def render_trajectory(raw: bytes | None, limit: int) -> str:
    """The conversation in an agent's trajectory.json, as text for the proposer.

    The agent wrote the file, so anything goes: what is not a JSON object
    with a list of messages is shown as raw text instead.
    """
    if not raw:
        return "(no trajectory recorded)"
    data = load_trajectory(raw)
    messages = data.get("messages") if data is not None else None
    if not isinstance(messages, list):
        return _clip(raw.decode("utf-8", "replace"), limit)
    lines = [f"exit status: {data.get('exit_status')}"]
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "system":
            continue  # the agent's own code is shown in full already
        lines.append(f"--- {message.get('role')} ---\n{message.get('content', '')}")
    return _clip("\n".join(lines), limit)


def agent_code_text(files: dict[str, str]) -> str:
    parts = [f"=== {path} ===\n{text}" for path, text in sorted(files.items())]
    return _clip("\n\n".join(parts), AGENT_CODE_CHARS)


SIBLINGS_HEADING = "# What its other children already try"
SIBLINGS_TEXT = ("This agent already has other children, each given one of the proposals below. Propose a "
                 "different improvement: a second child making the same change is the same agent again, and "
                 "is not evaluated.")
SIBLING_PROPOSAL_CHARS = 2000


def siblings_text(siblings: list[dict]) -> str:
    """The proposals the parent's other children were given, as the proposer reads them."""
    parts = [f"{SIBLINGS_HEADING}\n\n{SIBLINGS_TEXT}"]
    for sibling in siblings:
        parts.append(f"## Child {sibling.get('agent')} (generation {sibling.get('generation')})\n\n"
                     f"Summary: {_clip(str(sibling.get('summary', '')), SIBLING_PROPOSAL_CHARS)}\n\n"
                     f"Proposal: {_clip(str(sibling.get('improvement_proposal', '')), SIBLING_PROPOSAL_CHARS)}")
    return "\n\n".join(parts)


def prompt_chars(context_window: int | None, output_tokens: int) -> int | None:
    """How many characters of prompt fit a proposer's window next to its reply; None: no known window."""
    if not context_window:
        return None
    return max(0, context_window - output_tokens - WINDOW_MARGIN_TOKENS) * CHARS_PER_TOKEN


def _fit(agent_code: str, evidence: dict, siblings: list[dict] | None, max_chars: int) -> tuple[str, dict]:
    """The agent's code and the evidence, each cut by the same share, so the whole
    prompt fits `max_chars`: a small model's window (2,048 tokens) refuses DGM's
    prompt whole, and a refused diagnosis ends the child before it starts."""
    elastic = {"code": agent_code, **{k: evidence.get(k) or "" for k in ("problem_statement", "trajectory", "patch")},
               "tests": json.dumps(evidence.get("tests_status"), indent=1)}
    fixed = len(SYSTEM_PROMPT) + 600 + (len(siblings_text(siblings)) if siblings else 0)  # 600: headings, status
    total = sum(len(v) for v in elastic.values())
    room = max_chars - fixed
    if total <= room:
        return agent_code, evidence
    share = max(room, 0) / total
    cut = {k: _clip(v, max(SHORTEST_SECTION_CHARS, int(len(v) * share))) for k, v in elastic.items()}
    fitted = dict(evidence)
    for key in ("problem_statement", "trajectory", "patch"):
        if key in evidence:
            fitted[key] = cut[key]
    if len(cut["tests"]) < len(elastic["tests"]):
        fitted["tests_status"] = cut["tests"]  # shown as text, clipped, rather than as the whole JSON
    return cut["code"], fitted


def build_messages(agent_code: str, target: Target, evidence: dict, siblings: list[dict] | None = None,
                   max_chars: int | None = None) -> list[dict]:
    """The proposer's conversation; `siblings`: the proposals (`Proposal` fields, plus
    `agent` and `generation`) the parent's other children were given, not to be repeated.
    `max_chars`: the prompt is cut to fit (see `prompt_chars`)."""
    if max_chars is not None:
        agent_code, evidence = _fit(agent_code, evidence, siblings, max_chars)
    tests_status = evidence.get("tests_status")
    tests_text = tests_status if isinstance(tests_status, str) else json.dumps(tests_status, indent=1)
    body = [f"# The agent's code\n\n{agent_code}", f"# Target: {target.kind}\n\n{TARGET_TEXT[target.kind]}"]
    if target.task_id:
        body.append(f"## Task {target.task_id}\n\n{evidence.get('problem_statement', '')}")
        body.append(f"## The agent's run\n\n{evidence.get('trajectory', '')}")
        body.append(f"## Its patch\n\n{evidence.get('patch') or '(empty)'}")
        body.append(f"## Hidden test results\n\n{tests_text}"
                    f"\nstatus: {evidence.get('status')}, error: {evidence.get('error')}")
    if siblings:
        body.append(siblings_text(siblings))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(body)}]


def parse_proposal(text: str) -> Proposal:
    """The JSON object in a reply (bare, or in a ```json block); ValueError if none fits."""
    candidates = re.findall(r"```(?:json)?\s*\n(.*?)```", text, re.DOTALL)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    last_error = "no JSON object found"
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError as exc:
            last_error = f"invalid JSON: {exc}"
            continue
        if not isinstance(data, dict):
            last_error = "the JSON is not an object"
            continue
        try:
            return Proposal(**{k: v for k, v in data.items() if k in Proposal.model_fields})
        except ValidationError as exc:
            first = exc.errors()[0]
            last_error = f"field {'.'.join(map(str, first['loc']))}: {first['msg']}"
    raise ValueError(last_error)


def diagnose(llm, ctx: CallContext, messages: list[dict], retries: int) -> Proposal:
    """Ask, validate, and on a malformed reply ask again saying what was wrong."""
    history = list(messages)
    problems = []
    for _ in range(retries + 1):
        response = llm.complete(ctx, history)
        text = response["choices"][0]["message"].get("content") or ""
        try:
            return parse_proposal(text)
        except ValueError as exc:
            problems.append(str(exc))
            history = history + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"That reply was not usable ({exc}). Reply with only the JSON object "
                                            "with the four string fields."},
            ]
    raise DiagnosisFailed(f"no valid proposal after {retries + 1} replies: {problems[-1]}")
