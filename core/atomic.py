"""Atomic, owned outputs: every output file is written whole or not at all, one run owns one ``--out``.

:func:`atomic_write` writes to a temporary name in the same folder, flushes and ``fsync``s it, then
``os.replace``s it over the target: a full disk, a crash or an error mid-write leaves the old file as it
was, and the one-line :class:`~idbench.errors.StorageError` names the file. :func:`out_lock` takes an
exclusive lock file in an output folder so a second concurrent run into it fails with one line instead of
mixing its files with the first run's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Union

from .errors import IdbenchError, storage_error

__all__ = ["atomic_file", "atomic_write", "out_lock", "OutputLockedError", "LOCK_NAME"]

LOCK_NAME = ".idbench.lock"


class OutputLockedError(IdbenchError):
    """Another process is writing into the same output folder."""


def umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask would race threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextlib.contextmanager
def atomic_file(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """A temporary path in ``path``'s folder, with its extension, for a writer that needs a file name
    (``torch.save``, an ONNX exporter, ``np.save``: the last two want the extension); when the block ends
    without error it is fsync'ed and ``os.replace``d over ``path``, else removed. Mode 0666 & ~umask, like
    ``open``. Any OSError is one :class:`~idbench.errors.StorageError` line naming ``path``; the previous file stays."""
    path = Path(path)
    tmp: Optional[str] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise storage_error(path, e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes]) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` whole or not at all (:func:`atomic_file`): a full
    disk, a crash or an error mid-write leaves the previous file as it was and no temporary file behind. Text
    is always valid UTF-8: an undecodable byte of a file name that reached it unescaped is written as
    ``\\udcNN``."""
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(raw)


@contextlib.contextmanager
def out_lock(folder: Union[str, os.PathLike]) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (``folder/.idbench.lock``, ``flock``: released when the process
    ends, even if killed); a second holder gets :class:`OutputLockedError` at once."""
    import fcntl

    folder = Path(folder)
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise storage_error(lock, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise OutputLockedError(f"{folder} is in use by another run (pid {owner}); wait for it to finish or "
                                    f"choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock
    finally:
        os.close(fd)  # closing releases the flock
