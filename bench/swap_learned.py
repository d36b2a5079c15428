"""``bench swap --swapper inswapper|blendswap|simswap``: learned swaps of a folder of photos, pasted back.

Each image (identity = its parent folder) is a source; its target is a seeded partner of another identity
(the pair rule of every pair-swap, :func:`idbench.swapper.base.plan_partners`: ``nearest-landmark`` among
``k`` random faces, or ``random``). The source identity is swapped onto the target face and the result is
the full target frame. Outputs match ``bench swap --swapper blend``: ``swaps/``, ``masks/``, ``manifest.csv``
(every pair, with status and reason), ``contact_sheet.png`` (source, target, mask, result) and ``swap.json``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


def swap_learned(name: str, inputs: Sequence[Path], out: Path, weights=None, seed: int = 0, k: int = 100,
                 partner: str = "nearest-landmark", limit: Optional[int] = None, detector: str = "auto",
                 cache=None, device: str = "cpu", sheet_rows: int = 40, progress: bool = False) -> Dict[str, object]:
    """Run the learned swapper ``name`` over ``inputs``; returns the summary written to ``swap.json``."""
    from tqdm.auto import tqdm

    from idbench.bench.swap_cli import MANIFEST_COLUMNS, _face_square, _safe, _save_png, contact_sheet
    from idbench.cache import Cache
    from idbench.imageio import read_image
    from idbench.swapper import SwapError, create_swapper
    from idbench.swapper.base import plan_partners

    sw = create_swapper(name, weights=weights, device=device)  # weights first: a missing file fails before work
    from idbench.bench.swap_cli import detect_inputs

    cache = cache if cache is not None else Cache(enabled=False)
    files, faces, errors = detect_inputs(inputs, detector, cache, device, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [p.parent.name for p in files]
    partners, _ = plan_partners(faces, ids, partner, k, seed)
    sources = list(range(len(files)))
    if limit is not None and 0 <= limit < len(files):
        sources = sorted(np.random.default_rng(seed).choice(len(files), limit, replace=False).tolist())
    rows: List[dict] = []
    sheet: List[List[np.ndarray]] = []
    for s in tqdm(sources, desc=name, disable=not progress):
        t = int(partners[s])
        row = {c: "" for c in MANIFEST_COLUMNS}
        row.update(source_path=str(files[s]), source_identity=ids[s], identity_label=ids[s], status="error")
        if t < 0:
            row["reason"] = f"source: {errors[s]}" if s in errors else "no partner: no usable face of another identity"
            rows.append(row)
            continue
        row.update(target_path=str(files[t]), target_identity=ids[t])
        try:
            src, tgt = read_image(files[s]), read_image(files[t])
            res = sw.swap(src, faces[s], tgt, faces[t])
        except SwapError as e:
            row["reason"] = str(e)
            rows.append(row)
            continue
        fname = f"{_safe(files[s].stem)}__on__{_safe(ids[t])}_{_safe(files[t].stem)}.png"
        img_rel, mask_rel = Path("swaps") / _safe(ids[s]) / fname, Path("masks") / _safe(ids[s]) / fname
        _save_png(out / img_rel, res.image)
        _save_png(out / mask_rel, np.clip(np.rint(res.mask * 255), 0, 255).astype(np.uint8))
        row.update(output_path=str(img_rel), mask_path=str(mask_rel), status="ok")
        rows.append(row)
        if len(sheet) < sheet_rows:
            mask8 = (res.mask * 255).astype(np.uint8)
            sheet.append([_face_square(src, faces[s]), _face_square(tgt, faces[t]), _face_square(mask8, faces[t]),
                          _face_square(res.image, faces[t])])
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    _save_png(out / "contact_sheet.png", contact_sheet(sheet, cell=112))
    n_ok = sum(r["status"] == "ok" for r in rows)
    summary = {"swapper": name, "params": sw.params(), "provenance": sw.provenance(), "seed": seed, "k": k,
               "partner": partner, "detector": detector, "n_inputs": len(files), "n_sources": len(sources),
               "n_ok": n_ok, "n_failed": len(sources) - n_ok, "manifest": str(out / "manifest.csv"),
               "contact_sheet": str(out / "contact_sheet.png")}
    (out / "swap.json").write_text(json.dumps(summary, indent=2))
    return summary
