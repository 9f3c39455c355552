"""`dgm ls / show / diff / export` on a real archive: the seed agent and two real
self-modifications as git commits, task runs and LLM calls through the store."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.cli import assert_one_line_error, run_dgm
from dgm.archive import ArchiveStore
from dgm.agent_code import SEED_AGENT_DIR, commit_agent_dir


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browse")
    root = tmp / "archive"
    store = ArchiveStore.open(None, root)
    campaign = store.create_campaign("browse", "evolution", {"generations": 2})
    seed_sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
    seed = store.add_agent(campaign.id, seed_sha, status="seed", origin="seed")
    # Two real self-modifications: a constant changed, then a helper file added.
    child_dir = tmp / "child"
    shutil.copytree(SEED_AGENT_DIR, child_dir, ignore=shutil.ignore_patterns("__pycache__"))
    main = child_dir / "main.py"
    main.write_text(main.read_text().replace("MAX_STEPS = 30", "MAX_STEPS = 45"))
    child_sha = commit_agent_dir(store, child_dir, "child", parent_sha=seed_sha)
    proposal = {"diagnosis": "runs out of steps on long tasks", "improvement": "raise MAX_STEPS to 45"}
    child = store.add_agent(campaign.id, child_sha, parent_id=seed.id, generation=1, status="admitted",
                            origin="child", proposal=proposal, diagnosis_target={"task_id": "t-2"})
    (child_dir / "helpers.py").write_text("def shout(s):\n    return s.upper()\n")
    grand_sha = commit_agent_dir(store, child_dir, "grandchild", parent_sha=child_sha)
    grand = store.add_agent(campaign.id, grand_sha, parent_id=child.id, generation=2, status="rejected",
                            origin="child", proposal={"improvement": "add helpers"})
    outcomes = {seed.id: ["resolved", "unresolved", "empty_patch"], child.id: ["resolved", "resolved", "unresolved"]}
    for agent_id, statuses in outcomes.items():
        for k, status in enumerate(statuses):
            run = store.start_task_run(campaign.id, agent_id, "task", "dgm-mini", f"t-{k + 1}",
                                       "small" if k < 2 else "medium", "scripted:gold")
            store.record_llm_call(model="scripted:gold", request_hash="ab" * 32, purpose="task",
                                  task_run_id=run.id, cost_usd=0.25, scripted=True)
            store.finish_task_run(run.id, status=status, patch="diff --git a/x b/x\n" if status != "empty_patch" else "",
                                  tests_status={"FAIL_TO_PASS": {"success": ["a"] if status == "resolved" else [],
                                                                 "failure": [] if status == "resolved" else ["a"]}})
    store.record_llm_call(model="scripted:gold", request_hash="cd" * 32, purpose="diagnose",
                          campaign_id=campaign.id, agent_id=child.id, cost_usd=1.5, scripted=True)
    store.update_agent(seed.id, score=1 / 3)
    store.update_agent(child.id, score=2 / 3, heldout_score=0.5)
    yield store, root, {"campaign": campaign, "seed": seed, "child": child, "grand": grand}
    store.close()


def test_ls_lists_campaigns_and_agents_with_stage_scores_and_cost(archive):
    store, root, ids = archive
    proc = run_dgm(["ls", "--json"], root)
    assert proc.returncode == 0, proc.stderr
    (row,) = [c for c in json.loads(proc.stdout) if c["name"] == "browse"]
    assert row["agents"] == 3 and row["best_score"] == pytest.approx(2 / 3)
    proc = run_dgm(["ls", "browse", "--json"], root)
    data = json.loads(proc.stdout)
    by_id = {a["id"]: a for a in data["agents"]}
    child = by_id[ids["child"].id]
    assert child["parent_id"] == ids["seed"].id and child["generation"] == 1
    assert child["stages"] == {"small": {"resolved": 2, "finished": 2}, "medium": {"resolved": 0, "finished": 1}}
    assert child["cost_usd"] == pytest.approx(3 * 0.25 + 1.5)
    assert by_id[ids["seed"].id]["stages"]["small"] == {"resolved": 1, "finished": 2}
    # Every score with the 95 % Wilson interval of the runs behind it (2 of 3; none behind the held-out score).
    assert child["score_interval"] == {"n": 3, "resolved": 2, "low": 0.2077, "high": 0.9385}
    assert child["heldout_interval"] == {"n": 0, "low": None, "high": None}
    assert row["best_agent"] == ids["child"].id and row["best_interval"]["n"] == 3
    table = run_dgm(["ls", "browse"], root)
    assert table.returncode == 0 and ids["grand"].id in table.stdout and "small" in table.stdout
    child_line = next(line for line in table.stdout.splitlines() if line.lstrip("│ ").startswith(ids["child"].id))
    assert "0.67 [0.21–0.94] n=3" in child_line and "0.50 n=0" in child_line, child_line
    assert "0.33 [0.06–0.79] n=3" in table.stdout
    campaigns = run_dgm(["ls"], root).stdout
    assert "0.67 [0.21–0.94] n=3" in campaigns, campaigns


def test_show_has_proposal_scores_per_task_results_cost_and_diff(archive):
    store, root, ids = archive
    child = ids["child"]
    proc = run_dgm(["show", child.id[:6], "--json"], root)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["id"] == child.id
    assert d["proposal"]["improvement"] == "raise MAX_STEPS to 45"
    assert d["stages"]["small"] == {"resolved": 2, "finished": 2, "unfinished": 0, "score": 1.0,
                                    "interval": {"n": 2, "resolved": 2, "low": 0.3424, "high": 1.0}}
    assert d["score_interval"] == {"n": 3, "resolved": 2, "low": 0.2077, "high": 0.9385}
    assert d["heldout_score"] == 0.5
    assert {r["task_id"]: r["status"] for r in d["task_runs"]} == {"t-1": "resolved", "t-2": "resolved", "t-3": "unresolved"}
    assert d["cost"]["by_purpose"]["diagnose"]["cost_usd"] == pytest.approx(1.5)
    assert d["diff_vs_parent"] == store.code.diff(ids["seed"].commit_sha, child.commit_sha)
    assert "+MAX_STEPS = 45" in d["diff_vs_parent"] and "-MAX_STEPS = 30" in d["diff_vs_parent"]
    text = run_dgm(["show", child.id], root)
    assert text.returncode == 0, text.stderr
    for needle in ("raise MAX_STEPS to 45", "runs out of steps", "t-3", "unresolved", "+MAX_STEPS = 45",
                   "0.67 [0.21–0.94] n=3", "held-out 0.50 n=0", "2/2 resolved (1.00 [0.34–1.00] n=2)",
                   "diagnosis $1.5000", "[scripted models]"):
        assert needle in text.stdout, needle


def test_diff_output_applies_and_reproduces_the_other_agent(archive, tmp_path):
    store, root, ids = archive
    seed, grand = ids["seed"], ids["grand"]
    proc = run_dgm(["diff", grand.id, "--from-root"], root)
    assert proc.returncode == 0, proc.stderr
    assert "helpers.py" in proc.stdout and "+MAX_STEPS = 45" in proc.stdout
    assert run_dgm(["diff", seed.id, grand.id], root).stdout == proc.stdout
    # Applying the printed diff to an export of the root gives exactly the grandchild's tree.
    assert run_dgm(["export", seed.id, str(tmp_path / "a")], root).returncode == 0
    assert run_dgm(["export", grand.id, str(tmp_path / "b")], root).returncode == 0
    subprocess.run(["git", "apply", "-"], cwd=tmp_path / "a", input=proc.stdout, text=True, check=True)
    assert subprocess.run(["diff", "-r", str(tmp_path / "a"), str(tmp_path / "b")]).returncode == 0
    parent_only = run_dgm(["diff", grand.id], root).stdout
    assert "helpers.py" in parent_only and "MAX_STEPS" not in parent_only
    stat = run_dgm(["diff", grand.id, "--from-root", "--stat"], root).stdout
    assert "main.py  +1 -1" in stat and "helpers.py  +2 -0" in stat


def test_exported_agent_runs_on_its_own(archive, tmp_path):
    """The exported tree is the agent: run its main.py against a real gateway (scripted model)."""
    from dgm.llm.client import CallContext, LLMClient
    from dgm.llm.gateway import Gateway

    store, root, ids = archive
    dest = tmp_path / "agent"
    proc = run_dgm(["export", ids["child"].id, str(dest)], root)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == \
        sorted(store.code.tree_files(ids["child"].commit_sha))
    assert "MAX_STEPS = 45" in (dest / "main.py").read_text()
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (tmp_path / "problem.md").write_text("Nothing to do.")
    out = tmp_path / "out"
    out.mkdir()
    with Gateway(LLMClient(store)) as gateway:
        token = gateway.grant(CallContext(purpose="task", model="scripted:noop", agent_id=ids["child"].id,
                                          campaign_id=ids["campaign"].id))
        env = {**os.environ, "DGM_PROBLEM_FILE": str(tmp_path / "problem.md"), "DGM_REPO": str(repo),
               "DGM_LLM_SOCKET": gateway.socket_path, "DGM_LLM_TOKEN": token, "DGM_MODEL": "scripted:noop",
               "DGM_OUTPUT_DIR": str(out), "DGM_TIME_LIMIT_S": "60", "DGM_PYTHON": sys.executable,
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        run = subprocess.run([sys.executable, str(dest / "main.py")], cwd=repo, env=env, capture_output=True,
                             text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "trajectory.json").read_text())["exit_status"] == "submitted"
    # Run by hand without the contract's environment: one line saying how it is meant to run.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("DGM_")}
    run = subprocess.run([sys.executable, str(dest / "main.py")], cwd=repo, env=bare, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "agent contract" in run.stderr


def test_bad_input_is_one_line_and_exit_2(archive, tmp_path):
    _, root, ids = archive
    assert_one_line_error(run_dgm(["show", "deadbeef0000"], root, subprocess_=True), "no agent", "deadbeef0000")
    assert_one_line_error(run_dgm(["show", "not-an-id"], root), "no agent")
    assert_one_line_error(run_dgm(["diff", "feedface"], root), "no agent")
    assert_one_line_error(run_dgm(["diff", ids["child"].id, "cafecafe"], root), "no agent", "cafecafe")
    assert_one_line_error(run_dgm(["diff", ids["seed"].id], root), "no parent")
    assert_one_line_error(run_dgm(["ls", "no-such-campaign"], root), "no campaign", "no-such-campaign")
    assert_one_line_error(run_dgm(["export", "abcdef99", str(tmp_path / "x")], root), "no agent")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    assert_one_line_error(run_dgm(["export", ids["seed"].id, str(busy)], root), "non-empty")
    assert_one_line_error(run_dgm(["export", ids["seed"].id, str(busy / "f" / "sub")], root), "cannot write to")
    assert_one_line_error(run_dgm(["lineage", "browse", "--format", "json", "--out", str(busy / "f" / "x.json")],
                                  root), "is a file, not a directory")
    assert_one_line_error(run_dgm(["replay", "abcdef99", "--task", "t-1"], root), "no agent")
    assert_one_line_error(run_dgm(["replay", ids["seed"].id, "--task", "never-run"], root), "unknown dgm-mini task")
    assert_one_line_error(run_dgm(["replay", ids["seed"].id, "--task", "never-run", "--live"], root),
                          "unknown dgm-mini task")
    assert_one_line_error(run_dgm(["replay", ids["seed"].id, "--task", "confini__confini-1"], root), "no finished run")
    assert_one_line_error(run_dgm(["replay", ids["seed"].id, "--task", "confini__confini-1", "--live"], root),
                          "give --model")
    root_hint = run_dgm(["show", ids["seed"].id], root).stdout  # what show suggests for a root works
    assert "--from-root" not in root_hint and f"dgm export {ids['seed'].id} DIR" in root_hint
    assert_one_line_error(run_dgm(["replay", ids["seed"].id, "--task", "t-1", "--live", "--recorded"], root),
                          "not both")


def test_tables_keep_ids_whole_on_a_narrow_terminal_and_rows_whole_in_a_pipe(archive):
    store, root, ids = archive
    campaign = ids["campaign"]

    def dgm(args: list[str], columns: int | None) -> str:
        env = {**os.environ, "DGM_ARCHIVE_DIR": str(root), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        env.pop("DGM_ARCHIVE", None)
        env.pop("COLUMNS", None)
        if columns:
            env["COLUMNS"] = str(columns)
        proc = subprocess.run([sys.executable, "-m", "dgm", *args], capture_output=True, text=True, env=env,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # An 80-column terminal: ids come out whole, ready to paste into the next command.
    narrow = dgm(["ls"], 80)
    assert campaign.id in narrow
    agents = dgm(["ls", "browse"], 80)
    # Too wide for 80 columns, and short: one block per agent, every field there.
    grand_block = agents.split(ids["grand"].id, 1)[1].split("─" * 20, 1)[0]
    assert re.search(rf"\nparent +{ids['child'].id}", grand_block)  # the grandchild's parent, its id whole
    for header in ("gen", "status", "score", "small", "medium", "held-out", "cost $"):
        assert f"\n{header} " in grand_block, header
    assert ids["seed"].id in agents
    shown = dgm(["show", ids["child"].id, "--no-diff"], 80)
    runs = store.list_task_runs(agent_id=ids["child"].id)
    assert all(r.id[:10] in shown for r in runs)
    for header in ("patch lines", "seconds", "cost $", "model"):  # no column cropped away
        assert f"\n{header} " in shown, header
    assert all(len(line) <= 80 for line in (narrow + agents + shown).splitlines())
    # A pipe (no COLUMNS): each row on one line, to its last column.
    created = store.get_campaign(campaign.id).created_at.strftime("%Y-%m-%d %H:%M")
    piped = dgm(["ls"], None)
    (row,) = [line for line in piped.splitlines() if campaign.id in line]
    assert "browse" in row and "evolution" in row and created in row


def test_text_from_users_models_and_agents_is_never_read_as_markup(tmp_path):
    """Names, reasons, proposals and file names are data: "[/bold]" in one must
    print as itself, not crash Rich or restyle the output."""
    root = tmp_path / "archive"
    mark = "[/bold] [red]x[/red] [link=http://e]"
    fmark = "[bold] [red]x [link=e]"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign(f"exp {mark}", "evolution", {"generations": 1, "model": f"m{mark}"})
        seed_sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        seed = store.add_agent(campaign.id, seed_sha, status="admitted", origin="seed")
        child_dir = tmp_path / "child"
        shutil.copytree(SEED_AGENT_DIR, child_dir, ignore=shutil.ignore_patterns("__pycache__"))
        (child_dir / f"notes {fmark}.txt").write_text("x\n")  # a file name cannot hold "/"
        child = store.add_agent(campaign.id, commit_agent_dir(store, child_dir, "child", parent_sha=seed_sha),
                                parent_id=seed.id, generation=1, status="pending", origin="child",
                                proposal={"summary": mark})
        store.update_agent(child.id, status="rejected", rejection_reason=f"sanity gate {mark}")
        store.add_event(campaign.id, "agent_diagnosed", {"agent": child.id, "proposal": mark}, agent_id=child.id)
        run = store.start_task_run(campaign.id, child.id, "task", "dgm-mini", f"t{mark}", f"stage{mark}", f"m{mark}")
        store.finish_task_run(run.id, status="unresolved", patch="")
        store.set_campaign_status(campaign.id, "failed", finished=True)
    for args in (["ls"], ["ls", campaign.id], ["show", child.id, "--no-diff"], ["status", campaign.id],
                 ["diff", child.id, "--stat"], ["lineage", campaign.id]):
        proc = run_dgm(args, root)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
    assert mark in run_dgm(["show", child.id, "--no-diff"], root).stdout
    assert f"exp {mark}" in run_dgm(["ls"], root).stdout
    assert fmark in run_dgm(["diff", child.id, "--stat"], root).stdout
    assert f"proposal={mark}" in run_dgm(["status", campaign.id], root).stdout


def test_an_agents_later_evaluations_are_kept_apart_from_its_campaigns_figures(archive):
    """An eval of an archived agent is another campaign: `dgm ls CAMPAIGN` (with
    or without --limit) counts only the campaign's runs and spend, and `dgm
    show` gives the later spend separately."""
    store, root, ids = archive
    child = ids["child"]
    later = store.create_campaign("later-eval", "eval", {"benchmark": "dgm-mini"})
    run = store.start_task_run(later.id, child.id, "task", "dgm-mini", "t-9", "eval", "scripted:gold")
    store.record_llm_call(model="scripted:gold", request_hash="ef" * 32, purpose="task", task_run_id=run.id,
                          cost_usd=0.5, scripted=True)
    store.finish_task_run(run.id, status="resolved", patch="diff --git a/x b/x\n")
    own_cost = 3 * 0.25 + 1.5
    for extra in ([], ["--limit", "3"], ["--sort", "score", "--limit", "2"]):
        rows = {a["id"]: a for a in json.loads(run_dgm(["ls", "browse", "--json", *extra], root).stdout)["agents"]}
        assert rows[child.id]["cost_usd"] == pytest.approx(own_cost), extra
        assert set(rows[child.id]["stages"]) == {"small", "medium"}, extra
    d = json.loads(run_dgm(["show", child.id, "--json"], root).stdout)["cost"]
    assert d["campaign_usd"] == pytest.approx(own_cost) and d["total_usd"] == pytest.approx(own_cost + 0.5)
    assert d["elsewhere_by_kind"] == {"eval": {"calls": 1, "cost_usd": pytest.approx(0.5), "unpriced_calls": 0}}
    failed = store.start_task_run(later.id, child.id, "task", "dgm-mini", "t-10", "eval", "scripted:gold")
    store.finish_task_run(failed.id, status="error", error="could not take the diff: .git is gone\nusage: git diff")
    text = " ".join(run_dgm(["show", child.id, "--no-diff"], root).stdout.replace("│", " ").split())  # unwrapped
    assert "could not take the diff: .git is gone" in text and "usage: git diff" not in text  # why it failed
    n_own = len([c for c in store.list_llm_calls(agent_id=child.id) if c.campaign_id == child.campaign_id])
    assert f"${own_cost:.4f} in {n_own} LLM calls in campaign {child.campaign_id}" in text
    assert "later, in other campaigns: eval $0.5000 (1 call)" in text


def test_status_names_the_same_best_agent_as_every_other_view(tmp_path):
    """`dgm status` ranks with dgm.ranking like ls, lineage and the explorer:
    on a tie of scores, the agent whose held-out score was measured."""
    store = ArchiveStore.open(None, tmp_path / "archive")
    campaign = store.create_campaign("ranked", "evolution", {"generations": 3})
    sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed")
    seed = store.add_agent(campaign.id, sha, status="admitted", origin="seed")
    early = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted", origin="child")
    late = store.add_agent(campaign.id, sha, parent_id=early.id, generation=2, status="admitted", origin="child")
    store.update_agent(seed.id, score=0.5)
    store.update_agent(early.id, score=0.9)
    store.update_agent(late.id, score=0.9, heldout_score=0.75)
    # Half-evaluated: a perfect score over the one stage it has done so far. Not best (yet).
    busy = store.add_agent(campaign.id, sha, parent_id=late.id, generation=3, status="evaluating", origin="child")
    store.update_agent(busy.id, score=1.0, heldout_score=1.0)
    store.set_campaign_status(campaign.id, "completed", finished=True)
    store.close()
    out = run_dgm(["status", "ranked"], tmp_path / "archive").stdout
    best_line = next(line for line in out.splitlines() if line.startswith("best"))
    assert late.id in best_line and "score 0.90 n=0, held-out 0.75 n=0" in best_line, best_line
    lineage = json.loads(run_dgm(["lineage", "ranked", "--format", "json"], tmp_path / "archive").stdout)
    assert lineage["graph"]["best_agent"] == late.id
    tree = run_dgm(["lineage", "ranked"], tmp_path / "archive").stdout
    assert next(line for line in tree.splitlines() if "★" in line and late.id in line)
    (row,) = json.loads(run_dgm(["ls", "--json"], tmp_path / "archive").stdout)
    assert row["best_score"] == 0.9 and row["agents"] == 4  # not the half-evaluated 1.0



def test_a_long_table_too_wide_for_the_terminal_names_the_columns_it_leaves_out():
    import io

    from rich.console import Console
    from rich.table import Table

    from dgm.cli.tables import add_whole_column, print_table

    rows = [[f"agent{i:08d}", f"parent{i:08d}", "admitted", f"{i / 40:.3f}", f"{i * 0.01:.4f}"] for i in range(40)]
    table = Table(title="many")
    for k, header in enumerate(("agent", "parent", "status", "score", "cost $")):
        add_whole_column(table, header, [r[k] for r in rows])
    for r in rows:
        table.add_row(*r)
    out = io.StringIO()
    print_table(Console(file=out, width=50, color_system=None), table)
    text = out.getvalue()
    assert "agent00000039" in text and "parent00000039" in text  # ids whole
    assert "score, cost $ left out at 50 columns" in " ".join(text.split())
    assert all(len(line) <= 50 for line in text.splitlines())


def test_ls_marks_a_campaign_whose_runner_stopped_checking_in(tmp_path):
    """After a kill -9 the row still says 'running'; ls shows that nobody is behind it."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from dgm.archive.models import Campaign

    with ArchiveStore.open(None, tmp_path / "archive") as store:
        store.create_campaign("live", "evolution", {})
        dead = store.create_campaign("dead", "evolution", {})
        with store.engine.begin() as conn:
            conn.execute(sa.update(Campaign).where(Campaign.id == dead.id)
                         .values(heartbeat_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
    rows = {r["name"]: r["status"] for r in json.loads(run_dgm(["ls", "--json"], tmp_path / "archive").stdout)}
    assert rows == {"live": "running", "dead": "running?"}


def test_a_killed_runner_on_this_machine_is_known_dead_at_once(tmp_path):
    """Fresh heartbeat, but its process is gone: status, ls and resume know
    at once, not 30 s later. On another machine only the heartbeat counts."""
    import socket

    import sqlalchemy as sa

    from dgm.archive.models import Campaign
    from dgm.runs.campaign import refuse_if_running as _refuse_if_running
    from dgm.errors import UsageError

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid nobody has any more
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with ArchiveStore.open(None, tmp_path / "archive") as store:
            campaigns = {name: store.create_campaign(name, "evolution", {}) for name in ("killed", "alive", "remote")}
            campaigns["killed-eval"] = store.create_campaign("killed-eval", "eval", {})
            with store.engine.begin() as conn:
                for name, pid, host in (("killed", gone.pid, socket.gethostname()),
                                        ("alive", alive.pid, socket.gethostname()), ("remote", gone.pid, "elsewhere"),
                                        ("killed-eval", gone.pid, socket.gethostname())):
                    conn.execute(sa.update(Campaign).where(Campaign.id == campaigns[name].id)
                                 .values(pid=pid, runner_host=host))
            fresh = {name: store.get_campaign(c.id) for name, c in campaigns.items()}
        rows = {r["name"]: r["status"] for r in json.loads(run_dgm(["ls", "--json"], tmp_path / "archive").stdout)}
        assert rows == {"killed": "running?", "alive": "running", "remote": "running", "killed-eval": "running?"}
        status = " ".join(run_dgm(["status", "killed"], tmp_path / "archive").stdout.split())
        assert f"its runner, pid {gone.pid} on this machine, is gone" in status
        # An evaluation is not resumed: status does not send the user to `dgm resume`.
        status = " ".join(run_dgm(["status", "killed-eval"], tmp_path / "archive").stdout.split())
        assert "is gone; an eval is not resumed" in status and "dgm resume" not in status, status
        _refuse_if_running(fresh["killed"])  # resume may go on
        for name, where in (("alive", f"pid {alive.pid},"), ("remote", f"pid {gone.pid} on elsewhere,")):
            with pytest.raises(UsageError, match=where):
                _refuse_if_running(fresh[name])
    finally:
        alive.kill()
        alive.wait()


def test_a_child_rejected_before_its_commit_has_no_code_of_its_own(tmp_path):
    """Its commit is still its parent's: show says so and shows the change it
    attempted; diff, export and replay refuse in one line instead of passing
    the parent's code off as its own; the lineage export says why it was rejected."""
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("early", "evolution", {})
        seed_sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        seed = store.add_agent(campaign.id, seed_sha, status="seed", origin="seed")
        reason = "self-modification diff does not apply: error: corrupt patch at line 3"
        child = store.add_agent(campaign.id, seed_sha, parent_id=seed.id, generation=1, status="pending",
                                origin="child", meta={"own_commit": False})
        run = store.start_task_run(campaign.id, child.id, "self_modify", "self", "self", "self_modify", "m")
        store.finish_task_run(run.id, status="ok", patch="diff --git a/main.py b/main.py\n+ATTEMPTED = True\n")
        store.update_agent(child.id, status="rejected", rejection_reason=reason)

    shown = run_dgm(["show", child.id], root)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "none: rejected before its code was committed" in text and seed_sha[:12] not in text
    assert "attempted change" in text and "+ATTEMPTED = True" in text
    data = json.loads(run_dgm(["show", child.id, "--json"], root).stdout)
    assert data["commit"] is None and data["own_code"] is False and data["diff_vs_parent"] == ""
    assert "+ATTEMPTED = True" in data["attempted_patch"]

    for args in (["diff", child.id], ["diff", seed.id, child.id], ["export", child.id, str(tmp_path / "out")],
                 ["replay", child.id, "--task", "confini__confini-1"]):
        assert_one_line_error(run_dgm(args, root), f"agent {child.id} has no code of its own", "does not apply")
    assert not (tmp_path / "out").exists()

    listed = run_dgm(["ls", "early"], root)
    assert "why rejected" in listed.stdout and "does not apply" in " ".join(listed.stdout.split())
    assert json.loads(run_dgm(["ls", "early", "--json"], root).stdout)["agents"][1]["rejection_reason"] == reason
    graph = json.loads(run_dgm(["lineage", "early", "--format", "json"], root).stdout)

    node = next(n for n in graph["nodes"] if n["id"] == child.id)
    assert node["rejection_reason"] == reason and "commit" not in node
    assert next(n for n in graph["nodes"] if n["id"] == seed.id)["commit"] == seed_sha


def test_browsing_with_a_mistyped_archive_dir_creates_nothing(archive, tmp_path):
    store, root, ids = archive
    typo = tmp_path / "typo"
    proc = run_dgm(["diff", ids["child"].id, "--archive", f"sqlite:///{root / 'dgm.db'}", "--archive-dir", str(typo)])
    assert_one_line_error(proc, "no archive directory at", str(typo))
    assert not typo.exists()


def test_show_cuts_a_huge_proposal_and_json_keeps_it_whole(tmp_path):
    from dgm.cli.browse import SHOWN_TEXT_CHARS

    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("huge", "evolution", {})
        sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        seed = store.add_agent(campaign.id, sha, status="seed", origin="seed")
        huge = "x" * 2_000_000
        child = store.add_agent(campaign.id, sha, parent_id=seed.id, generation=1, status="admitted", origin="child",
                                proposal={"problem_statement": huge})
    shown = run_dgm(["show", child.id, "--no-diff"], root)
    assert shown.returncode == 0 and len(shown.stdout) < 4 * SHOWN_TEXT_CHARS + 20_000
    assert "more characters: --json" in shown.stdout
    assert json.loads(run_dgm(["show", child.id, "--json"], root).stdout)["proposal"]["problem_statement"] == huge


def test_an_evaluation_of_an_archived_agent_lists_that_agent(archive):
    """`dgm eval --agent ID` runs an agent of another campaign: ls counts and lists it there."""
    store, root, ids = archive
    evaluation = store.create_campaign("eval-of-child", "eval", {})
    run = store.start_task_run(evaluation.id, ids["child"].id, "task", "dgm-mini", "t-1", "eval", "scripted:gold")
    store.finish_task_run(run.id, status="resolved", patch="diff --git a/x b/x\n")
    (row,) = [c for c in json.loads(run_dgm(["ls", "--json"], root).stdout) if c["name"] == "eval-of-child"]
    assert row["agents"] == 1
    (agent,) = json.loads(run_dgm(["ls", "eval-of-child", "--json"], root).stdout)["agents"]
    assert agent["id"] == ids["child"].id and agent["stages"] == {"eval": {"resolved": 1, "finished": 1}}
    (browse,) = [c for c in json.loads(run_dgm(["ls", "--json"], root).stdout) if c["name"] == "browse"]
    assert browse["agents"] == 3  # its own campaign's count is unchanged
    # The tree, the graph exports and the explorer (same graph) show it too, with this campaign's run.
    tree = run_dgm(["lineage", "eval-of-child"], root)
    assert tree.returncode == 0 and ids["child"].id in tree.stdout, tree.stdout + tree.stderr
    graph = json.loads(run_dgm(["lineage", "eval-of-child", "--format", "json"], root).stdout)
    (node,) = graph["nodes"]
    assert node["id"] == ids["child"].id and node["n_runs"] == 1


def _on_a_terminal(args: list[str], archive_dir, code: int = 0) -> bytes:
    """What `dgm ARGS` writes to a terminal (a pseudo-terminal here)."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "200", "DGM_ARCHIVE_DIR": str(archive_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "dgm", *args], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == code, out[-2000:]
    return out


def test_control_characters_an_agent_wrote_cannot_drive_the_terminal(tmp_path):
    """An agent's code, reasons and errors reach the terminal through `dgm
    diff` and `dgm show`: an escape sequence in them (colours, hidden text, a
    window title, the clipboard) is shown as text, never sent to the terminal."""
    root = tmp_path / "archive"
    sequences = "\x1b[41mANSI-RED\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x9b31m \u202eexe.txt"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("esc", "evolution", {"generations": 1})
        seed_sha = commit_agent_dir(store, SEED_AGENT_DIR, "seed agent")
        seed = store.add_agent(campaign.id, seed_sha, status="admitted", origin="seed")
        child_dir = tmp_path / "child"
        shutil.copytree(SEED_AGENT_DIR, child_dir, ignore=shutil.ignore_patterns("__pycache__"))
        with open(child_dir / "main.py", "a") as fh:
            fh.write(f"# {sequences}\n")
        child = store.add_agent(campaign.id, commit_agent_dir(store, child_dir, "child", parent_sha=seed_sha),
                                parent_id=seed.id, generation=1, status="pending", origin="child")
        store.update_agent(child.id, status="rejected", rejection_reason=f"sanity gate: {sequences}")
        # A child rejected before its commit: its reason reaches the terminal in an error line.
        early = store.add_agent(campaign.id, seed_sha, parent_id=seed.id, generation=1, status="pending",
                                origin="child", meta={"own_commit": False})
        store.update_agent(early.id, status="rejected", rejection_reason=f"diff does not apply: {sequences}")
    for args, code in ((["diff", child.id], 0), (["show", child.id], 0), (["ls", campaign.id], 0),
                       (["status", campaign.id], 0), (["lineage", campaign.id], 0), (["diff", early.id], 2)):
        out = _on_a_terminal(args, root, code)
        for raw in ("\x1b[41mANSI-RED", "\x1b]52", "\x9b31m", "\u202e"):
            assert raw.encode() not in out, (args, raw)
        if args[0] in ("diff", "show", "ls"):
            assert b"\\x1b[41mANSI-RED" in out, args
    # Piped, `dgm show` (not a patch stream) escapes them too; `dgm diff` stays raw, for `git apply`.
    shown = run_dgm(["show", child.id], root).stdout
    assert "\x1b[41m" not in shown and "\u202e" not in shown and "\\x1b[41mANSI-RED" in shown
    assert "\x1b[41mANSI-RED" in run_dgm(["diff", child.id], root).stdout


def test_runs_cut_by_a_stop_are_shown_unfinished_and_their_stage_as_so_far(tmp_path):
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("stopped", "evolution", {"generations": 1})
        seed = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                               origin="seed")
        done = store.start_task_run(campaign.id, seed.id, "task", "dgm-mini", "t-1", "heldout", "m")
        store.finish_task_run(done.id, status="resolved", patch="diff --git a/x b/x\n")
        store.start_task_run(campaign.id, seed.id, "task", "dgm-mini", "t-2", "heldout", "m")  # cut by the stop
        store.set_campaign_status(campaign.id, "budget_exhausted", finished=True)
    out = run_dgm(["show", seed.id, "--no-diff"], root).stdout
    assert "1/1 resolved (1.00 [0.21–1.00] n=1; 1 unfinished, so far only)" in out, out
    assert "unfinished" in out and "`dgm resume` redoes it" in out and " running " not in out, out
    details = json.loads(run_dgm(["show", seed.id, "--json"], root).stdout)
    assert details["stages"]["heldout"] == {"resolved": 1, "finished": 1, "unfinished": 1, "score": 1.0,
                                            "interval": {"n": 1, "resolved": 1, "low": 0.2065, "high": 1.0}}


def test_show_run_prints_one_run_in_full_and_each_part_whole(tmp_path):
    """What the agent did (trajectory), its patch, its own output, the test log
    and its calls: `dgm show` lists runs, `dgm show-run` opens one."""
    root = tmp_path / "archive"
    patch = "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-x = 1\n+x = 2 \x1b[31m\n"
    agent_log = "".join(f"line {i}\n" for i in range(100)) + "dgm-seed: submitted \x1b]0;TITLE\x07\n"
    steps = {"exit_status": "submitted", "steps": [
        {"step": 0, "command": "cat <<'EOF' > calc.py\nx = 2\nEOF", "returncode": 0, "output": "done",
         "response": "THOUGHT: set x\n```bash\ncat <<'EOF' > calc.py\nx = 2\nEOF\n```"},
        {"step": 1, "response": "Let me think about calc.py some more.", "format_error": 0,
         "cut_at_output_limit": True},
        {"step": 2, "command": "echo DGM_SUBMIT_FINAL_OUTPUT", "returncode": 0, "output": None}]}
    # Python's json writes NaN: the agent's file may hold it.
    trajectory = json.dumps(steps).replace('"output": null', '"output": NaN')
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("one-run", "eval", {})
        seed = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                               origin="seed")
        run = store.start_task_run(campaign.id, seed.id, "task", "dgm-mini", "t-1", "eval", "scripted:gold")
        store.record_llm_call(model="scripted:gold", request_hash="ab" * 32, purpose="task", task_run_id=run.id,
                              cost_usd=0.25, prompt_tokens=10, completion_tokens=5, scripted=True)
        store.finish_task_run(run.id, status="resolved", patch=patch, error=None,
                              trajectory_artifact=store.artifacts.put(trajectory),
                              agent_log_artifact=store.artifacts.put(agent_log),
                              eval_log_artifact=store.artifacts.put("collected 3 items\n3 passed\n"))
        bare = store.start_task_run(campaign.id, seed.id, "task", "dgm-mini", "t-2", "eval", "scripted:gold")
        store.finish_task_run(bare.id, status="empty_patch", patch="")
        store.set_campaign_status(campaign.id, "completed", finished=True)
    out = run_dgm(["show-run", run.id[:8]], root)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for expected in (run.id, seed.id, "t-1", "resolved", "$0.2500 in 1 LLM call [scripted models]",
                     "trajectory: 3 steps, submitted", "$ cat <<'EOF' > calc.py", "$ x = 2", "+x = 2 \\x1b[31m",
                     # What the model said at each step, and why a step ran nothing.
                     "> THOUGHT: set x", "> Let me think about calc.py some more.",
                     "step 1 · reply cut at the output limit · no command run: the reply held 0 bash blocks, not 1",
                     "agent's own output (last 40 of 101 lines; --agent-log for all)", "line 99",
                     "test log", "3 passed", "LLM calls (1)"):
        assert expected in text, (expected, text)
    assert "line 5\n" not in text and "\x1b" not in text  # the log's start is cut; nothing raw reaches the pipe
    # Each part whole: raw in a pipe (the patch applies as it was), escaped on a terminal.
    assert run_dgm(["show-run", run.id, "--patch"], root).stdout == patch
    assert run_dgm(["show-run", run.id, "--agent-log"], root).stdout == agent_log
    assert run_dgm(["show-run", run.id, "--eval-log"], root).stdout == "collected 3 items\n3 passed\n"
    served = json.loads(run_dgm(["show-run", run.id, "--trajectory"], root).stdout)
    assert served["steps"][2]["output"] == "NaN"  # the agent's NaN: the words, so the output is JSON
    whole = json.loads(run_dgm(["show-run", run.id, "--json"], root).stdout)
    assert (whole["patch"], whole["agent_log"], whole["llm_calls"][0]["cost_usd"]) == (patch, agent_log, 0.25)
    on_terminal = _on_a_terminal(["show-run", run.id, "--agent-log"], root)
    assert b"\x1b]0;TITLE" not in on_terminal and b"\\x1b]0;TITLE\\x07" in on_terminal
    # What is missing or contradictory: one line, exit 2.
    for args, says in ((["show-run", bare.id, "--patch"], "has an empty patch"),
                       (["show-run", bare.id, "--eval-log"], "kept no test log"),
                       (["show-run", run.id, "--patch", "--json"], "give one of --patch, --json"),
                       (["show-run", "ffffffffffff"], "no task run")):
        proc = run_dgm(args, root)
        assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            (args, proc.stderr)
    # `dgm show` says where a run's details are.
    assert "`dgm show-run RUN`" in run_dgm(["show", seed.id], root).stdout
    # An agent's id given for a run: pointed to the command that lists its runs.
    assert_one_line_error(run_dgm(["show-run", seed.id], root), f"is agent {seed.id}, not a task run")


def test_show_run_shows_what_is_there_when_an_artifact_is_lost(tmp_path):
    """A damaged archive (a deleted or corrupt artifact file) must not hide the
    rest of the run: the patch lives in the database."""
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        campaign = store.create_campaign("lossy", "eval", {})
        seed = store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                               origin="seed")
        run = store.start_task_run(campaign.id, seed.id, "task", "dgm-mini", "t-1", "eval", "scripted:gold")
        log = store.artifacts.put("the agent's output\n")
        store.finish_task_run(run.id, status="resolved", patch="diff --git a/x b/x\n+y\n",
                              trajectory_artifact=store.artifacts.put('{"steps": []}'), agent_log_artifact=log)
        # Lost behind the store's back, as a damaged or partly copied archive loses it.
        store.artifacts._path(store.get_task_run(run.id).trajectory_artifact).unlink()
        imported = store.start_task_run(campaign.id, seed.id, "task", "swebench-verified", "t-2", "dgm", "dgm-import")
        store.finish_task_run(imported.id, status="resolved")
    assert run_dgm(["show-run", run.id, "--patch"], root).stdout == "diff --git a/x b/x\n+y\n"
    assert run_dgm(["show-run", run.id, "--agent-log"], root).stdout == "the agent's output\n"
    shown = run_dgm(["show-run", run.id], root)
    assert shown.returncode == 0 and "+y" in shown.stdout and "the agent's output" in shown.stdout, shown.stderr
    assert "cannot read the trajectory" in shown.stderr
    assert_one_line_error(run_dgm(["show-run", run.id, "--trajectory"], root), "its trajectory", "cannot be read")
    # An imported DGM run brought outcomes, not patches: said so, not "no changes".
    assert "patch: not imported" in run_dgm(["show-run", imported.id], root).stdout
    assert_one_line_error(run_dgm(["show-run", imported.id, "--patch"], root), "imported DGM run")


def test_diff_stat_names_each_file_whatever_its_name(capsys):
    """Quoted names (bytes git escapes) and names holding " b/" came out as the
    whole header; an added line starting "++" was not counted."""
    from dgm.cli.browse import _print_stat

    _print_stat('diff --git "a/caf\\303\\251 \\"x\\".txt" "b/caf\\303\\251 \\"x\\".txt"\nnew file mode 100644\n'
                '--- /dev/null\n+++ "b/caf\\303\\251 \\"x\\".txt"\n@@ -0,0 +1 @@\n+x\n'
                "diff --git a/x b/y b/x b/y\n--- a/x b/y\n+++ b/x b/y\n@@ -1 +1,2 @@\n-old\n+++new\n+z\n"
                "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n"
                "@@ -1 +0,0 @@\n-bye\n"
                "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['café "x".txt  +1 -0', "x b/y  +2 -1", "gone.py  +0 -1", "run.sh  +0 -0", "4 file(s) changed"]


def test_results_of_a_scripted_model_are_labelled_so_wherever_they_are_listed(tmp_path):
    root = tmp_path / "archive"
    with ArchiveStore.open(None, root) as store:
        for name, model in (("rehearsal", "scripted:gold"), ("real", "openai/gpt-5")):
            campaign = store.create_campaign(name, "evolution", {"model": model})
            store.add_agent(campaign.id, commit_agent_dir(store, SEED_AGENT_DIR, "seed"), status="seed",
                            origin="seed")
    listed = run_dgm(["ls"], root).stdout
    assert "scripted:gold [scripted]" in listed and "openai/gpt-5 [scripted]" not in listed, listed
    assert {r["name"]: r["model"] for r in json.loads(run_dgm(["ls", "--json"], root).stdout)} == \
        {"rehearsal": "scripted:gold", "real": "openai/gpt-5"}
    for args in (["ls", "rehearsal"], ["lineage", "rehearsal"]):
        assert "model scripted:gold [scripted]" in " ".join(run_dgm(args, root).stdout.split()), args
    assert "[scripted]" not in run_dgm(["lineage", "real"], root).stdout
