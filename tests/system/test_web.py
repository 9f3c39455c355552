"""`dgm serve`: the JSON API against a real archive, and the explorer driven in
headless Chromium (Debian's, through Playwright). Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.cli import ARTIFACTS
from dgm.archive import ArchiveStore
from dgm.lineage.graph import best_path, build_graph
from tests.support.synthetic import make_synthetic_campaign
from dgm.web.server import ExplorerServer

HOSTILE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
           '<svg onload="window.__pwned=3"></svg>')


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("web") / "archive"
    store = ArchiveStore.open(None, root)
    synth = make_synthetic_campaign(store, 150, 8, n_tasks=10, generations=6, seed=5, name="web", status="running")
    store.update_campaign(synth.campaign_id, config={**store.get_campaign(synth.campaign_id).config,
                                                     "model": "scripted:gold"})
    # One run with a trajectory and LLM calls, as a real evaluation leaves them.
    best = synth.best_agent
    run = store.start_task_run(synth.campaign_id, best, "task", "synthetic", "with-trajectory", "extra", "scripted:gold")
    trajectory = {"agent": "dgm-seed", "exit_status": "submitted", "steps": [
        {"step": 0, "response": "THOUGHT: find add\n```bash\ngrep -n 'def add' calc.py\n```",
         "command": "grep -n 'def add' calc.py", "returncode": 0, "output": "1:def add(a, b):"},
        # What a small model often says: no command at all. The reply is what there is to show.
        {"step": 1, "response": "I think the answer is to add the numbers.", "format_error": 0},
        {"step": 2, "command": "echo DGM_SUBMIT_FINAL_OUTPUT", "returncode": 0, "output": "DGM_SUBMIT_FINAL_OUTPUT"}]}
    transcript = store.artifacts.put_json({"request": {"model": "scripted:gold", "messages": [
        {"role": "user", "content": "fix add"}], "params": {}}, "response": {"choices": []}, "error": None})
    store.record_llm_call(model="scripted:gold", request_hash="ef" * 32, purpose="task", task_run_id=run.id,
                          cost_usd=0.125, artifact_id=transcript, scripted=True)
    store.record_llm_call(model="scripted:gold", request_hash="fe" * 32, purpose="diagnose", agent_id=best,
                          campaign_id=synth.campaign_id, cost_usd=0.5, artifact_id=transcript, scripted=True)
    store.finish_task_run(run.id, status="resolved", patch="diff --git a/calc.py b/calc.py\n",
                          trajectory_artifact=store.artifacts.put(json.dumps(trajectory)),
                          tests_status={"test_config_kept_out": ["tests/conftest.py"]})
    # An agent writes its own trajectory: one that carries markup, for the explorer to show as text.
    root = next(a.id for a in store.list_agents(synth.campaign_id) if a.parent_id is None)
    run = store.start_task_run(synth.campaign_id, root, "task", "synthetic", "hostile-trajectory", "extra",
                               "scripted:gold")
    store.finish_task_run(run.id, status="unresolved", patch=HOSTILE + "\n", error=HOSTILE,
                          trajectory_artifact=store.artifacts.put(json.dumps({
                              "exit_status": HOSTILE, "steps": [{"step": HOSTILE, "command": HOSTILE,
                                                                 "returncode": HOSTILE, "output": HOSTILE}]})))
    for task, raw in (("list-trajectory", b"[1, 2]"), ("steps-not-a-list", b'{"steps": "oops"}'),
                      ("nan-trajectory", b'{"steps": [{"step": NaN, "command": "x", "returncode": -Infinity}]}'),
                      ("deep-trajectory", b"[" * 100_000 + b"]" * 100_000),
                      ("typed-trajectory", b'{"steps": [{"step": 0, "command": 12345, "output": {"x": [1]}}]}')):
        run = store.start_task_run(synth.campaign_id, root, "task", "synthetic", task, "extra", "scripted:gold")
        store.finish_task_run(run.id, status="unresolved", trajectory_artifact=store.artifacts.put(raw))
    # A child rejected before its code was committed: its commit is still its parent's.
    parent = store.get_agent(root)
    early = store.add_agent(synth.campaign_id, parent.commit_sha, parent_id=root, generation=1, status="pending",
                            origin="child", meta={"own_commit": False}, agent_id="early-reject")
    run = store.start_task_run(synth.campaign_id, early.id, "self_modify", "self", "self", "self_modify", "m")
    store.finish_task_run(run.id, status="ok", patch="diff --git a/main.py b/main.py\n+ATTEMPTED = 1\n")
    store.update_agent(early.id, status="rejected", rejection_reason="self-modification diff does not apply")
    # A run with the agent's own output, and one still marked running.
    run = store.start_task_run(synth.campaign_id, root, "task", "synthetic", "with-agent-log", "extra", "scripted:gold")
    store.finish_task_run(run.id, status="unresolved", agent_log_artifact=store.artifacts.put(
        "step 1\n" * 2000 + "dgm-seed: gave up \u202eelif\r\n"))
    store.start_task_run(synth.campaign_id, root, "task", "synthetic", "in-flight", "extra", "scripted:gold")
    # Artifacts lost behind the store's back (a damaged or partly copied archive).
    run = store.start_task_run(synth.campaign_id, root, "task", "synthetic", "lost-artifacts", "extra",
                               "scripted:gold")
    lost = [store.artifacts.put(f"lost {kind}\n") for kind in ("log", "trajectory")]
    store.finish_task_run(run.id, status="resolved", patch="diff --git a/kept b/kept\n", agent_log_artifact=lost[0],
                          trajectory_artifact=lost[1])
    for artifact in lost:
        store.artifacts._path(artifact).unlink()
    yield store, synth
    store.close()


@pytest.fixture
def server(archive):
    store, _ = archive
    with ExplorerServer(store, port=0) as srv:
        yield srv


def _not_json(name: str):
    raise AssertionError(f"the API sent {name}, which no browser's JSON.parse accepts")


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, json.loads(resp.read(), parse_constant=_not_json)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_api_serves_the_archive_read_only(archive, server):
    store, synth = archive
    status, graph = get(server.url + f"api/campaigns/{synth.campaign_id}/graph")
    assert status == 200
    assert (graph["campaign"]["model"], graph["campaign"]["scripted"]) == ("scripted:gold", True)
    agents = store.list_agents(synth.campaign_id)
    assert set(graph["ids"]) == {a.id for a in agents}
    parents = {graph["ids"][i]: (graph["ids"][p] if p >= 0 else None) for i, p in enumerate(graph["parent"])}
    assert parents == {a.id: a.parent_id for a in agents}
    assert [graph["ids"][i] for i in graph["best_path"]] == best_path(build_graph(store, synth.campaign_id))
    assert graph["runs"][graph["ids"].index(synth.best_agent)] == 9
    child = next(a for a in agents if a.parent_id)
    _, details = get(server.url + f"api/agents/{child.id}")
    parent = store.get_agent(child.parent_id)
    assert details["diff_vs_parent"] == store.code.diff(parent.commit_sha, child.commit_sha)
    _, heat = get(server.url + f"api/heatmap?agents={child.id},{parent.id}")
    runs = {r.task_id: r.status for r in store.list_task_runs(agent_id=child.id)}
    assert heat["status"][child.id] == runs
    run_id = next(r.id for r in store.list_task_runs(agent_id=synth.best_agent) if r.task_id == "with-trajectory")
    _, run = get(server.url + f"api/runs/{run_id}")
    assert run["trajectory"]["steps"][0]["command"].startswith("grep") and run["llm_calls"][0]["cost_usd"] == 0.125
    # Calls of no task run (a diagnosis) are listed with the agent, transcripts one click away.
    _, best_details = get(server.url + f"api/agents/{synth.best_agent}")
    (diagnosis,) = [c for c in best_details["calls_outside_runs"] if c["purpose"] == "diagnose"]
    _, call = get(server.url + f"api/llm_calls/{diagnosis['id']}")
    assert call["transcript"]["request"]["messages"][0]["content"] == "fix add"
    # Trajectories are whatever the agents wrote: the API serves an object the page can render.
    root = next(a.id for a in agents if a.parent_id is None)
    by_task = {r.task_id: r.id for r in store.list_task_runs(agent_id=root)}
    for task, want in (("list-trajectory", {"unreadable": True}), ("deep-trajectory", {"unreadable": True}),
                       ("steps-not-a-list", {"steps": []}),
                       ("typed-trajectory", {"steps": [{"step": 0, "command": 12345, "output": '{"x": [1]}'}]}),
                       # Python's json writes NaN and Infinity; the page's parser would refuse the whole run.
                       ("nan-trajectory", {"steps": [{"step": "NaN", "command": "x", "returncode": "-Infinity"}]})):
        status, served = get(server.url + f"api/runs/{by_task[task]}")
        assert status == 200 and served["trajectory"] == want, (task, served["trajectory"])
    # The agent's own output: its end, with where the whole of it is.
    _, logged = get(server.url + f"api/runs/{by_task['with-agent-log']}")
    assert logged["agent_log_tail"].endswith("dgm-seed: gave up \u202eelif\r\n") and len(logged["agent_log_tail"]) == 6000
    # What is there is served, what is lost said.
    status, damaged = get(server.url + f"api/runs/{by_task['lost-artifacts']}")
    assert status == 200 and damaged["patch"] == "diff --git a/kept b/kept\n"
    assert damaged["agent_log_tail"].startswith("[cannot be read: ") and damaged["trajectory"]["unreadable"]
    assert "no artifact" in damaged["trajectory"]["why"], damaged["trajectory"]
    # A child with no code of its own is not diffed as if its parent's code were its own.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + f"api/diff?a={root}&b=early-reject", timeout=10)
    assert err.value.code == 400 and "has no code of its own" in json.loads(err.value.read())["error"]
    # Live while its runner checks in; `running?`, and its in-flight run cut short, once the runner is gone.
    store.heartbeat(synth.campaign_id)
    _, version = get(server.url + f"api/campaigns/{synth.campaign_id}/version")
    assert version["status"] == "running" and len(version["version"]) == 16
    _, in_flight = get(server.url + f"api/runs/{by_task['in-flight']}")
    assert in_flight["status"] == "running" and "cut_short" not in in_flight
    store.heartbeat(synth.campaign_id, pid=_dead_pid())
    try:
        _, version = get(server.url + f"api/campaigns/{synth.campaign_id}/version")
        _, in_flight = get(server.url + f"api/runs/{by_task['in-flight']}")
        _, listed = get(server.url + "api/campaigns")
    finally:
        store.heartbeat(synth.campaign_id)  # live again, for the other tests
    assert version["status"] == "running?"
    assert in_flight["status"] == "unfinished" and "dgm resume" in in_flight["cut_short"]
    assert [c["status"] for c in listed if c["id"] == synth.campaign_id] == ["running?"]
    for bad, code in (("api/agents/ffffffffffff", 404), ("api/heatmap", 400), ("../../etc/passwd", 404),
                      ("api/nothing", 404)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + bad, timeout=10)
        assert err.value.code == code, bad
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(server.url + "api/campaigns", data=b"{}", method="POST"))
    assert err.value.code == 405


def test_explorer_renders_the_tree_and_shows_an_agents_diff_and_task_results(archive, server, browser):
    store, synth = archive
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    outside: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(server.url) else outside.append(req.url))
    page.goto(server.url + "#campaign=web")
    page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
    assert page.evaluate("window.dgmExplorer.nodeCount") == 150 + 1  # the synthetic campaign and the early-rejected child
    # The canvas really has the tree painted: many non-white pixels, in score colours.
    painted = page.evaluate("""() => { const c = document.querySelector('#tree');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i+1] < 250 || d[i+2] < 250) n++; return n; }""")
    assert painted > 2000
    page.screenshot(path=str(ARTIFACTS / "explorer-tree.png"))
    # The campaign's spend split by role (llm_calls.purpose), as `dgm status` says it.
    by_role = store.spend_by_purpose(synth.campaign_id)
    assert by_role["diagnose"]["cost_usd"] > 0 and by_role["task"]["cost_usd"] > 0
    spend = page.inner_text("[data-testid=spend-by-role]")
    assert f"task runs ${by_role['task']['cost_usd']:.4f}" in spend
    assert f"diagnosis ${by_role['diagnose']['cost_usd']:.4f}" in spend

    # Click an agent with a parent on the canvas, like a user (real hit-testing).
    target = next(a for a in store.list_agents(synth.campaign_id) if a.parent_id and a.generation >= 2)
    pos = page.evaluate(f"window.dgmExplorer.screenPos('{target.id}')")
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{target.id}'",
                           timeout=10_000)
    page.wait_for_selector("[data-testid=heatmap]", timeout=10_000)
    diff_text = page.inner_text("[data-testid=diff]")
    parent = store.get_agent(target.parent_id)
    real_diff = store.code.diff(parent.commit_sha, target.commit_sha)
    added = [line for line in real_diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added and all(line in diff_text for line in added)
    # Heat map row of the clicked agent == its task runs in the archive.
    cells = page.eval_on_selector_all(
        "[data-testid=heatmap] tr:last-child td.cell", "tds => tds.map(td => [td.title, td.dataset.status])")
    shown = {title.split(" · ")[1].split(":")[0]: status for title, status in cells if status}
    assert shown == {r.task_id: r.status for r in store.list_task_runs(agent_id=target.id)}
    rows = page.eval_on_selector_all("[data-testid=task-runs] tr[data-run]", "trs => trs.length")
    assert rows == len(store.list_task_runs(agent_id=target.id))
    # Its campaign's spend on it, as `dgm ls` shows it.
    own = sum(c.cost_usd for c in store.list_llm_calls(agent_id=target.id) if c.campaign_id == target.campaign_id)
    assert page.inner_text("[data-testid=agent-cost]").startswith(f"${own:.4f} in ")
    page.screenshot(path=str(ARTIFACTS / "explorer-details.png"))

    # Trajectory and LLM calls of a run.
    page.fill("#search", synth.best_agent)
    page.press("#search", "Enter")
    page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{synth.best_agent}'")
    page.click("tr[data-run] >> text=with-trajectory")
    page.wait_for_selector("[data-testid=trajectory] .traj-step")
    assert "grep -n 'def add' calc.py" in page.inner_text("[data-testid=trajectory]")
    # What the model said, beside the command; a step without one shows the reply and why it ran nothing.
    replies = page.eval_on_selector_all("[data-testid=traj-step]", "els => els.map((e) => "
                                        "e.querySelector('[data-testid=step-reply]')?.textContent || null)")
    assert replies == ["THOUGHT: find add\n```bash\ngrep -n 'def add' calc.py\n```",
                       "I think the answer is to add the numbers.", None]
    assert "no command run: the reply held 0 bash blocks, not 1" in page.inner_text("[data-testid=trajectory]")
    # What the grading kept out of the patch is said with the run.
    assert "its changes to tests/conftest.py" in page.inner_text("[data-testid=grading-note]")

    # A child with no code of its own: what it attempted, not its parent's code as its own.
    page.fill("#search", "early-reject")
    page.press("#search", "Enter")
    page.wait_for_function("document.querySelector('[data-testid=agent-id]')?.textContent === 'early-reject'")
    pane = page.inner_text("[data-testid=details]")
    assert "none: rejected before its code was committed" in pane and "Attempted change (never committed)" in pane
    assert "+ATTEMPTED = 1" in pane
    page.fill("#search", synth.best_agent)  # back to the best agent, which the comparison below starts from
    page.press("#search", "Enter")
    page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{synth.best_agent}'")

    # Compare: back to the whole tree, then shift-click another agent.
    page.click("#fit")
    page.wait_for_timeout(100)
    other = target
    pos = page.evaluate(f"window.dgmExplorer.screenPos('{other.id}')")
    page.keyboard.down("Shift")
    page.mouse.click(pos["x"], pos["y"])
    page.keyboard.up("Shift")
    page.wait_for_selector("[data-testid=compare-cols]", timeout=10_000)
    compare = page.inner_text("[data-testid=compare]")
    assert synth.best_agent in compare and other.id in compare
    page.screenshot(path=str(ARTIFACTS / "explorer-compare.png"))
    assert not errors, errors
    assert not outside, f"the explorer fetched from outside the server: {outside}"


def test_every_score_in_the_explorer_carries_its_interval(archive, server, browser):
    """The tree's header and tooltips, an agent's pane, the comparison and the progress chart: each score
    as `0.73 [0.55–0.86] n=22`, the Wilson interval of the runs the archive holds behind it."""
    from dgm.stats.intervals import score_label

    store, synth = archive
    counts = store.score_counts(campaign_id=synth.campaign_id)
    agents = {a.id: a for a in store.list_agents(synth.campaign_id)}

    def label(agent_id: str, which: str = "score") -> str:
        a = agents[agent_id]
        resolved, n = counts.get(agent_id, {}).get(which, (0, 0))
        return score_label(a.score if which == "score" else a.heldout_score, resolved, n)

    best = agents[synth.best_agent]
    best_label = label(best.id)
    assert "[" in best_label and best_label.endswith(f"n={counts[best.id]['score'][1]}")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "#campaign=web")
    page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
    assert f"best {best.id[:10]} ({best_label})" in page.inner_text("#treeinfo")
    # Hovering an agent on the canvas: its score with its interval in the tooltip.
    other = next(a for a in agents.values() if a.parent_id and a.score is not None and a.id != best.id)
    pos = page.evaluate(f"window.dgmExplorer.screenPos('{other.id}')")
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_function("!document.querySelector('#tooltip').hidden", timeout=10_000)
    assert f"score {label(other.id)}" in page.inner_text("#tooltip")
    # The agent's pane: score, held-out score and each stage's rate.
    page.fill("#search", best.id)
    page.press("#search", "Enter")
    page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{best.id}'")
    shown = page.inner_text("[data-testid=agent-score]")
    assert best_label in shown and f"held-out {label(best.id, 'heldout')}" in shown, shown
    for stage, (resolved, finished) in store.stage_results(agent_ids=[best.id])[best.id].items():
        from dgm.stats.intervals import rate_label

        assert f"{stage}: {resolved}/{finished} ({rate_label(resolved, finished)})" in shown, (stage, shown)
    # Two agents side by side.
    page.click("#fit")
    page.wait_for_timeout(100)
    pos = page.evaluate(f"window.dgmExplorer.screenPos('{other.id}')")
    page.keyboard.down("Shift")
    page.mouse.click(pos["x"], pos["y"])
    page.keyboard.up("Shift")
    page.wait_for_selector("[data-testid=compare-cols]", timeout=10_000)
    compare = page.inner_text("[data-testid=compare]")
    assert best_label in compare and label(other.id) in compare, compare
    # The progress chart: the best score with its interval, drawn as error bars.
    page.click("button[data-tab=progress]")
    page.wait_for_function("document.querySelector('#progressinfo').textContent.includes('last: best')",
                           timeout=10_000)
    from dgm.lineage.plot import generation_series

    points, _ = generation_series(store, synth.campaign_id)
    assert f"last: best {points[-1].best_label}," in page.inner_text("#progressinfo")
    assert "[" in points[-1].best_label
    assert page.evaluate("window.dgmExplorer.errorBars") == sum(p.best_low is not None for p in points) > 0
    page.screenshot(path=str(ARTIFACTS / "explorer-intervals.png"))
    assert not errors, errors


def test_explorer_refreshes_live_while_the_campaign_grows(archive, server, browser):
    store, synth = archive
    page = browser.new_page()
    page.goto(server.url + "#campaign=web")
    page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
    before = page.evaluate("window.dgmExplorer.nodeCount")
    parent = store.get_agent(synth.best_agent)
    child = store.add_agent(synth.campaign_id, parent.commit_sha, parent_id=parent.id,
                            generation=parent.generation + 1, status="evaluating", origin="child")
    page.wait_for_function(f"window.dgmExplorer.nodeCount === {before + 1}", timeout=15_000)
    assert "model scripted:gold [scripted]" in page.inner_text("[data-testid=tree-info]")
    assert page.evaluate(f"window.dgmExplorer.screenPos('{child.id}')") is not None
    assert page.evaluate("window.dgmExplorer.graphLoads") >= 2


def _wait_until(page, expression: str, timeout_s: float = 15.0) -> None:
    """Poll through DevTools (page.evaluate), which the page's policy does not govern."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def test_without_a_permalink_the_explorer_opens_the_latest_evolution_campaign(archive, server, browser):
    """Not an evaluation run since (one grey dot): the campaign `dgm status` would show."""
    store, synth = archive
    evaluation = store.create_campaign("eval-after", "eval", {})
    run = store.start_task_run(evaluation.id, synth.best_agent, "task", "synthetic", "t-0", "eval", "scripted:gold")
    store.finish_task_run(run.id, status="resolved", patch="diff --git a/x b/x\n")
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
    assert page.eval_on_selector("#campaign", "s => s.value") == synth.campaign_id
    page.close()


def test_a_permalink_or_search_that_finds_nothing_says_so_and_a_prefix_finds_its_agent(archive, server, browser):
    store, synth = archive
    page = browser.new_page()
    page.goto(server.url + "#campaign=nope&agent=zzz")
    page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
    assert 'no campaign "nope"' in page.inner_text("[data-testid=notice]")
    assert page.eval_on_selector("#campaign", "s => s.value") == synth.campaign_id  # the latest, as without a link
    page.fill("#search", "zzzz")
    page.press("#search", "Enter")
    page.wait_for_function("document.querySelector('[data-testid=notice]').textContent.includes('no agent id starting')")
    # A prefix, as the CLI takes it, selects the one agent it names.
    page.evaluate(f"location.hash = '#campaign=web&agent={synth.best_agent[:7]}'")
    page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{synth.best_agent}'")
    page.evaluate("location.hash = '#campaign=web&agent=ffffffffff'")
    page.wait_for_function("document.querySelector('[data-testid=notice]').textContent.includes('no agent \"ffffffffff\"')")
    page.close()


def test_markup_written_by_an_agent_is_shown_as_text_and_never_runs(archive, server):
    from playwright.sync_api import sync_playwright

    store, synth = archive
    root = next(a.id for a in store.list_agents(synth.campaign_id) if a.parent_id is None)
    profile = tempfile.mkdtemp(prefix="dgm-chromium-")
    with sync_playwright() as p:
        # The explorer under its own Content-Security-Policy, as a user's browser runs it.
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1500, "height": 900})
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            refused: list[str] = []
            page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
            page.goto(server.url + "#campaign=web")
            _wait_until(page, "window.dgmExplorer && window.dgmExplorer.ready")
            page.fill("#search", root)
            page.press("#search", "Enter")
            _wait_until(page, f"document.querySelector('[data-testid=agent-id]')?.textContent === '{root}'")
            page.click("tr[data-run] >> text=hostile-trajectory")
            _wait_until(page, "!!document.querySelector('[data-testid=trajectory] .traj-step')")
            page.wait_for_timeout(300)  # time for an injected handler to fire, were there one
            pwned = page.evaluate("window.__pwned")
            injected = page.eval_on_selector_all("#run-slot img, #run-slot script, #run-slot svg", "els => els.length")
            shown = page.inner_text("[data-testid=trajectory]")
            # A command that is a number, not text: the run is still shown (it used to hang at "loading").
            page.click("tr[data-run] >> text=typed-trajectory")
            _wait_until(page, "document.querySelector('[data-testid=trajectory] .cmd')?.textContent === '12345'")
            # Multi-line commands keep their lines.
            wrap = page.eval_on_selector("[data-testid=trajectory] .cmd", "el => getComputedStyle(el).whiteSpace")
            # The agent's own output: a right-to-left override and a carriage return are shown, not obeyed.
            page.click("tr[data-run] >> text=with-agent-log")
            _wait_until(page, "!!document.querySelector('[data-testid=agent-log] pre')")
            agent_log = page.eval_on_selector("[data-testid=agent-log] pre", "el => el.textContent")
            # A permalink pasted into the same tab is followed (only the hash changes).
            page.evaluate(f"location.hash = '#campaign=web&agent={synth.best_agent}'")
            _wait_until(page, f"document.querySelector('[data-testid=agent-id]')?.textContent === '{synth.best_agent}'")
            # Its diagnosis call, outside any task run: listed, and its transcript opens.
            page.click("[data-testid=agent-calls] tr[data-agent-call]:has-text('$0.5000')")
            _wait_until(page, "document.querySelector('[data-testid=agent-call-transcript]')?.textContent.includes('fix add')")
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
    assert pwned is None and injected == 0
    assert HOSTILE in shown
    assert wrap == "pre-wrap"
    assert agent_log.endswith("dgm-seed: gave up \\u202eelif\\x0d\n") and "\u202e" not in agent_log, agent_log[-60:]
    # Nothing was even attempted against the policy (a missed escape would show here), and the app runs under it.
    assert not refused, refused
    assert not errors, errors
    with urllib.request.urlopen(server.url, timeout=10) as resp:
        policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_clients_that_hang_up_early_leave_no_traceback(archive, capfd):
    """A reload or a closed tab resets the connection mid-request: routine, not an error to print."""
    import socket
    import struct

    store, _ = archive
    with ExplorerServer(store, port=0) as srv:
        for payload in (b"GET /api/campaigns HTTP/1.1\r\nHost: x\r\n", b"GET /static/app.js HTTP/1.1\r\n\r\n"):
            for _ in range(3):
                s = socket.create_connection((srv.host, srv.port))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.sendall(payload)
                s.close()  # with linger 0: a reset, not a polite close
        time.sleep(1)
        with urllib.request.urlopen(srv.url + "api/campaigns", timeout=10) as resp:
            assert resp.status == 200  # and it still serves
    assert "Traceback" not in capfd.readouterr().err


def test_the_explorer_answers_only_to_its_own_names_and_each_request_once(archive, monkeypatch):
    """DNS rebinding (a page whose domain resolves to 127.0.0.1) must not read
    the archive; a POST's unread body is not taken for a second request; odd
    requests get JSON with the same headers as every answer; an idle
    connection is closed."""
    import socket

    import dgm.web.server as web

    monkeypatch.setattr(web, "IDLE_CONNECTION_S", 1.0)
    store, _ = archive

    def exchange(srv, raw: bytes, wait: float = 3.0) -> bytes:
        with socket.create_connection((srv.host, srv.port), timeout=wait) as s:
            s.sendall(raw)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except TimeoutError:
                pass
            return out

    with ExplorerServer(store, port=0) as srv:
        for host in ("attacker.example", "attacker.example:%d" % srv.port, "127.0.0.1.nip.io"):
            out = exchange(srv, b"GET /api/campaigns HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 421") and b"unexpected Host header" in out, (host, out[:200])
        for host in ("127.0.0.1:%d" % srv.port, "localhost:%d" % srv.port, "localhost"):
            out = exchange(srv, b"GET /api/campaigns HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 200"), (host, out[:200])
        smuggled = b"GET /api/agents/nope HTTP/1.1\r\nHost: localhost\r\n\r\n"
        out = exchange(srv, b"POST /api/campaigns HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
                       % len(smuggled) + smuggled)
        assert out.count(b"HTTP/1.1 ") == 1 and out.startswith(b"HTTP/1.1 405"), out
        out = exchange(srv, b"GET /%00 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 404"), out[:200]
        out = exchange(srv, b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 501") and b"Content-Security-Policy" in out and b'{"error"' in out, out
        started = time.monotonic()
        with socket.create_connection((srv.host, srv.port), timeout=10) as s:
            s.sendall(b"GET /api/campaigns HTTP/1.1\r\nHost: loc")  # and nothing more
            assert s.recv(100) == b"" and time.monotonic() - started < 5  # closed by the server
    with ExplorerServer(store, host="::1", port=0) as srv6:
        assert srv6.url.startswith("http://[::1]:")
        with urllib.request.urlopen(srv6.url + "api/campaigns", timeout=10) as resp:
            assert resp.status == 200



def test_a_twin_is_shown_as_the_twin_of_its_original_in_the_api_and_the_explorer(tmp_path, browser):
    store = ArchiveStore.open(None, tmp_path / "archive")
    campaign = store.create_campaign("twins", "evolution", {"model": "scripted:rehearsal"})

    def code(text: str, parent: str | None, message: str) -> str:
        src = tmp_path / f"src-{message}"
        src.mkdir()
        (src / "main.py").write_text(text)
        return store.code.commit_tree(src, parent, message)

    seed = store.add_agent(campaign.id, code("print(1)\n", None, "seed"), status="admitted", origin="seed")
    store.update_agent(seed.id, score=0.5)
    children = []
    for slot, message in enumerate(("first", "second")):
        child = store.add_agent(campaign.id, seed.commit_sha, parent_id=seed.id, generation=1, status="pending",
                                origin="child", meta={"slot": slot, "own_commit": False})
        children.append(store.record_child_code(child.id, code("print(2)\n", seed.commit_sha, message),
                                                {"slot": slot, "own_commit": True}))
    original, twin = children
    store.update_agent(original.id, status="admitted", score=1.0)
    assert twin.status == "twin" and twin.twin_of == original.id
    with ExplorerServer(store, port=0) as server:
        _, graph = get(server.url + f"api/campaigns/{campaign.id}/graph")
        index = {agent_id: i for i, agent_id in enumerate(graph["ids"])}
        assert graph["twin_of"][index[twin.id]] == index[original.id]
        assert graph["twin_of"][index[original.id]] == -1
        assert graph["statuses"][graph["status"][index[twin.id]]] == "twin"
        _, details = get(server.url + f"api/agents/{twin.id}")
        assert (details["twin_of"], details["twin_of_score"], details["twin_of_status"]) == \
            (original.id, 1.0, "admitted")
        _, details = get(server.url + f"api/agents/{original.id}")
        assert details["twins"] == [twin.id]

        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "#campaign=twins")
        page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
        pos = page.evaluate(f"window.dgmExplorer.screenPos('{twin.id}')")
        page.mouse.move(pos["x"], pos["y"])
        page.wait_for_selector("#tooltip:not([hidden])", timeout=5_000)
        assert f"twin of {original.id} (same code)" in page.inner_text("#tooltip")
        page.mouse.click(pos["x"], pos["y"])
        page.wait_for_selector("[data-testid=twin-of]", timeout=10_000)
        row = page.inner_text("[data-testid=twin-of]")
        assert original.id in row and "not evaluated again" in row and "score 1.00" in row
        page.click(f"[data-testid=twin-of] button[data-agent='{original.id}']")
        page.wait_for_selector("[data-testid=twins]", timeout=10_000)
        assert twin.id[:8] in page.inner_text("[data-testid=twins]")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "explorer-twin.png"))
        assert not errors, errors
    store.close()
