"""``results:DIR``: any swapping method's own outputs, read from a folder.

Naming (names are matched against the run's dataset identities, so identities containing ``_``,
like ``abdullah_gul``, work):

* ``DIR/<target>__<source>.png`` (any image extension): the source identity's face swapped onto the
  target identity's first face. ``__`` (two underscores) separates the two names; the older single
  ``_`` is accepted when exactly one split gives two dataset identities (otherwise: a listed failure,
  "ambiguous name");
* ``DIR/<target>__<source>/<frame>.png``: frames (the target row is the target's face nearest that frame);
* ``DIR/<target>__<source>.mp4`` (``.avi``, ``.mov``, ``.mkv``): ``--frames`` evenly spaced frames;
* or ``DIR/manifest.csv`` with columns ``source,target,result``: ``source``/``target`` are dataset image
  paths (absolute, or relative to the dataset root) or identity names, ``result`` a path relative to
  DIR (or absolute). When a manifest is present, only it is read.

A name or manifest row that matches no dataset identity/image is a listed failure (``swap-plan``); an
unreadable result file is a per-item failure (``swap``), never an abort. A missing DIR fails when the
swapper is created, before any work.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from idbench.errors import InputError

from .base import SwapContext, SwapItem, SwapOutput, Swapper
from .registry import SwapperSpec, register_swapper

SEPARATOR = "__"
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")


def split_pair(stem: str, names: Sequence[str]) -> Tuple[Optional[Tuple[str, str]], str]:
    """``"<target>__<source>"`` -> ((target, source), "") matched against ``names``, or (None, reason)."""
    known = set(names)
    if SEPARATOR in stem:
        t, s = stem.split(SEPARATOR, 1)
        if t in known and s in known:
            return (t, s), ""
    cands = [(stem[:i], stem[i + 1:]) for i, ch in enumerate(stem) if ch == "_"]
    hits = [(t, s) for t, s in cands if t in known and s in known]
    if len(hits) == 1:
        return hits[0], ""
    if len(hits) > 1:
        return None, f"ambiguous name: {len(hits)} ways to read it as <target>_<source>; use '{SEPARATOR}'"
    return None, f"no dataset identities <target>{SEPARATOR}<source> in this name"


class ResultsSwapper(Swapper):
    """Reads a method's outputs from ``directory`` (see the module docstring)."""

    name = "results"

    def __init__(self, directory, frames: int = 10, **_):
        self.directory = Path(str(directory)).expanduser()
        if not str(directory):
            raise InputError("results:DIR needs a folder, e.g. results:/path/to/my_method")
        if not self.directory.is_dir():
            raise InputError(f"results folder {self.directory} does not exist")
        self.frames = int(frames)
        self.name = f"results:{directory}"

    def params(self) -> Dict[str, object]:
        return {"directory": str(self.directory), "frames": self.frames}

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[dict]]:
        if (self.directory / "manifest.csv").is_file():
            return self._plan_manifest(ctx)
        from idbench.imageio import IMAGE_EXTS
        from idbench.pipeline import failure

        names = sorted(set(ctx.labels.tolist()))
        items, fails = [], []
        for entry in sorted(self.directory.iterdir()):
            is_media = entry.is_dir() or entry.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS
            if not is_media:
                fails.append(failure("swap-plan", entry, "not an image, video or frame folder"))
                continue
            pair, why = split_pair(entry.stem if entry.is_file() else entry.name, names)
            if pair is None:
                fails.append(failure("swap-plan", entry, why))
                continue
            t, s = pair
            items.append(SwapItem(ctx.frame_row(t, None), s, str(entry), frame=None))
        return items, fails

    def _plan_manifest(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[dict]]:
        from idbench.pipeline import failure

        t = ctx.table
        root = Path(ctx.root) if ctx.root else None
        row_of = {}
        for r, p in enumerate(t.paths):
            row_of.setdefault(str(Path(p)), r)
            if root is not None:
                try:
                    row_of.setdefault(str(Path(p).relative_to(root)), r)
                except ValueError:
                    pass
        labels = set(ctx.labels.tolist())
        items, fails = [], []
        with open(self.directory / "manifest.csv", newline="") as f:
            for n, rec in enumerate(csv.DictReader(f), start=2):
                tr, sr = self._row(rec.get("target"), row_of, labels, ctx), self._row(rec.get("source"), row_of,
                                                                                        labels, ctx)
                res = Path(rec.get("result") or "")
                where = f"{self.directory / 'manifest.csv'}:{n}"
                if tr is None or sr is None or not str(res):
                    which = "target" if tr is None else "source" if sr is None else "result"
                    fails.append(failure("swap-plan", where, f"{which} {rec.get(which)!r} matches no dataset "
                                         f"image or identity" if which != "result" else "no result path"))
                    continue
                res = res if res.is_absolute() else self.directory / res
                items.append(SwapItem(tr, str(ctx.labels[sr]), str(res), source=sr))
        return items, fails

    @staticmethod
    def _row(value: Optional[str], row_of: Dict[str, int], labels, ctx: SwapContext) -> Optional[int]:
        if not value:
            return None
        if str(Path(value)) in row_of:
            return row_of[str(Path(value))]
        return ctx.frame_row(value, None) if value in labels else None

    def outputs(self, items: Sequence[SwapItem], ctx: SwapContext) -> Iterator[SwapOutput]:
        from idbench.imageio import IMAGE_EXTS

        for it in items:
            path = Path(it.name)
            if path.is_dir():
                for f in sorted(path.iterdir()):
                    if f.suffix.lower() in IMAGE_EXTS:
                        fr = int(f.stem) if f.stem.isdigit() else None
                        row = ctx.frame_row(str(ctx.labels[it.target]), fr)
                        sub = SwapItem(row, it.source_label, f"{path}/{f.name}", it.source, fr)
                        yield _file_output(sub, f, self.name)
            elif path.suffix.lower() in VIDEO_EXTS:
                yield from self._video_outputs(it, path, ctx)
            else:
                yield _file_output(it, path, self.name)

    def _video_outputs(self, it: SwapItem, path: Path, ctx: SwapContext) -> Iterator[SwapOutput]:
        from idbench.cache import content_key

        from .ffpp import VideoReadError, iter_video_frames

        try:
            for fr, img in iter_video_frames(path, self.frames):
                row = ctx.frame_row(str(ctx.labels[it.target]), fr)
                sub = SwapItem(row, it.source_label, f"{path}#{fr}", it.source, fr)
                st = path.stat()
                key = content_key("video-frame", str(path.resolve()), st.st_size, st.st_mtime_ns, fr)
                yield SwapOutput(sub, key, lambda img=img: img, {"swapper": self.name, "path": str(path)})
        except VideoReadError as e:
            yield SwapOutput(it, "", _raiser(str(e)), {"swapper": self.name, "path": str(path)})


def _raiser(msg: str):
    def load():
        raise InputError(msg)

    return load


def _file_output(it: SwapItem, path: Path, swapper: str) -> SwapOutput:
    """An image file as an output; its key is the sha256 of its bytes (an unreadable file fails at load)."""
    from idbench.cache import bytes_key
    from idbench.imageio import read_image

    from idbench.errors import ImageReadError
    from idbench.imageio import read_regular_file

    try:
        key = bytes_key(read_regular_file(path))  # a FIFO or device named in a manifest is never read
    except ImageReadError as e:
        return SwapOutput(it, "", _raiser(str(e).split(": ", 1)[-1]), {"swapper": swapper, "path": str(path)})
    return SwapOutput(it, key, lambda: read_image(path), {"swapper": swapper, "path": str(path)})


@register_swapper(SwapperSpec("results", "any method's outputs in a folder: results:DIR with "
                              "<target>__<source>.png, <target>__<source>/<frame>.png, <target>__<source>.mp4 "
                              "or manifest.csv (source,target,result)", "dataset",
                              params=(("DIR", "the folder (results:DIR)"), ("frames", "frames per video (--frames)")),
                              arg="directory"))
def _results_factory(spec, directory="", frames: int = 10, **_):
    return ResultsSwapper(directory, frames)
