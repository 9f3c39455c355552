"""The gateway, the litellm client, scripted models and the budget (no Docker)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from dgm.errors import BudgetExceeded, UsageError
from dgm.llm import scripted
from dgm.llm.client import Budget, CallContext, LLMClient, UpstreamError
from dgm.llm.gateway import Gateway


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path_)


def post(gateway, token, body):
    conn = UnixConnection(gateway.socket_path)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", "/v1/chat/completions", body=data,
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _seeded(store, name: str, kind: str):
    """A campaign and its seed agent, for calls to be attributed to."""
    from dgm.agent_code import SEED_AGENT_DIR

    campaign = store.create_campaign(name=name, kind=kind, config={})
    sha = store.code.commit_tree(str(SEED_AGENT_DIR), message="seed")
    return campaign, store.add_agent(campaign.id, sha, status="seed", origin="seed")


def _noop_token(gateway, campaign, agent) -> str:
    return gateway.grant(CallContext(purpose="task", model="scripted:noop", campaign_id=campaign.id,
                                     agent_id=agent.id))


def test_gateway_attributes_records_and_refuses(store):
    campaign, agent = _seeded(store, "gw", "eval")
    with Gateway(LLMClient(store)) as gateway:
        token = _noop_token(gateway, campaign, agent)
        # The agent asks for a dearer model: the granted one is used anyway.
        status, body = post(gateway, token, {"model": "openai/gpt-5", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and scripted.SUBMIT_SENTINEL in body["choices"][0]["message"]["content"]
        assert post(gateway, "wrong", {"messages": []})[0] == 401
        assert post(gateway, token, b"{not json")[0] == 400
        assert post(gateway, token, {"messages": "nope"})[0] == 400
        gateway.revoke(token)
        assert post(gateway, token, {"messages": [{"role": "user", "content": "hi"}]})[0] == 401
    calls = store.list_llm_calls(campaign_id=campaign.id)
    assert len(calls) == 1
    call = calls[0]
    assert (call.purpose, call.model, call.agent_id, call.scripted, call.status) == \
        ("task", "scripted:noop", agent.id, True, "ok")
    transcript = store.artifacts.get_json(call.artifact_id)
    assert transcript["request"]["messages"][0]["content"] == "hi" and transcript["response"]["choices"]


@pytest.mark.parametrize("body,says", [
    ({"messages": [{"role": "user", "content": 12345}]}, "content must be a string"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}, "content must be a string"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "text": 123}]}]}, "content must be a string"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "content must be a string"),
    ({"messages": [{"role": "user", "content": "A\ud800B"}]}, "not valid Unicode"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": float("nan")}, "NaN is not valid JSON"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role is one of"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5.5}, "max_tokens must be a positive integer"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "100"}, "max_tokens must be"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": True}, "max_tokens must be"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 50}, "n must be an integer from 1 to 16"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature must be a finite number"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": [1]}, "stop must be"),
    ([1, 2], "JSON object"),
    (b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "x": NaN}]}]}', "NaN is not valid JSON"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "zz": -Infinity}', "-Infinity is not valid JSON"),
])
def test_a_request_litellm_or_the_budget_would_misread_is_a_400_and_never_reaches_the_model(store, body, says):
    """A self-modified agent's malformed request must be its own error, not a
    "connection error" retried as an outage that stops the campaign, nor a
    max_tokens the budget's cap does not bind."""
    campaign, agent = _seeded(store, "gw", "eval")
    with Gateway(LLMClient(store)) as gateway:
        token = _noop_token(gateway, campaign, agent)
        status, reply = post(gateway, token, body)
        assert (status, reply["error"]["type"]) == (400, "invalid_request_error") and says in reply["error"]["message"]
        # The same connection limits apply, and a good request still works.
        ok = post(gateway, token, {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                   "max_tokens": 300, "n": 1})
        assert ok[0] == 200
    assert len(store.list_llm_calls(campaign_id=campaign.id)) == 1


def test_an_oversized_request_gets_an_answer_not_a_broken_pipe(store):
    from dgm.llm.gateway import MAX_REQUEST_BYTES

    campaign, agent = _seeded(store, "gw", "eval")
    with Gateway(LLMClient(store)) as gateway:
        token = _noop_token(gateway, campaign, agent)
        big = json.dumps({"messages": [{"role": "user", "content": "x" * (MAX_REQUEST_BYTES + 1000)}]}).encode()
        status, reply = post(gateway, token, big)
    assert status == 413 and "larger than" in reply["error"]["message"]
    assert store.list_llm_calls(campaign_id=campaign.id) == []


def test_a_connection_over_the_cap_reads_a_429_even_if_it_sends_late(store):
    """A refused connection is answered before its request arrives; closing it
    at once made a client that sent a moment later fail with a broken pipe
    instead of reading why it was refused."""
    import time

    campaign, agent = _seeded(store, "gw", "eval")
    with Gateway(LLMClient(store), max_connections_per_sandbox=2) as gateway:
        token = _noop_token(gateway, campaign, agent)
        held = [socket.socket(socket.AF_UNIX) for _ in range(2)]  # this process's whole allowance
        for sock in held:
            sock.connect(gateway.socket_path)

        class LateSender(UnixConnection):
            def connect(self):
                super().connect()
                time.sleep(0.3)  # the gateway refuses meanwhile

        late = LateSender(gateway.socket_path)
        late.request("POST", "/v1/chat/completions", body=json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = late.getresponse()
        assert (response.status, json.loads(response.read())["error"]["type"]) == (429, "rate_limit_error")
        for sock in held:
            sock.close()
    assert store.list_llm_calls(campaign_id=campaign.id) == []


def _run_concurrently(worker, n: int) -> None:
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("actual", [0.3, 0.45])
def test_budget_stops_short_of_the_cap_and_passes_it_only_by_what_estimates_missed(actual):
    """Eight workers, calls estimated at 0.3 against a cap of 1.0: with exact
    estimates spend stops at 0.9 (a fourth call would pass the cap, so it is
    refused); with calls costing 0.45 each, spend passes the cap by at most
    what the calls in flight cost beyond their estimates."""
    spent = {"usd": 0.0}
    lock = threading.Lock()
    budget = Budget(1.0, lambda: spent["usd"])
    refusals = []

    def worker():
        while True:
            try:
                ticket = budget.acquire(estimate=0.3)
            except BudgetExceeded as exc:
                refusals.append(str(exc))
                return
            with lock:
                spent["usd"] += actual
            budget.release(ticket)

    _run_concurrently(worker, 8)
    if actual == 0.3:
        assert spent["usd"] == pytest.approx(0.9)  # never over; no fourth call fits
        assert any("would pass it" in r for r in refusals)
    else:
        in_flight_at_most = 3  # 3 x 0.3 fit beside each other under 1.0
        assert spent["usd"] <= 1.0 + in_flight_at_most * (actual - 0.3) + 1e-9
    assert len(refusals) == 8


def test_budget_reservations_never_pass_the_cap_even_when_every_call_uses_all_it_is_granted():
    """Eight workers whose calls each use every output token they are granted:
    grants shrink as the cap nears, spend never passes it, and what is left at
    the end is less than the smallest call worth making."""
    from dgm.llm.client import LEAST_OUTPUT_TOKENS, CallPrice

    spent = {"usd": 0.0}
    lock = threading.Lock()
    budget = Budget(1.0, lambda: spent["usd"])
    price = CallPrice(prompt_usd=0.01, usd_per_output_token=1e-4, wanted_tokens=1500, limit_known=True)
    grants, refusals = [], []

    def worker():
        while True:
            try:
                ticket, tokens = budget.reserve(price)
            except BudgetExceeded as exc:
                refusals.append(str(exc))
                return
            with lock:
                grants.append(tokens)
                spent["usd"] += price.prompt_usd + tokens * price.usd_per_output_token
            budget.release(ticket)

    _run_concurrently(worker, 8)
    assert spent["usd"] <= 1.0 + 1e-9
    assert 1.0 - spent["usd"] < price.prompt_usd + LEAST_OUTPUT_TOKENS * price.usd_per_output_token
    assert max(grants) == 1500 and min(grants) < 1500  # cut near the end, not before
    assert all(g >= LEAST_OUTPUT_TOKENS for g in grants)
    assert len(refusals) == 8 and all("would pass it" in r or "reached" in r for r in refusals)


def _priced_model(tmp_path, *, reply_chars: int, max_output_tokens: int | None = None) -> str:
    spec = {"pricing": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-4},
            "default_reply": "x" * reply_chars}
    if max_output_tokens:
        spec["max_output_tokens"] = max_output_tokens
    path = tmp_path / f"priced-{reply_chars}-{max_output_tokens}.json"
    path.write_text(json.dumps(spec))
    return f"scripted:{path}"


def _budgeted(store, cap):
    campaign, agent = _seeded(store, "capped", "evolution")
    budget = Budget(cap, lambda: store.campaign_spend(campaign.id))
    # Output cap far above the budget's, so that the budget is what binds.
    return campaign, agent, LLMClient(store, budgets={campaign.id: budget}, max_output_tokens=200_000)


def test_a_reply_longer_than_the_budget_can_pay_for_is_cut_at_the_cap(store, tmp_path):
    """A model that answers 100,000 tokens at $1e-4 each ($10) under a $0.50
    cap: the call goes out with the max_tokens the budget can pay for, the
    reply is cut there, spend stays under the cap, and the next call is
    refused. Without a budget the same call costs the whole $10."""
    model = _priced_model(tmp_path, reply_chars=400_000)
    campaign, agent, client = _budgeted(store, 0.50)
    ctx = CallContext(purpose="diagnose", model=model, campaign_id=campaign.id, agent_id=agent.id)
    body = client.complete(ctx, [{"role": "user", "content": "why did it fail?"}])
    assert body["choices"][0]["finish_reason"] == "length"
    spent = store.campaign_spend(campaign.id)
    assert 0.49 < spent <= 0.50
    call = store.list_llm_calls(campaign_id=campaign.id)[0]
    request = store.artifacts.get_json(call.artifact_id)["request"]
    assert "max_tokens" not in request["params"]  # what was asked, kept apart from
    assert request["sent_params"]["max_tokens"] == call.completion_tokens < 5000  # what the budget allowed
    with pytest.raises(BudgetExceeded, match="nearly reached"):
        client.complete(ctx, [{"role": "user", "content": "and now?"}])
    assert store.campaign_spend(campaign.id) == spent
    # The control: unbudgeted and with room for it, the model really does run to $10.
    free = LLMClient(store, max_output_tokens=200_000)
    free.complete(CallContext(purpose="diagnose", model=model, agent_id=agent.id),
                  [{"role": "user", "content": "why did it fail?"}])
    assert max(c.cost_usd for c in store.list_llm_calls()) == pytest.approx(10.0, rel=0.01)


def test_a_call_the_budget_can_pay_for_whole_goes_out_as_asked(store, tmp_path):
    """Room for the model's longest reply: it goes out with the model's own
    limit as max_tokens (every call carries one), and the spend is what it cost."""
    model = _priced_model(tmp_path, reply_chars=400_000, max_output_tokens=1000)
    campaign, agent, client = _budgeted(store, 5.0)
    ctx = CallContext(purpose="diagnose", model=model, campaign_id=campaign.id, agent_id=agent.id)
    body = client.complete(ctx, [{"role": "user", "content": "hi"}])
    call = store.list_llm_calls(campaign_id=campaign.id)[0]
    assert store.artifacts.get_json(call.artifact_id)["request"]["sent_params"]["max_tokens"] == 1000
    assert body["choices"][0]["finish_reason"] == "length" and call.completion_tokens == 1000
    # The agent's own max_tokens is kept when the budget can pay for it.
    client.complete(ctx, [{"role": "user", "content": "short please"}], max_tokens=300)
    call = store.list_llm_calls(campaign_id=campaign.id)[-1]
    request = store.artifacts.get_json(call.artifact_id)["request"]
    assert request["params"]["max_tokens"] == 300 and "sent_params" not in request and call.completion_tokens == 300
    # Asking past the model's limit (QA: 10**9) goes out as the most the budget reserved, not as asked.
    client.complete(ctx, [{"role": "user", "content": "all of it"}], max_tokens=10**9)
    call = store.list_llm_calls(campaign_id=campaign.id)[-1]
    request = store.artifacts.get_json(call.artifact_id)["request"]
    assert request["sent_params"]["max_tokens"] == 1000 and call.completion_tokens == 1000


def test_scripted_rules_and_errors(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({
        "rules": [
            {"purpose": "task", "min_difficulty": 3, "none_contains": "secret word", "reply": "hard {{task_id}}"},
            {"purpose": "task", "step": 1, "reply": "second step"},
        ],
        "default_reply": "default",
    }))
    name = str(path)
    ctx = {"purpose": "task", "task_id": "t-1", "task_difficulty": 4}
    assert scripted.scripted_reply(name, [{"role": "user", "content": "x"}], ctx) == "hard t-1"
    assert scripted.scripted_reply(name, [{"role": "system", "content": "secret word"}], ctx) == "default"
    assert scripted.scripted_reply(name, [{"role": "assistant", "content": "a"}], {**ctx, "task_difficulty": 1}) \
        == "second step"
    with pytest.raises(UsageError, match="unknown scripted model"):
        scripted.load_spec("no-such-model")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(UsageError, match="not valid JSON"):
        scripted.load_spec(str(bad))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8 text"):  # was a UnicodeDecodeError traceback
        scripted.load_spec(str(binary))


@pytest.mark.parametrize("spec, says", [
    ({"latency_s": "abc"}, "latency_s: Input should be a valid number"),
    ({"rules": [1]}, "rules.0: expected a JSON object, not 1"),
    ({"rules": [{"purpos": "task", "reply": "x"}]}, "rules.0.purpos: unknown key"),
    ({"rulez": []}, "rulez: unknown key"),
    ({"rules": [{"reply": "x", "fail": {"status": 418}}]}, "rules.0.fail.status: Input should be 429, 500 or 'timeout'"),
    ({"rules": [{"fail": {"times": 2}}]}, "rules.0.fail.status: missing"),
    ({"rules": [{"step": True}]}, "rules.0.step: Input should be a valid integer"),
    ({"rules": [{"purpose": None}]}, "rules.0.purpose:"),
    ({"pricing": {"input_cost_per_tokn": 1e-6}}, "pricing.input_cost_per_tokn: unknown key"),
    ({"max_output_tokens": 0}, "max_output_tokens: Input should be greater than or equal to 1"),
    # 1e308 s overflowed the clock: every call failed, and was retried as a model outage.
    ({"latency_s": 1e308}, "latency_s: Input should be less than or equal to 3600"),
    ({"rules": [{"reply": "x", "latency_s": 86400}]}, "rules.0.latency_s: Input should be less than or equal to 3600"),
    ([], "expected a JSON object with a 'rules' list"),
])
def test_a_rules_file_is_checked_whole_when_it_is_loaded(tmp_path, spec, says):
    """QA: `"latency_s": "abc"` was a traceback; `"rules": [1]` was accepted, then
    every call failed and was retried as an outage; a typo such as `purpos` was
    ignored, so the rule matched everything; status 418 was taken."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(UsageError) as caught:
        scripted.load_spec(str(path))
    assert str(caught.value) == f"scripted model file {path}: {says}" or \
        str(caught.value).startswith(f"scripted model file {path}: {says}"), str(caught.value)


def test_every_bundled_and_documented_rules_file_passes_the_check(tmp_path):
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in [*scripted.BUNDLED_DIR.glob("*.json"), *(root / "tests" / "fixtures" / "scripted").glob("*.json")]:
        scripted.load_spec(str(path))
    readme = (root / "README.md").read_text()
    documented = re.search(r"## Scripted models.*?```json\n(.*?)\n```\n", readme, re.S).group(1)
    (tmp_path / "readme.json").write_text(documented)
    spec = scripted.load_spec(str(tmp_path / "readme.json"))
    assert spec.rules[1]["fail"] == {"status": 429, "times": 1} and "latency_s" not in spec.rules[0]


class _FakeOpenAI:
    """An OpenAI-compatible HTTP server on loopback, standing in for a provider:
    the model is the only fake part; litellm, its OpenAI client and HTTP are real."""

    def __init__(self, replies: list[tuple[int, dict]]):
        import http.server

        self.replies = list(replies)
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, reply = outer.replies.pop(0)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


def _completion(content: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def test_a_provider_model_goes_through_litellm_retries_and_is_priced(store, monkeypatch):
    """The path a real model takes: gateway -> litellm's OpenAI provider -> HTTP.
    A rate limit is retried by dgm (and recorded), the reply is priced from
    litellm's price map, the key goes upstream, and the agent sees no key."""
    import litellm

    upstream = _FakeOpenAI([
        (429, {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}),
        (200, _completion("DONE", prompt_tokens=1200, completion_tokens=300)),
    ])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-upstream-only")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENAI_API_BASE", upstream.base_url)
    campaign, agent = _seeded(store, "provider", "eval")
    try:
        with Gateway(LLMClient(store, max_retries=2, backoff_s=0.01)) as gateway:
            token = gateway.grant(CallContext(purpose="task", model="openai/gpt-4o-mini", campaign_id=campaign.id,
                                              agent_id=agent.id))
            status, body = post(gateway, token, {"messages": [{"role": "user", "content": "fix the bug"}]})
    finally:
        upstream.close()
    assert status == 200 and body["choices"][0]["message"]["content"] == "DONE", (body, upstream.requests, [(c.status, c.error) for c in store.list_llm_calls(campaign_id=campaign.id)])
    assert "sk-upstream-only" not in json.dumps(body)
    # Two requests upstream, both carrying the key; both recorded, in order.
    assert [r["path"] for r in upstream.requests] == ["/v1/chat/completions"] * 2
    assert all(r["auth"] == "Bearer sk-upstream-only" for r in upstream.requests)
    assert upstream.requests[1]["body"]["model"] == "gpt-4o-mini"
    calls = store.list_llm_calls(campaign_id=campaign.id)
    assert [c.status for c in calls] == ["error", "ok"]
    assert "RateLimitError" in calls[0].error and calls[0].cost_usd == 0
    ok = calls[1]
    assert (ok.prompt_tokens, ok.completion_tokens, ok.scripted) == (1200, 300, False)
    price = litellm.model_cost["gpt-4o-mini"]
    expected = 1200 * price["input_cost_per_token"] + 300 * price["output_cost_per_token"]
    assert ok.cost_usd == pytest.approx(expected) and ok.cost_usd > 0
    assert store.campaign_spend(campaign.id) == pytest.approx(expected)


def test_a_provider_model_under_a_nearly_spent_budget_is_sent_the_max_tokens_it_can_pay_for(store, monkeypatch):
    import litellm

    upstream = _FakeOpenAI([(200, _completion("DONE", prompt_tokens=12, completion_tokens=5))])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-upstream-only")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENAI_API_BASE", upstream.base_url)
    price = litellm.model_cost["gpt-4o-mini"]
    cap = 2000 * price["output_cost_per_token"]  # room for about 2,000 output tokens
    campaign, agent, client = _budgeted(store, cap)
    try:
        client.complete(CallContext(purpose="diagnose", model="openai/gpt-4o-mini", campaign_id=campaign.id,
                                    agent_id=agent.id), [{"role": "user", "content": "fix the bug"}])
    finally:
        upstream.close()
    sent = upstream.requests[0]["body"]
    assert 1900 < sent.get("max_tokens", sent.get("max_completion_tokens", 0)) < 2000, sent


def test_an_unattributable_call_is_refused_before_it_is_made():
    with pytest.raises(ValueError, match="attributable"):
        CallContext(purpose="task", model="openai/gpt-4o-mini", campaign_id="c1")


def test_a_request_the_provider_refuses_is_neither_retried_nor_an_outage(store, monkeypatch):
    """A 400 (unknown model, prompt too long) is final: retrying it, or waiting it
    out as an outage for half an hour, only wastes the night."""
    upstream = _FakeOpenAI([(400, {"error": {"message": "'temperature' must be at most 2", "type": "invalid_request_error",
                                             "code": None}})] * 3)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-upstream-only")
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENAI_API_BASE", upstream.base_url)
    campaign = store.create_campaign(name="refused", kind="eval", config={})
    agent = store.add_agent(campaign.id, store.code.commit_tree(
        str(__import__("dgm.agent_code", fromlist=["x"]).SEED_AGENT_DIR), message="seed"), status="seed",
        origin="seed")
    client = LLMClient(store, max_retries=2, backoff_s=0.01)
    try:
        with pytest.raises(UpstreamError) as info:
            client.complete(CallContext(purpose="task", model="openai/gpt-4o-mini", campaign_id=campaign.id,
                                        agent_id=agent.id),
                            [{"role": "user", "content": "fix the bug"}])
    finally:
        upstream.close()
    assert info.value.outage is False and "BadRequestError" in str(info.value)
    assert len(upstream.requests) == 1
    assert [c.status for c in store.list_llm_calls(campaign_id=campaign.id)] == ["error"]


@pytest.mark.parametrize("model", ["gpt-nonexistent-99", "nosuchprovider/some-model"])
def test_a_model_litellm_cannot_route_is_refused_before_anything_runs(tmp_path, model):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dgm", "eval", "--agent", "seed", "--model", model,
                        "--archive-dir", str(tmp_path / "archive")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == (
        f"error: unknown model '{model}': litellm cannot tell its provider "
        "(write it as provider/model, e.g. openai/gpt-4o-mini)"), r.stderr
    assert not (tmp_path / "archive").exists()


def test_text_an_agent_wrote_with_a_lone_surrogate_still_makes_a_call(store):
    """A trajectory read into a diagnosis prompt may hold a lone surrogate:
    the call is made (the character replaced) rather than the child rejected
    over an encoding error."""
    campaign, agent = _seeded(store, "surrogate", "evolution")
    body = LLMClient(store).complete(CallContext(purpose="diagnose", model="scripted:noop", campaign_id=campaign.id,
                                                 agent_id=agent.id),
                                     [{"role": "user", "content": "trajectory: A\ud800B"}])
    assert body["choices"]
    (call,) = store.list_llm_calls(campaign_id=campaign.id)
    assert store.artifacts.get_json(call.artifact_id)["request"]["messages"][0]["content"] == "trajectory: A?B"



def test_a_fixed_rate_model_resolves_about_its_rate_of_runs_and_each_run_the_same_way_again(store):
    """`scripted:rate:P`: gold's patch on about P of the task runs, seeded by the run, through litellm."""
    messages = [{"role": "user", "content": "fix it"}]
    runs = [f"run-{i}" for i in range(400)]
    gold = [scripted.scripted_reply("rate:0.3", messages, {"purpose": "task", "task_id": "t", "task_run_id": r,
                                                          "gold_patch": "diff --git a/x b/x\n"}) for r in runs]
    resolved = [r for r, reply in zip(runs, gold) if "git apply" in reply]
    assert 0.22 < len(resolved) / len(runs) < 0.38  # 400 Bernoulli(0.3) draws: 5 standard deviations wide
    assert all("diff --git a/x b/x" in g for g in gold if "git apply" in g)
    again = [scripted.scripted_reply("rate:0.3", messages, {"purpose": "task", "task_run_id": r}) for r in resolved]
    assert all("git apply" in reply for reply in again)  # the same run draws the same outcome
    assert all(scripted.SUBMIT_SENTINEL in scripted.scripted_reply("rate:0.3", [*messages, {"role": "assistant",
                                                                                           "content": "x"}],
                                                                  {"purpose": "task", "task_run_id": r})
               for r in resolved[:5])  # after its one action it submits
    assert not any("git apply" in scripted.scripted_reply("rate:0", messages, {"purpose": "task", "task_run_id": r})
                   for r in runs[:50])
    assert all("git apply" in scripted.scripted_reply("rate:1", messages, {"purpose": "task", "task_run_id": r})
               for r in runs[:50])
    for bad in ("rate:1.5", "rate:abc", "rate:nan", "rate:"):
        with pytest.raises(UsageError, match="the rate must be a number from 0 to 1"):
            scripted.load_spec(bad)
    campaign, agent = _seeded(store, "rate", "evolution")
    body = LLMClient(store).complete(CallContext(purpose="diagnose", model="scripted:rate:0.5",
                                                 campaign_id=campaign.id, agent_id=agent.id), messages)
    assert scripted.SUBMIT_SENTINEL in body["choices"][0]["message"]["content"]
