"""Headless Chromium (Debian's, driven by Playwright) for the explorer's tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's chromium; a hard failure under scripts/run_tests.sh (DGM_REQUIRE_SERVICES=1)."""
    path = os.environ.get("DGM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if path and Path(path).is_file() and os.access(path, os.X_OK):
        return path
    message = f"Chromium not found (DGM_TEST_CHROMIUM={os.environ.get('DGM_TEST_CHROMIUM')!r})"
    if os.environ.get("DGM_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " but DGM_REQUIRE_SERVICES=1: run scripts/ensure_test_services.sh")
    pytest.skip(message)


@contextmanager
def browser_context():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    profile = tempfile.mkdtemp(prefix="dgm-chromium-")
    with sync_playwright() as p:
        # bypass_csp: Playwright's wait_for_function evaluates its predicate with
        # eval(), which the explorer's policy forbids; the policy itself is
        # exercised by test_markup_written_by_an_agent_is_shown_as_text_and_never_runs.
        context = p.chromium.launch_persistent_context(profile, executable_path=executable, args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1500, "height": 900},
                                                       bypass_csp=True)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
