"""Error types. Every message is one line that says what went wrong and what to do."""

from __future__ import annotations

import difflib
import errno
from typing import Iterable


class IdbenchError(Exception):
    """Base class of every idbench error."""


class UnknownNameError(IdbenchError, KeyError):
    """A registry lookup failed; the message suggests close matches."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} '{name}'.{hint} Known: {', '.join(known) or '(none)'}")
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class WeightsNotFoundError(IdbenchError, FileNotFoundError):
    """A model's weight file is in none of the places idbench looks."""


class WeightsFormatError(IdbenchError, ValueError):
    """A weight file exists but is truncated, corrupt or for another architecture."""


class ContractError(IdbenchError, ValueError):
    """An encoder contract (TOML file or spec) is incomplete, or contradicts the model it describes."""


class ImageReadError(IdbenchError, ValueError):
    """A file could not be decoded as an image."""


class NoFaceError(IdbenchError, ValueError):
    """No face was found where one was required."""


class InputError(IdbenchError, ValueError):
    """Bad input to a function (shape, dtype, value)."""


class StorageError(IdbenchError, OSError):
    """A cache or output file could not be written or read (disk full, read-only, permissions)."""


_CAUSES = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.EDQUOT: "disk quota exceeded", errno.ENOENT: "no such folder",
           errno.ENOTDIR: "a parent is a file, not a folder", errno.EISDIR: "is a folder",
           errno.ENAMETOOLONG: "file name too long"}


def storage_error(path, err: OSError, action: str = "write") -> StorageError:
    """One line naming the path and the cause, e.g. ``cannot write /x/y: disk full (errno 28)``."""
    cause = _CAUSES.get(err.errno or -1, err.strerror or str(err))
    return StorageError(f"cannot {action} {path}: {cause}" + (f" (errno {err.errno})" if err.errno else ""))


def dropped(stage: str, item, reason: str) -> dict:
    """One row of a run's listing of what was dropped or chosen: ``{stage, item, reason}``.

    Stages used: ``list`` (a file under a dataset root that is not used), ``decode`` (EXIF
    orientation applied), ``face-policy`` (small faces dropped, one face of several chosen).
    """
    return {"stage": stage, "item": str(item), "reason": reason}
