"""Run or resume a tiny campaign on a Ray cluster in its own process, so a test can SIGKILL the head.

usage: python -m tests.support.ray_campaign_proc DB_URL ARCHIVE_DIR BENCH_DIR NAME RAY_ADDRESS [resume]
(from the repository root)
"""

import json
import sys
from pathlib import Path

from tests.support.campaign import run_campaign
from tests.support.tiny_bench import TinyBenchmark

from dgm.archive.store import ArchiveStore
from dgm.sandbox.docker import docker_client, remove_orphans

CONFIG = dict(generations=0, seed=5, time_limit_s=60, workers=4, heldout=0, stages=[{"name": "all", "tasks": "rest"}])


def main() -> None:
    url, archive_dir, bench_dir, name, address = sys.argv[1:6]
    resume = len(sys.argv) > 6 and sys.argv[6] == "resume"
    store = ArchiveStore.open(url, archive_dir)
    client = docker_client()
    remove_orphans(client)  # what `dgm resume` does here; the executor does it on the worker nodes
    bench = TinyBenchmark(Path(bench_dir) / ("resumed" if resume else "first"), n_tasks=5, difficulties=[1, 4, 4, 1, 4])
    campaign = store.get_campaign(name) if resume else None
    campaign, status = run_campaign(store, client, bench, campaign=campaign, name=name,
                                    executor={"kind": "ray", "address": address}, **CONFIG)
    print(json.dumps({"status": status}))


if __name__ == "__main__":
    main()
