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
from typing import TYPE_CHECKING, Any, Callable

from dgm.errors import BudgetExceeded
from dgm.llm import model_names, scripted
from dgm.llm.litellm_loader import load_litellm
from dgm.llm.roles import RoleModel

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore


class UpstreamError(Exception):
    """The model could not be reached after all retries (or refused the request).

    `outage`: the errors were of the kind worth retrying (rate limits, server
    errors, timeouts) and every retry failed: the provider is down, which says
    nothing about the request. Otherwise the request itself was refused.
    """

    def __init__(self, message: str, *, outage: bool = False, context_overflow: bool = False):
        super().__init__(message)
        self.outage = outage
        self.context_overflow = context_overflow
        """The prompt did not fit the model's context window (`is_context_overflow`)."""


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
    role: RoleModel | None = None
    """How to reach `model` (endpoint, key variable, price, limits, params); None: litellm's defaults."""
    deadline: float | None = None
    """time.monotonic() at which the run this call is for is over: no call is
    started after it, and one in flight is not waited on past it (a
    one-request-at-a-time local server must not be held by a dead run)."""

    def __post_init__(self):
        # Checked here, before any call: a provider's answer that cannot be
        # recorded would be a dollar spent and not accounted for.
        if self.task_run_id is None and self.agent_id is None:
            raise ValueError("an LLM call must be attributable: give it a task_run_id or an agent_id")


def holds_lone_surrogates(messages: list[dict]) -> bool:
    """Whether some text in `messages` is not valid Unicode ("\ud800" in JSON
    decodes to one): neither a provider nor the archive can take it."""
    try:
        json.dumps(messages, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def valid_unicode(messages: list[dict]) -> list[dict]:
    """`messages` with any lone surrogate replaced (text an agent wrote, such as
    a trajectory read into a diagnosis prompt, may hold one)."""
    if not holds_lone_surrogates(messages):
        return messages
    return json.loads(json.dumps(messages, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8"))


def request_hash(model: str, messages: list[dict], params: dict) -> str:
    canonical = json.dumps({"model": model, "messages": messages, "params": params},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# A budgeted call whose output the budget cannot pay for is capped with
# `max_tokens`; when not even this many output tokens fit, it is not made.
LEAST_OUTPUT_TOKENS = 256
# Output limit assumed for a model whose own limit litellm does not know.
DEFAULT_OUTPUT_TOKENS = 8192
# The max_tokens every call carries unless the caller (or the client's
# `max_output_tokens`) asks for less: a local model told no limit ran on for
# 1,800 tokens (two minutes) on a one-request-at-a-time server.
DEFAULT_MAX_OUTPUT_TOKENS = 4096


@dataclass
class CallPrice:
    """What one call may cost: its prompt, and each output token (all `n` choices)."""

    prompt_usd: float
    usd_per_output_token: float
    wanted_tokens: int
    """The most output the call can produce: its own max_tokens, else the model's limit."""
    limit_known: bool
    """The provider enforces `wanted_tokens` without being told (the call's max_tokens or the model's limit)."""


class Budget:
    """A hard spending cap shared by every worker of a campaign.

    Each call reserves what it can cost at most before it starts: its prompt
    (counted by litellm) plus its longest possible output. When the room left
    under the cap cannot pay for that output, the call is sent with a
    `max_tokens` that it can pay for; when not even `LEAST_OUTPUT_TOKENS`
    fit, it waits for calls in flight to give back what they did not use, or
    is refused when none are in flight. So spend does not pass the cap; it
    can only by what litellm's count of a prompt's tokens misses against the
    provider's, or for a model litellm has no price for (recorded at $0,
    with a warning).
    """

    def __init__(self, cap_usd: float | None, spent_usd: Callable[[], float]):
        self.cap_usd = cap_usd
        self._spent = spent_usd
        self._cond = threading.Condition()
        self._reserved: dict[int, float] = {}
        self._next = 0
        self.after_call: list[Callable[[], None]] = []
        """Called after each call this budget paid for has been recorded (e.g. to say when spend crosses a mark)."""

    def acquire(self, estimate: float = 0.0) -> int | None:
        """Reserve a fixed `estimate` (USD); a ticket for `release`."""
        return self.reserve(CallPrice(estimate, 0.0, 0, True))[0]

    def reserve(self, price: CallPrice) -> tuple[int | None, int | None]:
        """Reserve the most this call can cost: (ticket, output tokens granted).

        The tokens granted are `price.wanted_tokens` when the budget can pay
        for them, fewer when it cannot (the caller sends them as max_tokens);
        None without a cap. Raises BudgetExceeded when the call cannot be made.
        """
        if self.cap_usd is None:
            return None, None
        least = min(price.wanted_tokens, LEAST_OUTPUT_TOKENS)
        with self._cond:
            while True:
                spent = self._spent()
                if spent >= self.cap_usd:
                    raise BudgetExceeded(f"budget of ${self.cap_usd:.4f} reached (spent ${spent:.4f})")
                room = self.cap_usd - spent - sum(self._reserved.values()) - price.prompt_usd
                if price.usd_per_output_token > 0:
                    tokens = min(price.wanted_tokens, max(0, int(room / price.usd_per_output_token)))
                else:
                    tokens = price.wanted_tokens
                if room >= 0 and tokens >= least:
                    self._next += 1
                    self._reserved[self._next] = price.prompt_usd + tokens * price.usd_per_output_token
                    return self._next, tokens
                if not self._reserved:
                    most = price.prompt_usd + least * price.usd_per_output_token
                    raise BudgetExceeded(
                        f"budget of ${self.cap_usd:.4f} nearly reached (spent ${spent:.4f}): the next call "
                        f"could cost ${most:.4f} and would pass it")
                self._cond.wait(timeout=5.0)

    def release(self, ticket: int | None) -> None:
        if ticket is None:
            return
        with self._cond:
            self._reserved.pop(ticket, None)
            self._cond.notify_all()
        for listener in self.after_call:
            listener()

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


NO_KEY = "no-key"
"""Sent as the key to a role's own `api_base` when it names no key variable and the provider's is not set."""


def call_cost(litellm, response, body: dict, role: RoleModel | None) -> float | None:
    """USD of a finished call: by the role's pricing, else by litellm's table; None
    when neither prices the model (recorded as unpriced, never as a free $0)."""
    if role is not None and role.pricing is not None:
        usage = body.get("usage") or {}
        return role.pricing.cost_usd(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # noqa: BLE001 - litellm raises when the model is not in its table
        return None


def has_price(role: RoleModel) -> bool:
    """Whether the role's calls will be priced: its own pricing, a scripted model's, or litellm's table."""
    if role.pricing is not None or model_names.is_scripted(role.name):
        return True
    try:
        load_litellm().cost_per_token(model=role.name, prompt_tokens=1, completion_tokens=1)
    except Exception:  # noqa: BLE001 - not in litellm's table
        return False
    return True


RETRYABLE_NAMES = ("RateLimitError", "InternalServerError", "ServiceUnavailableError",
                   "APIConnectionError", "Timeout", "APIError")
# The request itself is wrong (unknown model, bad key, too long a prompt): retrying
# cannot help and it is no outage, though openai's classes make these APIErrors too.
FINAL_NAMES = ("BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
               "UnprocessableEntityError", "ContextWindowExceededError", "ContentPolicyViolationError",
               "UnsupportedParamsError", "InvalidRequestError")


# HTTP statuses that say the request itself is wrong, and ones worth another try.
FINAL_STATUSES = frozenset({400, 401, 403, 404, 413, 422})
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})

# How servers word "the prompt does not fit the context window" (HTTP 400):
# litellm maps only some of them to ContextWindowExceededError.
CONTEXT_OVERFLOW_WORDINGS = (
    "exceeds the available context size",  # llama.cpp's server (exceed_context_size_error)
    "exceed context window",  # llama-cpp-python: "Requested tokens (N) exceed context window of M"
    "maximum context length",  # vLLM, OpenAI's message
    "context_length_exceeded",  # OpenAI's error code
    "exceeds the context length",  # Ollama: "the input length exceeds the context length"
    "exceeds context length",  # LM Studio
    "prompt is too long",  # Anthropic
    "input is too long",  # Bedrock
    "context window exceeds limit",
)


def is_context_overflow(exc: BaseException) -> bool:
    """Whether the provider refused the call because the prompt (plus the output
    asked for) does not fit the model's context window."""
    if any(cls.__name__ == "ContextWindowExceededError" for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return any(wording in text for wording in CONTEXT_OVERFLOW_WORDINGS)


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, server errors, timeouts and lost connections: yes. A request
    the provider refused (400, 401, 403, 404, a context overflow): no."""
    if is_context_overflow(exc):
        return False
    names = [cls.__name__ for cls in type(exc).__mro__]
    if any(name in FINAL_NAMES for name in names):
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        if status in FINAL_STATUSES:
            return False
        if status in RETRYABLE_STATUSES or status >= 500:
            return True
    return any(name in RETRYABLE_NAMES for name in names)


def output_cut(body: dict) -> bool:
    """Whether some choice of a reply was cut at its output limit."""
    return any(isinstance(c, dict) and c.get("finish_reason") == "length" for c in body.get("choices") or [])


class LLMClient:
    def __init__(self, store: ArchiveStore, *, max_retries: int | None = None, backoff_s: float | None = None,
                 timeout_s: float = 300.0, budgets: dict[str, Budget] | None = None,
                 max_output_tokens: int | None = None):
        """`max_output_tokens`: the max_tokens every call carries (lowered to what a
        caller asks, and to the model's own limit when litellm knows it);
        DGM_LLM_MAX_OUTPUT_TOKENS, else DEFAULT_MAX_OUTPUT_TOKENS."""
        self.store = store
        self.max_output_tokens = max_output_tokens or int(os.environ.get("DGM_LLM_MAX_OUTPUT_TOKENS")
                                                          or DEFAULT_MAX_OUTPUT_TOKENS)
        self.max_retries = max_retries if max_retries is not None else int(os.environ.get("DGM_LLM_RETRIES", "4"))
        self.backoff_s = backoff_s if backoff_s is not None else float(os.environ.get("DGM_LLM_BACKOFF_S", "1.0"))
        self.timeout_s = timeout_s
        self.budgets = budgets if budgets is not None else {}
        self._seq_lock = threading.Lock()

    def _price(self, litellm, model: str, messages: list[dict], params: dict,
               role: RoleModel | None = None) -> CallPrice | None:
        """The most this call can cost, from the role's pricing or litellm's price table; None when
        the model has no price."""
        prompt_tokens = scripted.approx_prompt_tokens(messages)
        if not model_names.is_scripted(model):
            try:
                prompt_tokens = litellm.token_counter(model=model, messages=messages)
            except Exception:  # noqa: BLE001 - unknown tokenizer: the rough count will do
                pass
        if role is not None and role.pricing is not None:
            prompt_usd = role.pricing.cost_usd(prompt_tokens, 0)
            thousand_usd = role.pricing.cost_usd(0, 1000)
        else:
            try:
                prompt_usd, _ = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens,
                                                       completion_tokens=0)
                _, thousand_usd = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens,
                                                         completion_tokens=1000)
            except Exception:  # noqa: BLE001 - unpriced model: recorded as unpriced, nothing to reserve
                return None
        try:
            model_limit = litellm.get_model_info(model).get("max_output_tokens")
        except Exception:  # noqa: BLE001 - not in the map
            model_limit = None
        # Only a whole positive number is a limit a provider enforces; anything
        # else the caller sent is replaced by the budget's own max_tokens.
        asked = params.get("max_tokens")
        limits = [x for x in (asked, model_limit) if type(x) is int and x > 0]
        choices = params.get("n")
        choices = choices if type(choices) is int and choices >= 1 else 1
        return CallPrice(prompt_usd=float(prompt_usd), usd_per_output_token=float(thousand_usd) / 1000 * choices,
                         wanted_tokens=min(limits) if limits else DEFAULT_OUTPUT_TOKENS,
                         limit_known=bool(limits) and (asked is None or type(asked) is int))

    def _routed(self, ctx: CallContext, params: dict) -> tuple[dict, dict, float]:
        """(params to send, litellm's routing arguments, timeout) for the call's role: its
        endpoint and key (read now, on the head), its extra parameters over the caller's (the
        campaign's settings win over an agent's)."""
        extra: dict[str, Any] = {}
        role = ctx.role
        if role is None:
            return params, extra, self.timeout_s
        if role.api_base is not None:
            extra["api_base"] = role.api_base
        try:
            key = role.api_key()
        except KeyError as exc:
            raise UpstreamError(f"{exc.args[0]} is not set on the host: the key of the {ctx.purpose} model "
                                f"{ctx.model} (api_key_env)") from None
        if key is not None:
            extra["api_key"] = key
        elif role.api_base is not None and not model_names.is_scripted(ctx.model) and \
                load_litellm().validate_environment(model_names.litellm_name(ctx.model)).get("missing_keys"):
            # A server of one's own (llama.cpp, vLLM, Ollama) usually takes no key, but
            # litellm's OpenAI path refuses to call without one.
            extra["api_key"] = NO_KEY
        params = {**params, **role.params}  # its output cap is applied with every call's (output_tokens)
        return params, extra, role.timeout_s or self.timeout_s

    def output_tokens(self, litellm, model: str, params: dict, cap: int | None = None) -> int:
        """The max_tokens a call goes out with: `cap` (else the client's), lowered
        to what the caller asked and to the model's own output limit when known."""
        limits = [cap or self.max_output_tokens]
        asked = params.get("max_tokens")
        if type(asked) is int and asked > 0:
            limits.append(asked)
        try:
            model_limit = litellm.get_model_info(model).get("max_output_tokens")
        except Exception:  # noqa: BLE001 - not in litellm's map (a local model, say)
            model_limit = None
        if type(model_limit) is int and model_limit > 0:
            limits.append(model_limit)
        return min(limits)

    @staticmethod
    def _call_timeout(ctx: CallContext, timeout_s: float) -> float | None:
        """Seconds this attempt may take: the role's (or client's) timeout, cut to what
        is left of the run it is for; None when that run is over (the call is not made)."""
        if ctx.deadline is None:
            return timeout_s
        left = ctx.deadline - time.monotonic()
        return min(timeout_s, left) if left >= 1.0 else None

    def budget_for(self, campaign_id: str | None) -> Budget | None:
        return self.budgets.get(campaign_id) if campaign_id else None

    def complete(self, ctx: CallContext, messages: list[dict], **params: Any) -> dict:
        """One chat completion, recorded. Raises BudgetExceeded or UpstreamError."""
        litellm = load_litellm()

        params = {k: v for k, v in params.items() if v is not None}
        messages = valid_unicode(messages)
        req_hash = request_hash(ctx.model, messages, params)
        if ctx.replay is not None:
            return self._serve_replay(ctx, messages, params, req_hash)

        model = model_names.litellm_name(ctx.model)
        is_scripted = model_names.is_scripted(ctx.model)
        extra: dict[str, Any] = {}
        if is_scripted:
            scripted.register_with_litellm()
            scripted.register_pricing(ctx.model)
            extra["metadata"] = {"dgm": {
                "purpose": ctx.purpose, "task_id": ctx.task_id, "gold_patch": ctx.gold_patch,
                "agent_id": ctx.agent_id, "task_run_id": ctx.task_run_id,
                "task_difficulty": ctx.task_difficulty,
            }}
        role = ctx.role
        wanted, routing, timeout_s = self._routed(ctx, params)
        extra.update(routing)
        budget = self.budget_for(ctx.campaign_id)
        # Every call carries a max_tokens (the role's cap, else the client's); the hash and
        # `params` keep what the caller asked.
        cap = role.max_output_tokens if role is not None else None
        wanted = {**wanted, "max_tokens": self.output_tokens(litellm, model, wanted, cap)}
        price = self._price(litellm, model, messages, wanted, role) if budget else None
        attempt = 0
        while True:
            timeout = self._call_timeout(ctx, timeout_s)
            if timeout is None:
                raise UpstreamError("the run this call was for is over: not sent")
            ticket, granted = None, None
            if budget:
                # Unpriced (recorded as such, at no dollar figure): only a cap already reached refuses it.
                ticket, granted = budget.reserve(price) if price else (budget.acquire(0.0), None)
            sent = dict(wanted)
            if granted is not None and price.usd_per_output_token > 0 and granted < sent["max_tokens"]:
                sent["max_tokens"] = granted  # what the budget can pay for
            started = time.monotonic()
            cost = 0.0
            try:
                response = litellm.completion(model=model, messages=messages, timeout=timeout,
                                              num_retries=0, **sent, **extra)
                latency = time.monotonic() - started
                body = response.model_dump()
                cost = call_cost(litellm, response, body, role)
                if cost is None:
                    body.setdefault("dgm_warning", "no price known for this model: recorded as unpriced")
                if output_cut(body):
                    # Recorded with the reply, and the agent reads it: the reply is
                    # not what the model would have said, it is where it was stopped.
                    body["dgm_note"] = f"reply cut at the output limit (max_tokens={sent['max_tokens']})"
                self._record(ctx, messages, params, req_hash, body, cost, latency, "ok", None, is_scripted,
                             sent=sent)
                return body
            except BudgetExceeded:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                latency = time.monotonic() - started
                # litellm puts a handler's whole traceback in the message: its first part is the news.
                error = f"{type(exc).__name__}: {str(exc).split('Traceback (most recent call last)')[0].strip()[:500]}"
                # Nothing billed; but a refusal by an unpriced model is no proof of $0 either.
                refused_cost = 0.0 if role is None or has_price(role) else None
                self._record(ctx, messages, params, req_hash, None, refused_cost, latency, "error", error,
                             is_scripted, sent=sent)
                if is_context_overflow(exc):
                    # Worded so the diagnosis finds it (dgm.evolution.diagnose.CONTEXT_MARKERS).
                    raise UpstreamError(f"context length exceeded: {error}", context_overflow=True) from None
                retryable = is_retryable(exc)
                if retryable and ctx.deadline is not None and time.monotonic() >= ctx.deadline - 1.0:
                    # The run ended while this call was in flight: nobody is waiting for a retry.
                    raise UpstreamError(f"{error} (the run it was for ended meanwhile)") from None
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
                model_label: str | None = None, sent: dict | None = None) -> None:
        request = {"model": ctx.model, "messages": messages, "params": params}
        if sent is not None and sent != params:
            request["sent_params"] = sent  # the budget capped max_tokens; `params` is what the caller asked
        artifact = self.store.artifacts.put_json({
            "request": request,
            "response": body, "error": error,
        })
        usage = (body or {}).get("usage") or {}
        with self._seq_lock:
            self.store.record_llm_call(
                campaign_id=ctx.campaign_id, agent_id=ctx.agent_id, task_run_id=ctx.task_run_id,
                purpose=ctx.purpose, model=model_label or ctx.model, request_hash=req_hash,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cost_usd=cost or 0.0, latency_s=latency, status=status, error=error,
                artifact_id=artifact, scripted=is_scripted, priced=cost is not None,
                api_base=ctx.role.api_base if ctx.role is not None else None,
            )
