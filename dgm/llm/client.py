"""Every LLM call of dgm goes through `LLMClient.complete`.

One place does what each call needs: the budget check before it, litellm for
the provider, retries with backoff on rate limits / server errors / timeouts,
cost from litellm's price table, and a row in `llm_calls` with the request
and response kept as an artifact. Failed attempts are recorded too, so the
archive explains where time and money went.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from dgm.errors import BudgetExceeded
from dgm.llm import scripted


_litellm_module = None
_litellm_lock = threading.Lock()


def load_litellm():
    """Import litellm once, quietly: its import takes seconds and it logs a lot."""
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is None:
            import logging

            import litellm

            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.ERROR)
            _litellm_module = litellm
    return _litellm_module


class UpstreamError(Exception):
    """The model could not be reached after all retries (or refused the request).

    `outage`: the errors were of the kind worth retrying (rate limits, server
    errors, timeouts) and every retry failed: the provider is down, which says
    nothing about the request. Otherwise the request itself was refused.
    """

    def __init__(self, message: str, *, outage: bool = False):
        super().__init__(message)
        self.outage = outage


@dataclass
class CallContext:
    """Who a call is for: attribution, budget and (for scripted models) the task."""

    purpose: str  # task | diagnose | self_modify | other
    model: str
    campaign_id: str | None = None
    agent_id: str | None = None
    task_run_id: str | None = None
    task_id: str | None = None
    gold_patch: str | None = None
    """Only ever handed to scripted models (the `scripted:gold` self-check)."""
    task_difficulty: int | None = None
    replay: "Replayer | None" = None

    def __post_init__(self):
        # Checked here, before any call: a provider's answer that cannot be
        # recorded would be a dollar spent and not accounted for.
        if self.task_run_id is None and self.agent_id is None:
            raise ValueError("an LLM call must be attributable: give it a task_run_id or an agent_id")


def request_hash(model: str, messages: list[dict], params: dict) -> str:
    canonical = json.dumps({"model": model, "messages": messages, "params": params},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Budget:
    """A hard spending cap shared by every worker of a campaign.

    Each call reserves an estimate of its cost (its prompt priced by litellm
    plus the largest completion seen so far) before it starts. A call that
    would not fit beside the calls already in flight waits for them; one that
    would not fit even alone is refused: the campaign stops short of the cap
    rather than step over it. Spend passes the cap only when calls cost more
    than their estimates (a completion longer than any before, an unpriced
    model), and then by at most the calls in flight at that moment.
    """

    def __init__(self, cap_usd: float | None, spent_usd: Callable[[], float]):
        self.cap_usd = cap_usd
        self._spent = spent_usd
        self._cond = threading.Condition()
        self._reserved: dict[int, float] = {}
        self._next = 0

    def acquire(self, estimate: float = 0.0) -> int | None:
        if self.cap_usd is None:
            return None
        with self._cond:
            while True:
                spent = self._spent()
                if spent >= self.cap_usd:
                    raise BudgetExceeded(f"budget of ${self.cap_usd:.4f} reached (spent ${spent:.4f})")
                if spent + sum(self._reserved.values()) + estimate <= self.cap_usd:
                    self._next += 1
                    self._reserved[self._next] = estimate
                    return self._next
                if not self._reserved:
                    raise BudgetExceeded(
                        f"budget of ${self.cap_usd:.4f} nearly reached (spent ${spent:.4f}): the next call, "
                        f"estimated at ${estimate:.4f}, would pass it")
                self._cond.wait(timeout=5.0)

    def release(self, ticket: int | None) -> None:
        if ticket is None:
            return
        with self._cond:
            self._reserved.pop(ticket, None)
            self._cond.notify_all()

    def exhausted(self) -> bool:
        return self.cap_usd is not None and self._spent() >= self.cap_usd


class Replayer:
    """Serves recorded responses in order; notes the first divergence.

    Divergence = the agent's request at step N no longer hashes to the one
    recorded at step N (agent code, task or model changed).
    """

    def __init__(self, recorded: list[tuple[str, dict]]):
        self.recorded = recorded  # (request_hash, response dict) in seq order
        self.position = 0
        self.divergence: dict | None = None
        self._lock = threading.Lock()

    def next(self, req_hash: str) -> dict | None:
        with self._lock:
            if self.position >= len(self.recorded):
                if self.divergence is None:
                    self.divergence = {"step": self.position, "reason": "more requests than recorded"}
                return None
            expected, response = self.recorded[self.position]
            if expected != req_hash and self.divergence is None:
                self.divergence = {"step": self.position, "reason": "request differs from the recording",
                                   "expected_hash": expected, "actual_hash": req_hash}
            self.position += 1
            return response


RETRYABLE_NAMES = ("RateLimitError", "InternalServerError", "ServiceUnavailableError",
                   "APIConnectionError", "Timeout", "APIError")
# The request itself is wrong (unknown model, bad key, too long a prompt): retrying
# cannot help and it is no outage, though openai's classes make these APIErrors too.
FINAL_NAMES = ("BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
               "UnprocessableEntityError", "ContextWindowExceededError", "ContentPolicyViolationError",
               "UnsupportedParamsError", "InvalidRequestError")


def is_retryable(exc: BaseException) -> bool:
    names = [cls.__name__ for cls in type(exc).__mro__]
    if any(name in FINAL_NAMES for name in names):
        return False
    return any(name in RETRYABLE_NAMES for name in names)


class LLMClient:
    def __init__(self, store, *, max_retries: int | None = None, backoff_s: float | None = None,
                 timeout_s: float = 300.0, budgets: dict[str, Budget] | None = None):
        self.store = store
        self.max_retries = max_retries if max_retries is not None else int(os.environ.get("DGM_LLM_RETRIES", "4"))
        self.backoff_s = backoff_s if backoff_s is not None else float(os.environ.get("DGM_LLM_BACKOFF_S", "1.0"))
        self.timeout_s = timeout_s
        self.budgets = budgets if budgets is not None else {}
        self._seq_lock = threading.Lock()
        self._max_completion_tokens = 0

    def _estimate(self, litellm, model: str, messages: list[dict]) -> float:
        """Cost of this call if its completion is as long as the longest seen."""
        prompt_tokens = scripted.approx_prompt_tokens(messages)
        if not scripted.is_scripted(model):
            try:
                prompt_tokens = litellm.token_counter(model=model, messages=messages)
            except Exception:  # noqa: BLE001 - unknown tokenizer: the rough count will do
                pass
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model, prompt_tokens=prompt_tokens, completion_tokens=self._max_completion_tokens or 1000)
            return float(prompt_cost + completion_cost)
        except Exception:  # noqa: BLE001 - unpriced model: only the one-call rule applies
            return 0.0

    def budget_for(self, campaign_id: str | None) -> Budget | None:
        return self.budgets.get(campaign_id) if campaign_id else None

    def complete(self, ctx: CallContext, messages: list[dict], **params: Any) -> dict:
        """One chat completion, recorded. Raises BudgetExceeded or UpstreamError."""
        litellm = load_litellm()

        params = {k: v for k, v in params.items() if v is not None}
        req_hash = request_hash(ctx.model, messages, params)
        if ctx.replay is not None:
            return self._serve_replay(ctx, messages, params, req_hash)

        model = scripted.litellm_name(ctx.model)
        is_scripted = scripted.is_scripted(ctx.model)
        extra: dict[str, Any] = {}
        if is_scripted:
            scripted.register_with_litellm()
            scripted.register_pricing(ctx.model)
            extra["metadata"] = {"dgm": {
                "purpose": ctx.purpose, "task_id": ctx.task_id, "gold_patch": ctx.gold_patch,
                "agent_id": ctx.agent_id, "task_run_id": ctx.task_run_id,
                "task_difficulty": ctx.task_difficulty,
            }}
        budget = self.budget_for(ctx.campaign_id)
        estimate = self._estimate(litellm, model, messages) if budget else 0.0
        attempt = 0
        while True:
            ticket = budget.acquire(estimate) if budget else None
            started = time.monotonic()
            cost = 0.0
            try:
                response = litellm.completion(model=model, messages=messages, timeout=self.timeout_s,
                                              num_retries=0, **params, **extra)
                latency = time.monotonic() - started
                body = response.model_dump()
                completion = int(((body.get("usage") or {}).get("completion_tokens")) or 0)
                self._max_completion_tokens = max(self._max_completion_tokens, completion)
                try:
                    cost = float(litellm.completion_cost(completion_response=response) or 0.0)
                except Exception:  # noqa: BLE001 - unknown price: record 0 and say so
                    cost = 0.0
                    body.setdefault("dgm_warning", "no price known for this model; cost recorded as 0")
                self._record(ctx, messages, params, req_hash, body, cost, latency, "ok", None, is_scripted)
                return body
            except BudgetExceeded:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                latency = time.monotonic() - started
                error = f"{type(exc).__name__}: {str(exc)[:500]}"
                self._record(ctx, messages, params, req_hash, None, 0.0, latency, "error", error, is_scripted)
                retryable = is_retryable(exc)
                if not retryable or attempt >= self.max_retries:
                    raise UpstreamError(error if not retryable else f"{error} (after {attempt + 1} attempts)",
                                        outage=retryable) from None
                # Exponential backoff; a provider's rate limit needs real waiting.
                time.sleep(min(60.0, self.backoff_s * (2 ** attempt)))
                attempt += 1
            finally:
                if budget:
                    budget.release(ticket)

    def _serve_replay(self, ctx, messages, params, req_hash) -> dict:
        response = ctx.replay.next(req_hash)
        if response is None:
            raise UpstreamError("replay: no recorded response for this request")
        self._record(ctx, messages, params, req_hash, response, 0.0, 0.0, "ok", None, True,
                     model_label=f"replay:{ctx.model}")
        return response

    def _record(self, ctx, messages, params, req_hash, body, cost, latency, status, error, is_scripted,
                model_label: str | None = None) -> None:
        artifact = self.store.artifacts.put_json({
            "request": {"model": ctx.model, "messages": messages, "params": params},
            "response": body, "error": error,
        })
        usage = (body or {}).get("usage") or {}
        with self._seq_lock:
            self.store.record_llm_call(
                campaign_id=ctx.campaign_id, agent_id=ctx.agent_id, task_run_id=ctx.task_run_id,
                purpose=ctx.purpose, model=model_label or ctx.model, request_hash=req_hash,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cost_usd=cost, latency_s=latency, status=status, error=error,
                artifact_id=artifact, scripted=is_scripted,
            )
