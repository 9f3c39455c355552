"""Where dgm keeps SWE-bench downloads and builds on this machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """dgm's cache for SWE-bench datasets, build contexts and wheelhouses."""
    base = os.environ.get("DGM_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                          os.path.expanduser("~/.cache"), "dgm")
    return Path(base) / "swebench"
