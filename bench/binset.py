"""insightface's verification ``.bin`` sets (LFW, CFP-FP, AgeDB-30, ...), read without trusting the pickle.

A ``.bin`` file is a pickle of ``(bins, issame)``: ``bins`` the 2P encoded aligned crops (JPEG / PNG bytes; pair
``k`` is images ``2k`` and ``2k+1``), ``issame`` P booleans (insightface ``recognition/_tools_/lfw2pack.py``;
read there with ``pickle.load(f, encoding='bytes')``, which turns Python 2 ``str`` into ``bytes``).

A pickle can run any code while it loads, so :func:`load_bin` uses an unpickler that builds only bytes,
bytearrays, lists, tuples, booleans, bytes as a protocol-2 pickle of Python 3 writes them (``_codecs.encode``
of a str to latin-1 only) and numpy booleans (``numpy.bool_`` scalars, which some packing scripts
write into ``issame``; the only numpy global accepted is the scalar of dtype ``bool``); any other global is
refused with one line. The 10-fold accuracy is insightface's: ``KFold(10, shuffle=False)`` over the pairs,
i.e. 10 consecutive blocks (:func:`bin_folds`).
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from idbench.errors import InputError


class _NumpyBoolDtype:
    """Stands in for ``numpy.dtype('b1')`` while a ``numpy.bool_`` scalar is rebuilt (its state is ignored)."""

    def __setstate__(self, state) -> None:
        pass


def _np_dtype(name, *_):
    if name not in ("b1", b"b1", "bool", b"bool"):
        raise pickle.UnpicklingError(f"numpy dtype {name!r} (only bool is accepted)")
    return _NumpyBoolDtype()


def _np_scalar(dtype, data=b"\x00"):
    if not isinstance(dtype, _NumpyBoolDtype) or not isinstance(data, (bytes, str)) or len(data) != 1:
        raise pickle.UnpicklingError("numpy scalar other than a bool")
    return bool(data[0] if isinstance(data, bytes) else ord(data))


def _latin1(text, encoding="latin1"):
    """``_codecs.encode``: how a protocol-2 pickle written by Python 3 stores bytes (only str -> latin-1 bytes)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


_ALLOWED = {("_codecs", "encode"): _latin1, ("numpy", "dtype"): _np_dtype, ("numpy.core.multiarray", "scalar"): _np_scalar,
            ("numpy._core.multiarray", "scalar"): _np_scalar}
_TYPES = (bytes, bytearray, list, tuple, bool)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"global {module}.{name}")


@dataclass
class BinSet:
    """A verification set: encoded images, and P pairs (``2k``, ``2k+1``) with their ``issame`` flags."""

    path: Path
    images: List[bytes]
    issame: np.ndarray  # P bool

    @property
    def pairs(self) -> np.ndarray:
        """P x 2 image indices."""
        return np.arange(2 * len(self.issame)).reshape(-1, 2)

    def decode(self, i: int) -> np.ndarray:
        """RGB uint8 of image ``i``."""
        from .training.sources import decode_image

        return decode_image(self.images[i], f"{self.path} image {i}")


def _check(obj, path) -> BinSet:
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise InputError(f"{path}: not an insightface .bin set (expected a pickled (images, issame) pair)")
    bins, issame = obj
    if not isinstance(bins, (list, tuple)) or not all(isinstance(b, (bytes, bytearray)) for b in bins):
        raise InputError(f"{path}: the images must be a list of encoded image bytes")
    if not isinstance(issame, (list, tuple)) or not all(isinstance(s, bool) for s in issame):
        raise InputError(f"{path}: issame must be a list of booleans")
    if len(bins) != 2 * len(issame) or not issame:
        raise InputError(f"{path}: {len(bins)} images for {len(issame)} pairs (expected two images per pair)")
    return BinSet(Path(path), [bytes(b) for b in bins], np.asarray(issame, bool))


def load_bin(path: os.PathLike) -> BinSet:
    """Read a ``.bin`` set safely (see the module docstring); refuses anything else with an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: .bin verification set not found")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise InputError(f"{path}: refused: the pickle holds {e}; a .bin set holds only image bytes and "
                         f"booleans") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise InputError(f"{path}: not a readable .bin set ({type(e).__name__}: {e})") from None
    if not isinstance(obj, _TYPES):
        raise InputError(f"{path}: not an insightface .bin set")
    return _check(obj, path)


def bin_folds(n_pairs: int, folds: int = 10) -> np.ndarray:
    """insightface's folds: ``sklearn.model_selection.KFold(folds, shuffle=False)``, consecutive blocks whose
    first ``n % folds`` are one pair larger."""
    fid = np.empty(n_pairs, np.int64)
    for k, block in enumerate(np.array_split(np.arange(n_pairs), folds)):
        fid[block] = k
    return fid
