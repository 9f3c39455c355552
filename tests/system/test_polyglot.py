"""Polyglot in real sandboxes, on the repository's own tiny exercises (one per
language): the harness self-check, `dgm eval` with the gold and no-op
models through the CLI, and an agent that edits the tests, the build files
or runs away gaining nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_dgm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polyglot"
# DGM's 120 s per test run is for a machine with cores to spare; a test suite
# sharing two cores compiles Catch2's main or starts a JVM far slower.
os.environ.setdefault("DGM_POLYGLOT_TEST_TIMEOUT_S", "900")
LANGUAGES = ["cpp", "go", "java", "javascript", "python", "rust"]


@pytest.fixture(scope="module")
def bench():
    from dgm.bench.registry import load_benchmark

    return load_benchmark("polyglot", dataset=str(FIXTURES))


def _eval(tmp_path, model: str, archive: Path, tasks: str) -> tuple[str, list[dict]]:
    out = tmp_path / f"{model.split(':')[1]}.json"
    # In-process through the entry point: a child interpreter would pay litellm's import (seconds).
    result = run_dgm(["eval", "--agent", "seed", "--benchmark", "polyglot", "--dataset", str(FIXTURES), "--tasks",
                      tasks, "--model", model, "--workers", "2", "--archive-dir", str(archive), "--json", str(out)])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_gold_resolves_every_fixture_exercise_and_noop_none(tmp_path, polyglot_image):
    # The dgm-small subset (every language's gold and stub are graded by the validation test below).
    small = json.loads((FIXTURES / "subsets" / "dgm-small.json").read_text())
    stdout, gold = _eval(tmp_path, "scripted:gold", tmp_path / "archive", "dgm-small")
    assert f"resolved {len(small)}/{len(small)}" in stdout, stdout
    assert all(r["status"] == "resolved" for r in gold), [(r["instance_id"], r["status"], r["error"]) for r in gold]
    # Per-language breakdown, and per-test results parsed from each runner's report.
    assert "resolved per language" in stdout
    for lang in {i.split("__")[0] for i in small}:
        assert any("1/1" in line for line in stdout.splitlines() if f" {lang} " in line), (lang, stdout)
    for run in gold:
        passed = run["tests_status"]["FAIL_TO_PASS"]["success"]
        assert len(passed) >= 2 and not run["tests_status"]["FAIL_TO_PASS"]["failure"], run["instance_id"]

    n = len(json.loads((FIXTURES / "subsets" / "dgm-small.json").read_text()))
    stdout, noop = _eval(tmp_path, "scripted:noop", tmp_path / "archive", "dgm-small")
    assert f"resolved 0/{n}" in stdout and len(noop) == n
    assert all(r["status"] == "empty_patch" for r in noop)


@pytest.mark.timeout(1200)  # twelve gradings, two of them a C++ build of Catch2's main
def test_validate_agrees_on_every_fixture_exercise(tmp_path, polyglot_image):
    out = tmp_path / "v.json"
    result = subprocess.run(
        [sys.executable, "-m", "dgm", "bench", "validate", "polyglot", "--dataset", str(FIXTURES), "--tasks", "full",
         "--cpus", "1", "--memory-mb", "2048", "--workers", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 6 and all(r["verdict"] == "agrees" for r in rows), rows
    assert "per repository" in result.stdout and "polyglot/rust" in result.stdout


def _grade(bench, docker_client, instance_id: str, patch: str, **kw):
    from dgm.bench.grade import grade

    task = bench.select([instance_id])[0]
    return task, grade(docker_client, bench, task, patch, test_timeout_s=kw.pop("timeout", 600), **kw)


def _add_file(path: str, text: str) -> str:
    lines = text.splitlines(keepends=True)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join("+" + ln for ln in lines))


def test_an_agent_editing_tests_or_build_files_gains_nothing(bench, docker_client, polyglot_image):
    from dgm.bench.polyglot.exercises import file_diff

    # JavaScript: a jest config of its own that runs no spec, and package.json pointing jest elsewhere.
    root = FIXTURES / "javascript" / "exercises" / "practice" / "add-two"
    package = (root / "package.json").read_bytes()
    hacked = package.replace(b'"scripts": {', b'"jest": {"testMatch": ["**/nothing/**"], "passWithNoTests": true},\n  '
                                              b'"scripts": {')
    patch = (_add_file("jest.config.js", "module.exports = { testMatch: ['**/none/**'], passWithNoTests: true };\n")
             + file_diff("package.json", package, hacked)
             + _add_file("add-two.spec.js", "test('fake', () => {});\n"))
    _, result = _grade(bench, docker_client, "javascript__add-two", patch)
    assert not result.resolved, result.log[-2000:]
    assert result.tests_status["FAIL_TO_PASS"]["failure"], result.tests_status

    # Go: a test file of its own whose TestMain exits 0 before any test runs.
    go_main = 'package doubler\n\nimport (\n\t"os"\n\t"testing"\n)\n\nfunc TestMain(m *testing.M) { os.Exit(0) }\n'
    _, result = _grade(bench, docker_client, "go__doubler", _add_file("zz_main_test.go", go_main))
    assert not result.resolved, result.log[-2000:]

    # C++: a main() of its own, instead of the prebuilt Catch2 main the tests link: a duplicate.
    triple = FIXTURES / "cpp" / "exercises" / "practice" / "triple"
    own_main = (triple / ".meta" / "example.cpp").read_bytes() + b"\nint main() { return 0; }\n"  # a right answer too
    patch = (file_diff("triple.cpp", (triple / "triple.cpp").read_bytes(), own_main)
             + file_diff("triple.h", (triple / "triple.h").read_bytes(), (triple / ".meta" / "example.h").read_bytes()))
    _, result = _grade(bench, docker_client, "cpp__triple", patch)
    assert not result.resolved and "multiple definition of `main'" in result.log, result.log[-2000:]

    # Rust: a build script of its own.
    _, result = _grade(bench, docker_client, "rust__square", _add_file("build.rs", "fn main() {}\n"))
    assert not result.resolved and "build.rs" not in result.log.split("DGM START TEST OUTPUT")[-1]


def test_no_network_and_runaway_tests_are_cut_by_the_limits(bench, docker_client, polyglot_image):
    from dgm.bench.polyglot.exercises import file_diff
    from dgm.sandbox.docker import SandboxLimits

    root = FIXTURES / "python" / "exercises" / "practice" / "leap-year"
    stub = (root / "leap_year.py").read_bytes()
    # The solution reaches for the network at import: every test errors.
    net = b"import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=3)\n" + \
          (root / ".meta" / "example.py").read_bytes()
    _, result = _grade(bench, docker_client, "python__leap-year", file_diff("leap_year.py", stub, net))
    assert not result.resolved and ("Network is unreachable" in result.log or "URLError" in result.log), \
        result.log[-1500:]

    # A solution that never returns: cut at the test timeout.
    never = b"def is_leap(year):\n    while True:\n        pass\n"
    _, result = _grade(bench, docker_client, "python__leap-year", file_diff("leap_year.py", stub, never), timeout=8)
    assert not result.resolved and "timed out" in (result.error or "")

    # A fork bomb in the solution's init: the pids limit holds it; the run ends unresolved within
    # the timeout, either cut by it or because Go's runtime dies when it cannot start a thread.
    doubler = (FIXTURES / "go" / "exercises" / "practice" / "doubler" / "doubler.go").read_bytes()
    bomb = (b'package doubler\n\nimport "os/exec"\n\nfunc init() {\n\tfor {\n\t\t_ = exec.Command("sh", "-c", '
            b'"sleep 60 &").Start()\n\t}\n}\n\nfunc Double(n int) int { return 2 * n }\n')
    _, result = _grade(bench, docker_client, "go__doubler", file_diff("doubler.go", doubler, bomb),
                       limits=SandboxLimits(pids=64), timeout=20)
    assert not result.resolved and result.test_duration_s <= 20 + 15, result.log[-1500:]
    assert "timed out" in (result.error or "") or result.tests_status.get("exit_code") not in (None, 0)


# --------------------------------------------------------------------------- a campaign, killed and resumed
def _campaign_state(archive: Path, name: str) -> dict:
    from dgm.archive.store import ArchiveStore

    if not archive.exists():
        return {}
    with ArchiveStore.open(None, archive) as store:
        try:
            campaign = store.get_campaign(name)
        except Exception:  # noqa: BLE001 - not created yet
            return {}
        agents = {a.id: a for a in store.list_agents(campaign.id)}
        runs = store.list_task_runs(campaign_id=campaign.id)
    return {"child_evaluating": any(r.kind == "task" and r.status == "running" and r.agent_id in agents
                                    and agents[r.agent_id].generation >= 1 for r in runs)}


def test_a_rehearsal_campaign_on_polyglot_survives_kill_9_and_its_child_solves_more(tmp_path, polyglot_image, browser):
    import signal
    import time

    from dgm.archive.store import ArchiveStore

    archive = tmp_path / "archive"
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "dgm", "run", "--benchmark", "polyglot", "--dataset", str(FIXTURES),
           "--stages", "dgm-small,dgm-medium", "--heldout", "0", "--generations", "1",
           "--children-per-generation", "1", "--workers", "2", "--model", "scripted:rehearsal", "--seed", "3",
           "--name", "poly", "--archive-dir", str(archive)]
    proc = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        if _campaign_state(archive, "poly").get("child_evaluating"):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
            break
        time.sleep(0.1)
    assert killed, f"the campaign never reached a child's evaluation: {proc.communicate()[1][-2000:]}"

    resumed = run_dgm(["resume", "poly", "--archive-dir", str(archive)])  # in-process: no second litellm import
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]

    with ArchiveStore.open(None, archive) as store:
        campaign = store.get_campaign("poly")
        assert campaign.status == "completed"
        agents = store.list_agents(campaign.id)
        seed = next(a for a in agents if a.origin == "seed")
        (child,) = [a for a in agents if a.origin == "child"]
        # Its own change (the test hint in its prompt) is why it solves the hard exercises its parent gave up on.
        assert "+Run the tests before you submit" in store.code.diff(seed.commit_sha, child.commit_sha)

        def solved(agent):
            return {r.task_id for r in store.list_task_runs(agent_id=agent.id, kind="task") if r.status == "resolved"}

        assert solved(seed) == {"python__leap-year"}
        assert solved(child) == {"python__leap-year", "javascript__add-two", "go__doubler"}
        assert child.score > seed.score
        runs = store.list_task_runs(campaign_id=campaign.id, kind="task")
        assert not [r for r in runs if r.status == "running"]

    lineage = subprocess.run([sys.executable, "-m", "dgm", "lineage", "poly", "--archive-dir", str(archive)],
                             env=env, capture_output=True, text=True, timeout=120)
    assert lineage.returncode == 0 and child.id[:8] in lineage.stdout, lineage.stdout

    # The explorer draws the same lineage and shows the child's Polyglot task runs.
    from dgm.web.server import ExplorerServer

    with ArchiveStore.open(None, archive) as store, ExplorerServer(store, port=0) as server:
        page = browser.new_page()
        page.goto(server.url + "#campaign=poly")
        page.wait_for_function("window.dgmExplorer && window.dgmExplorer.ready", timeout=15_000)
        assert page.evaluate("window.dgmExplorer.nodeCount") == 2
        pos = page.evaluate(f"window.dgmExplorer.screenPos('{child.id}')")
        page.mouse.click(pos["x"], pos["y"])
        page.wait_for_function(f"document.querySelector('[data-testid=agent-id]')?.textContent === '{child.id}'",
                               timeout=10_000)
        page.wait_for_function("document.body.innerText.includes('go__doubler')", timeout=10_000)
