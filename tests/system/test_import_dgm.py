"""`dgm import-dgm` on a run directory laid out like the original DGM's output,
with model_patch.diff files made by real `git diff`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from tests.support.cli import assert_one_line_error, run_dgm
from dgm.archive import ArchiveStore


GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}

AGENT = "def forward(task):\n    return solve(task, tries=1)\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=GIT_ENV).stdout


def patch_of(base: Path, edit) -> tuple[str, Path]:
    """The `git diff` an edit makes to a copy of `base` (like DGM's model_patch.diff), and the edited tree."""
    work = base.parent / f"work-{len(list(base.parent.iterdir()))}"
    shutil.copytree(base, work)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "base")
    edit(work)
    git(work, "add", "-A")
    diff = git(work, "diff", "--cached")
    shutil.rmtree(work / ".git")
    return diff, work


def perf(resolved, unresolved, empty, **extra):
    n = len(resolved) + len(unresolved) + len(empty)
    return {"accuracy_score": len(resolved) / n, "total_resolved_ids": resolved, "total_unresolved_ids": unresolved,
            "total_emptypatch_ids": empty, "total_submitted_instances": n, **extra}


@pytest.fixture
def dgm_run(tmp_path):
    """initial -> A (compiled, kept) -> C (kept, deep eval); initial -> B (not compiled)."""
    src = tmp_path / "src"
    (src / "tools").mkdir(parents=True)
    (src / "coding_agent.py").write_text(AGENT)
    (src / "tools" / "edit.py").write_text("def edit(path, text):\n    open(path, 'w').write(text)\n")
    patch_a, tree_a = patch_of(src, lambda w: (w / "coding_agent.py").write_text(AGENT.replace("tries=1", "tries=3")))
    patch_c, tree_c = patch_of(tree_a, lambda w: (w / "tools" / "search.py").write_text("def search(q):\n    return []\n"))
    run = tmp_path / "output_dgm" / "20250101000000_000000"
    nodes = {
        "initial": ({"run_id": "initial", "overall_performance": perf(["t1"], ["t2", "t3"], ["t4"])}, None),
        "20250101_000001_000001": ({"run_id": "20250101_000001_000001", "parent_commit": "initial", "entry": "t2",
                                    "problem_statement": "Retry the agent up to three times.",
                                    "overall_performance": perf(["t1", "t2"], ["t3"], ["t4"])}, patch_a),
        "20250101_000001_000002": ({"run_id": "20250101_000001_000002", "parent_commit": "initial",
                                    "entry": "solve_empty_patches", "problem_statement": "Never submit empty patches.",
                                    "overall_performance": perf([], [], ["t1", "t2", "t3", "t4"])}, ""),
        "20250101_000002_000001": ({"run_id": "20250101_000002_000001", "parent_commit": "20250101_000001_000001",
                                    "entry": "t3", "problem_statement": "Add a search tool.",
                                    "overall_performance": perf(["t1", "t2", "t3"], [], ["t4"]),
                                    "overall_performance_deep": perf(["t1", "t2", "t3", "t5"], ["t6"], ["t4"])},
                                   patch_c),
    }
    for run_id, (metadata, patch) in nodes.items():
        (run / run_id).mkdir(parents=True)
        (run / run_id / "metadata.json").write_text(json.dumps(metadata, indent=4))
        if patch is not None:
            (run / run_id / "model_patch.diff").write_text(patch)
    # Exactly how DGM_outer.py appends: json.dumps(..., indent=2) + "\n" per generation.
    generations = [
        {"generation": 0, "selfimprove_entries": [["initial", "t2"], ["initial", "solve_empty_patches"]],
         "children": ["20250101_000001_000001", "20250101_000001_000002"],
         "children_compiled": ["20250101_000001_000001"], "archive": ["initial", "20250101_000001_000001"]},
        {"generation": 1, "selfimprove_entries": [["20250101_000001_000001", "t3"]],
         "children": ["20250101_000002_000001"], "children_compiled": ["20250101_000002_000001"],
         "archive": ["initial", "20250101_000001_000001", "20250101_000002_000001"]},
    ]
    with open(run / "dgm_metadata.jsonl", "w") as f:
        for g in generations:
            f.write(json.dumps(g, indent=2) + "\n")
    return run, src, tree_c


def test_import_makes_real_commits_lineage_scores_and_task_runs(dgm_run, tmp_path):
    run, src, tree_c = dgm_run
    root = tmp_path / "archive"
    proc = run_dgm(["import-dgm", str(run), "--initial-dir", str(src), "--name", "imported"], root)
    assert proc.returncode == 0, proc.stderr
    assert "imported 4 DGM nodes" in proc.stdout
    store = ArchiveStore.open(None, root)
    campaign = store.get_campaign("imported")
    assert campaign.kind == "import" and campaign.status == "completed"
    agents = {a.meta["dgm_run_id"]: a for a in store.list_agents(campaign.id)}
    assert set(agents) == {"initial", "20250101_000001_000001", "20250101_000001_000002", "20250101_000002_000001"}
    init, a, b, c = (agents[k] for k in ("initial", "20250101_000001_000001", "20250101_000001_000002",
                                         "20250101_000002_000001"))
    assert (init.parent_id, a.parent_id, b.parent_id, c.parent_id) == (None, init.id, init.id, a.id)
    assert (init.generation, a.generation, b.generation, c.generation) == (0, 1, 1, 2)
    assert (init.status, a.status, b.status, c.status) == ("seed", "admitted", "rejected", "admitted")
    assert "did not compile" in b.rejection_reason
    assert a.score == pytest.approx(0.5) and c.score == pytest.approx(0.75)
    assert a.proposal["problem_statement"] == "Retry the agent up to three times."
    assert a.diagnosis_target == {"entry": "t2"}
    # Code: C's commit is the initial tree with both patches applied, and a child of A's commit.
    out = tmp_path / "c"
    store.code.materialize(c.commit_sha, out)
    assert subprocess.run(["diff", "-r", str(out), str(tree_c)]).returncode == 0
    assert (out / "coding_agent.py").read_text() == AGENT.replace("tries=1", "tries=3")
    assert store.code.tree_files(b.commit_sha) == store.code.tree_files(init.commit_sha)
    log = subprocess.run(["git", f"--git-dir={store.code.path}", "rev-parse", f"{c.commit_sha}^"],
                         capture_output=True, text=True).stdout.strip()
    assert log == a.commit_sha
    # Per-task outcomes, with the deep evaluation as its own stage.
    runs = {(r.stage, r.task_id): r.status for r in store.list_task_runs(agent_id=c.id)}
    assert runs[("dgm", "t3")] == "resolved" and runs[("dgm", "t4")] == "empty_patch"
    assert runs[("dgm-full", "t6")] == "unresolved" and len(runs) == 4 + 6
    # Recorded under a benchmark name dgm knows, so replays of imported agents find it.
    from dgm.bench.registry import canonical_name, known_benchmarks

    assert {r.benchmark for r in store.list_task_runs(agent_id=c.id)} == {"swebench-verified"}
    assert canonical_name("swe-bench-verified") in known_benchmarks()  # what earlier imports recorded
    # Browsable like any campaign.
    diff = run_dgm(["diff", c.id], root)
    assert "+def search(q):" in diff.stdout
    graphml = tmp_path / "g.graphml"
    assert run_dgm(["lineage", "imported", "--format", "graphml", "--out", str(graphml)], root).returncode == 0
    assert set(nx.read_graphml(graphml).edges) == {(init.id, a.id), (init.id, b.id), (a.id, c.id)}
    store.close()


def test_import_without_initial_dir_uses_an_empty_root(tmp_path):
    """An empty root works when the patches only add files (documented); otherwise see the next test."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("placeholder\n")
    patch, _ = patch_of(src, lambda w: (w / "agent.py").write_text("print('hi')\n"))
    run = _one_node_run(tmp_path, patch.encode())  # the patch only adds agent.py
    root = tmp_path / "archive"
    assert run_dgm(["import-dgm", str(run)], root).returncode == 0
    store = ArchiveStore.open(None, root)
    agents = {a.meta["dgm_run_id"]: a for a in store.list_agents(store.get_campaign("dgm-run").id)}
    assert store.code.tree_files(agents["initial"].commit_sha) == []
    assert store.code.tree_files(agents["n1"].commit_sha) == ["agent.py"]
    store.close()


def test_missing_or_broken_files_are_one_line_and_exit_2(dgm_run, tmp_path):
    run, src, _ = dgm_run
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(tmp_path / "nowhere")], root, subprocess_=True),
                          "does not exist")
    # A patch that modifies files cannot apply to an empty root: say what to do.
    assert_one_line_error(run_dgm(["import-dgm", str(run)], root), "does not apply", "--initial-dir")
    store = ArchiveStore.open(None, root)
    assert store.list_campaigns() == []  # nothing half-imported
    store.close()
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "20250101_000002_000001" / "model_patch.diff").unlink()
    assert_one_line_error(run_dgm(["import-dgm", str(broken), "--initial-dir", str(src)], root),
                          "missing file", "model_patch.diff")
    (broken / "20250101_000002_000001" / "metadata.json").unlink()
    shutil.rmtree(broken / "20250101_000002_000001")
    assert_one_line_error(run_dgm(["import-dgm", str(broken), "--initial-dir", str(src)], root),
                          "missing file", "20250101_000002_000001")
    (broken / "dgm_metadata.jsonl").unlink()
    assert_one_line_error(run_dgm(["import-dgm", str(broken)], root), "missing file", "dgm_metadata.jsonl")
    shutil.rmtree(broken / "initial")
    (broken / "dgm_metadata.jsonl").write_text("{}")
    assert_one_line_error(run_dgm(["import-dgm", str(broken)], root), "generation")
    # Importing the same run twice under the same name is refused, not duplicated.
    assert run_dgm(["import-dgm", str(run), "--initial-dir", str(src)], root).returncode == 0
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--initial-dir", str(src)], root), "already exists")


def _one_node_run(tmp_path: Path, patch: bytes) -> Path:
    run = tmp_path / "run"
    (run / "initial").mkdir(parents=True)
    (run / "initial" / "metadata.json").write_text(json.dumps({"run_id": "initial"}))
    (run / "n1").mkdir()
    (run / "n1" / "metadata.json").write_text(json.dumps({"run_id": "n1", "parent_commit": "initial",
                                                          "overall_performance": perf(["x"], [], [])}))
    (run / "n1" / "model_patch.diff").write_bytes(patch)
    (run / "dgm_metadata.jsonl").write_text(json.dumps({"generation": 0, "children": ["n1"],
                                                        "children_compiled": ["n1"], "archive": ["initial", "n1"]}))
    return run


def test_a_patch_that_is_not_utf8_imports_byte_for_byte(tmp_path):
    latin1 = (b"diff --git a/latin1.py b/latin1.py\nnew file mode 100644\nindex 0000000..a0528ef\n--- /dev/null\n"
              b"+++ b/latin1.py\n@@ -0,0 +1 @@\n+# caf\xe9\n")  # what `git diff` writes for a Latin-1 file
    root = tmp_path / "archive"
    proc = run_dgm(["import-dgm", str(_one_node_run(tmp_path, latin1))], root)
    assert proc.returncode == 0, proc.stderr
    with ArchiveStore.open(None, root) as store:
        (n1,) = [a for a in store.list_agents() if a.meta.get("dgm_run_id") == "n1"]
        assert store.code.read_file(n1.commit_sha, "latin1.py") == b"# caf\xe9\n"


def test_an_empty_root_and_links_leading_out_are_one_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("placeholder\n")
    patch, _ = patch_of(src, lambda w: (w / "agent.py").write_text("print('hi')\n"))
    run = _one_node_run(tmp_path, patch.encode())
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run / "dgm_metadata.jsonl")], root), "is not a directory")
    initial = tmp_path / "initial-code"
    initial.mkdir()
    (initial / "main.py").write_text("print(1)\n")
    os.symlink("/etc/passwd", initial / "passwd")
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--initial-dir", str(initial)], root),
                          "passwd -> /etc/passwd", "leads out")
    assert run_dgm(["import-dgm", str(run)], root).returncode == 0
    with ArchiveStore.open(None, root) as store:
        (initial_agent,) = [a for a in store.list_agents() if a.meta.get("dgm_run_id") == "initial"]
    assert_one_line_error(run_dgm(["export", initial_agent.id, str(tmp_path / "out")], root), "no code to export")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("odd", [True, float("nan"), 7, -0.5, "0.4", None])
def test_an_accuracy_that_is_not_a_share_of_tasks_is_no_score(odd):
    from dgm.lineage.import_dgm import _score

    assert _score({"overall_performance": {"accuracy_score": odd}}) is None
    assert _score({"overall_performance": {"accuracy_score": 0.25}}) == 0.25
    assert _score({"overall_performance": {"accuracy_score": 1}}) == 1.0


def test_an_imported_patch_that_copies_a_host_file_is_refused(tmp_path):
    from dgm.errors import UsageError

    from dgm.lineage.import_dgm import _git_apply

    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    patch = f"diff --git a/x b/x\nsimilarity index 100%\ncopy from {secret}\ncopy to x\n"
    with pytest.raises(UsageError, match="node n1 names a path outside the agent's code: copy from"):
        _git_apply(tree, patch, "n1")
    assert not (tree / "x").exists()


def _add_only_run(tmp_path: Path) -> Path:
    """initial -> n1, whose patch only adds agent.py (so it applies to the empty root)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("placeholder\n")
    patch, _ = patch_of(src, lambda w: (w / "agent.py").write_text("print('hi')\n"))
    return _one_node_run(tmp_path, patch.encode())


def _assert_nothing_imported(root: Path) -> None:
    if (root / "dgm.db").exists():
        with ArchiveStore.open(None, root) as store:
            assert store.list_campaigns() == [] and store.list_agents() == []


@pytest.mark.parametrize("record, needles", [
    ({"generation": "one", "children": ["n1"]}, ["record 1", "'generation' must be a whole number", "'one'"]),
    ({"generation": None, "children": ["n1"]}, ["'generation' must be a whole number", "None"]),
    ({"generation": 0, "children": 5}, ["'children' must be a list of run ids", "5"]),
    ({"generation": 0, "children": "n1"}, ["'children' must be a list of run ids", "'n1'"]),
    ({"generation": 0, "children": [{"a": 1}]}, ["'children'", "must be a string", "{'a': 1}"]),
    ({"generation": 0, "children": ["n1"], "archive": 3}, ["'archive' must be a list of run ids"]),
    ({"generation": 0, "children": ["n1"], "children_compiled": [["n1"]]}, ["'children_compiled'", "a string"]),
])
def test_generation_records_of_the_wrong_shape_are_one_line(tmp_path, record, needles):
    run = _add_only_run(tmp_path)
    (run / "dgm_metadata.jsonl").write_text(json.dumps(record, indent=2) + "\n")
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run)], root), "dgm_metadata.jsonl", *needles)
    _assert_nothing_imported(root)


@pytest.mark.parametrize("bad_id", ["../elsewhere/n2", "ABS", "..", ".", "", "a/b"])
def test_run_ids_that_are_not_a_directory_name_in_the_run_are_refused(tmp_path, bad_id):
    """A run id is read as OUTPUT_DIR/<id>/: one that climbs out or is absolute would import
    another directory's node as this run's."""
    run = _add_only_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run / "n1", elsewhere / "n2")  # a valid node outside the run directory
    bad_id = str(elsewhere / "n2") if bad_id == "ABS" else bad_id
    (run / "dgm_metadata.jsonl").write_text(json.dumps({"generation": 0, "children": ["n1", bad_id]}))
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run)], root), "'children'", repr(bad_id)[:40], "is not a run id")
    _assert_nothing_imported(root)


def test_metadata_files_that_cannot_be_read_as_text_are_one_line(tmp_path, monkeypatch):
    run = _add_only_run(tmp_path)
    root = tmp_path / "archive"
    jsonl, node_md, patch = run / "dgm_metadata.jsonl", run / "n1" / "metadata.json", run / "n1" / "model_patch.diff"
    good_jsonl, good_md = jsonl.read_bytes(), node_md.read_bytes()

    def refused(*needles):
        assert_one_line_error(run_dgm(["import-dgm", str(run)], root), *needles)
        _assert_nothing_imported(root)

    jsonl.write_bytes(b"\xff\xfe\x00garbage")
    refused("dgm_metadata.jsonl is not UTF-8 text", "0xff")
    jsonl.unlink()
    jsonl.mkdir()
    refused("dgm_metadata.jsonl is a directory")
    jsonl.rmdir()
    os.mkfifo(jsonl)  # would block a plain open() for ever
    refused("dgm_metadata.jsonl is not a regular file")
    jsonl.unlink()
    jsonl.write_bytes(good_jsonl)

    node_md.write_bytes(b"\xff\xfe{}")
    refused("n1/metadata.json is not UTF-8 text")
    node_md.unlink()
    node_md.mkdir()
    refused("n1/metadata.json is a directory")
    node_md.rmdir()
    os.symlink("/dev/zero", node_md)  # read without a limit, this exhausted memory
    refused("n1/metadata.json is not a regular file")
    node_md.unlink()
    from dgm.lineage import import_dgm

    monkeypatch.setattr(import_dgm, "MAX_METADATA_BYTES", 1024 * 1024)
    node_md.write_text(json.dumps({**json.loads(good_md), "problem_statement": "x" * (1024 * 1024)}))
    refused("n1/metadata.json is larger than 1 MB")
    node_md.write_bytes(good_md)

    patch.unlink()
    os.symlink("/dev/zero", patch)
    refused("n1/model_patch.diff is not a regular file")


@pytest.mark.parametrize("key, value, needles", [
    ("total_resolved_ids", 5, ["overall_performance.total_resolved_ids must be a list of task ids, not 5"]),
    ("total_resolved_ids", [{"x": 1}], ["overall_performance.total_resolved_ids holds {'x': 1}, not a task id"]),
    ("total_unresolved_ids", [None], ["total_unresolved_ids holds None"]),
    # A string was taken one character per task: 6 task runs named "a", "_", ...
    ("total_emptypatch_ids", "a__a-1", ["total_emptypatch_ids must be a list of task ids, not 'a__a-1'"]),
    ("overall_performance", "good", ["'overall_performance' must be a JSON object, not 'good'"]),
    ("overall_performance_deep", [], ["'overall_performance_deep' must be a JSON object"]),
    ("parent_commit", 7, ["'parent_commit'", "a run id must be a string, not 7"]),
    ("parent_commit", ["initial"], ["'parent_commit'", "not ['initial']"]),
])
def test_node_metadata_of_the_wrong_type_is_one_line_and_leaves_nothing(tmp_path, key, value, needles):
    run = _add_only_run(tmp_path)
    metadata = json.loads((run / "n1" / "metadata.json").read_text())
    if key.startswith("total_"):
        metadata["overall_performance"][key] = value
    else:
        metadata[key] = value
    (run / "n1" / "metadata.json").write_text(json.dumps(metadata))
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--name", "x"], root), "n1/metadata.json", *needles)
    _assert_nothing_imported(root)  # before: a campaign left 'running' with no agents, holding the name


@pytest.mark.parametrize("failing, db", [("bulk_add_task_runs", "sqlite"), ("add_event", "sqlite"),
                                         ("bulk_add_task_runs", "postgresql")])
def test_a_failure_after_the_campaign_is_created_leaves_nothing_and_a_reimport_works(tmp_path, monkeypatch, request,
                                                                                     failing, db):
    from dgm.lineage.import_dgm import import_run

    run = _add_only_run(tmp_path)
    url = request.getfixturevalue("pg_url") if db == "postgresql" else None
    with ArchiveStore.open(url, tmp_path / "archive") as store:
        def broken(*args, **kwargs):
            raise RuntimeError("database went away")

        monkeypatch.setattr(store, failing, broken)
        with pytest.raises(RuntimeError, match="went away"):
            import_run(store, run, name="imp")
        monkeypatch.undo()
        assert store.list_campaigns() == [] and store.list_agents() == [] and store.list_task_runs() == []
        assert store.list_events() == []
        refs = subprocess.run(["git", f"--git-dir={store.code.path}", "for-each-ref", "refs/agents"],
                              capture_output=True, text=True, check=True).stdout
        assert refs == ""
        campaign, ids = import_run(store, run, name="imp")  # the name is free again
        assert campaign.status == "completed" and len(store.list_agents(campaign.id)) == len(ids) == 2


def _link_patch(name: str, target: str) -> str:
    return (f"diff --git a/{name} b/{name}\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n"
            f"+++ b/{name}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n")


def _add_patch(path: str, text: str = "x = 1\n") -> str:
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n"
            f"+{text}")


def _chain_run(tmp_path: Path, patches: list[str]) -> Path:
    """initial -> n1 -> n2 -> ..., node n<i> made by patches[i-1]."""
    run = _one_node_run(tmp_path, patches[0].encode())
    ids = [f"n{i}" for i in range(1, len(patches) + 1)]
    for i, patch in enumerate(patches[1:], start=2):
        (run / f"n{i}").mkdir()
        (run / f"n{i}" / "metadata.json").write_text(json.dumps({"run_id": f"n{i}", "parent_commit": f"n{i - 1}"}))
        (run / f"n{i}" / "model_patch.diff").write_text(patch)
    (run / "dgm_metadata.jsonl").write_text(json.dumps({"generation": 0, "children": ids, "children_compiled": ids,
                                                        "archive": ["initial", *ids]}))
    return run


@pytest.mark.parametrize("patches, node, link", [
    # A leaf: imported before, and `dgm export` of that agent failed later.
    ([_link_patch("evil", "/etc/passwd")], "n1", "evil -> /etc/passwd"),
    ([_add_patch("pkg/a.py"), _link_patch("pkg/up", "../../..")], "n2", "pkg/up -> ../../.."),
    # Not a leaf: the import stopped at the child, with a message naming a commit sha.
    ([_link_patch("evildir", "/tmp"), _add_patch("ok.py")], "n1", "evildir -> /tmp"),
])
def test_a_patch_that_makes_a_link_leading_out_is_refused_naming_its_node(tmp_path, patches, node, link):
    run = _chain_run(tmp_path, patches)
    root = tmp_path / "archive"
    line = assert_one_line_error(run_dgm(["import-dgm", str(run)], root),
                                 f"model_patch.diff of node {node} makes a link leading out", link)
    assert "commit" not in line
    _assert_nothing_imported(root)
    # A link that stays inside the agent's code is fine.
    ok = _chain_run(tmp_path / "ok", [_add_patch("pkg/a.py"), _link_patch("pkg/b.py", "a.py")])
    assert run_dgm(["import-dgm", str(ok), "--name", "ok"], root).returncode == 0


def test_an_initial_dir_with_a_fifo_is_one_line(tmp_path):
    run = _add_only_run(tmp_path)
    initial = tmp_path / "initial-code"
    (initial / "tests").mkdir(parents=True)
    (initial / "main.py").write_text("print(1)\n")
    os.mkfifo(initial / "tests" / "pipe")
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--initial-dir", str(initial)], root),
                          "--initial-dir", "tests/pipe is not a regular file, directory or link")
    assert not root.exists()  # refused before the archive was opened: none was made


def test_options_refused_before_the_archive_is_opened_make_no_archive(tmp_path):
    run = _add_only_run(tmp_path)
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--initial-dir", str(tmp_path / "nowhere")], root),
                          "is not a directory")
    assert_one_line_error(run_dgm(["import-dgm", str(run), "--name", " "], root), "--name must not be empty")
    assert not root.exists()


def test_a_patch_that_does_not_apply_to_the_given_initial_dir_asks_whether_it_is_the_right_one(dgm_run, tmp_path):
    run, src, _ = dgm_run
    (src / "coding_agent.py").write_text("something else entirely\n")  # not the code the run started from
    line = assert_one_line_error(run_dgm(["import-dgm", str(run), "--initial-dir", str(src)], tmp_path / "archive"),
                                 "does not apply", f"is --initial-dir {src} the code the DGM run started from?")
    assert "pass --initial-dir" not in line  # it was passed


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_name_is_refused(tmp_path, name):
    root = tmp_path / "archive"
    assert_one_line_error(run_dgm(["import-dgm", str(_add_only_run(tmp_path)), "--name", name], root),
                          "--name must not be empty")
    _assert_nothing_imported(root)


def test_a_name_taken_while_importing_is_refused_without_suggesting_a_resume(tmp_path):
    from dgm.errors import UsageError
    from dgm.lineage.import_dgm import import_run

    run = _add_only_run(tmp_path)
    with ArchiveStore.open(None, tmp_path / "archive") as store:
        def other_import_takes_the_name(done, total):  # while this one commits the code
            if done == 1:
                store.create_campaign("imp", "import", {})

        with pytest.raises(UsageError) as exc:
            import_run(store, run, name="imp", progress=other_import_takes_the_name)
        assert "already exists" in str(exc.value) and "--name" in str(exc.value)
        assert "resume" not in str(exc.value)
        assert [c.name for c in store.list_campaigns()] == ["imp"] and store.list_agents() == []
