"""Run or resume a tiny asynchronous campaign in its own process, so tests can SIGKILL it.

usage: python -m tests.support.async_campaign_proc ARCHIVE_DIR CAMPAIGN_NAME RULES_FILE [resume]
(the test resumes in its own process; `resume` is for running it by hand)
(from the repository root)
"""

import json
import sys
import tempfile
from pathlib import Path

from tests.support.campaign import run_campaign
from tests.support.tiny_bench import TinyBenchmark

from dgm.archive.store import ArchiveStore
from dgm.sandbox.docker import docker_client, remove_orphans

CHILDREN = 2
ASYNC_CONFIG = dict(schedule="async", generations=CHILDREN, workers=2, time_limit_s=60, heldout=0,
                    evaluate_twins=True, stages=[{"name": "all", "tasks": "rest"}])


def tiny_bench(directory: Path) -> TinyBenchmark:
    """The campaign's benchmark (its tasks are the same wherever it is made)."""
    return TinyBenchmark(directory, n_tasks=2, difficulties=[1, 4])


def main() -> None:
    archive_dir, name, rules = sys.argv[1], sys.argv[2], sys.argv[3]
    resume = len(sys.argv) > 4 and sys.argv[4] == "resume"
    store = ArchiveStore.open(None, archive_dir)
    client = docker_client()
    remove_orphans(client)  # what `dgm resume` does: containers of the killed run go
    bench = tiny_bench(Path(tempfile.mkdtemp()) / "bench")
    campaign = store.get_campaign(name) if resume else None
    campaign, status = run_campaign(store, client, bench, campaign=campaign, name=name, model=f"scripted:{rules}",
                                    **ASYNC_CONFIG)
    print(json.dumps({"status": status}))


if __name__ == "__main__":
    main()
