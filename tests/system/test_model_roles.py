"""A campaign whose three roles (task, proposer, self_modify) each talk to their
own endpoint: three OpenAI-compatible servers on 127.0.0.1, reached through
litellm's real `openai/<name>` path from the head, while the agents in their
sandboxes reach the model only through the gateway's Unix socket.
"""

from __future__ import annotations

import json

import pytest

from tests.support.campaign import run_campaign
from tests.support.openai_stub import OpenAIStub
from tests.support.tiny_bench import TinyBenchmark

pytestmark = pytest.mark.docker

SUBMIT = "THOUGHT: nothing to change.\n```bash\necho DGM_SUBMIT_FINAL_OUTPUT\n```"
PROPOSAL = json.dumps({
    "summary": "the agent gives up", "improvement_proposal": "leave a note in main.py",
    "implementation_plan": "append a comment to main.py",
    "problem_statement": "Append the line '# roles test' to main.py, then submit."})
EDIT = "THOUGHT: append the note.\n```bash\necho '# roles test' >> main.py\n```"


def self_modify_reply(body: dict) -> str:
    # The edit first; once the agent has seen its output, submit.
    return EDIT if not any(m.get("role") == "assistant" for m in body["messages"]) else SUBMIT


def test_each_role_calls_its_own_endpoint_and_is_recorded_against_it(tmp_path, store, docker_client, base_image,
                                                                     monkeypatch):
    monkeypatch.setenv("DGM_TEST_TASK_KEY", "task-secret-1a2b")
    monkeypatch.setenv("DGM_TEST_SELF_KEY", "self-secret-3c4d")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    bench = TinyBenchmark(tmp_path / "bench", n_tasks=1)
    with OpenAIStub(SUBMIT, prompt_tokens=1000, completion_tokens=100) as task_server, \
            OpenAIStub(PROPOSAL, prompt_tokens=2000, completion_tokens=300) as proposer_server, \
            OpenAIStub(self_modify_reply, prompt_tokens=500, completion_tokens=50) as self_server:
        models = {
            "task": {"model": "openai/task-model", "api_base": task_server.api_base,
                     "api_key_env": "DGM_TEST_TASK_KEY", "max_output_tokens": 256,
                     "pricing": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
                     "params": {"temperature": 0.25}},
            # No price and no key variable: a local server taking no key, recorded as unpriced.
            "proposer": {"model": "openai/proposer-model", "api_base": proposer_server.api_base,
                         "timeout_s": 30},
            "self_modify": {"model": "openai/self-model", "api_base": self_server.api_base,
                            "api_key_env": "DGM_TEST_SELF_KEY",
                            "pricing": {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 4.0}},
        }
        campaign, status = run_campaign(
            store, docker_client, bench, name="roles", model="openai/task-model", models=models, generations=1,
            children_per_generation=1, heldout=0, time_limit_s=60,
            stages=[{"name": "all", "tasks": 1, "advance_threshold": 0.0}])
    assert status == "completed"

    calls = store.list_llm_calls(campaign_id=campaign.id)
    by_purpose = {p: [c for c in calls if c.purpose == p] for p in ("task", "diagnose", "self_modify")}
    assert all(by_purpose.values()), {p: len(v) for p, v in by_purpose.items()}
    assert len(calls) == sum(len(v) for v in by_purpose.values())
    endpoints = {"task": task_server, "diagnose": proposer_server, "self_modify": self_server}
    for purpose, server in endpoints.items():
        rows = by_purpose[purpose]
        # Each call is recorded against its role's endpoint and model, and that server really got it.
        assert {c.api_base for c in rows} == {server.api_base}
        assert {c.model for c in rows} == {models[{"diagnose": "proposer"}.get(purpose, purpose)]["model"]}
        assert all(c.status == "ok" for c in rows)
        assert len(server.requests) == len(rows)
        assert {c.prompt_tokens for c in rows} == {server.prompt_tokens}
    # Three servers, no call went astray: each saw only its role's model name.
    assert {r["body"]["model"] for r in task_server.requests} == {"task-model"}
    assert {r["body"]["model"] for r in proposer_server.requests} == {"proposer-model"}
    assert {r["body"]["model"] for r in self_server.requests} == {"self-model"}

    # The key was read from each role's variable on the head; the keyless server got the placeholder.
    assert {r["authorization"] for r in task_server.requests} == {"Bearer task-secret-1a2b"}
    assert {r["authorization"] for r in self_server.requests} == {"Bearer self-secret-3c4d"}
    assert {r["authorization"] for r in proposer_server.requests} == {"Bearer no-key"}
    # The role's params and output cap went out with every call of the role.
    assert all(r["body"]["temperature"] == 0.25 and r["body"]["max_tokens"] == 256 for r in task_server.requests)
    assert all("temperature" not in r["body"] for r in self_server.requests)

    # Priced by each role's own pricing; the proposer's model has none: unpriced, not free.
    assert all(c.priced and c.cost_usd == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6) for c in by_purpose["task"])
    assert all(c.priced and c.cost_usd == pytest.approx((500 * 3.0 + 50 * 4.0) / 1e6)
               for c in by_purpose["self_modify"])
    assert all(not c.priced and c.cost_usd == 0.0 for c in by_purpose["diagnose"])
    assert store.unpriced_calls("campaign_id", campaign_id=campaign.id) == {campaign.id: len(by_purpose["diagnose"])}

    # The child really is the self_modify endpoint's work.
    child = next(a for a in store.list_agents(campaign.id) if a.origin == "child")
    seed = next(a for a in store.list_agents(campaign.id) if a.origin == "seed")
    assert "+# roles test" in store.code.diff(seed.commit_sha, child.commit_sha)

    # The config snapshot records every role (key variable names included), never a key.
    snapshot = json.dumps(store.get_campaign(campaign.id).config)
    recorded = store.get_campaign(campaign.id).config["models"]
    assert recorded["proposer"]["api_base"] == proposer_server.api_base
    assert recorded["self_modify"]["api_key_env"] == "DGM_TEST_SELF_KEY"
    assert recorded["task"]["pricing"] == {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0}
    transcripts = [store.artifacts.get(c.artifact_id).decode() for c in calls]
    for secret in ("task-secret-1a2b", "self-secret-3c4d"):
        assert secret not in snapshot and not any(secret in t for t in transcripts)


def test_eval_and_live_replay_take_the_role_options_and_show_unpriced(tmp_path, docker_client, base_image,
                                                                      monkeypatch):
    from dgm.archive import ArchiveStore
    from dgm.bench.registry import load_benchmark
    from tests.support.cli import run_dgm

    monkeypatch.setenv("DGM_TEST_EVAL_KEY", "eval-secret-5e6f")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    task = load_benchmark("dgm-mini").tasks()[0].instance_id
    root = tmp_path / "archive"
    with OpenAIStub(SUBMIT) as eval_server, OpenAIStub(SUBMIT) as replay_server:
        models = tmp_path / "campaign.toml"
        models.write_text(f'[campaign.models.task]\nmodel = "openai/local-eval"\napi_base = "{eval_server.api_base}"\n'
                          'max_output_tokens = 128\n')
        out = tmp_path / "eval.json"
        proc = run_dgm(["eval", "--agent", "seed", "--tasks", task, "--models", str(models),
                        "--api-key-env", "DGM_TEST_EVAL_KEY", "--json", str(out)], root)
        assert proc.returncode == 0, proc.stderr
        # An unpriced model: the table says so; its cost is no $0.
        assert "unpriced" in proc.stdout and "0.0000" not in proc.stdout
        (row,) = json.loads(out.read_text())
        assert row["unpriced_calls"] >= 1 and row["model"] == "openai/local-eval"
        assert {r["authorization"] for r in eval_server.requests} == {"Bearer eval-secret-5e6f"}
        assert {r["body"]["max_tokens"] for r in eval_server.requests} == {128}

        proc = run_dgm(["replay", row["agent_id"], "--task", task, "--live", "--api-base", replay_server.api_base],
                       root)
        assert proc.returncode == 0, proc.stderr
        assert "unpriced" in proc.stdout
    assert replay_server.requests and {r["body"]["model"] for r in replay_server.requests} == {"local-eval"}
    with ArchiveStore.open(None, root) as store:
        evaluation, replay = sorted(store.list_campaigns(), key=lambda c: c.created_at)
        assert {c.api_base for c in store.list_llm_calls(campaign_id=evaluation.id)} == {eval_server.api_base}
        assert {c.api_base for c in store.list_llm_calls(campaign_id=replay.id)} == {replay_server.api_base}
        assert evaluation.config["models"]["task"]["api_key_env"] == "DGM_TEST_EVAL_KEY"
        assert replay.config["models"]["task"]["api_base"] == replay_server.api_base
        assert "eval-secret" not in json.dumps(evaluation.config)
