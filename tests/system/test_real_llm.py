"""A real LLM in the suite: SmolLM2-135M served on this machine by llama.cpp
(`local_llm`), reached as litellm's `openai/smollm2` through its api_base.

The model is far too small to fix anything, and what it says varies: these
tests check what holds whatever it says. Every call is recorded with the
server's own token counts, every run ends with a recorded status and reason,
refusals (a prompt too long for its window) are told apart from outages, no
traceback, no container left behind.

The CLI tests reach it as a user would: the server's address as the role's
`api_base` (`--api-base`, `[campaign.models.task]`), not through environment
variables, and the role's window and output cap handed to the agent. They run
`dgm` as a child process (not in-process, though that would save a litellm
import): anything it prints, a traceback a library logs say, is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from dgm.archive.store import ArchiveStore
from dgm.llm.client import CallContext, LLMClient, UpstreamError
from dgm.llm.local_server import LITELLM_MODEL, MAX_OUTPUT_TOKENS

FINISHED = {"resolved", "unresolved", "empty_patch", "error", "timeout"}
TASKS = ["confini__confini-1", "textkit__textkit-1"]
# Each task's limit. The two tasks run side by side (two workers) and their requests queue at
# the server: the first replies come within ~20 s even on a loaded machine, so each run still
# gets answered calls; the limit is what these tests mostly wait out.
TIME_LIMIT_S = 45


def _dgm(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgm", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **env})


def _assert_calls_carry_the_servers_counts(calls) -> None:
    assert calls, "no LLM call was recorded"
    for call in calls:
        assert call.model == LITELLM_MODEL and not call.scripted
        if call.status == "ok":
            # The server's own usage figures (a reply of at least one token to a prompt of many).
            assert call.prompt_tokens > 20 and 0 < call.completion_tokens <= MAX_OUTPUT_TOKENS, call
        else:
            assert call.error, call


def _assert_no_container_left(docker_client, run_ids) -> None:
    for run_id in run_ids:
        assert not docker_client.containers.list(all=True, filters={"label": f"dgm.task_run={run_id}"}), run_id


def test_the_server_answers_counts_cuts_and_refuses_as_a_real_server_does(local_llm, store, monkeypatch):
    for name, value in local_llm.env.items():
        monkeypatch.setenv(name, value)
    campaign = store.create_campaign(name="real-llm-calls", kind="eval", config={})
    from dgm.agent_code import SEED_AGENT_DIR

    agent = store.add_agent(campaign.id, store.code.commit_tree(str(SEED_AGENT_DIR), message="seed"),
                            status="seed", origin="seed")
    ctx = CallContext(purpose="task", model=LITELLM_MODEL, campaign_id=campaign.id, agent_id=agent.id)
    client = LLMClient(store, max_retries=2, backoff_s=0.01, timeout_s=120)

    body = client.complete(ctx, [{"role": "user", "content": "Say hello in one short sentence."}], max_tokens=24)
    assert isinstance(body["choices"][0]["message"]["content"], str)
    # Cut at the output limit: the server stops there and says so.
    cut = client.complete(ctx, [{"role": "user", "content": "Count from one to one hundred in words."}],
                          max_tokens=4)
    assert cut["choices"][0]["finish_reason"] == "length" and cut["dgm_note"].endswith("(max_tokens=4)")
    # A prompt longer than the window: refused at once, recognised, not retried, no outage.
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        client.complete(ctx, [{"role": "user", "content": "word " * 4000}])
    assert info.value.context_overflow and not info.value.outage
    assert "context length exceeded" in str(info.value) and time.monotonic() - started < 30

    calls = store.list_llm_calls(campaign_id=campaign.id)
    assert [c.status for c in calls] == ["ok", "ok", "error"]  # one attempt for the refusal
    _assert_calls_carry_the_servers_counts(calls[:2])
    assert calls[1].completion_tokens == 4
    sent = [store.artifacts.get_json(c.artifact_id)["request"].get("sent_params", {}) for c in calls]
    assert sent[2]["max_tokens"] == MAX_OUTPUT_TOKENS  # every call carries one, even one that asked for none
    # No price is invented for a model nobody priced: the call says so.
    assert all(c.cost_usd == 0 for c in calls)
    assert "no price known" in store.artifacts.get_json(calls[0].artifact_id)["response"]["dgm_warning"]


def test_dgm_eval_on_two_tasks_with_the_real_model(local_llm, docker_client, tmp_path):
    # Two workers: the server answers one request at a time, but the two runs' time limits
    # then pass together instead of one after the other.
    out = tmp_path / "eval.json"
    models = tmp_path / "models.toml"  # the role's window and output cap, as a campaign.toml gives them
    models.write_text(f"[campaign.models.task]\nmodel = \"{LITELLM_MODEL}\"\ncontext_window = {local_llm.n_ctx}\n"
                      f"max_output_tokens = {MAX_OUTPUT_TOKENS}\n")
    started = time.monotonic()
    proc = _dgm(["eval", "--agent", "seed", "--benchmark", "dgm-mini", "--tasks", ",".join(TASKS),
                 "--models", str(models), "--api-base", local_llm.base_url, "--workers", "2",
                 "--time-limit", str(TIME_LIMIT_S), "--archive-dir", str(tmp_path / "archive"), "--json", str(out)],
                {}, timeout=600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert sorted(r["instance_id"] for r in results) == sorted(TASKS)
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        runs = store.list_task_runs(kind="task")
        assert len(runs) == 2
        for run in runs:
            assert run.finished and run.status in FINISHED, (run.status, run.error)
            assert run.status != "error" or run.error, run.id
            if run.trajectory_artifact:  # none when the run was stopped at its limit before its first step ended
                steps = json.loads(store.artifacts.get(run.trajectory_artifact))["steps"]
                assert all(isinstance(s.get("response"), str) for s in steps)  # what the model said, kept
        calls = store.list_llm_calls()
        _assert_calls_carry_the_servers_counts(calls)
        assert all(c.api_base == local_llm.base_url for c in calls)
        assert not any(c.priced for c in calls if c.status == "ok")
        assert any(c.status == "ok" for c in calls), [(c.status, c.error) for c in calls]
        assert {c.task_run_id for c in calls} <= {r.id for r in runs}
        assert all(c.latency_s < TIME_LIMIT_S + 20 for c in calls)  # none waited on past its run
    _assert_no_container_left(docker_client, [r.id for r in runs])
    print(f"dgm eval, 2 tasks, real model: {elapsed:.0f} s")


def test_a_one_generation_campaign_with_the_real_model(local_llm, docker_client, tmp_path):
    config = tmp_path / "campaign.toml"
    config.write_text(f"""[campaign]
benchmark = "dgm-mini"
generations = 1
children_per_generation = 1
# The seed's two runs share the one-request-at-a-time server; their time limits pass together.
workers = 2
seed = 3
time_limit_s = {TIME_LIMIT_S}
self_modify_time_limit_s = 60
sanity_time_limit_s = 120
diagnosis_retries = 1
trajectory_chars = 2000
infrastructure_wait_minutes = 0
heldout = ["minicalc__minicalc-1"]
heldout_top_k = 0

[[campaign.stages]]
name = "small"
tasks = {json.dumps(TASKS)}
advance_threshold = 0.5

[campaign.models.task]
model = "{LITELLM_MODEL}"
api_base = "{local_llm.base_url}"
context_window = {local_llm.n_ctx}
max_output_tokens = {MAX_OUTPUT_TOKENS}

# Half the server's window: the proposer's prompt is cut to the role's window, and
# a short prompt keeps the test quick (the server reads ~60 prompt tokens a second).
[campaign.models.proposer]
model = "{LITELLM_MODEL}"
api_base = "{local_llm.base_url}"
context_window = {local_llm.n_ctx // 2}
max_output_tokens = {MAX_OUTPUT_TOKENS}
""")
    started = time.monotonic()
    proc = _dgm(["run", "--config", str(config), "--name", "real-llm", "--archive-dir", str(tmp_path / "archive")],
                {}, timeout=900)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        (campaign,) = store.list_campaigns()
        assert campaign.status == "completed", campaign.status
        agents = store.list_agents(campaign.id)
        children = [a for a in agents if a.parent_id is not None]
        assert len(children) == 1
        for child in children:
            # Diagnosed, modified and evaluated, or rejected with the reason why: never left pending.
            assert child.status in ("admitted", "rejected"), (child.status, child.id)
            assert child.status != "rejected" or child.rejection_reason, child.id
        runs = store.list_task_runs(campaign_id=campaign.id)
        assert runs and all(r.finished and r.status for r in runs), [(r.kind, r.status) for r in runs]
        assert all(r.status != "error" or r.error for r in runs)
        calls = store.list_llm_calls(campaign_id=campaign.id)
        _assert_calls_carry_the_servers_counts(calls)
        diagnoses = [c for c in calls if c.purpose == "diagnose"]
        assert diagnoses, "the proposer was never called"
        # The proposer's prompt (the agent's code, a trajectory: ~30,000 tokens whole) is cut to the
        # role's 1024-token window and answered, never refused or waited out behind abandoned task calls.
        assert diagnoses[0].status == "ok", [(c.status, c.latency_s, c.error) for c in diagnoses]
        assert diagnoses[0].prompt_tokens + MAX_OUTPUT_TOKENS <= local_llm.n_ctx // 2, diagnoses[0].prompt_tokens
        assert not any("context length" in (c.error or "") for c in diagnoses)
        # Every role (self_modify takes the task role's settings) reached the server.
        assert {c.api_base for c in calls} == {local_llm.base_url}
        # An answered call has no price; a refused one (the window) was billed nothing.
        assert not any(c.priced for c in calls if c.status == "ok")
        # No price is invented for an unpriced model, and no view reads it as free.
        assert store.campaign_spend(campaign.id) == 0
    status = _dgm(["status", "real-llm", "--archive-dir", str(tmp_path / "archive")], {}, timeout=120)
    assert status.returncode == 0 and "unpriced" in status.stdout and "$0.0000" not in status.stdout, status.stdout
    _assert_no_container_left(docker_client, [r.id for r in runs])
    print(f"one-generation campaign, real model: {elapsed:.0f} s")
