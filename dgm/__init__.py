"""dgm: Darwin-Godel-style evolution of self-modifying coding agents."""

import os

# litellm must never fetch its model cost map at import time: the machines
# this runs on are often offline, and a silent network call at import is a hang.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"
