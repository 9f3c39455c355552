"""Bad input gets one clear line on stderr, exit code 2, and no traceback."""

from __future__ import annotations

import os

import pytest

from tests.support.cli import assert_one_line_error
from tests.support.cli import dgm_process as dgm
from tests.support.cli import run_dgm


def test_unknown_benchmark(tmp_path):
    r = dgm("eval", "--agent", "seed", "--benchmark", "no-such-bench", "--archive-dir", str(tmp_path))
    assert_one_line_error(r, "unknown benchmark 'no-such-bench'")


def test_unknown_task_id(tmp_path):
    r = dgm("eval", "--agent", "seed", "--benchmark", "dgm-mini", "--tasks", "nope__nope-1",
            "--archive-dir", str(tmp_path))
    assert_one_line_error(r, "nope__nope-1")


def test_agent_dir_without_main_py(tmp_path):
    (tmp_path / "agent").mkdir()
    r = dgm("eval", "--agent-dir", str(tmp_path / "agent"), "--archive-dir", str(tmp_path))
    assert_one_line_error(r, "no main.py")


@pytest.mark.parametrize("command", [["eval", "--agent", "seed"], ["run", "--generations", "1"]])
def test_no_docker_daemon(tmp_path, command):
    r = dgm(*command, "--archive-dir", str(tmp_path / "arch"), env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "no Docker engine answers")
    assert not (tmp_path / "arch").exists()  # refused before an archive was made


def test_unknown_scripted_model(tmp_path):
    r = dgm("eval", "--agent", "seed", "--model", "scripted:does-not-exist", "--archive-dir", str(tmp_path))
    assert_one_line_error(r, "unknown scripted model")
    # A path the user gave: said to be missing, not "unknown".
    r = dgm("eval", "--agent", "seed", "--model", f"scripted:{tmp_path}/rules.json", "--archive-dir", str(tmp_path))
    assert_one_line_error(r, f"scripted model file {tmp_path}/rules.json does not exist")


@pytest.mark.parametrize("args, needle", [
    (["eval", "--workers", "zero"], "--workers"),
    (["no-such-command"], "No such command"),
    (["eval", "--no-such-option"], "No such option: --no-such-option"),
    (["sandbox", "build", "--force=yes"], "does not take a value"),
])
def test_usage_errors_of_the_command_line_are_one_line_too(args, needle):
    """Click's own usage errors (bad option values, unknown commands and
    options) are said like every other error: one line, exit code 2."""
    assert_one_line_error(dgm(*args), needle, "--help")


@pytest.mark.parametrize("tasks", [",", " , ", ""])
def test_tasks_naming_no_task_is_refused(tmp_path, tasks):
    r = dgm("eval", "--agent", "seed", f"--tasks={tasks}", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, "--tasks names no task id")
    assert not (tmp_path / "arch").exists()


def test_doctor_looks_without_creating_and_checks_the_provider_key(tmp_path, monkeypatch):
    # In-process (the real entry point): a child interpreter pays litellm's import, seconds, twice.
    for name in [k for k in os.environ if k.endswith("_API_KEY")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    doctor = ["doctor", "--model", "openai/gpt-4o", "--archive-dir", str(tmp_path / "typo")]
    r = run_dgm(doctor)
    assert r.returncode == 1, (r.stdout, r.stderr)
    rows = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if line.count("│") >= 3}
    assert "no" in rows["docker"] and "no Docker engine answers" in rows["docker"]
    assert "yes" in rows["archive"] and "none yet" in rows["archive"]
    assert "no" in rows["model"] and "OPENAI_API_KEY not set" in rows["model"]
    assert not (tmp_path / "typo").exists()  # a typo in --archive-dir leaves nothing behind
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    r = run_dgm(doctor)
    assert "its provider key is set" in r.stdout and "sk-test-not-real" not in r.stdout


def test_a_zero_budget_is_refused_before_anything_runs(tmp_path):
    """QA: `eval --budget-usd 0` started a sandbox, then stopped saying the $0 budget was spent."""
    r = dgm("eval", "--agent", "seed", "--budget-usd", "0", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, "--budget-usd: a cap of $0 pays for nothing")
    assert not (tmp_path / "arch").exists()
    r = dgm("run", "--budget-usd", "0", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, "--budget-usd: Input should be greater than 0")


@pytest.mark.parametrize("args", [["--help"], ["eval", "--help"], ["bench", "ls", "--help"], ["sandbox", "prune", "--help"]])
def test_help_works(args):
    r = dgm(*args)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_unwritable_json_output_is_refused_before_any_run(tmp_path):
    """A --json path that cannot be written fails at once, not after every task has run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = dgm("eval", "--agent", "seed", "--json", str(blocker / "results.json"), "--archive-dir", str(tmp_path / "arch"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})  # checked before Docker is even asked
    assert_one_line_error(r, "--json", "is a file, not a directory")
    r = dgm("eval", "--agent", "seed", "--json", str(tmp_path), "--archive-dir", str(tmp_path / "arch"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "is a directory")
    assert not (tmp_path / "arch").exists()  # refused before the archive was opened: nothing recorded


def test_json_output_directory_is_created(tmp_path):
    """A --json path in a directory that does not exist yet: the directory is made, as `--out` does."""
    from dgm.cli.options import check_output_file

    target = tmp_path / "new" / "deeper" / "results.json"
    check_output_file(target, "--json")
    assert target.parent.is_dir()


def test_an_agent_dir_keeps_its_links_as_links_and_refuses_links_leading_out(tmp_path):
    """--agent-dir is copied the way the code store keeps code: links stay
    links (never followed, so a host file cannot end up in the archive)."""
    from dgm.archive.store import ArchiveStore
    from dgm.agent_code import commit_agent_dir
    from dgm.errors import UsageError

    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "main.py").write_text("print(1)\n")
    os.symlink("main.py", agent / "alias.py")
    os.symlink(".", agent / "self")
    os.symlink("missing.txt", agent / "dangling")
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        sha = commit_agent_dir(store, agent, "links")
        out = store.code.materialize(sha, tmp_path / "out")
        assert os.readlink(out / "alias.py") == "main.py" and os.readlink(out / "self") == "."
        assert os.readlink(out / "dangling") == "missing.txt"
        os.symlink("/etc/passwd", agent / "passwd")
        with pytest.raises(UsageError, match="passwd -> /etc/passwd leads out"):
            commit_agent_dir(store, agent, "leaks")


def test_a_json_path_that_cannot_be_created_is_refused_before_any_run(tmp_path):
    """Permission bits say yes (root), the file system says no: tried, not guessed."""
    r = dgm("eval", "--agent", "seed", "--json", "/proc/dgm-results.json", "--archive-dir", str(tmp_path / "arch"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "--json /proc/dgm-results.json", "cannot write it")
    assert not (tmp_path / "arch").exists()


def test_version():
    from importlib.metadata import version

    r = dgm("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"dgm {version('dgm')}"


def test_a_provider_model_without_its_key_is_refused_before_anything_runs(tmp_path, monkeypatch):
    """Not after five retries of every call, taken for an outage (QA waited 77 s for that)."""
    for name in [k for k in os.environ if k.endswith("_API_KEY")]:
        monkeypatch.delenv(name)
    # In-process: the check reads litellm's provider table, whose import costs a child seconds.
    r = run_dgm(["eval", "--agent", "seed", "--model", "openai/gpt-4o-mini", "--tasks", "confini__confini-1",
                 "--archive-dir", str(tmp_path / "arch")])
    assert_one_line_error(r, "openai/gpt-4o-mini: OPENAI_API_KEY not set on the host")
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("args, needle", [
    (["--heldout=-2"], "--heldout: expected task ids (a list), a count of tasks (0 or more)"),
    (["--seed", "99999999999999999999", "--generations", "0"], "--seed: Input should be less than or equal to"),
    (["--seed", "-1"], "--seed: Input should be greater than or equal to 0"),
    (["--name", ""], "--name: a campaign name may not be blank"),
    (["--name", "   "], "--name: a campaign name may not be blank"),
    (["--stages", " , "], "--stages names no stage"),
])
def test_bad_run_options_are_one_line_and_write_nothing(tmp_path, args, needle):
    """QA: a negative --heldout was called an unknown subset; a seed past 64 bits
    was an OverflowError from the archive, after the Docker checks; a blank name
    quietly became a generated one."""
    r = dgm("run", *args, "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, needle)
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("text, needle", [
    ("heldout = -3", "heldout: expected task ids (a list), a count of tasks (0 or more) or 'subset:NAME', not -3"),
    ("heldout = 1.5", "heldout: expected task ids (a list), a count of tasks (0 or more) or 'subset:NAME', not 1.5"),
    ("heldout = true", "heldout: expected task ids (a list), a count of tasks (0 or more) or 'subset:NAME', not true"),
    ("heldout = [1, 2]", "heldout: every task id must be non-blank text"),
    ("workers = true", "workers: expected a number, not true"),
    ("seed = 99999999999999999999", "seed: Input should be less than or equal to 9223372036854775807"),
    ("seed = 9223372036854775807\ngenerations = -1", "generations:"),  # the largest seed is fine
    ("time_limit_s = 0.001", "time_limit_s: Input should be greater than or equal to 1"),
    ("sanity_time_limit_s = 0.5", "sanity_time_limit_s: Input should be greater than or equal to 1"),
    ("name = ''", "name: a campaign name may not be blank"),
    ("name = '  '", "name: a campaign name may not be blank"),
    ("[[campaign.stages]]\nname = ''\ntasks = 2", "stages.0.name: a stage name may not be blank"),
    ("[[campaign.stages]]\nname = 's'\ntasks = true", "stages.0.tasks: expected task ids (a list), a count of tasks "
                                                      "(1 or more)"),
    ("[sandbox]\ncpus = true", "sandbox.cpus: expected a number, not true"),
    ("[[campaign.stages]]\nname = 'only'\ntasks = []", "stage(s) only select no task"),
])
def test_bad_config_values_are_one_line_naming_the_key(tmp_path, text, needle):
    """QA: `heldout = -3` was a ValueError traceback from the plan; `heldout = true`
    and `tasks = true` counted as 1; `heldout = 1.5` was called not a list."""
    config = tmp_path / "campaign.toml"
    config.write_text("[campaign]\n" + text.replace("[sandbox]", "[campaign.sandbox]") + "\n")
    r = dgm("run", "--config", str(config), "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, needle)
    assert not (tmp_path / "arch").exists()


def test_a_negative_count_recorded_by_an_older_version_is_one_line_in_the_plan():
    from dgm.bench.registry import load_benchmark
    from dgm.config import CampaignConfig
    from dgm.errors import UsageError
    from dgm.evolution.staging import build_plan

    config = CampaignConfig.model_construct(**{**CampaignConfig().__dict__, "heldout": -3})
    with pytest.raises(UsageError, match="heldout: expected task ids"):
        build_plan(config, load_benchmark("dgm-mini"))


def test_a_campaign_recorded_with_a_blank_name_can_still_be_resumed(tmp_path):
    """Blank names are refused now; a campaign started with one before ran under a generated name."""
    from dgm.archive.store import ArchiveStore
    from dgm.config import CampaignConfig

    config = {**CampaignConfig().model_dump(mode="json"), "name": ""}
    with ArchiveStore.open(None, tmp_path / "arch") as store:
        campaign = store.create_campaign("campaign-old", "evolution", config)
        store.set_campaign_status(campaign.id, "interrupted", finished=True)
    # Stops at the Docker check, past the config's validation.
    r = dgm("resume", "campaign-old", "--archive-dir", str(tmp_path / "arch"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "no Docker engine answers")


def test_sandbox_cpus_below_what_docker_grants_are_refused():
    from dgm.config import validate_config
    from dgm.errors import UsageError

    with pytest.raises(UsageError, match="sandbox.cpus: Input should be greater than or equal to 0.01"):
        validate_config({"sandbox": {"cpus": 0.001}}, "campaign.toml")


def test_a_bad_rules_file_is_one_line_before_anything_runs(tmp_path):
    """QA: `"rules": [1]` was accepted, then each call was retried five times as a model outage (94 s)."""
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [1]}')
    r = dgm("eval", "--agent", "seed", "--model", f"scripted:{rules}", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, f"scripted model file {rules}: rules.0: expected a JSON object, not 1")
    assert not (tmp_path / "arch").exists()


def test_an_agent_dir_with_a_fifo_is_refused_in_one_line_before_anything_runs(tmp_path):
    """QA: a FIFO in --agent-dir crashed `dgm eval` with a shutil.Error traceback."""
    from dgm.archive.store import ArchiveStore
    from dgm.agent_code import commit_agent_dir
    from dgm.errors import UsageError

    agent = tmp_path / "agent"
    (agent / "sub").mkdir(parents=True)
    (agent / "main.py").write_text("print(1)\n")
    os.mkfifo(agent / "sub" / "pipe")
    r = dgm("eval", "--agent-dir", str(agent), "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, f"agent directory {agent}: sub/pipe is a FIFO")
    assert not (tmp_path / "arch").exists()
    with ArchiveStore.open(None, tmp_path / "arch") as store, pytest.raises(UsageError, match="sub/pipe is a FIFO"):
        commit_agent_dir(store, agent, "fifo")


@pytest.mark.parametrize("command", [["eval", "--agent", "seed"], ["run"]])
@pytest.mark.parametrize("images, needle", [
    (["--images", "bogus"], "unknown --images 'bogus' (choose one of: auto, pull, build, offline)"),
    (["--images", "offline"], "--images offline needs --repo-mirror DIR"),
])
def test_a_bad_images_choice_is_refused_when_the_options_are_read(tmp_path, command, images, needle):
    """QA: `--images bogus` created a fresh archive, printed "preparing images
    for 300 task(s)" and alembic's INFO lines before the error."""
    r = dgm(*command, "--benchmark", "swebench-lite", *images, "--archive-dir", str(tmp_path / "arch"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, needle)
    assert r.stdout == ""
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("kind, needle", [
    ("eval", "campaign other is an evaluation (`dgm eval`), not an evolution campaign: only those are resumed; "
             "run `dgm eval` again"),
    ("import", "campaign other is an import of a DGM run (`dgm import-dgm`), not an evolution campaign"),
])
def test_resuming_what_is_not_an_evolution_campaign_says_what_to_do(tmp_path, kind, needle):
    """QA: "is a eval run" / "a import run", and nothing on what to do instead."""
    from dgm.archive.store import ArchiveStore

    with ArchiveStore.open(None, tmp_path / "arch") as store:
        store.create_campaign("other", kind, {})
    r = dgm("resume", "other", "--archive-dir", str(tmp_path / "arch"))
    assert_one_line_error(r, needle)


def test_eval_budget_help_and_checks_agree_that_the_cap_is_more_than_zero(tmp_path):
    """QA: `dgm eval --help` showed `--budget-usd [x>=0.0]`, though 0 is refused."""
    r = dgm("eval", "--help")
    assert r.returncode == 0 and "x>=0.0" not in r.stdout and "more than 0" in r.stdout
    for value, needle in (("-1", "--budget-usd: a cap must be more than $0, not -1"),
                          ("inf", "--budget-usd: give a finite number of dollars, not inf")):
        r = dgm("eval", "--agent", "seed", f"--budget-usd={value}", "--archive-dir", str(tmp_path / "arch"),
                env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
        assert_one_line_error(r, needle)
    assert not (tmp_path / "arch").exists()


def test_the_example_config_lists_every_key_and_the_readme_every_run_option():
    """QA: campaign.example.toml lacked benchmark_options though the README says it
    lists every key; the README's `run` row left out five of its options."""
    import re
    from pathlib import Path

    from dgm.config import CampaignConfig, ExecutorConfig, StageConfig
    from dgm.sandbox.limits import CONFIGURABLE as SANDBOX_KEYS

    root = Path(__file__).resolve().parents[2]
    example = (root / "campaign.example.toml").read_text()
    written = set(re.findall(r"^#? ?([a-z_]+) =", example, re.M))
    assert set(CampaignConfig.model_fields) - {"stages", "sandbox", "executor"} <= written
    assert set(StageConfig.model_fields) | set(SANDBOX_KEYS) | set(ExecutorConfig.model_fields) <= written
    assert "[campaign.executor]" in example
    r = dgm("run", "--help")
    options = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout)) - {"--help", "--archive", "--archive-dir", "--config"}
    readme = (root / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `dgm run "))
    assert {o for o in options if o not in row} == set()


def test_sandbox_prune_needs_an_existing_archive_and_asks_no_engine(tmp_path):
    # Without an archive every task image would look unneeded: refused before Docker is reached.
    r = dgm("sandbox", "prune", "--archive-dir", str(tmp_path / "none"),
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "no archive in")
    assert not (tmp_path / "none").exists()


def test_sandbox_ls_without_an_engine_is_one_line(tmp_path):
    r = dgm("sandbox", "ls", cwd=tmp_path,  # no archive here: ls lists without one
            env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert_one_line_error(r, "no Docker engine answers")
