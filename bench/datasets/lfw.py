"""The ``lfw`` dataset: LFW with the View 2 protocol (pairs.txt: 10 folds x 600 pairs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np

from idbench.errors import InputError
from idbench.imageio import IMAGE_EXTS

from . import ROOT, Dataset, DatasetSpec, Item, register_dataset

LFW_CENTER = (125.0, 125.0)  # LFW images are 250 x 250, centred on the labelled face


@register_dataset(DatasetSpec("lfw", "LFW with pairs.txt View 2 (10 folds x 600 pairs)", options=(ROOT,)))
def _lfw(spec, weights, device, root=None) -> Dataset:
    return lfw_dataset(root)


def lfw_dataset(root=None) -> Dataset:
    if root is None:
        raise InputError("dataset 'lfw' needs --root (the folder holding pairs.txt and the image folder)")
    root = Path(root)
    pairs_file = root / "pairs.txt"
    if not pairs_file.is_file():
        raise InputError(f"{pairs_file} not found (LFW View 2 protocol file)")
    img_dir = next((root / d for d in ("lfw-deepfunneled", "lfw", "lfw_funneled") if (root / d).is_dir()), None)
    if img_dir is None:
        raise InputError(f"no LFW image folder (lfw-deepfunneled/, lfw/) under {root}")
    lines = pairs_file.read_text(encoding="utf-8", errors="replace").split("\n")
    n_folds, n_per = _lfw_header(pairs_file, lines[0])
    index = {}
    items: List[Item] = []

    def item(name: str, num: str) -> int:
        p = img_dir / name / f"{name}_{int(num):04d}.jpg"
        if p not in index:
            index[p] = len(items)
            items.append(Item(p, name, center=LFW_CENTER))
        return index[p]

    pairs, folds = [], []
    body = [l.split() for l in lines[1:] if l.strip()]
    if len(body) != n_folds * n_per * 2:
        raise InputError(f"{pairs_file}: expected {n_folds * n_per * 2} pairs, found {len(body)}")
    numbered = [(n + 1, ln.split()) for n, ln in enumerate(lines) if n and ln.strip()]
    for k, (line_no, parts) in enumerate(numbered):
        _lfw_line(pairs_file, line_no, parts, same=(k // n_per) % 2 == 0)
        if len(parts) == 3:
            pairs.append((item(parts[0], parts[1]), item(parts[0], parts[2]), 1))
        else:
            pairs.append((item(parts[0], parts[1]), item(parts[2], parts[3]), 0))
        folds.append(k // (2 * n_per))
    used = {str(it.path) for it in items}
    unused = sum(1 for f in img_dir.rglob("*") if f.suffix.lower() in IMAGE_EXTS and str(f) not in used)
    notes = [f"{unused} images under {img_dir} are not in pairs.txt (not used by View 2)"] if unused else []
    return Dataset("lfw", str(root), items, f"LFW View 2: {len(pairs)} pairs over {len(items)} images, "
                   f"{n_folds} folds", split="view2", pairs=np.array(pairs, np.int64), folds=np.array(folds),
                   notes=notes)


def _lfw_header(f: Path, line: str) -> Tuple[int, int]:
    """``N_FOLDS PAIRS_PER_HALF`` (View 2: ``10 300``), both positive integers."""
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        from idbench.escape import shown

        raise InputError(f"{f}: line 1 must be 'N_FOLDS PAIRS_PER_FOLD_HALF' (two positive integers, View 2: "
                         f"'10 300'), got {shown(line.strip()[:60])!r}")
    return int(parts[0]), int(parts[1])


def _lfw_line(f: Path, line_no: int, parts: List[str], same: bool) -> None:
    """A pair line: ``name n1 n2`` (same person) or ``name1 n1 name2 n2`` (different), image numbers >= 1."""
    from idbench.escape import shown

    want = 3 if same else 4
    nums = [parts[1], parts[2]] if len(parts) == 3 else [parts[1], parts[3]] if len(parts) == 4 else []
    if len(parts) != want or not all(n.isdigit() and 1 <= int(n) <= 9999 for n in nums):
        form = "'name n1 n2' (a same-person pair)" if same else "'name1 n1 name2 n2' (a different-person pair)"
        raise InputError(f"{f}: line {line_no} must be {form} with image numbers 1..9999, got "
                         f"{shown(' '.join(parts)[:80])!r}")
    names = [parts[0]] if len(parts) == 3 else [parts[0], parts[2]]
    if any(n in (".", "..") or "/" in n or "\\" in n for n in names):
        raise InputError(f"{f}: line {line_no}: a name with a path separator or '..' ({shown(names[0])!r})")
