"""A content-addressed on-disk cache for detections, landmarks and embeddings.

Keys are sha256 digests of everything that changes a result (image bytes, detector, encoder spec,
weight-file hash, alignment), so a stale entry can never be read back and an interrupted run
resumes where it stopped. Writes are atomic (temporary file + rename).

Location: ``$IDBENCH_HOME/cache`` unless a root is given; ``Cache(enabled=False)`` disables it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .weights import idbench_home


def content_key(*parts: Any) -> str:
    """sha256 of a JSON rendering of ``parts`` (dataclasses should be passed as dicts)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def bytes_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Cache:
    def __init__(self, root: Optional[os.PathLike] = None, enabled: bool = True):
        self.root = Path(root) if root is not None else idbench_home() / "cache"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{ext}"

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_json(self, kind: str, key: str) -> Optional[Any]:
        if not self.enabled:
            return None
        p = self._path(kind, key, ".json")
        try:
            value = json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            self._write(self._path(kind, key, ".json"), json.dumps(value).encode())

    def get_array(self, kind: str, key: str) -> Optional[np.ndarray]:
        if not self.enabled:
            return None
        p = self._path(kind, key, ".npy")
        try:
            value = np.load(p, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_array(self, kind: str, key: str, value: np.ndarray) -> None:
        if self.enabled:
            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            self._write(self._path(kind, key, ".npy"), buf.getvalue())
