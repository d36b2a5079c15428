"""``results:DIR`` (or ``results:NAME=DIR``): any swapping method's own outputs, read from a folder.

Every swap is scored against the exact target image (or video frame) it was made on and the exact
source it took the identity from. Either a manifest names them, or the file name does:

* ``DIR/manifest.csv`` (:mod:`idbench.swapper.manifest`, the schema ``bench swap`` writes:
  ``source_path,target_path,...,output_path,status,reason,frame``): the exact images. When a manifest
  is present, only it is read. This is the convention for photo datasets.
* ``DIR/<target>__<source>.png`` (any image extension): each side is ``identity@image`` (the stem of
  one of that identity's files: ``ben_affleck@03__madonna@01.png``) or a bare ``identity``, accepted
  only when that identity has exactly one face in the run. ``__`` (two underscores) separates the sides;
  the older single ``_`` is accepted when exactly one split gives two dataset identities.
* ``DIR/<target>__<source>/<frame>.png`` and ``DIR/<target>__<source>.mp4`` (``.avi``, ``.mov``, ``.mkv``;
  ``--frames`` evenly spaced frames): video swaps (FF++): the target is the dataset frame of video
  ``<target>`` with the same frame index (exact match, else a listed failure), the source is video
  ``<source>`` (its frame nearest that index is the source's attribute reference).

A bare identity with several faces is never resolved by a silent choice: the item is listed as
``ambiguous`` with the fix. A name or row that matches nothing is a listed failure (``swap-plan``, with
close identity names: ``did you mean madonna?``); an unreadable result is a per-item failure (``swap``),
never an abort. A missing DIR fails when the swapper is created, before any work.

The swapper's display name (table columns, chart labels, ``results.json`` keys) is NAME, or the
folder's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from idbench.errors import InputError
from idbench.imageio import VIDEO_EXTS

from .types import SwapContext, SwapItem, SwapOutput, Swapper, close_names  # noqa: F401  (close_names: its former home)
from .registry import SwapperSpec, register_swapper

SEPARATOR = "__"
IMAGE_MARK = "@"  # identity@image: one image of the identity
Side = Tuple[str, Optional[str]]  # (identity, image stem or None)


def _side(text: str, known: set) -> Optional[Side]:
    if text in known:
        return text, None
    ident, mark, image = text.rpartition(IMAGE_MARK)
    return (ident, image) if mark and ident in known and image else None


def split_pair(stem: str, names: Sequence[str]) -> Tuple[Optional[Tuple[str, str]], str]:
    """``"<target>__<source>"`` -> ((target, source), "") matched against ``names``, or (None, reason).

    Each side may carry an image (``identity@image``); the sides are returned as written.
    """
    known = set(names)
    if SEPARATOR in stem:
        t, s = stem.split(SEPARATOR, 1)
        if _side(t, known) and _side(s, known):
            return (t, s), ""
        bad = [x for x in (t, s) if not _side(x, known)]
        return None, "; ".join(f"no dataset identity {x.rpartition(IMAGE_MARK)[0] or x!r}"
                               f"{close_names(x.rpartition(IMAGE_MARK)[0] or x, names)}" for x in bad)
    cands = [(stem[:i], stem[i + 1:]) for i, ch in enumerate(stem) if ch == "_"]
    hits = [(t, s) for t, s in cands if _side(t, known) and _side(s, known)]
    if len(hits) == 1:
        return hits[0], ""
    if len(hits) > 1:
        return None, f"ambiguous name: {len(hits)} ways to read it as <target>_<source>; use '{SEPARATOR}'"
    return None, f"no dataset identities <target>{SEPARATOR}<source> in this name{close_names(stem, names)}"


def parse_target(directory: str) -> Tuple[Optional[str], str]:
    """``NAME=DIR`` -> (NAME, DIR); a plain DIR (also one that holds ``=`` and exists) -> (None, DIR)."""
    head, eq, tail = str(directory).partition("=")
    if eq and head and "/" not in head and not Path(str(directory)).expanduser().is_dir():
        return head, tail
    return None, str(directory)


class ResultsSwapper(Swapper):
    """Reads a method's outputs from ``directory`` (see the module docstring)."""

    name = "results"

    def __init__(self, directory, frames: int = 10, **_):
        label, directory = parse_target(str(directory))
        if not directory:
            raise InputError("results:DIR needs a folder, e.g. results:/path/to/my_method or results:NAME=DIR")
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise InputError(f"results folder {self.directory} does not exist")
        self.frames = int(frames)
        self.name = label or self.directory.resolve().name  # short: never the absolute path

    def params(self) -> Dict[str, object]:
        return {"directory": str(self.directory), "frames": self.frames}

    def plan(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[dict]]:
        from .manifest import MANIFEST_NAME

        if (self.directory / MANIFEST_NAME).is_file():
            return self._plan_manifest(ctx)
        from idbench.imageio import IMAGE_EXTS
        from idbench.pipeline import failure

        names = sorted(set(str(x) for x in ctx.labels.tolist()))
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
            t, s = (_side(x, set(names)) for x in pair)
            if entry.is_dir():
                self._plan_frames(ctx, entry, t, s, items, fails, IMAGE_EXTS)
            elif entry.suffix.lower() in VIDEO_EXTS:
                self._plan_video(ctx, entry, t, s, items, fails)
            else:
                self._add(ctx, entry, str(entry), t, s, None, items, fails)
        return items, fails

    @staticmethod
    def _add(ctx, where, name, t: Side, s: Side, frame, items, fails) -> None:
        from idbench.pipeline import failure

        tr, why = ctx.exact_row(t[0], t[1], frame)
        sr, why_s = source_row(ctx, s, frame)
        if tr is None or sr is None:
            fails.append(failure("swap-plan", where, f"target: {why}" if tr is None else f"source: {why_s}"))
            return
        items.append(SwapItem(tr, s[0], name, source=sr, frame=frame))

    def _plan_frames(self, ctx, folder: Path, t: Side, s: Side, items, fails, exts) -> None:
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in exts:
                fr = int(f.stem) if f.stem.isdigit() else None
                self._add(ctx, f, f"{folder}/{f.name}", t, s, fr, items, fails)

    def _plan_video(self, ctx, video: Path, t: Side, s: Side, items, fails) -> None:
        """One item per frame the video will be read at (``--frames`` evenly spaced; counted, not decoded)."""
        from idbench.pipeline import failure

        from .ffpp import VideoReadError, video_frame_indices

        try:
            frames = video_frame_indices(video, self.frames)
        except VideoReadError as e:
            fails.append(failure("swap", video, str(e)))
            return
        for fr in frames:
            self._add(ctx, f"{video}#{fr}", f"{video}#{fr}", t, s, fr, items, fails)

    def _plan_manifest(self, ctx: SwapContext) -> Tuple[List[SwapItem], List[dict]]:
        from idbench.pipeline import failure

        from .manifest import MANIFEST_NAME, path_rows, read_manifest

        rows = path_rows(ctx.table.paths, ctx.root)
        items, fails = [], []
        for rec in read_manifest(self.directory / MANIFEST_NAME):
            label = f"{rec.where} ({rec.output or rec.source_path or rec.source_identity})"
            if rec.status != "ok":
                fails.append(failure("swap", label, f"the swapper failed: {rec.reason or rec.status}"))
                continue
            if not rec.output:
                fails.append(failure("swap-plan", label, "no output_path"))
                continue
            tr, why = self._manifest_side(ctx, rows, rec.target_path, rec.target_identity, rec.frame, "target")
            sr, why_s = self._manifest_side(ctx, rows, rec.source_path, rec.source_identity, rec.frame, "source")
            if tr is None or sr is None:
                fails.append(failure("swap-plan", label, why if tr is None else why_s))
                continue
            res = Path(rec.output)
            res = res if res.is_absolute() else self.directory / res
            items.append(SwapItem(tr, str(ctx.labels[sr]), str(res), source=sr, frame=rec.frame))
        return items, fails

    @staticmethod
    def _manifest_side(ctx, rows, path: str, identity: str, frame, role: str) -> Tuple[Optional[int], str]:
        from .manifest import lookup_path

        if path:
            r = lookup_path(path, rows, ctx.root)
            if r is not None:
                return r, ""
            if path in set(ctx.labels.tolist()):  # the older manifest: an identity in source/target
                identity = path
            else:
                return None, (f"{role}_path {path!r} is not a dataset image with a face in this run "
                              f"(another --root, or no face detected in it)")
        if not identity:
            return None, f"no {role}_path or {role}_identity"
        if role == "source":
            return source_row(ctx, _side(identity, {identity}) or (identity, None), frame)
        r, why = ctx.exact_row(identity, None, frame)
        return r, "" if r is not None else f"{role}: {why}"

    def outputs(self, items: Sequence[SwapItem], ctx: SwapContext) -> Iterator[SwapOutput]:
        i = 0
        while i < len(items):
            video, _, _ = items[i].name.rpartition("#")
            if items[i].frame is not None and Path(video).suffix.lower() in VIDEO_EXTS:
                j = i
                while j < len(items) and items[j].name.rpartition("#")[0] == video:
                    j += 1
                yield from self._video_outputs(items[i:j], Path(video))  # the planned frames, decoded once
                i = j
                continue
            yield _file_output(items[i], Path(items[i].name), self.name)
            i += 1

    def _video_outputs(self, items: Sequence[SwapItem], path: Path) -> Iterator[SwapOutput]:
        from idbench.cache import content_key

        from .ffpp import VideoReadError, iter_video_frames

        prov = {"swapper": self.name, "path": str(path)}
        want = {it.frame: it for it in items}
        done = set()
        try:
            st = path.stat()
            for fr, img in iter_video_frames(path, self.frames):
                if fr in want:
                    key = content_key("video-frame", str(path.resolve()), st.st_size, st.st_mtime_ns, fr)
                    done.add(fr)
                    yield SwapOutput(want[fr], key, lambda img=img: img, prov)
            why = "frame could not be decoded"
        except (VideoReadError, OSError) as e:
            why = str(e)
        for it in items:
            if it.frame not in done:
                yield SwapOutput(it, "", _raiser(why), prov)


def source_row(ctx: SwapContext, s: Side, frame: Optional[int]) -> Tuple[Optional[int], str]:
    """The source's row: the named image; a video source's frame nearest ``frame`` (the source is the
    video, FF++); else the identity's one face (several: ambiguous, listed)."""
    rows = ctx.rows_of(s[0])
    if s[1] is None and len(rows) and len(ctx.frames) and ctx.frames[rows[0]] is not None:
        return ctx.frame_row(s[0], frame), ""
    return ctx.exact_row(s[0], s[1], None)


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


@register_swapper(SwapperSpec("results", "any method's outputs in a folder: results:DIR or results:NAME=DIR with "
                              "manifest.csv (bench swap's), <target>[@image]__<source>[@image].png, "
                              "<target>__<source>/<frame>.png or <target>__<source>.mp4", "dataset",
                              params=(("directory", "the folder (results:DIR; results:NAME=DIR names it NAME)"),
                                      ("frames", "frames per video (--frames)")),
                              arg="directory"))
def _results_factory(spec, weights, device, directory="", frames: int = 10):
    return ResultsSwapper(directory, frames)
