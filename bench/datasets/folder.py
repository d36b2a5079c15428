"""The ``folder`` dataset: one sub-folder per identity, images (or videos) inside."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from idbench.errors import InputError, dropped
from idbench.imageio import scan_identity_folders
from idbench.registry import Option

from ..video_inputs import expand_videos
from . import ROOT, Dataset, DatasetSpec, Item, register_dataset

FRAMES = Option("frames", 10, "evenly spaced frames taken from each video (--frames)")

@register_dataset(DatasetSpec("folder", "one sub-folder per identity, images inside (any depth)", options=(
    ROOT, Option("min_images", 1, "identities with fewer images are left out (listed)"), FRAMES)))
def _folder(spec, weights, device, **options) -> Dataset:
    return folder_dataset(**options)


def folder_dataset(root=None, min_images: int = 1, frames: int = 10) -> Dataset:
    if root is None:
        raise InputError("dataset 'folder' needs --root DIR (one sub-folder per identity)")
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    by_id, ignored = scan_identity_folders(root)
    by_id, notes = _one_spelling(_without_run_folders(root, by_id, ignored))
    items = []
    for ident, files in by_id.items():
        vids = expand_videos(files, frames)  # a video: --frames evenly spaced frames, one item each
        ignored += vids.failed
        files = vids.files
        if len(files) >= min_images:
            items += [Item(f, ident, video=vids.source(f)[0] if str(f) in vids.origin else None,
                           frame=vids.origin[str(f)][1] if str(f) in vids.origin else None) for f in files]
        else:
            ignored += [(str(f), f"identity {ident} has {len(files)} < {min_images} images") for f in files]
    if not items:
        raise InputError(f"no images found in identity sub-folders of {root}")
    n_id = len({i.identity for i in items})
    note = f"; {len(ignored)} other entries under the root not used (listed with reasons)" if ignored else ""
    return Dataset("folder", str(root), items, f"{len(items)} images of {n_id} identities from {root}{note}",
                   ignored=[dropped("list", p, r) for p, r in ignored], notes=notes)


def _without_run_folders(root: Path, by_id: dict, ignored: list) -> dict:
    """An idbench output folder under the root (it holds the run lock) is not an identity: listed, not used."""
    from idbench.atomic import LOCK_NAME

    out = {}
    for ident, files in by_id.items():
        if (root / ident / LOCK_NAME).exists():
            ignored += [(str(f), "inside an idbench output folder (--out), not a dataset image") for f in files]
        else:
            out[ident] = files
    return out


def _one_spelling(by_id: dict) -> Tuple[dict, List[str]]:
    """Identity folder names in their NFC spelling: the NFC and NFD spellings of one name (macOS writes NFD)
    are one person, and each merge is a note."""
    from idbench.escape import nfc, shown

    out: dict = {}
    spellings: dict = {}
    for ident, files in by_id.items():
        key = nfc(ident)
        out.setdefault(key, []).extend(files)
        spellings.setdefault(key, []).append(ident)
    notes = [f"identity folders {', '.join(repr(shown(s)) for s in v)} are one name in different Unicode "
             f"spellings: merged as {shown(k)!r} (NFC)" for k, v in spellings.items() if len(v) > 1]
    return {k: sorted(v) for k, v in out.items()}, notes
