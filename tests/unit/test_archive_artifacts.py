"""ArtifactStore: content addressing, compression, atomicity, errors."""

from __future__ import annotations

import hashlib
import threading

import pytest

from dgm.archive.artifacts import ArtifactStore, canonical_json
from dgm.errors import DgmError, NotFound


def test_round_trip_and_content_addressing(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"line\n" * 10_000
    aid = store.put(data, kind="agent_log")
    assert aid == hashlib.sha256(data).hexdigest()
    assert store.get(aid) == data and store.exists(aid)
    path = tmp_path / "artifacts" / aid[:2] / aid[2:]
    assert path.stat().st_size < len(data) // 20  # stored compressed
    info = store.info(aid)
    assert (info.kind, info.size, info.codec) == ("agent_log", len(data), "zstd")
    assert store.get(store.put(b"")) == b""


def test_text_and_json(tmp_path):
    store = ArtifactStore(tmp_path)
    tid = store.put("héllo ✓")
    assert tid == hashlib.sha256("héllo ✓".encode()).hexdigest()
    assert store.get_text(tid) == "héllo ✓"
    obj = {"b": [1, 2.5, None], "a": {"z": "ü"}}
    jid = store.put_json(obj)
    assert store.get_json(jid) == obj and store.info(jid).kind == "json"
    assert jid == store.put_json({"a": {"z": "ü"}, "b": [1, 2.5, None]})  # key order does not matter
    assert canonical_json(obj) == b'{"a":{"z":"\xc3\xbc"},"b":[1,2.5,null]}'


def test_put_is_idempotent_and_leaves_no_temp_files(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.put(b"same", kind="a")
    mtime = (tmp_path / first[:2] / first[2:]).stat().st_mtime_ns
    assert store.put(b"same", kind="b") == first
    assert (tmp_path / first[:2] / first[2:]).stat().st_mtime_ns == mtime
    assert store.info(first).kind == "a"  # the first writer's label stays
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


def test_concurrent_puts_of_the_same_content(tmp_path):
    store = ArtifactStore(tmp_path)
    data = b"x" * 1_000_000
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(store.put(data))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and store.get(ids[0]) == data
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []


def test_bad_unknown_and_corrupt_ids(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(NotFound, match="not an artifact id"):
        store.get("../../etc/passwd")
    with pytest.raises(NotFound, match="no artifact"):
        store.get("0" * 64)
    assert not store.exists("0" * 64) and not store.exists("xyz")
    aid = store.put(b"precious")
    path = tmp_path / aid[:2] / aid[2:]
    header, _, _ = path.read_bytes().partition(b"\n")
    path.write_bytes(header + b"\n" + __import__("zstandard").ZstdCompressor().compress(b"tampered"))
    with pytest.raises(DgmError, match="corrupt"):
        store.get(aid)
