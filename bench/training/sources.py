"""Training data sources behind one interface: prepared folders, insightface RecordIO, folders of aligned crops.

A source is a list of rows, each an aligned RGB crop with an identity name:

* ``identities`` (list of N names), ``__len__``;
* ``read(i)`` -> (RGB uint8 crop, float32 0/1 validity map or ``None`` when the whole crop is valid),
  ``image(i)``, ``images(rows)``;
* ``landmarks``: N x 68 x 2 float32 in crop coordinates (what the BlendFace augmentation and its partner search
  use); memory-mapped from the cache of :mod:`.landmarks` for RecordIO and aligned folders;
* ``subset(identities)``: the rows of some identities (``train_identities.txt``).

Kinds (``--data``, detected from the folder, or forced with a ``KIND:`` prefix):

* ``prepared:DIR``: written by ``bench prepare`` (``DIR/<alignment>/index.csv``; :class:`..prepare.PreparedSet`);
* ``rec:DIR`` (or a ``.rec`` file): insightface's ``train.rec`` + ``train.idx`` (MS1MV2/3, Glint360K, WebFace);
* ``aligned:DIR``: one sub-folder of already aligned crops (112x112 ArcFace crops) per identity.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from idbench.errors import ImageReadError, InputError

from .recordio import IndexedRecordIO

KINDS = ("prepared", "rec", "aligned")


def decode_image(data: bytes, what: object) -> np.ndarray:
    """RGB uint8 of encoded JPEG / PNG bytes."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"{what}: cannot decode the image")
    return np.ascontiguousarray(img[:, :, ::-1])


class TrainSource:
    """Shared behaviour of the sources; subclasses give ``identities``, ``__len__``, ``read_rgb`` and ``fingerprint``."""

    kind = ""
    identities: List[str]

    def __len__(self) -> int:
        return len(self.identities)

    def read_rgb(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def read(self, i: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        return self.read_rgb(i), None  # an aligned crop is valid everywhere

    def image(self, i: int) -> np.ndarray:
        return self.read(i)[0]

    def images(self, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        rows = range(len(self)) if rows is None else rows
        return np.stack([self.image(i) for i in rows]) if len(rows) else np.zeros((0, 1, 1, 3), np.uint8)

    def cache_path(self) -> Path:
        """Where this source's landmarks / partners cache lives (next to the data)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hash of the content's listing (the landmarks cache is valid for this fingerprint only)."""
        raise NotImplementedError

    @property
    def landmarks(self) -> np.ndarray:
        from .landmarks import load_landmarks

        if getattr(self, "_landmarks", None) is None:
            self._landmarks = load_landmarks(self)
        return self._landmarks

    def subset(self, identities: Sequence[str]) -> "TrainSource":
        keep = set(identities)
        return SourceView(self, [i for i, n in enumerate(self.identities) if n in keep])

    def __getstate__(self):  # workers re-map the landmarks file themselves
        return {**self.__dict__, "_landmarks": None}


class _Rows:
    """Rows of a (memory-mapped) array, read one at a time (``np.asarray`` reads them all)."""

    def __init__(self, array, rows: np.ndarray):
        self.array, self.rows = array, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.array[self.rows[i]]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.array[self.rows])
        return out if dtype is None else out.astype(dtype)


class SourceView(TrainSource):
    """Some rows of another source (its landmarks cache is the parent's)."""

    def __init__(self, parent: TrainSource, rows: Sequence[int]):
        self.parent, self.rows = parent, np.asarray(rows, np.int64)
        self.kind = parent.kind
        self.identities = [parent.identities[i] for i in self.rows]

    def read(self, i: int):
        return self.parent.read(int(self.rows[i]))

    def read_rgb(self, i: int) -> np.ndarray:
        return self.parent.read_rgb(int(self.rows[i]))

    @property
    def landmarks(self) -> "_Rows":
        return _Rows(self.parent.landmarks, self.rows)

    def cache_path(self) -> Path:
        return self.parent.cache_path()

    def fingerprint(self) -> str:
        return self.parent.fingerprint()


class RecordIOSource(TrainSource):
    """insightface's ``train.rec`` / ``train.idx``: identities named by their integer label."""

    kind = "rec"

    def __init__(self, rec_path: os.PathLike):
        rec_path = Path(rec_path)
        self.rec = IndexedRecordIO(rec_path, rec_path.with_suffix(".idx"))
        self.keys, labels = self._rows()
        self.identities = [str(int(v)) for v in labels]

    def _rows(self) -> Tuple[np.ndarray, np.ndarray]:
        """(image record keys, their labels): from record 0's identity ranges when present, else every header."""
        flag, label, _, _, _ = self.rec.read_header(0) if 0 in self.rec else (0, 0.0, 0, 0, b"")
        if flag > 0:
            first_id, end_id = int(label[0]), int(label[1])
            keys, labels = [], []
            for ident, key in enumerate(range(first_id, end_id)):
                _, rng, _, _, _ = self.rec.read_header(key)
                r = np.atleast_1d(rng)
                keys += range(int(r[0]), int(r[1]))
                labels += [ident] * (int(r[1]) - int(r[0]))
            return np.asarray(keys, np.int64), np.asarray(labels, np.int64)
        keys = np.asarray(sorted(self.rec.offsets), np.int64)
        labels = []
        for k in keys:
            lab = self.rec.read_header(int(k))[1]
            labels.append(int(np.atleast_1d(lab)[0]))
        return keys, np.asarray(labels, np.int64)

    def read_rgb(self, i: int) -> np.ndarray:
        key = int(self.keys[i])
        return decode_image(self.rec.read_header(key)[4], f"{self.rec.rec_path} record {key}")

    def cache_path(self) -> Path:
        return self.rec.rec_path.with_name(self.rec.rec_path.stem + ".idbench")

    def fingerprint(self) -> str:
        """The ``.idx`` file, the ``.rec`` size and 16 evenly spaced 64 KiB blocks of it (hashing all of a
        100 GB ``train.rec`` at every start is not practical)."""
        h = hashlib.sha256(self.rec.idx_path.read_bytes())
        size = self.rec.rec_path.stat().st_size
        h.update(str(size).encode())
        with open(self.rec.rec_path, "rb") as f:
            for k in range(16):
                f.seek(k * max(0, size - 65536) // 15)
                h.update(f.read(65536))
        return h.hexdigest()


class AlignedFolderSource(TrainSource):
    """One sub-folder of already aligned crops per identity (no detection: the crops are used as they are)."""

    kind = "aligned"

    def __init__(self, root: os.PathLike):
        from idbench.imageio import scan_identity_folders

        self.root = Path(root)
        by_id, self.ignored = scan_identity_folders(self.root)
        self.files = [f for name in sorted(by_id) for f in by_id[name]]
        self.identities = [name for name in sorted(by_id) for _ in by_id[name]]
        if not self.files:
            raise InputError(f"no images in identity sub-folders of {self.root}")

    def read_rgb(self, i: int) -> np.ndarray:
        return decode_image(self.files[i].read_bytes(), self.files[i])

    def cache_path(self) -> Path:
        return self.root.with_name(self.root.name + ".idbench")

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.relative_to(self.root).as_posix()}\t{f.stat().st_size}\n".encode())
        return h.hexdigest()


def source_kind(data: str) -> Tuple[str, Path]:
    """(kind, path) of a ``--data`` value: an explicit ``KIND:PATH``, else found from what the folder holds."""
    head, sep, rest = data.partition(":")
    if sep and head in KINDS:
        return head, Path(rest)
    p = Path(data)
    if p.suffix == ".rec" or (p / "train.rec").is_file():
        return "rec", p
    if any(p.glob("*/index.csv")):
        return "prepared", p
    if p.is_dir():
        return "aligned", p
    raise InputError(f"--data {data}: not found (a bench prepare folder, a folder with train.rec/train.idx, "
                     f"or a folder of aligned crops per identity)")


def open_source(data: str, alignment: str, identities: Optional[Sequence[str]] = None):
    """The training rows of ``--data`` (see the module docstring), optionally only some identities."""
    from ..prepare import load_prepared

    kind, path = source_kind(data)
    if kind == "prepared":
        return load_prepared(path, alignment, identities)
    if alignment != "arcface112":
        raise InputError(f"--data {data}: {kind} sources hold 112x112 ArcFace crops; this architecture takes "
                         f"{alignment} crops")
    src: TrainSource = (RecordIOSource(path if path.suffix == ".rec" else path / "train.rec") if kind == "rec"
                        else AlignedFolderSource(path))
    return src.subset(identities) if identities is not None else src
