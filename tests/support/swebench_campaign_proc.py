"""Run or resume a tiny campaign on the synthetic SWE-bench instance in its own
process, so that tests can SIGKILL it.

usage: python -m tests.support.swebench_campaign_proc ROOT ARCHIVE_DIR NAME RULES_FILE [resume] [standby]
(from the repository root; ROOT holds what `swebench_synthetic.make_instance` made)

`standby`: see tests.support.standby.
"""

import json
import sys
from pathlib import Path

from dgm.archive.store import ArchiveStore
from dgm.sandbox.docker import docker_client, remove_orphans
from tests.support import standby
from tests.support.campaign import run_campaign
from tests.support.swebench_synthetic import IID, SyntheticInstance, load_bench, register_spec

CONFIG = dict(generations=1, children_per_generation=1, workers=1, time_limit_s=120, heldout=0,
              stages=[{"name": "all", "tasks": [IID], "advance_threshold": 0.0}])


def main() -> None:
    root, archive_dir, name, rules = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    resume = "resume" in sys.argv[5:]
    if not standby.wait_until_told(sys.argv[5:]):
        return  # the test ended without needing this process
    register_spec()
    dataset = root / "synthetic.jsonl"
    instance = SyntheticInstance(dataset, root / "mirror", root / "wheelhouse", json.loads(dataset.read_text()))
    bench = load_bench(instance, root / "cache")
    store = ArchiveStore.open(None, archive_dir)
    client = docker_client()
    remove_orphans(client)  # what `dgm resume` does: containers of the killed run go
    campaign = store.get_campaign(name) if resume else None
    # Recorded as `dgm run --dataset --images --repo-mirror` records them (replay reads them back).
    options = {"dataset": str(dataset), "images": "offline", "repo_mirror": str(root / "mirror")}
    campaign, status = run_campaign(store, client, bench, campaign=campaign, name=name, model=f"scripted:{rules}",
                                    benchmark_options=options, **CONFIG)
    print(json.dumps({"status": status}))


if __name__ == "__main__":
    main()
