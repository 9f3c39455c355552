"""[campaign.executor] and --executor / --ray-address: threads by default, the
flags laid over the file's table field by field, bad values one line."""

from __future__ import annotations

import pytest

from dgm.config import load_config
from dgm.errors import UsageError
from tests.support.cli import run_dgm


def test_the_default_executor_is_threads():
    assert load_config(None, {}).executor.kind == "threads"


def test_flags_are_laid_over_the_files_executor_table(tmp_path):
    path = tmp_path / "campaign.toml"
    path.write_text('[campaign]\nworkers = 8\n[campaign.executor]\nkind = "threads"\naddress = "ray://head:10001"\n'
                    'gateway_port = 7711\n')
    config = load_config(path, {"executor": {"kind": "ray"}})
    assert (config.executor.kind, config.executor.address, config.executor.gateway_port) == (
        "ray", "ray://head:10001", 7711)
    assert load_config(path, {}).executor.kind == "threads"


def test_an_unknown_executor_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(UsageError, match="executor"):
        load_config(None, {"executor": {"kind": "dask"}})
    path = tmp_path / "campaign.toml"
    path.write_text('[campaign.executor]\nkind = "ray"\nnodes = 3\n')
    with pytest.raises(UsageError, match="nodes"):
        load_config(path, {})


def test_run_and_resume_explain_the_executor_options():
    for command in ("run", "resume"):
        out = run_dgm([command, "--help"]).stdout
        assert "--executor" in out and "--ray-address" in out and "dgm_sandbox" in out, command
