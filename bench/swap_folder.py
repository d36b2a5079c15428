"""The library behind ``bench swap`` (:mod:`idbench.bench.cli.swap`): write swaps (``blend``, ``inswapper``,
``blendswap``, ``simswap``) or FF++ frames (``ffpp:<Method>``) to a folder.

``bench swap --swapper blend|inswapper|blendswap|simswap --out DIR INPUT...``: INPUT are image files or
folders; an image's identity is the name of its parent folder. Every image is an anchor (the source):
swapped onto its nearest-landmark partner of another identity (seeded choice among --k random candidates),
by blending its inner face (``blend``) or by the learned swapper, whose crop is pasted back into the full
target frame. One path for all (:func:`swap_images`). Writes ``swaps/`` and ``masks/`` (PNG),
``manifest.csv`` (one row per anchor, failures included with their reason), ``contact_sheet.png`` (rows of
source, target, mask, result) and ``swap.json`` (parameters; learned: the weight files and their sha256).

``bench swap --swapper ffpp:FaceShifter --out DIR FFPP_ROOT``: N evenly spaced frames per
manipulated video (``--frames``), ``frames/<target>_<source>/<index>.png``, manifest and a sheet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

SHEET_LABELS = ("source", "target", "mask", "result")


def _fit(img: np.ndarray, cell: int) -> np.ndarray:
    """Letterbox an RGB or gray image into a cell x cell RGB tile."""
    import cv2

    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    s = cell / max(h, w)
    r = cv2.resize(img, (max(1, int(round(w * s))), max(1, int(round(h * s)))),
                   interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    tile = np.zeros((cell, cell, 3), np.uint8)
    y, x = (cell - r.shape[0]) // 2, (cell - r.shape[1]) // 2
    tile[y:y + r.shape[0], x:x + r.shape[1]] = r
    return tile


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], cell: int = 112, per_line: int = 2,
                  labels: Sequence[str] = SHEET_LABELS) -> np.ndarray:
    """A grid of rows (each a list of images: source, target, mask, result), ``per_line`` rows side by
    side, with a header line naming the columns. Returns uint8 RGB."""
    import cv2

    if not rows:
        return np.full((24, cell * max(len(labels), 1), 3), 255, np.uint8)
    n_cols = max(len(r) for r in rows)
    gap = 6
    strips = []
    for r in rows:
        tiles = [_fit(im, cell) for im in r] + [np.zeros((cell, cell, 3), np.uint8)] * (n_cols - len(r))
        strips.append(np.concatenate(tiles, axis=1))
    strip_w = strips[0].shape[1]
    lines = []
    for i in range(0, len(strips), per_line):
        group = strips[i:i + per_line] + [np.full_like(strips[0], 255)] * (per_line - len(strips[i:i + per_line]))
        sep = np.full((cell, gap, 3), 255, np.uint8)
        parts = []
        for j, g in enumerate(group):
            parts += ([sep] if j else []) + [g]
        lines.append(np.concatenate(parts, axis=1))
        lines.append(np.full((2, lines[-1].shape[1], 3), 255, np.uint8))
    body = np.concatenate(lines, axis=0)
    header = np.full((20, body.shape[1], 3), 255, np.uint8)
    for j in range(per_line):
        for c, name in enumerate(labels[:n_cols]):
            x = j * (strip_w + gap) + c * cell + 4
            cv2.putText(header, name, (x, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, body], axis=0)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb if rgb.ndim == 2 else np.ascontiguousarray(rgb[:, :, ::-1])
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")


def _face_square(image: np.ndarray, face, scale: float = 1.8) -> np.ndarray:
    """A square around a face box (for frame-mode sheet cells), padded with black."""
    import cv2

    x1, y1, x2, y2 = [float(v) for v in face.box]
    c = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    half = max(x2 - x1, y2 - y1) * scale / 2
    m = np.array([[1, 0, half - c[0]], [0, 1, half - c[1]]], np.float64)
    side = max(1, int(round(2 * half)))
    return cv2.warpAffine(image, m, (side, side), borderValue=0)


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)


def detect_inputs(inputs, detector: str, cache, device: str, progress: bool = True, frames: int = 10):
    """The image files under ``inputs`` (a video: ``frames`` evenly spaced frames, :mod:`.video_inputs`), each
    one's first face (or None), the detect errors by index, and the video expansion (each frame's video)."""
    from tqdm.auto import tqdm

    from idbench.errors import InputError
    from idbench.imageio import list_image_files
    from idbench.pipeline import detect_stream, file_item

    from .video_inputs import expand_videos

    vids = expand_videos(list_image_files(inputs), frames)
    files = vids.files
    if not files:
        raise InputError(f"no image files found in {', '.join(str(p) for p in inputs)}")
    faces, errors = [], {}
    stream = detect_stream((file_item(p) for p in files), detector, cache, device)
    for i, d in enumerate(tqdm(stream, desc="detect", unit="img", disable=not progress, total=len(files))):
        faces.append(d.faces[0] if d.faces else None)
        if d.error or not d.faces:
            errors[i] = d.error or "no face"
    return files, faces, errors, vids


def swap_images(swapper: str, inputs: Sequence[Path], out: Path, seed: int = 0, k: int = 100,
                partner: str = "nearest-landmark", limit: Optional[int] = None, detector: str = "auto", cache=None,
                device: str = "cpu", sheet_rows: int = 40, progress: bool = False, frames: int = 10,
                **options) -> Dict[str, object]:
    """``bench swap`` for every pair swapper (``blend``, ``inswapper``, ``blendswap``, ``simswap``; also usable
    from Python). Returns the summary written to ``swap.json``.

    ``options`` go to the swapper's factory (``blend``: ``mode``, ``region``; learned: ``weights``). The
    swapper is built first, so a missing or wrong weight file fails before any detection. Each image is a
    source, swapped onto its partner (:meth:`idbench.swapper.PairSwapper.swap_batch`, the pair rule of
    ``bench run``: same parameters, same pairs, same pixels).
    """
    from tqdm.auto import tqdm

    from idbench.cache import Cache
    from idbench.swapper import create_swapper

    sw = create_swapper(swapper, seed=seed, k=k, partner=partner, device=device, **options)
    cache = cache if cache is not None else Cache(enabled=False)
    files, faces, detect_err, vids = detect_inputs(inputs, detector, cache, device, progress, frames)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [Path(vids.source(p)[0]).parent.name for p in files]  # a video frame: the video's folder
    paths = [str(p) for p in files]
    anchors = list(range(len(files)))
    if limit is not None and 0 <= limit < len(files):
        anchors = sorted(np.random.default_rng(seed).choice(len(files), limit, replace=False).tolist())
    rows: List[dict] = []
    sheet: List[List[np.ndarray]] = []
    # images are passed as paths and read when needed: memory stays bounded
    results = sw.swap_batch(paths, faces, ids, paths=paths, anchors=anchors)
    for a, res in zip(tqdm(anchors, desc="write", disable=not progress), results):
        row = _manifest_row(paths[a], ids[a], res, detect_err.get(a))
        row["frame"] = vids.source(paths[a])[1] if paths[a] in vids.origin else ""
        if res.ok:
            t = int(res.provenance["target_index"])
            name = f"{_safe(_stem(vids, paths[a]))}__on__{_safe(ids[t])}_{_safe(_stem(vids, paths[t]))}.png"
            row["output_path"] = str(Path("swaps") / _safe(ids[a]) / name)
            row["mask_path"] = str(Path("masks") / _safe(ids[a]) / name)
            _save_png(out / row["output_path"], res.image)
            _save_png(out / row["mask_path"], np.clip(np.rint(res.mask * 255), 0, 255).astype(np.uint8))
            if len(sheet) < sheet_rows:
                sheet.append(_sheet_cells(paths[a], faces[a], paths[t], faces[t], res, sw.params().get("mode")))
        rows.append(row)
    from idbench.swapper.manifest import write_manifest  # the one schema, read by results:DIR

    rows += [{"source_path": v, "source_identity": Path(v).parent.name, "status": "error", "reason": r}
             for v, r in vids.failed]  # an undecodable video input
    write_manifest(out / "manifest.csv", rows)
    _save_png(out / "contact_sheet.png", contact_sheet(sheet, cell=112))
    n_ok = sum(r["status"] == "ok" for r in rows)
    summary = {"failures": manifest_failures(rows), "swapper": swapper, "params": sw.params(),
               "provenance": sw.provenance(), "seed": seed, "k": k, "partner": partner, "detector": detector,
               "n_inputs": len(files), "n_anchors": len(anchors),
               "n_ok": n_ok, "n_failed": len(rows) - n_ok, "manifest": str(out / "manifest.csv"),
               "contact_sheet": str(out / "contact_sheet.png")}
    (out / "swap.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _stem(vids, path: str) -> str:
    """A file's stem; a video frame's: ``<video stem>_f<index>`` (frames of two videos never collide)."""
    src, fr = vids.source(path)
    return f"{Path(src).stem}_f{fr}" if fr >= 0 else Path(src).stem


def manifest_failures(rows: Sequence[dict]) -> List[dict]:
    """The manifest's error rows as failures (stage ``swap``), for the console summary and ``swap.json``."""
    return [{"stage": "swap", "item": r.get("source_path") or r.get("target_path") or r.get("target_identity", ""),
             "reason": r.get("reason", "")} for r in rows if r.get("status") != "ok"]


def _manifest_row(source_path: str, source_id: str, res, detect_error: Optional[str]) -> dict:
    """One manifest row (output and mask paths filled in by the caller for a written swap)."""
    from idbench.swapper.manifest import MANIFEST_COLUMNS

    prov = res.provenance
    row = {c: "" for c in MANIFEST_COLUMNS}
    row.update(source_path=source_path, target_path=prov.get("target_path", ""), source_identity=source_id,
               target_identity=prov.get("target_id", ""), identity_label=source_id,
               status="ok" if res.ok else "error")
    if "landmark_distance" in prov:
        row["landmark_distance"] = f"{prov['landmark_distance']:.6f}"
    if not res.ok:
        row["reason"] = f"source: {detect_error}" if detect_error else res.reason
    return row


def _sheet_cells(src_path: str, src_face, tgt_path: str, tgt_face, res, mode: Optional[str]) -> List[np.ndarray]:
    """Source, target, mask, result: ArcFace crops for blend's crop mode, else squares around the faces."""
    from idbench.align import arcface_crop
    from idbench.imageio import read_image

    src, tgt = read_image(src_path), read_image(tgt_path)
    mask8 = (res.mask * 255).astype(np.uint8)
    if mode == "crop":
        return [arcface_crop(src, src_face.landmarks5), arcface_crop(tgt, tgt_face.landmarks5), mask8, res.image]
    return [_face_square(src, src_face), _face_square(tgt, tgt_face), _face_square(mask8, tgt_face),
            _face_square(res.image, tgt_face)]


def swap_ffpp(name: str, root: Path, out: Path, compression: str = "c23", frames: int = 10,
              limit: Optional[int] = None, sheet_rows: int = 40) -> Dict[str, object]:
    """The ``ffpp:<Method>`` branch: dump N frames per manipulated video with a manifest."""
    from idbench.swapper import create_swapper

    sw = create_swapper(name, root=root, compression=compression, frames=frames)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, sheet, n = [], [], 0
    for t, s, idx, img in sw:
        rel = Path("frames") / f"{t}_{s}" / f"{idx:05d}.png"
        _save_png(out / rel, img)
        rows.append({"source_path": "", "target_path": "", "source_identity": s, "target_identity": t,
                     "identity_label": s, "output_path": str(rel), "mask_path": "", "landmark_distance": "",
                     "status": "ok", "reason": "", "frame": idx})
        if len(sheet) < sheet_rows:
            sheet.append([img])
        n += 1
        if limit is not None and n >= limit:
            break
    for fail in sw.errors:
        p = fail.provenance
        rows.append({"source_path": "", "target_path": p.get("path", ""), "source_identity": p.get("source_id", ""),
                     "target_identity": p.get("target_id", ""), "identity_label": p.get("source_id", ""),
                     "output_path": "", "mask_path": "", "landmark_distance": "", "status": "error",
                     "reason": fail.reason, "frame": ""})
    from idbench.swapper.manifest import write_manifest  # the one schema, read by results:DIR

    write_manifest(out / "manifest.csv", rows)
    _save_png(out / "contact_sheet.png", contact_sheet(sheet, cell=160, per_line=4, labels=("result",)))
    summary = {"failures": manifest_failures(rows), "swapper": name, "root": str(root), "compression": compression,
               "frames": frames, "n_ok": n,
               "n_failed": len(sw.errors), "manifest": str(out / "manifest.csv"),
               "contact_sheet": str(out / "contact_sheet.png")}
    (out / "swap.json").write_text(json.dumps(summary, indent=2))
    return summary
