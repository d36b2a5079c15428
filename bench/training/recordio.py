"""A reader of MXNet's indexed RecordIO (``train.rec`` + ``train.idx``), the format insightface's datasets ship in.

No MXNet dependency: the format is small and documented (dmlc-core ``include/dmlc/recordio.h``, MXNet
``python/mxnet/recordio.py``):

* a record on disk is ``uint32 magic (0xced7230a)``, ``uint32 lrecord``, the payload, zero padding to 4 bytes;
  ``lrecord`` holds the payload length in its low 29 bits and a continuation flag ``cflag`` in the top 3:
  0 a whole record, 1 / 2 / 3 the first / a middle / the last part of a record the writer split where the magic
  number occurred (4-byte aligned) in the payload; the reader joins the parts with the magic number between them;
* ``train.idx``: one ``key<TAB>byte offset`` line per record;
* a payload is an image record: the header ``struct 'IfQQ'`` (flag, label, id, id2; 24 bytes), then, when
  ``flag > 0``, ``flag`` float32 labels (which replace ``label``), then the encoded image (JPEG / PNG).

insightface's convention (``recognition/arcface_torch/dataset.py``): record 0's labels ``(a, b)`` say that images
are records ``1 .. a-1`` and records ``a .. b-1`` hold one identity each, whose labels are the image range
``[start, end)`` of that identity; without them (``flag == 0``) every record is an image labelled by its header.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from idbench.errors import InputError

MAGIC = 0xCED7230A
HEADER = struct.Struct("IfQQ")  # flag, label, id, id2 (native alignment: 24 bytes, as MXNet packs it)
_LEN_MASK = (1 << 29) - 1

Label = Union[float, np.ndarray]


def read_index(idx_path: os.PathLike) -> Dict[int, int]:
    """``train.idx``: record key -> byte offset in ``train.rec``."""
    out: Dict[int, int] = {}
    with open(idx_path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise InputError(f"{idx_path}:{n}: expected 'key<TAB>offset', got {line.strip()[:60]!r}")
            out[int(parts[0])] = int(parts[1])
    return out


def read_record(f, offset: int, path: object = "") -> bytes:
    """The payload of the record at byte ``offset`` of the open binary file ``f`` (split parts joined)."""
    f.seek(offset)
    parts: List[bytes] = []
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise InputError(f"{path}: truncated record at byte {offset}")
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise InputError(f"{path}: no RecordIO record at byte {offset} (magic {magic:#x}); wrong .idx file?")
        cflag, length = lrec >> 29, lrec & _LEN_MASK
        data = f.read(length)
        if len(data) < length:
            raise InputError(f"{path}: truncated record at byte {offset}")
        f.read((4 - length % 4) % 4)  # padding
        parts.append(data)
        if cflag in (0, 3):
            break
    return struct.pack("<I", MAGIC).join(parts)


def unpack(payload: bytes) -> Tuple[int, Label, int, int, bytes]:
    """(flag, label, id, id2, image bytes) of an image record (label: a float, or ``flag`` float32 labels)."""
    if len(payload) < HEADER.size:
        raise InputError(f"record of {len(payload)} bytes is shorter than the {HEADER.size}-byte header")
    flag, label, id1, id2 = HEADER.unpack_from(payload)
    body = payload[HEADER.size:]
    if flag > 0:
        label = np.frombuffer(body, np.float32, flag).copy()
        body = body[4 * flag:]
    return flag, label, id1, id2, body


class IndexedRecordIO:
    """Random access to the records of ``train.rec`` through ``train.idx``.

    The file is opened lazily by each process (a data-loader worker or DDP rank re-opens it after fork or
    spawn), so one instance can be pickled into workers: it carries only paths and the index.
    """

    def __init__(self, rec_path: os.PathLike, idx_path: os.PathLike):
        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path)
        for p in (self.rec_path, self.idx_path):
            if not p.is_file():
                raise InputError(f"{p} not found (insightface RecordIO needs train.rec and train.idx)")
        self.offsets = read_index(self.idx_path)
        self._f = None
        self._pid = None

    def __getstate__(self):
        return {**self.__dict__, "_f": None, "_pid": None}

    def _file(self):
        if self._f is None or self._pid != os.getpid():
            self._f, self._pid = open(self.rec_path, "rb"), os.getpid()
        return self._f

    def __contains__(self, key: int) -> bool:
        return key in self.offsets

    def read(self, key: int) -> bytes:
        if key not in self.offsets:
            raise InputError(f"{self.idx_path}: no record {key}")
        return read_record(self._file(), self.offsets[key], self.rec_path)

    def read_header(self, key: int) -> Tuple[int, Label, int, int, bytes]:
        return unpack(self.read(key))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
