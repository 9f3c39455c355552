"""SWE-bench datasets: reading rows from a file, the cache or the hub; checking
them; and the DGM paper's named subsets (id lists shipped with the package)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dgm.bench.swebench.cache import cache_dir
from dgm.errors import NotFound, UsageError

LITE = "swebench-lite"
VERIFIED = "swebench-verified"
HF_DATASETS = {LITE: "princeton-nlp/SWE-bench_Lite", VERIFIED: "princeton-nlp/SWE-bench_Verified"}
# Where a downloaded copy of a hub dataset is kept in the cache.
LOCAL_NAMES = {LITE: ("swe-bench-lite.test.json", "swe-bench-lite.json"),
               VERIFIED: ("swe-bench-verified.test.json", "swe-bench-verified.json")}
DATASET_ENV = {LITE: "DGM_SWEBENCH_LITE", VERIFIED: "DGM_SWEBENCH_VERIFIED"}

# The DGM paper's staged-evaluation subsets (instance ids of SWE-bench Verified),
# shipped as package data so that nothing outside the package is read.
SUBSETS_DIR = Path(__file__).resolve().parent / "subsets"
NAMED_SUBSETS = ("dgm-small", "dgm-medium", "dgm-big")

_JSON_FIELDS = ("FAIL_TO_PASS", "PASS_TO_PASS")


def read_dataset_file(path: Path) -> list[dict]:
    """Rows of a SWE-bench dataset file: JSON (a list), JSONL, or parquet."""
    if not path.is_file():
        raise NotFound(f"dataset file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # comes with `datasets`, a swebench dependency

            return pq.read_table(path).to_pylist()
        text = path.read_text()
        if suffix == ".jsonl" or (not text.lstrip().startswith("[")):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = json.loads(text)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read dataset {path}: {exc}") from None
    if not isinstance(rows, list):
        raise UsageError(f"dataset {path}: expected a JSON list of SWE-bench instances")
    return rows


REQUIRED_FIELDS = ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch",
                   "FAIL_TO_PASS", "PASS_TO_PASS", "version")


def check_rows(rows: list, source: str) -> None:
    """UsageError naming the first row a task could not be made from (or graded right)."""
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UsageError(f"dataset {source}: row {number} is not an object (expected SWE-bench instances)")
        name = row.get("instance_id", f"row {number}")
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise UsageError(f"dataset {source}: {name} has no {', '.join(missing)}")
        try:
            lists = {key: _json_list(row[key]) for key in ("FAIL_TO_PASS", "PASS_TO_PASS")}
        except (ValueError, TypeError):
            raise UsageError(f"dataset {source}: {name}: FAIL_TO_PASS / PASS_TO_PASS must be lists of test "
                             "names") from None
        if not lists["FAIL_TO_PASS"]:
            # Without them any patch that keeps PASS_TO_PASS green would count as resolved.
            raise UsageError(f"dataset {source}: {name} has an empty FAIL_TO_PASS: nothing would tell a fix "
                             "from no fix")


def _default_dataset_file(name: str) -> Path | None:
    env = os.environ.get(DATASET_ENV[name])
    if env:
        return Path(env).expanduser()
    directory = cache_dir() / "datasets"
    for filename in LOCAL_NAMES[name]:
        if (directory / filename).is_file():
            return directory / filename
    return None


def load_rows(name: str, dataset: str | os.PathLike | None = None) -> tuple[list[dict], str]:
    """The benchmark's rows and where they came from.

    Order: `dataset` (a file path, or a hub dataset name such as
    princeton-nlp/SWE-bench_Verified), $DGM_SWEBENCH_LITE / $DGM_SWEBENCH_VERIFIED,
    the local cache, then the HuggingFace hub (online only; the download is
    cached for next time). Nothing beside the repository is looked at: a
    clone has only what it ships.
    """
    if dataset is not None:
        path = Path(dataset).expanduser()
        if path.exists() or path.suffix.lower() in (".json", ".jsonl", ".parquet"):
            return read_dataset_file(path), str(path)
        return _load_from_hub(name, str(dataset)), f"hf:{dataset}"
    local = _default_dataset_file(name)
    if local is not None:
        return read_dataset_file(local), str(local)
    return _load_from_hub(name, HF_DATASETS[name]), f"hf:{HF_DATASETS[name]}"


def _load_from_hub(name: str, hub_name: str) -> list[dict]:
    try:
        import logging

        from datasets import load_dataset

        # Offline, the hub client logs each of its retries: the one line below says it all.
        for logger in ("huggingface_hub", "datasets", "fsspec", "urllib3"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        rows = [dict(r) for r in load_dataset(hub_name, split="test")]
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, auth: all one message
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UsageError(
            f"{name}: no local dataset and the HuggingFace hub did not answer for {hub_name} ({reason}); "
            f"pass --dataset FILE (JSON/JSONL/parquet) or set ${DATASET_ENV[name]}") from None
    target = cache_dir() / "datasets" / LOCAL_NAMES[name][0]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, target)
    return rows


def subset_ids(name: str) -> list[str]:
    """Instance ids of a DGM paper subset (dgm-small / dgm-medium / dgm-big)."""
    if name not in NAMED_SUBSETS:
        raise NotFound(f"unknown subset {name!r} (known: {', '.join(NAMED_SUBSETS)}, full)")
    return list(json.loads((SUBSETS_DIR / f"{name}.json").read_text()))


def _json_list(value) -> list[str]:
    if isinstance(value, str):
        return list(json.loads(value)) if value.strip() else []
    return list(value or [])


def normalise_row(row: dict) -> dict:
    """A row as swebench expects it (lists may come as JSON strings or lists)."""
    out = dict(row)
    for key in _JSON_FIELDS:
        out[key] = _json_list(row.get(key))
    out["version"] = str(row.get("version", ""))
    return out
