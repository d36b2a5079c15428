"""``bench swap``: write pseudo-swaps (``blend``) or FF++ frames (``ffpp:<Method>``) to a folder.

``bench swap --swapper blend --out DIR INPUT...``: INPUT are image files or folders; an image's
identity is the name of its parent folder. Every image is an anchor: its inner face is blended onto
its nearest-landmark partner of another identity (seeded choice among --k random candidates).
Writes ``swaps/`` and ``masks/`` (PNG), ``manifest.csv`` (one row per anchor, failures included
with their reason), ``contact_sheet.png`` (rows of source, target, mask, result) and ``swap.json``.

``bench swap --swapper ffpp:FaceShifter --out DIR FFPP_ROOT``: N evenly spaced frames per
manipulated video (``--frames``), ``frames/<target>_<source>/<index>.png``, manifest and a sheet.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

MANIFEST_COLUMNS = ("source_path", "target_path", "source_identity", "target_identity", "identity_label",
                    "output_path", "mask_path", "landmark_distance", "status", "reason", "frame")
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


def detect_inputs(inputs, detector: str, cache, device: str, progress: bool = True):
    """The image files under ``inputs``, each one's first face (or None) and the detect errors by index."""
    from tqdm.auto import tqdm

    from idbench.errors import InputError
    from idbench.imageio import list_image_files
    from idbench.pipeline import detect_stream, file_item

    files = list_image_files(inputs)
    if not files:
        raise InputError(f"no image files found in {', '.join(str(p) for p in inputs)}")
    faces, errors = [], {}
    stream = detect_stream((file_item(p) for p in files), detector, cache, device)
    for i, d in enumerate(tqdm(stream, desc="detect", unit="img", disable=not progress, total=len(files))):
        faces.append(d.faces[0] if d.faces else None)
        if d.error or not d.faces:
            errors[i] = d.error or "no face"
    return files, faces, errors


def swap_blend(inputs: Sequence[Path], out: Path, seed: int = 0, k: int = 100, mode: str = "frame",
               limit: Optional[int] = None, region: str = "face", detector: str = "auto", cache=None,
               device: str = "cpu", sheet_rows: int = 40, progress: bool = False,
               partner: str = "nearest-landmark", mask: Optional[str] = None) -> Dict[str, object]:
    """The ``blend`` branch of ``bench swap`` (also usable from Python). Returns a summary dict.

    The swaps are the pipeline's pseudo-swaps (:class:`idbench.swapper.BlendSwapper`, the same
    parameters give the same images as the bias analysis and ``bench run --swappers blend``).
    """
    from tqdm.auto import tqdm

    from idbench.align import arcface_crop
    from idbench.cache import Cache
    from idbench.errors import InputError
    from idbench.imageio import list_image_files, read_image
    from idbench.pipeline import detect_stream, file_item
    from idbench.swapper import create_swapper

    cache = cache if cache is not None else Cache(enabled=False)
    files, faces, detect_err = detect_inputs(inputs, detector, cache, device, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [p.parent.name for p in files]
    paths = [str(p) for p in files]
    anchors = list(range(len(files)))
    if limit is not None and 0 <= limit < len(files):
        anchors = sorted(np.random.default_rng(seed).choice(len(files), limit, replace=False).tolist())
    region = mask if mask is not None else region
    sw = create_swapper("blend", mode=mode, seed=seed, k=k, region=region, partner=partner, device=device)
    rows: List[dict] = []
    sheet: List[List[np.ndarray]] = []
    n_ok = 0
    # images are passed as paths and read when needed: memory stays bounded
    results = sw.swap_batch(paths, faces, ids, paths=paths, anchors=anchors)
    for a, res in zip(tqdm(anchors, desc="write", disable=not progress), results):
        prov = res.provenance
        row = {"source_path": paths[a], "target_path": prov.get("target_path", ""), "source_identity": ids[a],
               "target_identity": prov.get("target_id", ""), "identity_label": ids[a], "output_path": "",
               "mask_path": "", "landmark_distance": "", "status": "ok" if res.ok else "error", "reason": "",
               "frame": ""}
        if "landmark_distance" in prov:
            row["landmark_distance"] = f"{prov['landmark_distance']:.6f}"
        if not res.ok:
            row["reason"] = f"source: {detect_err[a]}" if a in detect_err else res.reason
            rows.append(row)
            continue
        t = int(prov["target_index"])
        name = f"{_safe(Path(paths[a]).stem)}__on__{_safe(ids[t])}_{_safe(Path(paths[t]).stem)}.png"
        img_rel = Path("swaps") / _safe(ids[a]) / name
        mask_rel = Path("masks") / _safe(ids[a]) / name
        _save_png(out / img_rel, res.image)
        _save_png(out / mask_rel, np.clip(np.rint(res.mask * 255), 0, 255).astype(np.uint8))
        row["output_path"], row["mask_path"] = str(img_rel), str(mask_rel)
        rows.append(row)
        n_ok += 1
        if len(sheet) < sheet_rows:
            src, tgt = read_image(paths[a]), read_image(paths[t])
            if mode == "crop":
                cells = [arcface_crop(src, faces[a].landmarks5), arcface_crop(tgt, faces[t].landmarks5)]
                cells += [(res.mask * 255).astype(np.uint8), res.image]
            else:
                cells = [_face_square(src, faces[a]), _face_square(tgt, faces[t]),
                         _face_square((res.mask * 255).astype(np.uint8), faces[t]),
                         _face_square(res.image, faces[t])]
            sheet.append(cells)
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    _save_png(out / "contact_sheet.png", contact_sheet(sheet, cell=112))
    summary = {"swapper": "blend", "params": sw.params(), "mode": mode, "seed": seed, "k": k, "region": region,
               "detector": detector,
               "n_inputs": len(files), "n_anchors": len(anchors), "n_ok": n_ok, "n_failed": len(anchors) - n_ok,
               "manifest": str(out / "manifest.csv"), "contact_sheet": str(out / "contact_sheet.png")}
    (out / "swap.json").write_text(json.dumps(summary, indent=2))
    return summary


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
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    _save_png(out / "contact_sheet.png", contact_sheet(sheet, cell=160, per_line=4, labels=("result",)))
    summary = {"swapper": name, "root": str(root), "compression": compression, "frames": frames, "n_ok": n,
               "n_failed": len(sw.errors), "manifest": str(out / "manifest.csv"),
               "contact_sheet": str(out / "contact_sheet.png")}
    (out / "swap.json").write_text(json.dumps(summary, indent=2))
    return summary


def register(app) -> None:
    """Add the ``swap`` command to the ``bench`` typer app."""
    import typer

    @app.command("swap")
    def swap_cmd(
        inputs: List[Path] = typer.Argument(..., help="image files/folders (identity = parent folder name); "
                                                      "for ffpp:<Method>, the FF++ root"),
        swapper: str = typer.Option("blend", "--swapper", "-s", help="blend | ffpp:<Method> (bench list swappers)"),
        out: Path = typer.Option(..., "--out", "-o", help="output folder"),
        seed: int = typer.Option(0, "--seed", help="seed of the partner choice (and of --limit's sample)"),
        k: int = typer.Option(100, "--k", help="random other-identity candidates per anchor"),
        mode: str = typer.Option("frame", "--mode", help="frame (full images, the default of every blend) | crop "
                                                         "(112 ArcFace crops, the paper's geometry)"),
        partner: str = typer.Option("nearest-landmark", "--partner", help="nearest-landmark | random"),
        limit: Optional[int] = typer.Option(None, "--limit", help="at most this many swaps (a seeded sample of "
                                                                 "anchors; FF++: frames)"),
        region: str = typer.Option("face", "--region", "--mask", help="blended face region: face | inner | "
                                                                      "parsing:<BiSeNet .pth> (idbench.regions)"),
        detector: str = typer.Option("auto", "--detector", "-d"),
        compression: str = typer.Option("c23", "--compression", help="FF++ compression (c0, c23, c40)"),
        frames: int = typer.Option(10, "--frames", help="FF++ frames per video"),
        sheet_rows: int = typer.Option(40, "--sheet-rows", help="swaps shown on the contact sheet"),
        device: str = typer.Option("cpu", "--device"),
        no_cache: bool = typer.Option(False, "--no-cache"),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
    ):
        """Write swapped images, masks, a manifest CSV and a contact sheet into --out."""
        from idbench.bench.cli import fail
        from idbench.cache import Cache
        from idbench.errors import IdbenchError

        if mode not in ("crop", "frame"):
            fail(f"--mode must be crop or frame, got {mode!r}")
        try:
            from idbench.bench.validate import validate_command

            validate_command(detector=detector, inputs=inputs, out_dir=out, cache_dir=cache_dir, no_cache=no_cache)
            from idbench.swapper import SWAPPERS, parse_swapper

            name, _ = parse_swapper(swapper)  # unknown names raise with suggestions
            kind = SWAPPERS.spec(name).kind
            if kind == "pseudo":
                s = swap_blend(inputs, out, seed=seed, k=k, mode=mode, limit=limit, region=region, detector=detector,
                               partner=partner, cache=Cache(cache_dir, enabled=not no_cache), device=device,
                               sheet_rows=sheet_rows, progress=True)
            elif kind == "dataset" and name.startswith("ffpp:"):
                if len(inputs) != 1:
                    fail("ffpp:<Method> takes exactly one INPUT: the FaceForensics++ root")
                s = swap_ffpp(name, inputs[0], out, compression=compression, frames=frames, limit=limit,
                              sheet_rows=sheet_rows)
            else:
                fail(f"swapper {swapper!r} cannot be run by bench swap (it reads results; use bench run --swappers)")
        except IdbenchError as e:
            fail(str(e))
        typer.echo(f"{s['n_ok']} swaps written, {s['n_failed']} failed -> {s['manifest']}, {s['contact_sheet']}")
