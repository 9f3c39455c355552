"""swebench's own specs for a row: the per-repo/version install and test specs,
the eval script, and the full TestSpec (with requirement files read from a
local clone when offline)."""

from __future__ import annotations

import os
import re
import shlex
import threading
from contextlib import contextmanager

from dgm.errors import UsageError


def specs_for(row: dict) -> dict:
    """swebench's install/test specs for the row's repo and version."""
    from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS

    try:
        return MAP_REPO_VERSION_TO_SPECS[row["repo"]][str(row["version"])]
    except KeyError:
        raise UsageError(f"{row.get('instance_id')}: swebench has no spec for {row.get('repo')} "
                         f"version {row.get('version')!r}") from None


def eval_script(row: dict) -> str:
    """swebench's eval script for the row (no network needed)."""
    from swebench.harness.test_spec.create_scripts import make_eval_script_list

    specs = specs_for(row)
    commands = make_eval_script_list(row, specs, "testbed", "/testbed", row["base_commit"], row["test_patch"])
    commands = [_reset_new_test_files(c, row) for c in commands]
    # The same header swebench's TestSpec.eval_script puts on it.
    return "\n".join(["#!/bin/bash", "set -uxo pipefail"] + commands) + "\n"


def _reset_new_test_files(command: str, row: dict) -> str:
    """swebench 4.1.0's fix-up for test patches that only add files.

    swebench resets the test files with `git checkout BASE FILES...`, where
    FILES are the files the test patch modifies. When it only adds files
    (sphinx-8595, sphinx-9711, django-16877) the list is empty, and
    `git checkout BASE` moves HEAD back to the base commit. That undoes the
    setup commit, and with it sphinx's `pytest -rA` in tox.ini, so no test
    result can be parsed and even the gold patch fails (SWE-bench issue #518).
    Upstream fixed it later (SWE-bench PR #539) by removing the new files
    instead, and this does the same."""
    if command.strip() != f"git checkout {row['base_commit']}":
        return command
    new_files = re.findall(r"^--- /dev/null\n\+\+\+ b/(\S+)", row["test_patch"], flags=re.M)
    return "rm -f " + " ".join(shlex.quote(f) for f in new_files) if new_files else "true"


# swebench fetches requirements.txt / environment.yml from GitHub while making
# a test spec. Offline, the same files come from the local repository mirror:
# the `requests` module swebench's spec code uses is swapped for one that reads
# `git show <commit>:<path>` from the mirror, so the cleaning and recursion
# logic stays swebench's. One spec at a time: the swap is module-global.
_spec_lock = threading.Lock()


class _MirrorResponse:
    def __init__(self, status_code: int, text: str = ""):
        self.status_code = status_code
        self.text = text


class _MirrorRequests:
    def __init__(self, read_file, fallback):
        self._read_file = read_file
        self._fallback = fallback

    def get(self, url: str, headers=None, **kwargs):
        from swebench.harness.constants import SWE_BENCH_URL_RAW

        if url.startswith(SWE_BENCH_URL_RAW):
            owner, name, commit, path = url[len(SWE_BENCH_URL_RAW):].lstrip("/").split("/", 3)
            text = self._read_file(f"{owner}/{name}", commit, os.path.normpath(path))
            if text is not None:
                return _MirrorResponse(200, text)
            if self._fallback is None:
                return _MirrorResponse(404)
        if self._fallback is None:
            return _MirrorResponse(404)
        return self._fallback.get(url, headers=headers, **kwargs)


@contextmanager
def requirements_from(read_file, allow_network: bool):
    import requests as real_requests
    from swebench.harness.test_spec import python as spec_python

    with _spec_lock:
        saved = spec_python.requests
        spec_python.requests = _MirrorRequests(read_file, real_requests if allow_network else None)
        # swebench caches these per (repo, commit); a cached failure or a file
        # read from another mirror must not leak between calls.
        spec_python.get_requirements_by_commit.cache_clear()
        spec_python.get_environment_yml_by_commit.cache_clear()
        try:
            yield
        finally:
            spec_python.requests = saved
            spec_python.get_requirements_by_commit.cache_clear()
            spec_python.get_environment_yml_by_commit.cache_clear()


def make_spec(row: dict, read_file=None, *, allow_network: bool = True):
    """swebench's TestSpec for the row; requirement files come from `read_file`
    (repo, commit, path) -> text | None when given, else from GitHub."""
    from swebench.harness.test_spec.test_spec import make_test_spec

    if read_file is None:
        read_file = lambda repo, commit, path: None  # noqa: E731
    try:
        with requirements_from(read_file, allow_network):
            return make_test_spec(row)
    except Exception as exc:  # noqa: BLE001 - requests' connection errors (OSErrors too) when offline
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise UsageError(f"{row['instance_id']}: its environment needs requirement files from GitHub, which "
                             f"did not answer; give --repo-mirror DIR with a clone of {row['repo']}") from None
        if isinstance(exc, (ValueError, OSError)):
            raise UsageError(f"{row['instance_id']}: cannot make the swebench test spec: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        raise
