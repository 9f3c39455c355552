"""Replies as real servers send them: max_tokens on every call, context-length
errors in each server's wording, replies cut at the output limit, what is
retried and what is not, and calls whose run is over (no Docker).

The upstream is an OpenAI-compatible HTTP server on loopback; litellm, its
OpenAI client, HTTP and the gateway are real."""

from __future__ import annotations

import http.server
import json
import random
import threading
import time
from types import SimpleNamespace

import httpx
import litellm
import pytest

from dgm.evolution.diagnose import choose_target
from dgm.llm.client import (DEFAULT_MAX_OUTPUT_TOKENS, CallContext, LLMClient, UpstreamError, is_context_overflow,
                            is_retryable)
from dgm.llm.gateway import Gateway
from tests.unit.test_llm import _completion, _FakeOpenAI, _seeded, post

MODEL = "openai/local-model"  # unknown to litellm's map, like a model on a local server


@pytest.fixture
def upstream_env(monkeypatch):
    def point_at(server):
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        return server
    return point_at


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))


# Messages as the servers send them (HTTP 400 bodies), then what litellm raises from them.
LLAMA_CPP = "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it"
LLAMA_CPP_PYTHON = "Requested tokens (2100) exceed context window of 2048"
VLLM = ("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
        "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.")
OLLAMA = "the input length exceeds the context length"
OPENAI_CODE = "Error code: 400 - {'error': {'code': 'context_length_exceeded', 'message': 'too long'}}"
ANTHROPIC = "prompt is too long: 210000 tokens > 200000 maximum"


@pytest.mark.parametrize("exc, retry, overflow", [
    (litellm.BadRequestError("'temperature' must be at most 2", "m", "openai"), False, False),
    (litellm.BadRequestError(LLAMA_CPP, "m", "openai"), False, True),
    (litellm.BadRequestError(LLAMA_CPP_PYTHON, "m", "openai"), False, True),
    (litellm.BadRequestError(VLLM, "m", "hosted_vllm"), False, True),
    (litellm.BadRequestError(OLLAMA, "m", "ollama"), False, True),
    (litellm.BadRequestError(OPENAI_CODE, "m", "openai"), False, True),
    (litellm.BadRequestError(ANTHROPIC, "m", "anthropic"), False, True),
    (litellm.ContextWindowExceededError("too long", "m", "openai"), False, True),
    (litellm.AuthenticationError("bad key", "openai", "m"), False, False),
    (litellm.NotFoundError("no such model", "m", "openai"), False, False),
    (litellm.APIError(400, "bad request", "openai", "m"), False, False),
    (litellm.APIError(404, "not found", "openai", "m"), False, False),
    (litellm.RateLimitError("slow down", "openai", "m"), True, False),
    (litellm.InternalServerError("boom", "openai", "m"), True, False),
    (litellm.ServiceUnavailableError("busy", "openai", "m"), True, False),
    (litellm.APIError(503, "overloaded", "openai", "m"), True, False),
    (litellm.APIError(502, "bad gateway", "openai", "m"), True, False),
    (litellm.Timeout("timed out", "m", "openai"), True, False),
    (litellm.APIConnectionError("connection refused", "openai", "m"), True, False),
])
def test_errors_are_classified_as_retried_final_or_context_overflow(exc, retry, overflow):
    assert is_retryable(exc) is retry
    assert is_context_overflow(exc) is overflow


@pytest.mark.parametrize("message", [LLAMA_CPP, LLAMA_CPP_PYTHON, VLLM, OLLAMA, ANTHROPIC])
def test_a_context_overflow_reaches_the_agent_as_a_400_and_points_the_diagnosis_at_it(store, upstream_env, message):
    """The server's 400 is not retried, the agent reads a 400 saying what it is,
    and the run's error carries it, so the diagnosis picks the context-length
    target for that run (before the empty patches it also left)."""
    server = upstream_env(_FakeOpenAI([(400, {"error": {"message": message, "type": "invalid_request_error",
                                                        "code": 400}})] * 3))
    campaign, agent = _seeded(store, "overflow", "eval")
    try:
        with Gateway(LLMClient(store, max_retries=2, backoff_s=0.01)) as gateway:
            token = gateway.grant(CallContext(purpose="task", model=MODEL, campaign_id=campaign.id,
                                              agent_id=agent.id))
            status, body = post(gateway, token, {"messages": [{"role": "user", "content": "fix the bug"}]})
            noted = gateway.take_context_overflow(token)
            assert gateway.take_context_overflow(token) is None  # taken once
    finally:
        server.close()
    assert status == 400 and body["error"]["type"] == "context_length_exceeded"
    assert "context length exceeded" in body["error"]["message"]
    assert len(server.requests) == 1
    assert [c.status for c in store.list_llm_calls(campaign_id=campaign.id)] == ["error"]
    assert noted is not None and "context length exceeded" in noted
    runs = [SimpleNamespace(id="r1", task_id="t1", status="empty_patch", error=None),
            SimpleNamespace(id="r2", task_id="t2", status="empty_patch", error=noted)]
    target = choose_target(runs, random.Random(0))
    assert (target.kind, target.task_run_id) == ("context_length", "r2")


def test_every_call_carries_max_tokens_within_the_client_cap(store, upstream_env):
    server = upstream_env(_FakeOpenAI([(200, _completion("ok", 10, 2))] * 5))
    campaign, agent = _seeded(store, "capped-output", "eval")
    ctx = CallContext(purpose="diagnose", model=MODEL, campaign_id=campaign.id, agent_id=agent.id)
    try:
        LLMClient(store).complete(ctx, [{"role": "user", "content": "a"}])
        small = LLMClient(store, max_output_tokens=256)
        small.complete(ctx, [{"role": "user", "content": "b"}])
        small.complete(ctx, [{"role": "user", "content": "c"}], max_tokens=100)
        small.complete(ctx, [{"role": "user", "content": "d"}], max_tokens=10**6)
        # A call's own cap (its role's max_output_tokens) replaces the client's.
        from dgm.llm.roles import RoleModel

        role = CallContext(purpose="diagnose", model=MODEL, campaign_id=campaign.id, agent_id=agent.id,
                           role=RoleModel(model=MODEL, max_output_tokens=1000))
        small.complete(role, [{"role": "user", "content": "e"}])
    finally:
        server.close()
    sent = [r["body"].get("max_tokens", r["body"].get("max_completion_tokens")) for r in server.requests]
    assert sent == [DEFAULT_MAX_OUTPUT_TOKENS, 256, 100, 256, 1000]
    # What the caller asked stays apart from what went out (the request hash is the caller's).
    last = store.artifacts.get_json(store.list_llm_calls(campaign_id=campaign.id)[3].artifact_id)["request"]
    assert last["params"]["max_tokens"] == 10**6 and last["sent_params"]["max_tokens"] == 256


def test_a_reply_cut_at_the_output_limit_says_so(store, upstream_env):
    cut = _completion("```bash\nls -", 10, 64)
    cut["choices"][0]["finish_reason"] = "length"
    server = upstream_env(_FakeOpenAI([(200, cut)]))
    campaign, agent = _seeded(store, "cut", "eval")
    try:
        body = LLMClient(store, max_output_tokens=64).complete(
            CallContext(purpose="task", model=MODEL, campaign_id=campaign.id, agent_id=agent.id),
            [{"role": "user", "content": "go"}])
    finally:
        server.close()
    assert body["dgm_note"] == "reply cut at the output limit (max_tokens=64)"
    call = store.list_llm_calls(campaign_id=campaign.id)[0]
    assert call.status == "ok" and call.completion_tokens == 64
    assert store.artifacts.get_json(call.artifact_id)["response"]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("first, requests, outcome", [
    (503, 2, "ok"), (500, 2, "ok"), (429, 2, "ok"),
    (400, 1, "refused"), (401, 1, "refused"), (404, 1, "refused"),
])
def test_server_errors_are_retried_and_refusals_are_not(store, upstream_env, first, requests, outcome):
    server = upstream_env(_FakeOpenAI([(first, {"error": {"message": f"status {first}", "type": "x"}}),
                                       (200, _completion("ok", 10, 2))]))
    campaign, agent = _seeded(store, f"status-{first}", "eval")
    client = LLMClient(store, max_retries=2, backoff_s=0.01)
    ctx = CallContext(purpose="task", model=MODEL, campaign_id=campaign.id, agent_id=agent.id)
    try:
        if outcome == "ok":
            assert client.complete(ctx, [{"role": "user", "content": "go"}])["choices"][0]["message"]["content"] == "ok"
        else:
            with pytest.raises(UpstreamError) as info:
                client.complete(ctx, [{"role": "user", "content": "go"}])
            assert info.value.outage is False
    finally:
        server.close()
    assert len(server.requests) == requests


class _SlowServer:
    """Answers every request after `delay_s`, like a slow local server."""

    def __init__(self, delay_s: float):
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                time.sleep(delay_s)
                data = json.dumps(_completion("late", 10, 2)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # close() does not wait for a sleeping reply
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_call_whose_run_is_over_is_not_sent_nor_waited_on_past_the_run(store, upstream_env):
    """A run's call is not waited on past the run's end (the client's own timeout
    is 300 s), is not retried once the run is over, and none starts after it."""
    server = upstream_env(_SlowServer(delay_s=60.0))
    campaign, agent = _seeded(store, "abandoned", "eval")
    client = LLMClient(store, max_retries=3, backoff_s=0.01, timeout_s=300.0)
    try:
        ctx = CallContext(purpose="task", model=MODEL, campaign_id=campaign.id, agent_id=agent.id,
                          deadline=time.monotonic() + 2.0)
        started = time.monotonic()
        with pytest.raises(UpstreamError, match="ended meanwhile") as info:
            client.complete(ctx, [{"role": "user", "content": "go"}])
        waited = time.monotonic() - started
        assert info.value.outage is False  # the model was not down: the run ended
        assert waited < 30.0, waited  # 2 s and the first call's set-up, not the 60 s reply or 300 s timeout
        over = CallContext(purpose="task", model=MODEL, campaign_id=campaign.id, agent_id=agent.id,
                           deadline=time.monotonic() - 1.0)
        with pytest.raises(UpstreamError, match="is over: not sent"):
            client.complete(over, [{"role": "user", "content": "go"}])
    finally:
        server.close()
    assert server.requests == 1


def test_a_recorded_run_bounds_its_calls_by_its_time_limit_and_keeps_a_context_overflow_as_its_error(
        store, upstream_env, monkeypatch):
    """RecordedRun grants the agent a token whose calls end with the run (its
    time limit plus a grace), and a context overflow one of them met becomes
    the run's error. The sandbox is replaced by an agent that makes one call
    through the gateway: what is under test is the wiring around it."""
    import dgm.recorded_run as recorded_run
    from dgm.recorded_run import CALL_GRACE_S, start_recorded_run
    from dgm.sandbox.agent_run import AgentRunResult

    server = upstream_env(_FakeOpenAI([(400, {"error": {"message": LLAMA_CPP, "type": "exceed_context_size_error",
                                                        "code": 400}})]))
    campaign, agent = _seeded(store, "recorded", "eval")
    seen = {}

    def agent_in_sandbox(docker_client, *, token, time_limit_s, **_):
        seen["ctx"] = gateway.context(token)
        seen["granted_at"] = time.monotonic()
        seen["reply"] = post(gateway, token, {"messages": [{"role": "user", "content": "x"}]})
        return AgentRunResult(status="ok", patch="", agent_log="", agent_exit_code=0, agent_duration_s=1.0,
                              wall_s=1.0)

    monkeypatch.setattr(recorded_run, "run_agent", agent_in_sandbox)
    run = start_recorded_run(store, campaign_id=campaign.id, agent_id=agent.id, kind="task", benchmark="dgm-mini",
                             task_id="t1", stage="eval", model=MODEL)
    ctx = CallContext(purpose="task", model=MODEL, campaign_id=campaign.id, agent_id=agent.id,
                      task_run_id=run.row.id)
    try:
        with Gateway(LLMClient(store, max_retries=2, backoff_s=0.01)) as gateway:
            result = run.run_agent(None, gateway, ctx, gateway_socket_path_in_container="/x", time_limit_s=60.0)
    finally:
        server.close()
    assert seen["reply"][0] == 400 and seen["reply"][1]["error"]["type"] == "context_length_exceeded"
    assert seen["ctx"].deadline == pytest.approx(seen["granted_at"] + 60.0 + CALL_GRACE_S, abs=2.0)
    assert ctx.deadline is None  # the caller's context is not changed
    assert result.error.startswith("context length exceeded:")
