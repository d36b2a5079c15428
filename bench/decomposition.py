"""``bench run --analyses decomposition``: which attribute does each encoder treat as identity?

On the bias analysis' own anchors, positives, negatives and partners (:mod:`.encoder_analysis`),
every planned swap (source image of the anchor's identity, its nearest-landmark partner) is rebuilt
once per controlled variant of :mod:`idbench.swapper.variants` (``skin``, ``outside``, ``shape``,
``inner``, ``full``) and embedded by every encoder. Per encoder and variant: the bias numbers of
:func:`idbench.analysis.bias_gap` with the swapped scores of that variant (bootstrap intervals).

*Mask sensitivity*: the full pseudo-swap under each named face region (:data:`MASK_REGIONS`): with
the ``face`` region it is the ``full`` variant, with ``inner`` the ``inner`` variant, so those
swaps are built once and reported under both names.

*Pairwise significance*: for every variant and every pair of encoders, the paired difference of
mean gap, relative gap and AUC (:func:`idbench.analysis.paired_bias_difference`, one anchor = one
resampling unit) and Holm's adjustment over the encoder pairs of each variant and metric
(:func:`idbench.analysis.holm_adjust`); a difference is significant when its adjusted p < 0.05.
"""

from __future__ import annotations

from itertools import combinations
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from .encoder_analysis import BiasPlan, pair_scores

VARIANT_ORDER = ("skin", "outside", "shape", "inner", "full")
MASK_REGIONS = {"inner": "inner", "face": "full"}  # region -> the variant that is the full swap under it
ALPHA = 0.05
COLUMN_METRICS = (("decomp_relative_gap", "relative_gap"), ("decomp_mean_gap", "mean_gap"), ("decomp_auc", "auc"))


def _swapped_scores(emb: np.ndarray, plan: BiasPlan, swap_emb: np.ndarray):
    """(anchor-vs-swap cosines of the usable swaps, the usable mask over ``plan.swaps``)."""
    ok = np.isfinite(swap_emb).all(1)
    anchors = np.array([s[0] for s in plan.swaps], np.int64)
    return np.einsum("ij,ij->i", emb[anchors[ok]], swap_emb[ok]).astype(np.float64), ok


def _all_scores(emb: np.ndarray, plan: BiasPlan, swap_emb: np.ndarray) -> np.ndarray:
    """Anchor-vs-swap cosine of every planned swap, NaN where the swap failed (per-sample scores)."""
    out = np.full(len(plan.swaps), np.nan)
    s, ok = _swapped_scores(emb, plan, swap_emb)
    out[ok] = s
    return out


def _encoder_variant(pos, neg, swp, seed, n_boot) -> dict:
    from idbench import analysis as M

    try:
        out = M.bias_gap(pos, swp, neg, n_boot=n_boot, seed=seed).to_dict()
    except M.MetricInputError as e:
        return {"error": str(e)}
    return {k: out[k] for k in ("n_swapped", "swapped_mean", "mean_gap", "mean_gap_ci", "relative_gap",
                                "relative_gap_ci", "auc", "auc_ci")}


def _pairwise(names, pos, neg, swaps, groups, ok_by, seed, n_boot, n_perm) -> List[dict]:
    """Every pair of encoders on every variant: paired differences, p-values, Holm per (variant, metric)."""
    from idbench import analysis as M
    from idbench.analysis.paired import PAIRED_METRICS

    rows = []
    for v in swaps[names[0]]:
        for a, b in combinations(names, 2):
            keep = ok_by[a][v] & ok_by[b][v]  # swaps usable for both encoders
            sa, sb = swaps[a][v][keep[ok_by[a][v]]], swaps[b][v][keep[ok_by[b][v]]]
            try:
                r = M.paired_bias_difference(pos[a], sa, neg[a], pos[b], sb, neg[b], positive_groups=groups["p"],
                                             swapped_groups=groups["s"][keep], negative_groups=groups["n"],
                                             n_boot=n_boot, n_perm=n_perm, seed=seed)
            except M.MetricInputError as e:
                rows.append({"variant": v, "encoder_a": a, "encoder_b": b, "error": str(e)})
                continue
            d = r.to_dict()
            for m in PAIRED_METRICS:
                rows.append({"variant": v, "encoder_a": a, "encoder_b": b, "metric": m, **d[m],
                             "n_units": r.n_units, "n_swapped": int(keep.sum())})
    families: Dict[tuple, List[int]] = {}  # one family per (variant, metric): every pair of encoders
    for i, r in enumerate(rows):
        if r.get("p_value") is not None:
            families.setdefault((r["variant"], r["metric"]), []).append(i)
    for idx in families.values():
        for i, p in zip(idx, M.holm_adjust([rows[i]["p_value"] for i in idx])):
            rows[i]["p_holm"] = float(p)
            rows[i]["significant"] = bool(p < ALPHA)
    return rows


def summarise(dataset_emb: Mapping[str, np.ndarray], plan: BiasPlan, swap_emb: Mapping[str, Mapping[str, np.ndarray]],
              seed: int = 0, n_boot: int = 1000, n_perm: int = 2000) -> dict:
    """All decomposition numbers from embeddings: ``swap_emb[variant][encoder][i]`` embeds the
    variant's swap of ``plan.swaps[i]`` (NaN row = that swap failed; it is left out for that encoder).
    ``swapped_scores[encoder][variant]`` keeps every per-swap cosine (None = failed), in plan order."""
    names = list(dataset_emb)
    variants = [v for v in VARIANT_ORDER if v in swap_emb] + [v for v in swap_emb if v not in VARIANT_ORDER]
    pos = {n: pair_scores(dataset_emb[n], plan.positive) for n in names}
    neg = {n: pair_scores(dataset_emb[n], plan.negative) for n in names}
    swaps: Dict[str, Dict[str, np.ndarray]] = {n: {} for n in names}
    ok_by: Dict[str, Dict[str, np.ndarray]] = {n: {} for n in names}
    per_encoder: Dict[str, dict] = {n: {} for n in names}
    for v in variants:
        for n in names:
            s, ok = _swapped_scores(dataset_emb[n], plan, swap_emb[v][n])
            swaps[n][v], ok_by[n][v] = s, ok
            per_encoder[n][v] = _encoder_variant(pos[n], neg[n], s, seed, n_boot) if len(s) else \
                {"error": "no usable swap"}
    groups = {"p": np.array([a for a, _ in plan.positive]), "n": np.array([a for a, _ in plan.negative]),
              "s": np.array([s[0] for s in plan.swaps])}
    pairwise = _pairwise(names, pos, neg, swaps, groups, ok_by, seed, n_boot, n_perm) if len(names) > 1 else []
    masks = {r: {n: per_encoder[n][v] for n in names} for r, v in MASK_REGIONS.items() if v in variants}
    scores = {n: {v: [float(x) if np.isfinite(x) else None for x in _all_scores(dataset_emb[n], plan, swap_emb[v][n])]
                  for v in variants} for n in names}
    return {"variants": variants, "encoders": per_encoder, "mask_sensitivity": masks, "swapped_scores": scores,
            "mask_regions": {r: v for r, v in MASK_REGIONS.items() if v in variants},
            "pairwise": pairwise, "alpha": ALPHA, "n_anchors": int(len(plan.anchors)),
            "n_planned_swaps": int(len(plan.swaps)), "n_boot": n_boot, "n_perm": n_perm, "seed": seed}


def leaderboard_columns(dec: dict) -> Dict[str, Dict[str, Optional[float]]]:
    """encoder -> {``decomp_relative_gap[skin]``: value, ..., ``mask_relative_gap[inner]``: value}."""
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for n, by_v in dec.get("encoders", {}).items():
        cols = {}
        for col, key in COLUMN_METRICS:
            for v in dec["variants"]:
                cols[f"{col}[{v}]"] = by_v.get(v, {}).get(key)
        for r, v in dec.get("mask_regions", {}).items():
            cols[f"mask_relative_gap[{r}]"] = by_v.get(v, {}).get("relative_gap")
        out[n] = cols
    return out


def significance_rows(dec: dict, metric: str = "relative_gap") -> List[dict]:
    """The pairwise table for one metric (rows of ``dec["pairwise"]``)."""
    return [r for r in dec.get("pairwise", []) if r.get("metric") == metric]


def run_decomposition(cfg, ctx, plan: Optional[BiasPlan], full_emb: Optional[Mapping[str, np.ndarray]], encoders,
                      cache, failures: list, out_dir) -> Optional[dict]:
    """Build and embed every variant on the bias plan (the ``full`` variant is the bias analysis' own
    swaps, ``full_emb``), compute :func:`summarise`, write the example images. None (and a listed
    failure) when the dataset has no bias protocol (e.g. LFW's pairs)."""
    from idbench.pipeline import failure
    from idbench.swapper.variants import VariantSwapper

    from .run import plan_swap_embeddings

    if plan is None or not len(plan.swaps):
        failures.append(failure("decomposition", str(ctx.root), "no bias plan: the decomposition needs a dataset "
                                "with two or more images per identity and no protocol pairs"))
        return None
    swap_emb = {}
    for v in VARIANT_ORDER:
        if v == "full":
            swap_emb[v] = dict(full_emb)
            continue
        sw = VariantSwapper(v, k=cfg.k_partners, seed=cfg.seed)
        swap_emb[v] = plan_swap_embeddings(sw, plan, ctx, encoders, cfg, cache, failures, f"variant {v}")
    dec = summarise(ctx.table.embeddings, plan, swap_emb, seed=cfg.seed, n_boot=cfg.n_boot, n_perm=cfg.n_perm)
    dec["example"] = _example(ctx, plan, swap_emb, out_dir, failures, cfg.seed)
    return dec


def _example(ctx, plan: BiasPlan, swap_emb, out_dir, failures: list, seed: int) -> Optional[dict]:
    """The first planned pair every variant swapped, drawn for the report (a failure is listed, not fatal)."""
    from idbench.errors import IdbenchError
    from idbench.pipeline import failure

    ok = np.ones(len(plan.swaps), bool)
    for by_enc in swap_emb.values():
        for e in by_enc.values():
            ok &= np.isfinite(e).all(1)
    if not ok.any():
        return None
    _, s, p = plan.swaps[int(np.flatnonzero(ok)[0])]
    t = ctx.table
    try:
        paths = write_examples(out_dir, t.item(s).image, t.faces[s], t.item(p).image, t.faces[p], seed)
    except IdbenchError as e:
        failures.append(failure("decomposition", f"{t.paths[s]} -> {t.paths[p]}", f"example image: {e}"))
        return None
    return {**paths, "source_path": t.paths[s], "partner_path": t.paths[p]}


def summary_lines(dec: dict) -> List[str]:
    """Plain-text tables for the terminal: relative gap [CI] per encoder x variant, mask sensitivity,
    and every significant pairwise difference (Holm-adjusted)."""
    def cell(d):
        if d.get("relative_gap") is None:
            return "n/a"
        ci = d.get("relative_gap_ci")
        return f"{d['relative_gap']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    names = list(dec["encoders"])
    w = max(len(n) for n in names) + 2
    lines = ["relative gap [95% CI] per variant:", " " * w + "".join(f"{v:>22}" for v in dec["variants"])]
    lines += [f"{n:<{w}}" + "".join(f"{cell(dec['encoders'][n].get(v, {})):>22}" for v in dec["variants"])
              for n in names]
    for r, by_enc in dec.get("mask_sensitivity", {}).items():
        lines.append(f"mask sensitivity, region {r}: " + ", ".join(f"{n} {cell(by_enc[n])}" for n in names))
    sig = [r for r in dec.get("pairwise", []) if r.get("significant")]
    lines.append(f"pairwise: {len(sig)} of {sum(1 for r in dec.get('pairwise', []) if 'p_holm' in r)} paired "
                 "differences significant (Holm, 0.05)" + (":" if sig else ""))
    lines += [f"  {r['variant']:>8} {r['metric']:<12} {r['encoder_a']} - {r['encoder_b']}: {r['difference']:+.4f} "
              f"p={r['p_value']:.3g} (Holm {r['p_holm']:.3g})" for r in sig]
    return lines


def parse_analyses(text: str, known: Sequence[str]) -> List[str]:
    """``"bias,verification"`` -> the list, checked against ``known`` (one-line error otherwise)."""
    from idbench.errors import InputError

    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in known]
    if bad or not names:
        raise InputError(f"--analyses: unknown {', '.join(bad) or '(empty list)'}; use a comma list of "
                         f"{', '.join(known)}")
    return names


# --- example images (report, README) ------------------------------------------------------------------

def _region_masks(image: np.ndarray, lm68: np.ndarray) -> Dict[str, np.ndarray]:
    from idbench.regions import region_mask

    return {r: region_mask(r, lm68, image.shape[:2]) for r in MASK_REGIONS}


def regions_image(image: np.ndarray, face, cell: int = 160) -> np.ndarray:
    """The face with the outline of each region of :data:`MASK_REGIONS` drawn (inner: yellow, face: cyan)."""
    import cv2

    from .swap_folder import _face_square

    colours = {"inner": (255, 220, 0), "face": (0, 200, 255)}
    out = image.copy()
    thick = max(1, int(round(max(image.shape[:2]) / 250)))
    for r, m in _region_masks(image, face.landmarks68).items():
        contours, _ = cv2.findContours((m > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, colours[r], thick, cv2.LINE_AA)
    return cv2.resize(_face_square(out, face), (cell, cell), interpolation=cv2.INTER_AREA)


def variants_sheet(source_image: np.ndarray, source_face, partner_image: np.ndarray, partner_face,
                   cell: int = 112, seed: int = 0, regions: bool = False) -> np.ndarray:
    """One row: source, partner, every variant (face squares) and, with ``regions``, the source with
    the face regions drawn; a header names the columns."""
    from idbench.swapper.variants import VARIANTS, make_variant

    from .swap_folder import _face_square, contact_sheet

    row = [_face_square(source_image, source_face), _face_square(partner_image, partner_face)]
    for v in VARIANTS:
        r = make_variant(v, source_image, source_face, partner_image, partner_face, seed=seed)
        row.append(_face_square(r.image, r.face))
    labels = ("source", "partner") + tuple(VARIANTS)
    if regions:
        row.append(regions_image(source_image, source_face, cell))
        labels += ("regions",)
    return contact_sheet([row], cell=cell, per_line=1, labels=labels)


def write_examples(out_dir, source_image, source_face, partner_image, partner_face, seed: int = 0) -> Dict[str, str]:
    """``decomposition/variants.png`` and ``decomposition/regions.png`` in ``out_dir`` (paths relative to it)."""
    from pathlib import Path

    from .swap_folder import _save_png

    d = Path(out_dir) / "decomposition"
    _save_png(d / "variants.png", variants_sheet(source_image, source_face, partner_image, partner_face, seed=seed))
    _save_png(d / "regions.png", regions_image(source_image, source_face))
    return {"example_image": "decomposition/variants.png", "regions_image": "decomposition/regions.png"}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m idbench.bench.decomposition SOURCE PARTNER --out FILE.png``: the variants of one pair
    and the face regions (a palette PNG, the README's ``docs/variants.png``)."""
    import argparse
    from pathlib import Path

    from idbench.pipeline import detect_file

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("source")
    ap.add_argument("partner")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--cell", type=int, default=96)
    ap.add_argument("--detector", default="dlib-hog")
    a = ap.parse_args(argv)
    s, p = detect_file(a.source, a.detector), detect_file(a.partner, a.detector)
    for d in (s, p):
        if not d.faces:
            raise SystemExit(f"{d.path}: {d.error or 'no face detected'}")
    sheet = variants_sheet(s.image, s.faces[0], p.image, p.faces[0], cell=a.cell, regions=True)
    from PIL import Image  # a 256-colour palette keeps the README's sheet small

    a.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(256, dither=Image.Dither.NONE).save(a.out, optimize=True)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
