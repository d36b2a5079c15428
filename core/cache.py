"""A content-addressed on-disk cache for detections, landmarks and embeddings.

Keys are sha256 digests of everything that changes a result (image bytes, detector, encoder spec,
weight-file hash, alignment), so a stale entry can never be read back and an interrupted run
resumes where it stopped. Writes are atomic (temporary file + rename) and the files get the
permissions the umask allows (a cache shared by a lab's users stays readable by all of them). An
entry that cannot be parsed (random bytes, truncated) is a miss and is rewritten by the next put; a
storage failure (disk full, read-only, permissions) is one :class:`StorageError` line naming the path.

Location: ``$IDBENCH_HOME/cache`` unless a root is given; ``Cache(enabled=False)`` disables it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import storage_error
from .weights import idbench_home


def content_key(*parts: Any) -> str:
    """sha256 of a JSON rendering of ``parts`` (dataclasses should be passed as dicts)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def bytes_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# one atomic writer for the cache and every output (temporary file, fsync, rename; umask permissions)
from .atomic import atomic_write as write_atomic, umask as _umask  # noqa: E402,F401


class Cache:
    def __new__(cls, root: Optional[os.PathLike] = None, enabled: bool = True, read_only: bool = False,
                _plain: bool = False):
        # the one-database layout where it is chosen (idbench.packed_cache: IDBENCH_CACHE_LAYOUT=sqlite)
        if cls is Cache and enabled and not _plain:
            from .packed_cache import PackedCache, wants_packed

            if wants_packed(root):
                return super().__new__(PackedCache)
        return super().__new__(cls)

    def __getnewargs_ex__(self):  # unpickled (in a worker) as the class it was, whatever the environment
        return (), {"_plain": True}

    def __init__(self, root: Optional[os.PathLike] = None, enabled: bool = True, read_only: bool = False,
                 _plain: bool = False):
        self.root = Path(root) if root is not None else idbench_home() / "cache"
        self.enabled = enabled
        self.read_only = read_only  # a warm cache on a read-only mount: read, never written
        self.hits = 0
        self.misses = 0
        self.corrupt = 0  # entries that existed but could not be parsed (treated as misses)

    def _path(self, kind: str, key: str, ext: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{ext}"

    def _write(self, path: Path, data: bytes) -> None:
        if not self.read_only:
            write_atomic(path, data)

    def _miss(self, path: Path, exists: bool) -> None:
        self.misses += 1
        if exists:  # unreadable entry: counted, and overwritten by the caller's next put
            self.corrupt += 1

    def get_json(self, kind: str, key: str) -> Optional[Any]:
        if not self.enabled:
            return None
        p = self._path(kind, key, ".json")
        try:
            value = json.loads(p.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            self._miss(p, False)
            return None
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self._miss(p, True)
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
        except FileNotFoundError:
            self._miss(p, False)
            return None
        except (OSError, ValueError, EOFError):  # random bytes, truncated file, pickled object
            self._miss(p, True)
            return None
        self.hits += 1
        return value

    def put_array(self, kind: str, key: str, value: np.ndarray) -> None:
        if self.enabled:
            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            self._write(self._path(kind, key, ".npy"), buf.getvalue())
