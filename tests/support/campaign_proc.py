"""Run or resume a tiny campaign in its own process, so tests can SIGKILL it.

usage: python -m tests.support.campaign_proc ARCHIVE_DIR CAMPAIGN_NAME RULES_FILE [resume] [standby]
(from the repository root)

`standby`: see tests.support.standby.
"""

import json
import sys
import tempfile
from pathlib import Path

from tests.support import standby
from tests.support.campaign import run_campaign
from tests.support.tiny_bench import TinyBenchmark

from dgm.archive.store import ArchiveStore
from dgm.sandbox.docker import docker_client, remove_orphans

KILL_CONFIG = dict(generations=1, children_per_generation=2, workers=2, time_limit_s=60,
                   stages=[{"name": "small", "tasks": 2, "advance_threshold": 0.0}, {"name": "rest", "tasks": "rest"}],
                   heldout=1)
DIFFICULTIES = [1, 4, 4, 1, 4]


def main() -> None:
    archive_dir, name, rules = sys.argv[1], sys.argv[2], sys.argv[3]
    resume = "resume" in sys.argv[4:]
    if not standby.wait_until_told(sys.argv[4:]):
        return  # the test ended without needing this process
    store = ArchiveStore.open(None, archive_dir)
    client = docker_client()
    remove_orphans(client)  # what `dgm resume` does: containers of the killed run go
    bench = TinyBenchmark(Path(tempfile.mkdtemp()) / "bench", n_tasks=5, difficulties=DIFFICULTIES)
    campaign = store.get_campaign(name) if resume else None
    campaign, status = run_campaign(store, client, bench, campaign=campaign, name=name, model=f"scripted:{rules}",
                                    **KILL_CONFIG)
    print(json.dumps({"status": status}))


if __name__ == "__main__":
    main()
