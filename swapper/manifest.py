"""The one swap manifest: written by ``bench swap`` (every swapper), read by ``results:DIR``.

``manifest.csv``, one row per swap (failures included)::

    source_path,target_path,source_identity,target_identity,identity_label,output_path,mask_path,
    landmark_distance,status,reason,frame

* ``output_path``: the swapped image (or video), relative to the manifest's folder or absolute;
* ``target_path`` / ``source_path``: the exact images the swap was made on and took the identity
  from (absolute, relative to the dataset root, or as given to ``bench swap``);
* ``target_identity`` / ``source_identity`` (+ ``frame``): used only where a path is empty, and
  only when unambiguous (the identity has one face, or FF++'s video + frame index);
* ``status`` (``ok`` or ``error``) and ``reason``: a row that is not ``ok`` is a listed failure.

The older columns ``source,target,result`` are read as ``source_path,target_path,output_path``
(a path or an identity name in ``source``/``target``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("source_path", "target_path", "source_identity", "target_identity", "identity_label",
                    "output_path", "mask_path", "landmark_distance", "status", "reason", "frame")
LEGACY = {"source": "source_path", "target": "target_path", "result": "output_path"}


@dataclass(frozen=True)
class ManifestRow:
    """One row as read: ``where`` = ``manifest.csv:LINE`` (for failures)."""

    where: str
    output: str
    source_path: str
    target_path: str
    source_identity: str
    target_identity: str
    frame: Optional[int]
    status: str
    reason: str


def write_manifest(path: os.PathLike, rows: Iterable[Dict[str, object]]) -> None:
    """Write rows (dicts with any of :data:`MANIFEST_COLUMNS`; missing ones empty). Names are data, written
    losslessly as UTF-8 text: control characters and undecodable file-name bytes as escapes
    (:func:`idbench.escape.field`), a name that starts like a spreadsheet formula with the ``'`` guard; both are
    undone by :func:`read_manifest`, so the manifest reads back to the very same paths."""
    from idbench.escape import csv_cell, field

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else csv_cell(field(r[c]) if isinstance(r[c], str) else r[c])
                        for c in MANIFEST_COLUMNS})


def read_manifest(path: os.PathLike) -> List[ManifestRow]:
    """Every row of a manifest (legacy ``source,target,result`` columns mapped onto the schema)."""
    from idbench.escape import csv_uncell, unfield

    out = []
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        for n, rec in enumerate(csv.DictReader(f), start=2):
            ours = "output_path" in rec  # written by write_manifest: its escapes are undone (a legacy one is as is)
            rec = {LEGACY.get(k, k): unfield(csv_uncell((v or "").strip())) if ours else (v or "").strip()
                   for k, v in rec.items() if k}
            fr = rec.get("frame", "")
            out.append(ManifestRow(f"{path}:{n}", rec.get("output_path", ""), rec.get("source_path", ""),
                                   rec.get("target_path", ""), rec.get("source_identity", ""),
                                   rec.get("target_identity", ""), int(fr) if fr.lstrip("-").isdigit() else None,
                                   rec.get("status", "") or "ok", rec.get("reason", "")))
    return out


def path_rows(paths, root: Optional[str]) -> Dict[str, int]:
    """Dataset row of every way a manifest may name an image: the path as stored, its real path, and the
    path relative to the dataset root."""
    out: Dict[str, int] = {}
    for r, p in enumerate(paths):
        for key in (str(Path(p)), os.path.realpath(p)):
            out.setdefault(key, r)
        if root:
            try:
                out.setdefault(str(Path(p).relative_to(root)), r)
                out.setdefault(str(Path(os.path.realpath(p)).relative_to(os.path.realpath(root))), r)
            except ValueError:
                pass
    return out


def lookup_path(value: str, rows: Dict[str, int], root: Optional[str]) -> Optional[int]:
    """The dataset row of a manifest path (as stored, real path, or relative to the root)."""
    for key in (str(Path(value)), os.path.realpath(value)):
        if key in rows:
            return rows[key]
    if root and not Path(value).is_absolute():
        return rows.get(os.path.realpath(Path(root) / value))
    return None
