"""Import a run directory of the original DGM implementation into the archive.

Supported layout (what DGM_outer.py / self_improve_step.py write; see the
README section "Importing DGM runs"):

    OUTPUT_DIR/
      dgm_metadata.jsonl        one JSON object per generation, pretty-printed
                                (indent=2) and concatenated: generation,
                                selfimprove_entries, children, children_compiled, archive
      initial/metadata.json     the root node (no model_patch.diff)
      <run_id>/metadata.json    run_id, parent_commit ("initial" for the root's
                                children), entry, problem_statement,
                                overall_performance {accuracy_score,
                                total_resolved_ids, total_unresolved_ids,
                                total_emptypatch_ids, ...}, optional
                                overall_performance_deep, improvement_diagnosis
      <run_id>/model_patch.diff the node's change relative to its parent's code

Each node becomes an agent whose code is a real commit: the root is the tree
given with `--initial-dir` (the DGM code the run started from) or an empty
tree; every child is its parent's tree with its model_patch.diff applied by
`git apply` in a temporary directory. Scores and per-task outcomes become the
agent's score and 'task' runs (stage 'dgm', and 'dgm-full' for the deep
evaluation), so the heat maps and plots work on imported runs too.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING

from dgm.errors import UsageError
from dgm.sandbox.testbed import links_leading_out, special_files, unsafe_patch_paths

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

METADATA_FILE = "dgm_metadata.jsonl"
NODE_METADATA = "metadata.json"
NODE_PATCH = "model_patch.diff"
ROOT_ID = "initial"
IMPORT_MODEL = "dgm-import"
"""Model name on imported task runs: the original run's model is not in its metadata."""
MAX_METADATA_BYTES = 64 * 1024 * 1024
"""dgm_metadata.jsonl and metadata.json files larger than this are refused (DGM's are kilobytes)."""


@dataclass
class DgmNode:
    run_id: str
    parent: str | None
    metadata: dict[str, Any]
    patch: str | None
    generation: int = 0
    compiled: bool = False
    in_archive: bool = False
    children: list[str] = field(default_factory=list)


def _read_file(path: Path, capped: bool = True) -> bytes:
    """The bytes of a regular file (a link to one is followed), refused over MAX_METADATA_BYTES if `capped`.

    A directory, a FIFO or a device (a link to /dev/zero) is refused, not read."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before it can be refused.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(f"missing file {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UsageError(f"{path} is a directory, not a file" if stat.S_ISDIR(mode)
                         else f"{path} is not a regular file (a device, FIFO or socket)")
    with os.fdopen(fd, "rb") as f:
        limit = MAX_METADATA_BYTES
        try:
            data = f.read(limit + 1) if capped else f.read()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if capped and len(data) > limit:
        raise UsageError(f"{path} is larger than {limit // (1024 * 1024)} MB; a DGM metadata file is not")
    return data


def _read_text(path: Path) -> str:
    data = _read_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_run_id(run_id: Any, where: str) -> str:
    """A DGM run id names a directory directly inside OUTPUT_DIR: nothing else is read."""
    if not isinstance(run_id, str):
        raise UsageError(f"{where}: a run id must be a string, not {_short(run_id)}")
    if run_id in ("", ".", "..") or "/" in run_id or "\0" in run_id or (os.altsep and os.altsep in run_id):
        raise UsageError(f"{where}: {_short(run_id)} is not a run id (the name of a directory in the run directory)")
    return run_id


def _check_generation(record: dict[str, Any], where: str) -> None:
    generation = record["generation"]
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise UsageError(f"{where}: 'generation' must be a whole number >= 0, not {_short(generation)}")
    for key in ("children", "children_compiled", "archive"):
        _check_list(record.get(key), f"{where}: {key!r}", "run ids", check_run_id)


def _check_list(values: Any, where: str, what: str, check_item) -> None:
    """`values`, if given, must be a list (a string would be taken one character
    per item), each item passing `check_item(item, where)`."""
    if values is None:
        return
    if not isinstance(values, list):
        raise UsageError(f"{where} must be a list of {what}, not {_short(values)}")
    for item in values:
        check_item(item, where)


def _check_task_id(task_id: Any, where: str) -> None:
    if not isinstance(task_id, str) or not task_id.strip():
        raise UsageError(f"{where} holds {_short(task_id)}, not a task id (a string)")


_PERFORMANCE = (("overall_performance", "dgm"), ("overall_performance_deep", "dgm-full"))
_TASK_ID_LISTS = (("total_resolved_ids", "resolved"), ("total_unresolved_ids", "unresolved"),
                  ("total_emptypatch_ids", "empty_patch"))


def _check_node_metadata(metadata: dict[str, Any], where: Path) -> None:
    """The fields that become task runs: a wrong type is refused here, before anything is written."""
    for key, _stage in _PERFORMANCE:
        perf = metadata.get(key)
        if perf is None:
            continue
        if not isinstance(perf, dict):
            raise UsageError(f"{where}: {key!r} must be a JSON object, not {_short(perf)}")
        for ids_key, _status in _TASK_ID_LISTS:
            _check_list(perf.get(ids_key), f"{where}: {key}.{ids_key}", "task ids", _check_task_id)


def read_generations(path: Path) -> list[dict[str, Any]]:
    """The generation records: DGM writes them pretty-printed and concatenated, not one per line."""
    text = _read_text(path)
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not a sequence of JSON objects ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(obj, dict) or "generation" not in obj:
            raise UsageError(f"{path}: record {len(records) + 1} is not a generation object with a 'generation' key")
        _check_generation(obj, f"{path}: record {len(records) + 1}")
        records.append(obj)
    return records


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return data


def scan(output_dir: Path) -> tuple[dict[str, DgmNode], list[dict[str, Any]]]:
    """Read and check the whole layout before anything is written to the archive."""
    if not output_dir.is_dir():
        raise UsageError(f"DGM output directory {output_dir} "
                         f"{'is not a directory' if output_dir.exists() else 'does not exist'}")
    meta_path = output_dir / METADATA_FILE
    if not os.path.lexists(meta_path):
        raise UsageError(f"missing file {meta_path} (is {output_dir} a DGM run directory?)")
    generations = read_generations(meta_path)
    if not os.path.lexists(output_dir / ROOT_ID / NODE_METADATA):
        raise UsageError(f"missing file {output_dir / ROOT_ID / NODE_METADATA} (the root node of the run)")

    generation_of: dict[str, int] = {}
    compiled: set[str] = set()
    final_archive: set[str] = set(generations[-1].get("archive") or []) if generations else set()
    listed: list[str] = []
    for record in generations:
        for child in record.get("children") or []:
            generation_of.setdefault(child, int(record["generation"]) + 1)
            listed.append(child)
        compiled.update(record.get("children_compiled") or [])
    # Node directories not named in the metadata (e.g. a generation cut short) are imported as well;
    # a metadata.json there that is not a readable file is reported, not skipped.
    on_disk = sorted(p.name for p in output_dir.iterdir() if p.is_dir() and os.path.lexists(p / NODE_METADATA))
    ids = [ROOT_ID] + sorted((set(listed) | set(on_disk)) - {ROOT_ID})

    nodes: dict[str, DgmNode] = {}
    for run_id in ids:
        node_dir = output_dir / run_id
        metadata = _load_json(node_dir / NODE_METADATA)
        _check_node_metadata(metadata, node_dir / NODE_METADATA)
        parent = None
        if run_id != ROOT_ID:
            parent = metadata.get("parent_commit")
            if parent is None or parent == "":
                raise UsageError(f"{node_dir / NODE_METADATA} has no parent_commit")
            parent = check_run_id(parent, f"{node_dir / NODE_METADATA}: 'parent_commit'")
        patch_path = node_dir / NODE_PATCH
        # Bytes that are not UTF-8 (a Latin-1 source file) are carried through untouched to `git apply`.
        patch = (_read_file(patch_path, capped=False).decode("utf-8", "surrogateescape")
                 if os.path.lexists(patch_path) else None)
        if patch is None and run_id != ROOT_ID and (run_id in compiled or run_id in final_archive):
            raise UsageError(f"missing file {patch_path} (node {run_id} is in the archive, so its code change must exist)")
        nodes[run_id] = DgmNode(run_id=run_id, parent=parent, metadata=metadata, patch=patch,
                                compiled=run_id in compiled or run_id == ROOT_ID,
                                in_archive=run_id in final_archive or run_id == ROOT_ID)
    for node in nodes.values():
        if node.parent is not None:
            if node.parent not in nodes:
                raise UsageError(f"node {node.run_id}'s parent {node.parent} has no directory "
                                 f"{output_dir / node.parent / NODE_METADATA}")
            nodes[node.parent].children.append(node.run_id)
    # Generations: from the metadata where listed, else one more than the parent's.
    order = topological(nodes)
    for run_id in order:
        node = nodes[run_id]
        if run_id == ROOT_ID:
            node.generation = 0
        else:
            node.generation = generation_of.get(run_id, nodes[node.parent].generation + 1)
    return nodes, generations


def topological(nodes: dict[str, DgmNode]) -> list[str]:
    order: list[str] = []
    stack = [ROOT_ID]
    while stack:
        run_id = stack.pop()
        order.append(run_id)
        stack.extend(sorted(nodes[run_id].children, reverse=True))
    if len(order) != len(nodes):
        loose = sorted(set(nodes) - set(order))[:3]
        raise UsageError(f"node(s) {', '.join(loose)} do not descend from '{ROOT_ID}' (parent_commit cycle?)")
    return order


def _git_apply(tree: Path, patch: str, run_id: str, initial_dir: Path | None = None) -> None:
    unsafe = unsafe_patch_paths(patch)
    if unsafe:  # git apply reads a `copy from` path wherever it points
        raise UsageError(f"model_patch.diff of node {run_id} names a path outside the agent's code: {unsafe[0]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    # --unsafe-paths is not given: a patch may not write outside the tree.
    proc = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=tree, input=patch.encode("utf-8", "surrogateescape"),
                          capture_output=True, env=env)
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        hint = ("pass --initial-dir with the code the DGM run started from" if initial_dir is None
                else f"is --initial-dir {initial_dir} the code the DGM run started from?")
        raise UsageError(f"model_patch.diff of node {run_id} does not apply to its parent's code "
                         f"({why[0] if why else 'git apply failed'}); {hint}")


def _performance_runs(node: DgmNode, agent_id: str, campaign_id: str, benchmark: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, stage in _PERFORMANCE:  # types checked by scan()
        perf = node.metadata.get(key) or {}
        for ids_key, status in _TASK_ID_LISTS:
            for task_id in dict.fromkeys(perf.get(ids_key) or []):  # de-duplicated, order kept
                rows.append({"campaign_id": campaign_id, "agent_id": agent_id, "kind": "task",
                             "benchmark": benchmark, "task_id": task_id, "stage": stage, "status": status,
                             "model": IMPORT_MODEL})
    # One row per (task, stage): a task listed twice under different outcomes keeps the first.
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        key = (row["task_id"], row["stage"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _score(metadata: dict[str, Any]) -> float | None:
    perf = metadata.get("overall_performance") or {}
    score = perf.get("accuracy_score") if isinstance(perf, dict) else None
    # A share of tasks resolved: anything else (true, NaN, 7) is no score at all, not one to rank by.
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        return None
    return float(score)


def import_run(store: ArchiveStore, output_dir: Path, *, initial_dir: Path | None = None, name: str | None = None,
               benchmark: str = "swebench-verified", progress=None) -> tuple[Any, dict[str, str]]:
    """Import everything; returns the campaign and DGM run id -> agent id."""
    output_dir = Path(output_dir)
    nodes, generations = scan(output_dir)
    if initial_dir is not None:
        check_initial_dir(initial_dir)
    order = topological(nodes)
    check_name(name)
    name = name or f"dgm-{output_dir.resolve().name}"
    taken = UsageError(f"a campaign named {name!r} already exists (pass --name with another name to import "
                       "the run again)")
    if any(c.name == name for c in store.list_campaigns()):
        raise taken
    # Code first: it is the slow part and the part a bad patch makes fail, and
    # commits nobody references are harmless, while a half-imported campaign is not.
    shas: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dgm-import-") as tmp:
        for i, run_id in enumerate(order):
            node = nodes[run_id]
            tree = Path(tmp) / f"n{i}"
            if node.parent is None:
                tree.mkdir()
                if initial_dir is not None:
                    _copy_tree(initial_dir, tree)
                    escaping = links_leading_out(tree)
                    if escaping:
                        raise UsageError(f"--initial-dir {initial_dir}: {escaping[0]} leads out of it "
                                         "(agent code must be self-contained)")
                shas[run_id] = store.code.commit_tree(tree, None, f"dgm import: {run_id}")
            else:
                if store.code.tree_files(shas[node.parent]):
                    store.code.materialize(shas[node.parent], tree)
                else:  # `git archive` of an empty tree is not a tar stream Python can read
                    tree.mkdir()
                if node.patch and node.patch.strip():
                    _git_apply(tree, node.patch, run_id, initial_dir)
                    # Checked here, naming the node: such a tree cannot be exported or built on later.
                    escaping = links_leading_out(tree)
                    if escaping:
                        raise UsageError(f"model_patch.diff of node {run_id} makes a link leading out of the "
                                         f"agent's code: {escaping[0]} (agent code must be self-contained)")
                shas[run_id] = store.code.commit_tree(tree, shas[node.parent], f"dgm import: {run_id}")
            if progress:
                progress(i + 1, len(order))
    try:
        campaign = store.create_campaign(
            name=name, kind="import",
            config={"source": str(output_dir.resolve()), "format": "dgm", "generations": len(generations),
                    "initial_dir": str(initial_dir.resolve()) if initial_dir else None, "benchmark": benchmark},
        )
    except UsageError:
        # Another import took the name while the code was being committed: the store's
        # message would suggest resuming, which an import cannot be.
        if any(c.name == name for c in store.list_campaigns()):
            raise taken from None
        raise
    from dgm.archive.store import new_id

    agent_ids = {run_id: new_id(6) for run_id in order}
    try:
        _write_rows(store, campaign.id, nodes, order, shas, agent_ids, generations, benchmark)
        store.set_campaign_status(campaign.id, "completed", finished=True)
    except BaseException:
        # Nothing half-imported stays behind: it would hold the name, and an import cannot be resumed.
        _discard(store, campaign.id, list(agent_ids.values()))
        raise
    return store.get_campaign(campaign.id), agent_ids


def _write_rows(store: ArchiveStore, campaign_id: str, nodes: dict[str, DgmNode], order: list[str], shas: dict[str, str],
                agent_ids: dict[str, str], generations: list[dict[str, Any]], benchmark: str) -> None:
    agent_rows = []
    run_rows: list[dict[str, Any]] = []
    for run_id in order:
        node = nodes[run_id]
        md = node.metadata
        status = "seed" if node.parent is None else ("admitted" if node.in_archive else "rejected")
        reason = None
        if status == "rejected":
            reason = "did not compile (DGM: no non-empty patch or incomplete evaluation)" if not node.compiled \
                else "not kept in DGM's archive"
        proposal = None
        if md.get("problem_statement") or md.get("improvement_diagnosis"):
            proposal = {"problem_statement": md.get("problem_statement"),
                        "improvement_diagnosis": md.get("improvement_diagnosis"), "source": "dgm"}
        entry = md.get("entry")
        agent_rows.append({
            "id": agent_ids[run_id], "campaign_id": campaign_id,
            "parent_id": agent_ids[node.parent] if node.parent else None, "generation": node.generation,
            "commit_sha": shas[run_id], "status": status, "rejection_reason": reason,
            "origin": "seed" if node.parent is None else "import", "proposal": proposal,
            "diagnosis_target": {"entry": entry} if entry else None, "score": _score(md),
            "meta": {"dgm_run_id": run_id, "dgm_compiled": node.compiled,
                     "model_patch_bytes": len(node.patch or "")},
        })
        run_rows += _performance_runs(node, agent_ids[run_id], campaign_id, benchmark)
    store.bulk_add_agents(agent_rows)
    store.bulk_add_task_runs(run_rows)
    for record in generations:
        store.add_event(campaign_id, "dgm_generation", {
            k: record.get(k) for k in ("generation", "children", "children_compiled", "archive")})


def _discard(store: ArchiveStore, campaign_id: str, agent_ids: list[str]) -> None:
    """Remove a campaign whose import failed part way, with its rows and agent refs.

    If even that fails (the database went away), the campaign is at least marked failed."""
    try:
        store.discard_import(campaign_id)
        for agent_id in agent_ids:  # bulk_add_agents sets the refs before it inserts the rows
            store.code.drop_ref(agent_id)
    except Exception:  # noqa: BLE001 - the import's own error is the one to report
        try:
            store.set_campaign_status(campaign_id, "failed", finished=True)
        except Exception:  # noqa: BLE001
            pass


_IGNORED = (".git", "__pycache__", "*.pyc")


def check_name(name: str | None) -> None:
    if name is not None and not name.strip():
        raise UsageError("--name must not be empty (leave it out for the default, dgm-<directory name>)")


def check_initial_dir(initial_dir: Path) -> None:
    """Only files, directories and links can be agent code: a FIFO or a device is refused up front."""
    if not initial_dir.is_dir():
        raise UsageError(f"--initial-dir {initial_dir} is not a directory")
    special = special_files(initial_dir, _IGNORED, onerror=_walk_error(initial_dir))
    if special:
        raise UsageError(f"--initial-dir {initial_dir}: {special[0][0]} is not a regular file, directory or link "
                         "(a FIFO, socket or device cannot be agent code)")


def _walk_error(initial_dir: Path):
    def raise_it(exc: OSError) -> None:
        raise UsageError(f"--initial-dir {initial_dir}: cannot read {exc.filename}: {exc.strerror}")
    return raise_it


def _copy_tree(src: Path, dest: Path) -> None:
    import shutil

    try:
        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(*_IGNORED))
    except shutil.Error as exc:  # every file that failed, as (source, destination, reason)
        source, _dest, why = exc.args[0][0]
        raise UsageError(f"--initial-dir {src}: cannot copy {source}: {why}") from None
    except OSError as exc:
        raise UsageError(f"--initial-dir {src}: cannot copy {exc.filename}: {exc.strerror}") from None
