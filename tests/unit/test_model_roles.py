"""Models per role: config and flags, routing and recording through real litellm
calls to a local OpenAI-compatible server, `unpriced` in every view, and bad
model input refused in one line before anything is written."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir
from dgm.archive import ArchiveStore
from dgm.config import load_config, validate_config
from dgm.errors import UsageError
from dgm.llm.client import CallContext, LLMClient
from dgm.llm.roles import RoleModel
from tests.support.cli import assert_one_line_error, run_dgm
from tests.support.openai_stub import OpenAIStub

NO_DOCKER = "no Docker engine answers"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- config --------------------------------------------------------------------------------


def test_roles_default_to_the_task_role_and_old_configs_still_read(tmp_path):
    # A campaign recorded before roles existed: model and proposer_model only.
    old = validate_config({"model": "scripted:rehearsal", "proposer_model": "scripted:gold"}, "stored")
    assert [old.roles.role(r).model for r in ("task", "proposer", "self_modify")] == [
        "scripted:rehearsal", "scripted:gold", "scripted:rehearsal"]
    config = load_config(write(tmp_path / "c.toml", """
[campaign]
model = "openai/a"
[campaign.models.task]
api_base = "http://127.0.0.1:8080/v1"
api_key_env = "TASK_KEY"
max_output_tokens = 512
params = { temperature = 0.2 }
"""), {})
    roles = config.roles
    # self_modify and the proposer take the task role's whole settings when not given.
    assert roles.self_modify == roles.task == roles.proposer
    assert roles.task.api_base == "http://127.0.0.1:8080/v1" and roles.task.max_output_tokens == 512
    # The snapshot records every role filled in, and reads back the same.
    snapshot = config.model_dump(mode="json")
    assert snapshot["models"]["self_modify"]["api_key_env"] == "TASK_KEY"
    assert validate_config(snapshot, "stored").roles == roles


def test_flags_fill_the_roles_model_names_and_endpoints(tmp_path):
    path = write(tmp_path / "c.toml", """
[campaign.models.task]
model = "openai/a"
api_base = "http://127.0.0.1:8080/v1"
[campaign.models.proposer]
model = "openai/p"
""")
    config = load_config(path, {"model": "openai/b", "proposer_model": "openai/q",
                                "models": {"proposer": {"api_base": "http://127.0.0.1:9090/v1"}}})
    assert config.roles.task.model == "openai/b" and config.roles.task.api_base == "http://127.0.0.1:8080/v1"
    assert config.roles.proposer.model == "openai/q" and config.roles.proposer.api_base == "http://127.0.0.1:9090/v1"
    assert config.model == "openai/b" and config.diagnosis_model == "openai/q"
    # A proposer_model naming another model, without a table: the provider's defaults, not the task's endpoint.
    plain = load_config(None, {"model": "openai/a", "proposer_model": "anthropic/claude-sonnet-4-5",
                               "models": {"task": {"api_base": "http://127.0.0.1:8080/v1"}}})
    assert plain.roles.proposer == RoleModel(model="anthropic/claude-sonnet-4-5")


@pytest.mark.parametrize("table, needle", [
    ('[campaign.models.task]\npricing = { input_usd_per_mtok = -1, output_usd_per_mtok = 2 }',
     "models.task.pricing.input_usd_per_mtok: Input should be greater than or equal to 0"),
    ('[campaign.models.task]\napi_key_env = "sk-live-0123456789"', "models.task.api_key_env: give the NAME"),
    ('[campaign.models.proposer]\nparams = { api_key = "sk-live-0123456789" }', "never write a key in a file"),
    ('[campaign.models.task]\nparams = { max_tokens = 10 }', "max_output_tokens"),
    ('[campaign.models.task]\napi_base = "127.0.0.1:8080"', "give an http:// or https:// URL"),
    ('[campaign.models.task]\nmax_output_tokens = true', "expected a number, not true"),
    ('[campaign.models.taks]\nmodel = "openai/x"', "models.taks: unknown key"),
    ('[campaign.models.task]\nmax_output_tokens = 4096\ncontext_window = 2048', "must be less than context_window"),
    ('[campaign]\nmodel = "openai/a"\n[campaign.models.task]\nmodel = "openai/b"', "name different models"),
])
def test_bad_role_tables_are_one_line_naming_the_key_and_never_echo_a_key(tmp_path, table, needle):
    with pytest.raises(UsageError) as caught:
        load_config(write(tmp_path / "c.toml", table), {})
    message = str(caught.value)
    assert needle in message and "\n" not in message
    assert "sk-live" not in message


# -- routing and recording, through litellm's real openai path -------------------------------


def test_a_role_routes_its_calls_to_its_endpoint_with_its_key_params_and_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_UNIT_KEY", "unit-secret")
    store = ArchiveStore.open(None, tmp_path / "archive")
    campaign = store.create_campaign("c", "evolution", {})
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    with OpenAIStub("hello", prompt_tokens=40, completion_tokens=10) as server:
        priced = RoleModel(model="openai/local", api_base=server.api_base, api_key_env="DGM_UNIT_KEY",
                           max_output_tokens=64, timeout_s=20, params={"temperature": 0.1},
                           pricing={"input_usd_per_mtok": 10.0, "output_usd_per_mtok": 20.0})
        client = LLMClient(store, max_retries=0)
        ctx = CallContext(purpose="diagnose", model="openai/local", campaign_id=campaign.id, agent_id=agent.id,
                          role=priced)
        body = client.complete(ctx, [{"role": "user", "content": "hi"}], max_tokens=1000, temperature=0.9)
        unpriced = priced.model_copy(update={"pricing": None})
        client.complete(CallContext(purpose="diagnose", model="openai/local", campaign_id=campaign.id,
                                    agent_id=agent.id, role=unpriced), [{"role": "user", "content": "hi"}])
    assert body["choices"][0]["message"]["content"] == "hello"
    first = server.requests[0]
    assert first["authorization"] == "Bearer unit-secret"
    # The role's settings win over the caller's: its temperature, and the lower of the two caps.
    assert first["body"]["temperature"] == 0.1 and first["body"]["max_tokens"] == 64
    calls = store.list_llm_calls(agent_id=agent.id)
    assert [c.api_base for c in calls] == [server.api_base] * 2
    assert calls[0].priced and calls[0].cost_usd == pytest.approx((40 * 10 + 10 * 20) / 1e6)
    assert not calls[1].priced and calls[1].cost_usd == 0.0
    assert store.unpriced_calls("campaign_id") == {campaign.id: 1}
    store.close()


# -- unpriced in the views -----------------------------------------------------------------


@pytest.fixture
def unpriced_archive(tmp_path):
    root = tmp_path / "archive"
    store = ArchiveStore.open(None, root)
    campaign = store.create_campaign("local-model", "evolution", {"model": "openai/smollm2", "generations": 1})
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    run = store.start_task_run(campaign.id, agent.id, "task", "dgm-mini", "t-1", "small", "openai/smollm2")
    store.record_llm_call(model="openai/smollm2", request_hash="ab" * 32, purpose="task", task_run_id=run.id,
                          priced=False, api_base="http://127.0.0.1:8080/v1", prompt_tokens=30, completion_tokens=5)
    store.finish_task_run(run.id, status="empty_patch", patch="")
    store.close()
    return root, campaign, agent, run


@pytest.mark.parametrize("command", [["ls"], ["ls", "local-model"], ["status", "local-model"], ["show", "AGENT"],
                                     ["show-run", "RUN"]])
def test_an_unpriced_model_is_shown_unpriced_never_as_free(unpriced_archive, command):
    root, campaign, agent, run = unpriced_archive
    args = [{"AGENT": agent.id, "RUN": run.id}.get(a, a) for a in command]
    proc = run_dgm(args, root)
    assert proc.returncode == 0, proc.stderr
    assert "unpriced" in proc.stdout
    assert "0.0000" not in proc.stdout, proc.stdout


def test_status_says_a_budget_covers_priced_calls_only(tmp_path):
    root = tmp_path / "archive"
    store = ArchiveStore.open(None, root)
    campaign = store.create_campaign("capped", "evolution", {"model": "openai/smollm2", "allow_unpriced": True},
                                     budget_usd=2.0)
    agent = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    store.record_llm_call(model="openai/smollm2", request_hash="ab" * 32, purpose="diagnose",
                          campaign_id=campaign.id, agent_id=agent.id, priced=False)
    store.close()
    proc = run_dgm(["status", "capped"], root)
    assert proc.returncode == 0, proc.stderr
    assert "1 call(s) to an unpriced model, not in the cap: the cap covers priced calls only" in proc.stdout


def test_the_plot_and_the_explorer_say_unpriced(unpriced_archive, tmp_path):
    from dgm.lineage.plot import spend_label
    from dgm.web.server import ExplorerApi

    root, campaign, agent, run = unpriced_archive
    assert spend_label(1, 0.0) == "spent: unpriced model" and spend_label(0, 0.0) == "spent (USD)"
    store = ArchiveStore.open(None, root)
    data = ExplorerApi(store)
    assert [c["unpriced_calls"] for c in data.campaigns()] == [1]
    details = data.agent(agent.id)
    assert details["task_runs"][0]["unpriced_calls"] == 1 and details["cost"]["campaign_unpriced_calls"] == 1
    assert details["llm_calls"][0]["priced"] is False
    store.close()


# -- bad model input: one line, exit 2, nothing written ---------------------------------------


@pytest.mark.parametrize("command", ["run", "eval"])
def test_unknown_provider(tmp_path, command):
    extra = ["--agent", "seed"] if command == "eval" else []
    r = run_dgm([command, *extra, "--model", "nosuchprovider/x"], tmp_path / "arch")
    assert_one_line_error(r, "unknown model 'nosuchprovider/x'")
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("command", ["run", "eval"])
def test_missing_key_variable(tmp_path, monkeypatch, command):
    monkeypatch.delenv("NOPE", raising=False)
    extra = ["--agent", "seed"] if command == "eval" else []
    r = run_dgm([command, *extra, "--model", "openai/gpt-4o-mini", "--api-key-env", "NOPE"], tmp_path / "arch")
    assert_one_line_error(r, "its key variable NOPE (api_key_env) is not set")
    assert not (tmp_path / "arch").exists()


def test_missing_key_variable_of_the_proposer_in_a_config(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    path = write(tmp_path / "c.toml", '[campaign.models.proposer]\nmodel = "openai/gpt-4o"\napi_key_env = "NOPE"\n')
    r = run_dgm(["run", "--config", str(path)], tmp_path / "arch")
    assert_one_line_error(r, "the proposer model openai/gpt-4o: its key variable NOPE")
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("command", ["run", "eval"])
def test_unreachable_api_base(tmp_path, command):
    base = f"http://127.0.0.1:{closed_port()}/v1"
    extra = ["--agent", "seed"] if command == "eval" else []
    r = run_dgm([command, *extra, "--model", "openai/local", "--api-base", base], tmp_path / "arch")
    assert_one_line_error(r, f"api_base {base} cannot be reached")
    assert not (tmp_path / "arch").exists()


def test_negative_pricing(tmp_path):
    path = write(tmp_path / "c.toml", "[campaign.models.task]\nmodel = \"openai/local\"\n"
                                      "pricing = { input_usd_per_mtok = 0.5, output_usd_per_mtok = -2 }\n")
    r = run_dgm(["run", "--config", str(path)], tmp_path / "arch")
    assert_one_line_error(r, "models.task.pricing.output_usd_per_mtok: Input should be greater than or equal to 0")
    r = run_dgm(["eval", "--agent", "seed", "--models", str(path)], tmp_path / "arch")
    assert_one_line_error(r, "models.task.pricing.output_usd_per_mtok")
    assert not (tmp_path / "arch").exists()


def test_a_budget_refuses_an_unpriced_model_unless_priced_or_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with OpenAIStub("hi") as server:
        base = ["--model", "openai/smollm2", "--api-base", server.api_base, "--budget-usd", "1"]
        r = run_dgm(["run", *base], tmp_path / "arch")
        assert_one_line_error(r, "the task, proposer, self_modify model openai/smollm2 has no known price",
                              "--allow-unpriced")
        r = run_dgm(["eval", "--agent", "seed", *base], tmp_path / "arch")
        assert_one_line_error(r, "has no known price")
        # Allowed, or given a price, the model passes its checks: the next one (the engine) is what stops it.
        assert_one_line_error(run_dgm(["run", *base, "--allow-unpriced"], tmp_path / "arch"), NO_DOCKER)
        priced = write(tmp_path / "c.toml", '[campaign.models.task]\n'
                                            'pricing = { input_usd_per_mtok = 0.1, output_usd_per_mtok = 0.2 }\n')
        assert_one_line_error(run_dgm(["run", "--config", str(priced), *base], tmp_path / "arch"), NO_DOCKER)
    assert not (tmp_path / "arch").exists()


def test_doctor_checks_every_role_of_a_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    base = f"http://127.0.0.1:{closed_port()}/v1"
    path = write(tmp_path / "c.toml", f'[campaign]\nmodel = "scripted:rehearsal"\n'
                                      f'[campaign.models.proposer]\nmodel = "openai/x"\napi_base = "{base}"\n')
    proc = run_dgm(["doctor", "--config", str(path)], tmp_path / "arch")
    assert proc.returncode == 1  # a report, not a usage error
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") >= 3}
    assert "yes" in rows["model (task, self_modify)"]
    assert "no" in rows["model (proposer)"] and "cannot be reached" in rows["model (proposer)"]
    assert not (tmp_path / "arch").exists()
