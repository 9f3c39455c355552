"""Deterministic offline models, plugged into litellm as the `scripted` provider.

They stand in for the LLM only: calls still go through the gateway, the
client's retries, budget checks and recording, and litellm itself, exactly
as a real model's would. Names:

- `scripted:gold`  replies with one bash action that applies the task's
  reference patch, then submits: the harness self-check (every task resolves).
- `scripted:noop`  submits at once without changing anything (nothing resolves).
- `scripted:rate:P` resolves each task run with probability P (0 to 1): gold's
  patch or nothing, drawn from a generator seeded with the task run's id, so
  a run's outcome is random across runs but the same whenever that run is
  replayed. The stand-in for a model of known skill (noise, repeats, tests).
- `scripted:NAME`  a bundled rules file `dgm/llm/scripted_models/NAME.json`.
- `scripted:PATH`  a rules file of your own (format in the README).

A rules file is JSON: `rules` are tried in order and the first whose
conditions all hold gives the reply; `default_reply` otherwise. Conditions:
`purpose` (task / diagnose / self_modify), `task` (fnmatch on the task id),
`step` (assistant turns so far), `min_step`, `last_contains` (substring of the
last message), `system_contains` (substring of the system prompt),
`any_contains` / `none_contains` (substring of some / no message),
`min_difficulty` (the task's difficulty, 1-5). `fail` makes the rule raise an
upstream error (`{"status": 429|500|"timeout", "times": N}`) on the first N
matching calls of this process; `latency_s` sleeps first. `pricing` and
`max_output_tokens` (file level) are what litellm is told the model costs and
how long its replies may be; like a provider's, a reply is cut at
`max_tokens` or that limit (finish_reason "length"). In replies,
`{{gold_patch}}`, `{{task_id}}` and `{{submit}}` are substituted.
"""

from __future__ import annotations

import fnmatch
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dgm.errors import UsageError
from dgm.llm.litellm_loader import load_litellm
from dgm.llm.model_names import PROVIDER, litellm_name
SUBMIT_SENTINEL = "DGM_SUBMIT_FINAL_OUTPUT"
BUNDLED_DIR = Path(__file__).parent / "scripted_models"

GOLD_REPLY = """THOUGHT: Applying the fix.

```bash
cat > /tmp/dgm_fix.patch <<'DGM_PATCH_EOF'
{{gold_patch}}DGM_PATCH_EOF
git apply /tmp/dgm_fix.patch && git status --short
```"""

SUBMIT_REPLY = """THOUGHT: Done; submitting.

```bash
echo {{submit}}
```"""

BUILTIN_SPECS: dict[str, dict] = {
    "gold": {
        "description": "applies the task's reference patch, then submits",
        "rules": [
            {"purpose": "task", "step": 0, "reply": GOLD_REPLY},
        ],
        "default_reply": SUBMIT_REPLY,
    },
    "noop": {
        "description": "submits without changing anything",
        "rules": [],
        "default_reply": SUBMIT_REPLY,
    },
}


# A stand-in model's latency: longer than this is a typo (1e308 overflowed the clock, and every call failed as an outage).
MAX_LATENCY_S = 3600.0


class _Checked(BaseModel):
    # Strict: JSON has exact types (no "abc" for a number, no true for 1); a key
    # nobody reads (a typo such as `purpos`) would silently drop a condition.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Fail(_Checked):
    status: Literal[429, 500, "timeout"]
    times: int = Field(1, ge=1)


class _Pricing(_Checked):
    input_cost_per_token: float = Field(0.0, ge=0)
    output_cost_per_token: float = Field(0.0, ge=0)


class _Rule(_Checked):
    # No `| None`: a condition given as null is an error, not one that never (or always) holds.
    purpose: Literal["task", "diagnose", "self_modify"] = None
    task: str = None
    step: int = Field(None, ge=0)
    min_step: int = Field(None, ge=0)
    last_contains: str = None
    system_contains: str = None
    any_contains: str = None
    none_contains: str = None
    min_difficulty: int = Field(None, ge=1, le=5)
    reply: str = None
    fail: _Fail = None
    latency_s: float = Field(0.0, ge=0, le=MAX_LATENCY_S)


class _RulesFile(_Checked):
    description: str = ""
    pricing: _Pricing = Field(default_factory=_Pricing)
    max_output_tokens: int | None = Field(None, ge=1)
    latency_s: float = Field(0.0, ge=0, le=MAX_LATENCY_S)
    rules: list[_Rule] = Field(default_factory=list)
    default_reply: str = SUBMIT_REPLY


def _checked(raw, where: str) -> _RulesFile:
    """The whole rules file, checked as it is loaded: UsageError naming the first bad key."""
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a JSON object with a 'rules' list")
    try:
        return _RulesFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "missing"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = f"expected a JSON object, not {json.dumps(err['input'])[:60]}"
        else:
            message = f"{err['msg']}, not {json.dumps(err['input'])[:60]}"
        raise UsageError(f"{where}: {key}: {message}") from None


@dataclass
class ScriptedSpec:
    name: str
    rules: list[dict]
    default_reply: str
    pricing: dict = field(default_factory=dict)
    latency_s: float = 0.0
    description: str = ""
    max_output_tokens: int | None = None
    resolve_rate: float | None = None
    """`scripted:rate:P`: the chance that a task run gets gold's patch."""


RATE_PREFIX = "rate:"


def _rate_spec(name: str) -> ScriptedSpec:
    text = name[len(RATE_PREFIX):]
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:  # also nan
        raise UsageError(f"scripted model 'scripted:{name}': the rate must be a number from 0 to 1, not {text!r}")
    return ScriptedSpec(name=name, rules=[], default_reply=SUBMIT_REPLY, resolve_rate=rate,
                        description=f"resolves a task run with probability {rate:g}")


def rate_draw(rate: float, task_run_id: str) -> bool:
    """Whether `scripted:rate:RATE` resolves this task run (seeded by the run's id)."""
    return random.Random(f"dgm-scripted-rate-{task_run_id}").random() < rate


_specs: dict[str, ScriptedSpec] = {}
_fail_counts: dict[tuple, int] = {}
_lock = threading.Lock()


def load_spec(name: str) -> ScriptedSpec:
    """The rules of `scripted:NAME`; UsageError with one line if unusable."""
    with _lock:
        if name in _specs:
            return _specs[name]
    if name.startswith(RATE_PREFIX):
        spec = _rate_spec(name)
        with _lock:
            _specs[name] = spec
        return spec
    if name in BUILTIN_SPECS:
        raw = BUILTIN_SPECS[name]
        where = f"scripted model '{name}'"
    else:
        given_path = "/" in name or name.endswith(".json")
        path = Path(name) if given_path else BUNDLED_DIR / f"{name}.json"
        if given_path and not path.is_file():
            raise UsageError(f"scripted model file {path} " + ("is a directory" if path.is_dir() else "does not exist"))
        if not path.is_file():
            known = ", ".join(sorted([*BUILTIN_SPECS, *(p.stem for p in BUNDLED_DIR.glob("*.json"))]))
            raise UsageError(f"unknown scripted model 'scripted:{name}' (known: {known}, or a path to a rules file)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise UsageError(f"scripted model file {path}: not UTF-8 text (byte {exc.start})") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"scripted model file {path}: not valid JSON ({exc})") from None
        where = f"scripted model file {path}"
    checked = _checked(raw, where)
    spec = ScriptedSpec(
        name=name,
        # Plain dicts of the keys given: a condition is "in rule" only when it was written.
        rules=[rule.model_dump(exclude_unset=True, mode="json") for rule in checked.rules],
        default_reply=checked.default_reply,
        pricing=checked.pricing.model_dump(),
        latency_s=checked.latency_s,
        description=checked.description,
        max_output_tokens=checked.max_output_tokens,
    )
    with _lock:
        _specs[name] = spec
    return spec


def _text(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _matches(rule: dict, messages: list[dict], ctx: dict) -> bool:
    step = sum(1 for m in messages if m.get("role") == "assistant")
    if "purpose" in rule and rule["purpose"] != ctx.get("purpose"):
        return False
    if "task" in rule and not fnmatch.fnmatch(ctx.get("task_id") or "", rule["task"]):
        return False
    if "step" in rule and rule["step"] != step:
        return False
    if "min_step" in rule and step < rule["min_step"]:
        return False
    if "last_contains" in rule and (not messages or rule["last_contains"] not in _text(messages[-1])):
        return False
    if "system_contains" in rule:
        system = "".join(_text(m) for m in messages if m.get("role") == "system")
        if rule["system_contains"] not in system:
            return False
    if "any_contains" in rule and not any(rule["any_contains"] in _text(m) for m in messages):
        return False
    if "none_contains" in rule and any(rule["none_contains"] in _text(m) for m in messages):
        return False
    if "min_difficulty" in rule and int(ctx.get("task_difficulty") or 0) < rule["min_difficulty"]:
        return False
    return True


def _render(template: str, ctx: dict) -> str:
    gold = ctx.get("gold_patch") or ""
    if gold and not gold.endswith("\n"):
        gold += "\n"
    return (
        template.replace("{{gold_patch}}", gold)
        .replace("{{task_id}}", ctx.get("task_id") or "")
        .replace("{{submit}}", SUBMIT_SENTINEL)
    )


def _raise_failure(fail: dict, model: str) -> None:
    litellm = load_litellm()

    status = fail.get("status")
    message = f"scripted failure ({status})"
    if status == 429:
        raise litellm.RateLimitError(message, llm_provider=PROVIDER, model=model)
    if status == "timeout":
        raise litellm.Timeout(message, model=model, llm_provider=PROVIDER)
    raise litellm.InternalServerError(message, llm_provider=PROVIDER, model=model)


def scripted_reply(name: str, messages: list[dict], ctx: dict) -> str:
    """The reply text of scripted:NAME to this conversation (no I/O but sleeps)."""
    spec = load_spec(name)
    if spec.resolve_rate is not None and ctx.get("purpose") == "task":
        step = sum(1 for m in messages if m.get("role") == "assistant")
        resolves = step == 0 and rate_draw(spec.resolve_rate, ctx.get("task_run_id") or "")
        return _render(GOLD_REPLY if resolves else SUBMIT_REPLY, ctx)
    for index, rule in enumerate(spec.rules):
        if not _matches(rule, messages, ctx):
            continue
        fail = rule.get("fail")
        if fail:
            key = (name, index, ctx.get("task_run_id") or ctx.get("agent_id") or "", len(messages))
            with _lock:
                seen = _fail_counts.get(key, 0)
                _fail_counts[key] = seen + 1
            if seen < int(fail.get("times", 1)):
                if rule.get("latency_s"):
                    time.sleep(float(rule["latency_s"]))
                _raise_failure(fail, name)
        if rule.get("latency_s"):
            time.sleep(float(rule["latency_s"]))
        return _render(rule.get("reply", spec.default_reply), ctx)
    return _render(spec.default_reply, ctx)


TOKEN_CHARS = 4


def _approx_tokens(text: str) -> int:
    # A stable stand-in for a tokenizer: scripted costs must be deterministic.
    return max(1, len(text) // TOKEN_CHARS)


def approx_prompt_tokens(messages: list[dict]) -> int:
    """Prompt tokens as scripted models bill them (also the client's estimate for unknown tokenizers)."""
    return sum(_approx_tokens(_text(m)) for m in messages)


_registered = False
_priced: set[str] = set()


def register_with_litellm() -> None:
    """Make `scripted/...` a litellm provider (idempotent)."""
    global _registered
    if _registered:
        return
    litellm = load_litellm()
    from litellm import CustomLLM
    from litellm.types.utils import Choices, Message, Usage

    class ScriptedLLM(CustomLLM):
        def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                       print_verbose, encoding, api_key, logging_obj, optional_params,
                       acompletion=None, litellm_params=None, logger_fn=None, headers={},
                       timeout=None, client=None):
            metadata = (litellm_params or {}).get("metadata") or {}
            ctx = metadata.get("dgm") or {}
            spec = load_spec(model)
            if spec.latency_s:
                time.sleep(spec.latency_s)
            text = scripted_reply(model, messages, ctx)
            finish = "stop"
            # Like a provider: a reply longer than max_tokens (or the model's
            # own output limit) is cut there.
            limit = (optional_params or {}).get("max_tokens")
            if not (isinstance(limit, int) and limit > 0):
                limit = spec.max_output_tokens
            elif spec.max_output_tokens:
                limit = min(limit, spec.max_output_tokens)  # no model writes past its own limit
            if limit and _approx_tokens(text) > limit:
                text, finish = text[: limit * TOKEN_CHARS], "length"
            prompt_tokens = approx_prompt_tokens(messages)
            completion_tokens = _approx_tokens(text)
            model_response.choices = [
                Choices(index=0, finish_reason=finish, message=Message(role="assistant", content=text))
            ]
            model_response.model = f"{PROVIDER}/{model}"
            model_response.usage = Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
            return model_response

    litellm.custom_provider_map = [
        *[p for p in (litellm.custom_provider_map or []) if p.get("provider") != PROVIDER],
        {"provider": PROVIDER, "custom_handler": ScriptedLLM()},
    ]
    _registered = True


def register_pricing(model: str) -> None:
    """Tell litellm what a scripted model costs, so cost goes through litellm too."""
    litellm = load_litellm()
    if litellm_name(model) in _priced:
        return
    _priced.add(litellm_name(model))

    name = litellm_name(model)[len(PROVIDER) + 1 :]
    spec = load_spec(name)
    entry = {
        "input_cost_per_token": float(spec.pricing.get("input_cost_per_token", 0.0)),
        "output_cost_per_token": float(spec.pricing.get("output_cost_per_token", 0.0)),
        "litellm_provider": PROVIDER,
        "mode": "chat",
    }
    if spec.max_output_tokens:
        entry["max_output_tokens"] = spec.max_output_tokens
    litellm.register_model({litellm_name(model): entry})
