"""Whether a campaign's runner is alive, as anyone reading the archive can tell.

A runner (`dgm run`/`resume`, `dgm eval`, `dgm replay`) records its pid and
host when it starts and checks in (`heartbeat`) every few seconds while it
works. A campaign still marked `running` whose runner stopped checking in, or
whose process on this machine is gone, was killed: readers show it as
`running?`, and its runs still marked running as cut short.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, TYPE_CHECKING

if TYPE_CHECKING:
    from dgm.archive.store import ArchiveStore

HEARTBEAT_S = 5.0
# A campaign whose last heartbeat (every HEARTBEAT_S) is younger than this has a live runner.
HEARTBEAT_FRESH_S = 30.0


def heartbeat_age(campaign) -> float | None:
    """Seconds since the campaign's runner last checked in (None: never)."""
    beat = campaign.heartbeat_at
    if beat is None:
        return None
    beat = beat if beat.tzinfo else beat.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - beat).total_seconds()


def runner_process_gone(campaign) -> bool:
    """Its runner was on this machine and that process no longer exists (a
    `kill -9`): known at once, not when the heartbeat goes stale. A runner
    on another machine is never judged by a pid here."""
    from dgm.sandbox.docker import pid_alive

    pid = campaign.pid
    if not pid or pid == os.getpid() or getattr(campaign, "runner_host", None) != socket.gethostname():
        return False
    return not pid_alive(pid)


def runner_checks_in(campaign) -> bool:
    """A running campaign whose runner checked in lately and, on this machine, still exists."""
    age = heartbeat_age(campaign)
    return (campaign.status == "running" and age is not None and age < HEARTBEAT_FRESH_S
            and not runner_process_gone(campaign))


def shown_status(campaign) -> str:
    """The campaign's status as readers should show it: `running?` for one
    marked running whose runner is not alive (killed, or its machine down)."""
    if campaign.status == "running" and not runner_checks_in(campaign):
        return "running?"
    return campaign.status


@contextmanager
def heartbeat(store: ArchiveStore, campaign_id: str) -> Iterator[None]:
    """Check in for the campaign every HEARTBEAT_S while the block runs (on a thread)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            try:
                store.heartbeat(campaign_id, os.getpid())
            except Exception:  # noqa: BLE001 - a missed heartbeat is harmless; the work reports real failures
                pass

    thread = threading.Thread(target=beat, name=f"dgm-heartbeat-{campaign_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(HEARTBEAT_S)
