"""The ``ffpp`` dataset: FaceForensics++ originals, N evenly spaced frames per video of an official split."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Tuple

from idbench.cache import content_key
from idbench.errors import IdbenchError, InputError
from idbench.registry import Option
from idbench.weights import idbench_home

from ..video_inputs import extract_frames
from . import ROOT, Dataset, DatasetSpec, Item, register_dataset
from .folder import FRAMES

FFPP_SPLIT_SOURCES = ("splits", "dataset/splits", ".")


def ffpp_split_ids(root: Path, split: str, splits_dir: Optional[os.PathLike] = None) -> List[Tuple[str, str]]:
    """The (a, b) id pairs of an official FF++ split file (``train``/``val``/``test`` .json)."""
    cands = [Path(splits_dir)] if splits_dir else [root / s for s in FFPP_SPLIT_SOURCES]
    for d in cands:
        f = d / f"{split}.json"
        if f.is_file():
            try:
                pairs = json.loads(f.read_text())
            except json.JSONDecodeError as e:
                raise InputError(f"{f}: not a valid FF++ split file ({e.msg}, line {e.lineno})") from None
            except UnicodeDecodeError:
                raise InputError(f"{f}: not a valid FF++ split file (not UTF-8 text)") from None
            return _ffpp_pairs(f, pairs)
    raise InputError(f"FF++ split file {split}.json not found in {', '.join(str(c) for c in cands)} "
                     f"(give --splits DIR holding train/val/test.json)")


def _ffpp_pairs(f: Path, pairs) -> List[Tuple[str, str]]:
    """The split's ``[["000", "003"], ...]``: a non-empty list of pairs of video ids (digits)."""
    if not isinstance(pairs, list) or not pairs:
        raise InputError(f"{f}: an FF++ split file is a non-empty JSON list of [id, id] pairs, got "
                         f"{type(pairs).__name__ if pairs else 'an empty list'}")
    for k, p in enumerate(pairs):
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(x, (str, int)) and not isinstance(x, bool) and str(x).isdigit() for x in p)):
            raise InputError(f"{f}: entry {k} is {json.dumps(p)[:60]}, expected a pair of video ids like "
                             f"[\"000\", \"003\"]")
    return [(str(a), str(b)) for a, b in pairs]


@register_dataset(DatasetSpec(
    "ffpp", "FaceForensics++ originals: N evenly spaced frames per video of the official split", options=(
        ROOT, Option("split", "test", "train | val | test (--split)"),
        Option("compression", "c23", "c0 | c23 | c40 (--compression)"), FRAMES,
        Option("splits", None, "the folder holding train/val/test.json (--splits; default: under the root)"),
        Option("frames_dir", None, "where extracted frames go (default: $IDBENCH_HOME/frames/ffpp/)"),
        Option("progress", True, "show a progress bar"))))
def _ffpp(spec, weights, device, **options) -> Dataset:
    return ffpp_dataset(**options)


def ffpp_dataset(root=None, split: str = "test", compression: str = "c23", frames: int = 10,
                 splits: Optional[os.PathLike] = None, frames_dir: Optional[os.PathLike] = None,
                 progress: bool = True) -> Dataset:
    from tqdm.auto import tqdm

    if root is None:
        raise InputError("dataset 'ffpp' needs --root (the FaceForensics++ root)")
    root = Path(root)
    vdir = root / "original_sequences" / "youtube" / compression / "videos"
    if not vdir.is_dir():
        raise InputError(f"FF++ originals not found: {vdir} is missing (compression '{compression}')")
    pairs = ffpp_split_ids(root, split, splits)
    ids = sorted({x for p in pairs for x in p})
    frames_root = Path(frames_dir) if frames_dir else idbench_home() / "frames" / "ffpp" / compression
    items: List[Item] = []
    notes = []
    for vid in tqdm(ids, desc=f"ffpp {split} frames", disable=not progress):
        video = vdir / f"{vid}.mp4"
        if not video.is_file():
            notes.append(f"{video}: missing video")
            continue
        try:
            st = video.stat()
            vkey = content_key(str(video.resolve()), st.st_size, st.st_mtime_ns)[:16]
            for idx, p in extract_frames(video, frames, frames_root / f"{vid}-{vkey}"):
                items.append(Item(p, vid, video=vid, frame=idx))
        except IdbenchError as e:
            notes.append(str(e))
    if not items:
        raise InputError(f"no frames could be read from {vdir} for split {split}")
    found = len({it.video for it in items})  # what was found, not what the split expects
    d = Dataset("ffpp", str(root), items, f"FF++ {split} split ({compression}): {found} of {len(ids)} {split} "
                f"videos found ({len(ids) - found} missing or unreadable, listed), {frames} frames each, "
                f"{len(items)} frames", split=split, notes=notes, video_pairs=pairs)
    return d
