"""Loading litellm: once, quietly, and early enough to overlap other set-up.

Its own module so that both the client and the scripted provider can reach
litellm without importing each other: the client uses the scripted models'
names and prices, and the scripted models raise litellm's errors and register
with it.
"""

from __future__ import annotations

import threading

_litellm_module = None
_litellm_lock = threading.Lock()


def load_litellm():
    """Import litellm once, quietly: its import takes seconds and it logs a lot."""
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is None:
            import logging

            import litellm

            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.ERROR)
            _litellm_module = litellm
    return _litellm_module


_litellm_started = threading.Event()


def start_loading_litellm() -> None:
    """Import litellm in the background, once: a command that will call a
    model starts this as soon as its arguments are checked, so the seconds of
    import overlap its other set-up (archive, Docker, images)."""
    if _litellm_module is None and not _litellm_started.is_set():
        _litellm_started.set()
        threading.Thread(target=load_litellm, daemon=True, name="dgm-litellm-import").start()
