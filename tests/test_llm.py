"""The gateway, the litellm client, scripted models and the budget (no Docker)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from dgm.errors import BudgetExceeded, UsageError
from dgm.llm import scripted
from dgm.llm.client import Budget, CallContext, LLMClient
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


def test_gateway_attributes_records_and_refuses(store):
    campaign = store.create_campaign(name="gw", kind="eval", config={})
    sha = store.code.commit_tree(str(__import__("dgm.bench.evaluate", fromlist=["x"]).SEED_AGENT_DIR),
                                 message="seed")
    agent = store.add_agent(campaign.id, sha, status="seed", origin="seed")
    with Gateway(LLMClient(store)) as gateway:
        token = gateway.grant(CallContext(purpose="task", model="scripted:noop", campaign_id=campaign.id,
                                          agent_id=agent.id))
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


def test_budget_lets_at_most_the_last_call_cross_the_cap():
    spent = {"usd": 0.0}
    lock = threading.Lock()
    budget = Budget(1.0, lambda: spent["usd"])
    crossed = []

    def worker():
        while True:
            try:
                ticket = budget.acquire(estimate=0.3)
            except BudgetExceeded:
                return
            with lock:
                before = spent["usd"]
                spent["usd"] += 0.3
                if before < 1.0 <= spent["usd"]:
                    crossed.append(before)
            budget.release(ticket)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spent["usd"] >= 1.0
    assert spent["usd"] - 1.0 <= 0.3 + 1e-9  # exceeded by at most one call
    assert len(crossed) == 1


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
