"""Content-addressed blobs: logs, trajectories, LLM transcripts.

An artifact's id is the sha256 of its raw bytes, so storing the same content
twice is free and ids are reproducible across runs. Each blob lives at
`<root>/<id[:2]>/<id[2:]>` as one header line (kind, size, codec) followed by
the zstd-compressed bytes. Writes go to a temporary file in the same directory
and are renamed into place, so a crash never leaves a half-written artifact
under its final name, and concurrent writers of the same content are harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from dgm.errors import DgmError, NotFound

_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_ZSTD_LEVEL = 6  # logs shrink ~10x already; higher levels mostly cost CPU


def canonical_json(obj: Any) -> bytes:
    """The one byte encoding of a JSON value used for hashing: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class ArtifactInfo:
    id: str
    kind: str
    size: int
    """Uncompressed size in bytes."""
    codec: str


class ArtifactStore:
    """Blobs by sha256 under one directory; safe for many threads and processes."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes | str, kind: str = "blob") -> str:
        """Store `data` (str is UTF-8 encoded); returns its id. Idempotent."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        artifact_id = hashlib.sha256(raw).hexdigest()
        path = self._path(artifact_id)
        if path.exists():
            return artifact_id
        header = json.dumps({"kind": kind, "size": len(raw), "codec": "zstd"}, sort_keys=True).encode() + b"\n"
        body = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(raw)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + body)
                f.flush()
                os.fsync(f.fileno())  # the row that references it may commit right after
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return artifact_id

    def put_json(self, obj: Any, kind: str = "json") -> str:
        return self.put(canonical_json(obj), kind)

    def get(self, artifact_id: str) -> bytes:
        info, body = self._read(artifact_id)
        raw = zstandard.ZstdDecompressor().decompress(body, max_output_size=info.size)
        if hashlib.sha256(raw).hexdigest() != artifact_id:
            raise DgmError(f"artifact {artifact_id} is corrupt (content does not match its id): {self._path(artifact_id)}")
        return raw

    def get_text(self, artifact_id: str) -> str:
        return self.get(artifact_id).decode("utf-8", errors="replace")

    def get_json(self, artifact_id: str) -> Any:
        return json.loads(self.get(artifact_id))

    def info(self, artifact_id: str) -> ArtifactInfo:
        return self._read(artifact_id)[0]

    def exists(self, artifact_id: str) -> bool:
        return bool(_ID_RE.match(artifact_id or "")) and self._path(artifact_id).exists()

    def _path(self, artifact_id: str) -> Path:
        return self.root / artifact_id[:2] / artifact_id[2:]

    def _read(self, artifact_id: str) -> tuple[ArtifactInfo, bytes]:
        if not isinstance(artifact_id, str) or not _ID_RE.match(artifact_id):
            raise NotFound(f"not an artifact id (want 64 lowercase hex digits): {artifact_id!r}")
        try:
            blob = self._path(artifact_id).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no artifact {artifact_id} in {self.root}") from None
        header, _, body = blob.partition(b"\n")
        try:
            meta = json.loads(header)
            info = ArtifactInfo(artifact_id, meta["kind"], int(meta["size"]), meta["codec"])
        except (ValueError, KeyError, TypeError):
            raise DgmError(f"artifact {artifact_id} has a corrupt header: {self._path(artifact_id)}") from None
        if info.codec != "zstd":
            raise DgmError(f"artifact {artifact_id} uses unknown codec {info.codec!r}")
        return info, body
