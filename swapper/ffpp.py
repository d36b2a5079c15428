"""FaceForensics++'s own manipulation results as swappers: ``ffpp:<Method>``.

Layout (anchors-and-conventions.md, section C.3)::

    <root>/manipulated_sequences/<Method>/<comp>/videos/<target>_<source>.mp4
    <root>/original_sequences/youtube/<comp>/videos/NNN.mp4

A manipulated video ``<target>_<source>`` shows the *target* video with the *source*'s identity.
Each video yields N evenly spaced frames (default 10), decoded by streaming through
``cv2.VideoCapture`` (only one frame is held at a time). DeepFakeDetection's names
(``01_02__scene__CODE.mp4``) are read the same way (target 01, source 02).

>>> sw = create_swapper("ffpp:FaceShifter", root="/data/ffpp")
>>> for target, source, frame, rgb in sw: ...
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import numpy as np

from idbench.errors import IdbenchError, InputError, UnknownNameError

from .types import SwapContext, SwapFailure, SwapItem, SwapOutput, Swapper
from .registry import SwapperSpec, register_swapper

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
COMPRESSIONS = ("c0", "c23", "c40")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
_NAME = re.compile(r"^(?P<t>[^_]+)_(?P<s>[^_]+)(?:__.*)?$")

_DESCRIPTIONS = {
    "Deepfakes": "FF++ Deepfakes (autoencoder face swap)",
    "Face2Face": "FF++ Face2Face (expression reenactment: target identity kept)",
    "FaceSwap": "FF++ FaceSwap (graphics-based 3D model swap)",
    "NeuralTextures": "FF++ NeuralTextures (mouth reenactment: target identity kept)",
    "FaceShifter": "FF++ FaceShifter (AEI-Net + HEAR-Net swap)",
    "DeepFakeDetection": "FF++ DeepFakeDetection (Google/Jigsaw actor swaps)",
}


class VideoReadError(IdbenchError, ValueError):
    """A video could not be opened or yielded no frame (corrupt, truncated, unsupported codec)."""


class FFppFrame(NamedTuple):
    target_id: str
    source_id: str
    frame: int
    image: np.ndarray  # uint8 RGB


def evenly_spaced(n_total: int, n: int) -> List[int]:
    """``n`` frame indices evenly spaced over ``0..n_total-1`` (all frames when n >= n_total)."""
    if n_total <= 0 or n <= 0:
        return []
    if n >= n_total:
        return list(range(n_total))
    return sorted({int(round(x)) for x in np.linspace(0, n_total - 1, n)})


def _count_frames(path: Path) -> int:
    """Frame count by grabbing every frame (when the container does not say): no decoding kept."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def video_frame_indices(path: os.PathLike, n: int = 10) -> List[int]:
    """The frame indices :func:`iter_video_frames` reads (``n`` evenly spaced), from the frame count alone."""
    import cv2

    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not path.is_file() or not cap.isOpened():
            raise VideoReadError(f"{path}: cannot open video (corrupt or unsupported codec)")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return evenly_spaced(total if total > 0 else _count_frames(path), n)


def iter_video_frames(path: os.PathLike, n: int = 10) -> Iterator[Tuple[int, np.ndarray]]:
    """``(frame index, uint8 RGB frame)`` for ``n`` evenly spaced frames, streamed (one frame in memory).

    Frames before a wanted one are skipped with ``grab()`` (no decode to RGB). Raises
    :class:`VideoReadError` when the file cannot be opened or no wanted frame can be decoded.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such video")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(f"{path}: cannot open video (corrupt or unsupported codec)")
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if total <= 0:
            cap.release()
            total = _count_frames(path)
            cap = cv2.VideoCapture(str(path))
        wanted = evenly_spaced(total, n)
        got = 0
        idx = 0
        for w in wanted:
            while idx < w:  # skip without decoding to RGB
                if not cap.grab():
                    break
                idx += 1
            if idx != w:
                break
            ok, frame = cap.read()
            idx += 1
            if not ok or frame is None:
                break
            got += 1
            yield w, np.ascontiguousarray(frame[:, :, ::-1])
        if got == 0:
            raise VideoReadError(f"{path}: no frame could be decoded (corrupt or empty video)")
    finally:
        cap.release()


def parse_pair(name: str) -> Tuple[str, str]:
    """``"000_003"`` -> ("000", "003"); ``"01_02__scene__X"`` -> ("01", "02")."""
    m = _NAME.match(Path(name).stem if "." in name else name)
    if not m:
        raise InputError(f"{name}: not an FF++ manipulated-video name '<target>_<source>'")
    return m["t"], m["s"]


def method_dir(root: os.PathLike, method: str, compression: str = "c23") -> Path:
    """``<root>/manipulated_sequences/<Method>/<comp>/videos``, with a clear error for each missing level."""
    if method not in METHODS:
        raise UnknownNameError("FF++ method", method, METHODS)
    r = Path(root).expanduser() if root is not None else None
    if r is None or not r.is_dir():
        raise InputError(f"FF++ root not found: {r} (give the folder holding manipulated_sequences/ "
                         f"and original_sequences/)")
    ms = r / "manipulated_sequences"
    if not ms.is_dir():
        raise InputError(f"{r} is not an FF++ root: {ms} is missing")
    md = ms / method
    if not md.is_dir():
        have = sorted(p.name for p in ms.iterdir() if p.is_dir())
        raise InputError(f"FF++ method folder missing: {md} (found: {', '.join(have) or 'none'})")
    cd = md / compression
    if not cd.is_dir():
        have = sorted(p.name for p in md.iterdir() if p.is_dir())
        raise InputError(f"FF++ compression folder missing: {cd} (found: {', '.join(have) or 'none'}; "
                         f"choose with compression=/--compression)")
    vd = cd / "videos"
    if not vd.is_dir():
        raise InputError(f"FF++ videos folder missing: {vd}")
    return vd


def original_video(root: os.PathLike, video_id: str, compression: str = "c23") -> Path:
    """``<root>/original_sequences/youtube/<comp>/videos/<id>.mp4``."""
    return Path(root) / "original_sequences" / "youtube" / compression / "videos" / f"{video_id}.mp4"


def list_method_videos(root: os.PathLike, method: str, compression: str = "c23",
                       pairs: Optional[Iterable[Sequence[str]]] = None) -> List[Tuple[str, str, Path]]:
    """``(target, source, path)`` of every manipulated video (restricted to ``pairs`` when given:
    a pair [a, b] stands for both a_b and b_a)."""
    vd = method_dir(root, method, compression)
    keep: Optional[Set[Tuple[str, str]]] = None
    if pairs is not None:
        keep = set()
        for a, b in pairs:
            keep.add((str(a), str(b)))
            keep.add((str(b), str(a)))
    out = []
    for p in sorted(vd.iterdir()):
        if not p.is_file() or p.suffix.lower() not in VIDEO_EXTS:
            continue
        try:
            t, s = parse_pair(p.name)
        except InputError:
            continue
        if keep is None or (t, s) in keep:
            out.append((t, s, p))
    return out


def iter_ffpp_method(root: os.PathLike, method: str, compression: str = "c23", frames: int = 10,
                     pairs: Optional[Iterable[Sequence[str]]] = None, errors: Optional[list] = None,
                     strict: bool = False) -> Iterator[FFppFrame]:
    """``(target_id, source_id, frame index, RGB frame)`` for N evenly spaced frames of every video.

    A corrupt video is a per-item error: with ``strict`` it raises :class:`VideoReadError`; otherwise
    it is skipped, a :class:`SwapFailure` is appended to ``errors`` (when a list is given) and a
    warning is issued. Missing root/method/compression folders always raise :class:`InputError`.
    """
    for t, s, path in list_method_videos(root, method, compression, pairs):
        try:
            for idx, img in iter_video_frames(path, frames):
                yield FFppFrame(t, s, idx, img)
        except VideoReadError as e:
            if strict:
                raise
            fail = SwapFailure(str(e), {"swapper": f"ffpp:{method}", "target_id": t, "source_id": s,
                                        "identity": s, "path": str(path)})
            if errors is not None:
                errors.append(fail)
            else:
                warnings.warn(str(e), RuntimeWarning, stacklevel=2)


@dataclass
class FFppSwapper(Swapper):
    """Reads one FF++ method's results; iterate it for :class:`FFppFrame` records.

    The identity label of a swapped frame is the source's (``source_id``); failures of the last
    iteration are in ``errors``. As a :class:`~idbench.swapper.base.Swapper` (``bench run``): one
    planned item per manipulated video of the split, one output per frame, the target row being the
    target video's frame nearest that frame; a video whose target or source is not among the run's
    videos is a listed failure ("unmatched pair").
    """

    method: str
    root: Optional[str] = None
    compression: str = "c23"
    frames: int = 10
    pairs: Optional[list] = None
    strict: bool = False
    errors: List[SwapFailure] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"ffpp:{self.method}"

    def params(self) -> dict:
        return {"method": self.method, "compression": self.compression, "frames": self.frames}

    def videos(self) -> List[Tuple[str, str, Path]]:
        return list_method_videos(self.root, self.method, self.compression, self.pairs)

    def __iter__(self) -> Iterator[FFppFrame]:
        self.errors = []
        method_dir(self.root, self.method, self.compression)  # fail early, before the first frame
        return iter_ffpp_method(self.root, self.method, self.compression, self.frames, self.pairs,
                                errors=self.errors, strict=self.strict)

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[dict]]:
        from idbench.pipeline import failure

        known = set(ctx.labels.tolist())
        items, fails = [], []
        pairs = self.pairs if self.pairs is not None else ctx.options.get("video_pairs")  # the run's split
        for t, s, path in list_method_videos(self.root, self.method, self.compression, pairs):
            missing = [f"{w} {v}" for w, v in (("target", t), ("source", s)) if v not in known]
            if missing:
                fails.append(failure("swap-plan", path, f"unmatched pair: {' and '.join(missing)} not among the "
                                     f"run's videos (no frame with a face)"))
                continue
            items.append(SwapItem(ctx.frame_row(t, None), s, str(path), source=ctx.frame_row(s, None)))
        return items, fails

    def outputs(self, items: Sequence[SwapItem], ctx: SwapContext) -> Iterator[SwapOutput]:
        from idbench.cache import content_key

        for it in items:
            path = Path(it.name)
            t, s = parse_pair(path.name)
            prov = {"swapper": self.name, "path": str(path)}
            try:
                st = path.stat()
                for idx, img in iter_video_frames(path, self.frames):
                    sub = SwapItem(ctx.frame_row(t, idx), s, f"{t}_{s}#{idx}", ctx.frame_row(s, idx), idx)
                    key = content_key("video-frame", str(path.resolve()), st.st_size, st.st_mtime_ns, idx)
                    yield SwapOutput(sub, key, lambda img=img: img, prov)
            except (VideoReadError, OSError) as e:
                yield SwapOutput(it, "", _raiser(str(e)), prov)


def _raiser(msg: str):
    def load():
        raise VideoReadError(msg)

    return load


def _factory(method: str):
    def make(spec, weights, device, root=None, compression: str = "c23", frames: int = 10, pairs=None,
             strict: bool = False):
        if root is None:
            raise InputError(f"swapper 'ffpp:{method}' needs root= (the FaceForensics++ root folder)")
        return FFppSwapper(method, str(root), compression, int(frames), pairs, strict)

    return make


for _m in METHODS:
    register_swapper(SwapperSpec(f"ffpp:{_m}", _DESCRIPTIONS[_m] + ": frames of the dataset's own manipulated "
                                 "videos <target>_<source>", "dataset",
                                 params=(("root", "the FF++ root (--root)"), ("compression", "c0 | c23 | c40"),
                                         ("frames", "frames per video (--frames)"),
                                         ("pairs", "[target, source] video pairs (default: every pair found)"),
                                         ("strict", "raise on the first unreadable video"))))(_factory(_m))
