"""The cache in one SQLite file (``<root>/cache.sqlite``) instead of one file per entry.

At VGGFace2 scale (3.3M images, about 11 entries each) the file-per-entry layout of
:class:`idbench.cache.Cache` needs ~36M files, more than a typical disk's inodes. This layout keeps
every entry as a row ``(kind, key) -> bytes`` of one table, in WAL mode so that the detection workers
and ``torchrun`` ranks read while one of them writes (SQLite serialises the writers; a busy database
is waited for, up to ``BUSY_TIMEOUT_MS``). Values are the same bytes the files hold (JSON text,
``.npy``), so an unparsable row is a miss that the next put rewrites, as for a corrupt file.

Chosen with ``IDBENCH_CACHE_LAYOUT=sqlite``, where the root already holds ``cache.sqlite``, and by
``bench run`` / ``bench embed`` for a run over more than ``PACK_ABOVE_IMAGES`` images (:func:`for_images`;
``IDBENCH_CACHE_LAYOUT=files`` keeps the per-file layout). Migration: an entry missing from the database is
looked up in the old per-file layout under the same root and copied in, so a warm old cache stays warm.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .cache import Cache
from .errors import storage_error

DB_NAME = "cache.sqlite"
BUSY_TIMEOUT_MS = 120_000


PACK_ABOVE_IMAGES = 100_000  # a run over more images keeps its cache in one database (~11 entries per image)
HINT_ABOVE_IMAGES = PACK_ABOVE_IMAGES  # a library caller's per-file cache over more images gets a one-line hint


def layout_hint(cache: Cache, n_images: int) -> Optional[str]:
    """The one-line hint for a run over ``n_images`` that would fill the per-file layout (None: no hint)."""
    if not cache.enabled or cache.read_only or isinstance(cache, PackedCache) or n_images <= HINT_ABOVE_IMAGES:
        return None
    return (f"hint: {n_images:,} images with the per-file cache layout (~11 files per image under {cache.root}); "
            f"set IDBENCH_CACHE_LAYOUT=sqlite to keep the cache in one database file (see docs/pipeline.md)")


def _layout_env() -> str:
    return os.environ.get("IDBENCH_CACHE_LAYOUT", "").strip().lower()


def wants_packed(root: Optional[os.PathLike]) -> bool:
    """Whether a cache at ``root`` uses this layout (see the module docstring)."""
    from .weights import idbench_home

    r = Path(root) if root is not None else idbench_home() / "cache"
    return _layout_env() == "sqlite" or (r / DB_NAME).is_file()


def for_images(cache: Cache, n_images: int) -> Cache:
    """The cache a run over ``n_images`` uses: ``cache`` itself, or, above ``PACK_ABOVE_IMAGES`` images with a
    writable per-file cache, the same root in this layout (said in one line on stderr; it holds the database
    from then on, so later runs there use it too). ``IDBENCH_CACHE_LAYOUT=files`` keeps the per-file layout."""
    if (not cache.enabled or cache.read_only or isinstance(cache, PackedCache) or n_images <= PACK_ABOVE_IMAGES
            or _layout_env() == "files"):
        return cache
    import sys

    print(f"cache: {n_images:,} images: entries kept in one SQLite database, {cache.root / DB_NAME} "
          f"(IDBENCH_CACHE_LAYOUT=files keeps one file per entry)", file=sys.stderr)
    return PackedCache(cache.root, cache.enabled, cache.read_only)


class PackedCache(Cache):
    """:class:`~idbench.cache.Cache` with its entries in one SQLite database (same API, same counters)."""

    def __init__(self, root: Optional[os.PathLike] = None, enabled: bool = True, read_only: bool = False,
                 _plain: bool = False):
        super().__init__(root, enabled, read_only)
        self._conn: Optional[sqlite3.Connection] = None
        self._pid = -1

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def __getstate__(self) -> dict:  # sent to worker processes: each opens its own connection
        state = dict(self.__dict__)
        state["_conn"], state["_pid"] = None, -1
        return state

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # a forked child must not share the parent's
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
                conn.execute("CREATE TABLE IF NOT EXISTS entries (kind TEXT NOT NULL, key TEXT NOT NULL, "
                             "value BLOB NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID")
            except sqlite3.Error as e:
                raise storage_error(self.db_path, OSError(None, str(e)), "open") from None
            except OSError as e:
                raise storage_error(self.db_path, e, "open") from None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _get(self, kind: str, key: str) -> Optional[bytes]:
        try:
            row = self._db().execute("SELECT value FROM entries WHERE kind=? AND key=?", (kind, key)).fetchone()
        except sqlite3.Error as e:
            raise storage_error(self.db_path, OSError(None, str(e)), "read") from None
        return None if row is None else bytes(row[0])

    def _put(self, kind: str, key: str, value: bytes) -> None:
        if self.read_only:  # a warm cache on a read-only mount: read, never written
            return
        try:
            self._db().execute("INSERT OR REPLACE INTO entries (kind, key, value) VALUES (?, ?, ?)",
                               (kind, key, sqlite3.Binary(value)))
        except sqlite3.Error as e:
            raise storage_error(self.db_path, OSError(None, str(e))) from None

    def _lookup(self, kind: str, key: str, parse, old_get):
        """Parsed value of (kind, key); falls back to the old per-file entry (copied in) when absent."""
        if not self.enabled:
            return None
        raw = self._get(kind, key)
        if raw is None:
            value = old_get(kind, key)  # counts the hit or the miss
            if value is not None:
                self._store(kind, key, value)
            return value
        try:
            value = parse(raw)
        except (ValueError, OSError, EOFError):  # an unparsable row: a miss, rewritten by the next put
            self.misses += 1
            self.corrupt += 1
            return None
        self.hits += 1
        return value

    def _store(self, kind: str, key: str, value: Any) -> None:
        if isinstance(value, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            self._put(kind, key, buf.getvalue())
        else:
            self._put(kind, key, json.dumps(value).encode())

    def get_json(self, kind: str, key: str) -> Optional[Any]:
        return self._lookup(kind, key, lambda b: json.loads(b.decode("utf-8")), super().get_json)

    def put_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            self._put(kind, key, json.dumps(value).encode())

    def get_array(self, kind: str, key: str) -> Optional[np.ndarray]:
        return self._lookup(kind, key, lambda b: np.load(io.BytesIO(b), allow_pickle=False), super().get_array)

    def put_array(self, kind: str, key: str, value: np.ndarray) -> None:
        if self.enabled:
            self._store(kind, key, np.asarray(value))
