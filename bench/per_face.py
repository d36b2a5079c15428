"""The library behind ``bench estimate`` (pose / gaze / expression per face, to CSV) and ``bench saliency``
(maps + ratios); the commands are :mod:`idbench.bench.cli.estimate` and :mod:`idbench.bench.cli.saliency`.

``bench estimate --estimator pose|gaze|expression|shape|<name> --out FILE.csv INPUT...``: INPUT are image
files or folders (searched recursively). One row per detected face: ``path, face, x1, y1, x2, y2``,
the estimator's named columns (``yaw, pitch, roll`` for pose, ``pitch, yaw`` for gaze, ...) and
``status`` (``ok`` or why the face has no estimate). Images without a face get one row with
``face = -1`` and status ``no face``.

``bench saliency --encoder NAME INPUT... --out DIR [--method occlusion|gradient|integrated|gradcam]``:
the largest face of each image, aligned for the encoder; writes ``DIR/<folder>_<image stem>_<method>.png``
(crop | overlay with the inner-face mask outlined) and ``DIR/saliency.csv`` (path, box, method,
inner-face ratio, similarity to the reference). The reference is the crop's own embedding unless
``--reference IMAGE`` gives another photo (its largest face).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import numpy as np

from idbench.escape import csv_cell

ESTIMATE_HEAD = ("path", "frame", "face", "x1", "y1", "x2", "y2")  # frame: index in a video input, -1 for a photo
SALIENCY_COLUMNS = ("path", "frame", "x1", "y1", "x2", "y2", "method", "inner_ratio", "similarity", "overlay", "status")


def estimate_files(inputs, estimator: str, out: Path, weights: Optional[str] = None, device: str = "cpu",
                   detector: str = "auto", largest: bool = False, frames: int = 10) -> dict:
    """Run one estimator on every face of every input image and write the CSV; returns counts."""
    from idbench.analysis.estimators import create_estimator
    from idbench.errors import IdbenchError

    est = create_estimator(estimator, weights=weights, device=device)
    cols = list(ESTIMATE_HEAD) + list(est.columns) + ["status"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_img = n_face = n_ok = 0
    drops = []
    with open(out, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(cols)
        stream, vids = _detected(inputs, detector, device, all_faces=not largest, frames=frames)
        drops += [{"stage": "read", "item": p, "reason": r} for p, r in vids.failed]
        for d in stream:
            n_img += 1
            (path, frame), img = vids.source(d.path), None
            if d.error:
                status = "no face" if d.error == "no face detected" else f"error: {d.error}"
                drops.append({"stage": "detect", "item": vids.label(d.path), "reason": d.error})
                wr.writerow([csv_cell(str(path)), frame, -1, "", "", "", ""] + [""] * len(est.columns)
                            + [csv_cell(status)])
                continue
            img, faces = d.image, d.faces
            for i, face in enumerate(faces[:1] if largest else faces):
                n_face += 1
                box = [f"{float(v):.1f}" for v in face.box]
                try:
                    v = est.estimate(img, face)
                    vals, status = [f"{x:.6g}" for x in v], "ok"
                    n_ok += 1
                except IdbenchError as e:
                    vals, status = [""] * len(est.columns), f"error: {e}"
                    drops.append({"stage": "estimate", "item": f"{vids.label(d.path)} face {i}", "reason": str(e)})
                wr.writerow([csv_cell(str(path)), frame, i] + box + vals + [csv_cell(status)])
    return {"estimator": est.spec.name, "images": n_img, "faces": n_face, "estimated": n_ok, "csv": str(out),
            "failures": drops}


def _detected(inputs, detector: str, device: str, all_faces: bool = False, frames: int = 10):
    """The pipeline's detect stage over every image under ``inputs`` (cached in the default cache), videos
    read as ``frames`` evenly spaced frames; returns (the stream, the expansion: each row's video and frame)."""
    from idbench.cache import Cache
    from idbench.imageio import list_image_files
    from idbench.pipeline import detect_stream, file_item

    from .video_inputs import expand_videos

    vids = expand_videos(list_image_files(inputs), frames)
    return detect_stream((file_item(p) for p in vids.files), detector, Cache(), device, all_faces), vids


def saliency_files(inputs, encoder: str, out_dir: Path, method: str = "occlusion", weights: Optional[str] = None,
                   device: str = "cpu", detector: str = "auto", reference: Optional[Path] = None,
                   region: str = "inner", frames: int = 10) -> dict:
    """Saliency overlays and the share of saliency inside ``region`` for the largest face of each image."""
    from idbench.analysis import saliency as S
    from idbench.encoders import create_encoder
    from idbench.errors import IdbenchError, NoFaceError
    from idbench.pipeline import detect_file
    from idbench.regions import check_region

    if method not in S.METHODS:
        from idbench.errors import InputError

        raise InputError(f"--method must be one of {', '.join(S.METHODS)}, got {method!r}")
    check_region(region)
    enc = create_encoder(encoder, weights, device)
    ref = None
    if reference is not None:
        rd = detect_file(reference, detector, device=device)
        if rd.error:
            raise NoFaceError(f"{reference}: {rd.error} in the reference image")
        rcrop, _ = S.crop_face(rd.image, rd.faces[0], enc)
        ref = enc.embed(rcrop[None])[0]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, ratios, used = [], [], set()
    stream, vids = _detected(inputs, detector, device, frames=frames)
    for p, r in vids.failed:
        rows.append({**dict.fromkeys(SALIENCY_COLUMNS, ""), "path": p, "frame": -1, "method": method,
                     "status": f"error: {r}"})
    for d in stream:
        path, frame = vids.source(d.path)
        row = dict.fromkeys(SALIENCY_COLUMNS, "")
        row.update(path=str(path), frame=frame, method=method)
        if d.error:
            row["status"] = "no face" if d.error == "no face detected" else f"error: {d.error}"
            rows.append(row)
            continue
        face = d.faces[0]
        try:
            res = S.face_saliency(enc, d.image, face, method, ref, region)
        except IdbenchError as e:
            row["status"] = f"error: {e}"
            rows.append(row)
            continue
        stem = f"{Path(path).parent.name}_{Path(path).stem}" if Path(path).parent.name else Path(path).stem
        stem += f"_f{frame}" if frame >= 0 else ""
        name, k = f"{stem}_{method}.png", 1
        while name in used:
            k += 1
            name = f"{stem}-{k}_{method}.png"
        used.add(name)
        S.save_png(out_dir / name, np.concatenate([res["crop"], res["overlay"]], axis=1))
        row.update(x1=f"{face.box[0]:.1f}", y1=f"{face.box[1]:.1f}", x2=f"{face.box[2]:.1f}", y2=f"{face.box[3]:.1f}",
                   inner_ratio="" if res["inner_ratio"] is None else f"{res['inner_ratio']:.6f}",
                   similarity=f"{res['similarity']:.6f}", overlay=name,
                   status="ok" if res["inner_ratio"] is not None else "ok (all-zero map: no ratio)")
        if res["inner_ratio"] is not None:
            ratios.append(res["inner_ratio"])
        rows.append(row)
    csv_path = out_dir / "saliency.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(SALIENCY_COLUMNS))
        wr.writeheader()
        wr.writerows([{k: csv_cell(v) for k, v in r.items()} for r in rows])  # file names are not formulas
    return {"encoder": enc.spec.name, "method": method, "region": region, "images": len(rows), "maps": len(ratios),
            "inner_ratio_mean": float(np.mean(ratios)) if ratios else None, "csv": str(csv_path),
            "failures": [{"stage": "saliency", "item": r["path"], "reason": r["status"]} for r in rows
                         if not str(r["status"]).startswith("ok")]}
