"""Swap evaluation: both conventions in use, for every swapper given with ``--swappers``.

For each (target, source) pair and its swapped image:

* FaceShifter line: top-1 ID retrieval of the swap among all dataset faces with an evaluator encoder
  (``--id-encoders``; a hit when the nearest face belongs to the source identity / source video),
  pose error (L2 of yaw/pitch/roll) and expression error (L2) between target and swap;
* BlendFace's: identity cosine distance swap vs source per encoder, expression, pose and gaze L1
  distances target vs swap, and their relative forms (:func:`idbench.analysis.relative_error`:
  the share of swaps closer to the right reference than to the wrong one).

Every swapper is a :class:`idbench.swapper.Swapper` from the registry (``blend``, ``ffpp:<Method>``,
``results:DIR``, ...). Its outputs go through the one pipeline (:mod:`idbench.pipeline`): re-detected
once (a swap with no face is a listed failure, never scored at the target's face), aligned per encoder,
embedded in batches, all cached by content; attribute estimates are cached by content too.
"""

from __future__ import annotations

from functools import partial
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from idbench.cache import Cache, content_key
from idbench.errors import IdbenchError
from idbench.pipeline import DetectedImage, detect_stream, embed_detected, failure, lazy_item, prebuild

ESTIMATOR_DEFAULTS = {"pose": "pose.pnp", "expression": "expression.landmarks", "gaze": "gaze.iris"}
ESTIMATE_VERSION = 1


def parse_swap_estimators(text: str) -> Dict[str, str]:
    """``--swap-estimators pose=pose.hopenet,...``: per kind, a registered estimator of that kind."""
    from idbench.analysis.estimators import list_estimators

    out = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        kind, _, name = item.partition("=")
        if kind not in ESTIMATOR_DEFAULTS or name not in list_estimators(kind=kind):
            raise IdbenchError(f"--swap-estimators takes KIND=NAME with KIND in {', '.join(ESTIMATOR_DEFAULTS)} and "
                               f"NAME an estimator of that kind (bench list estimators), got {item!r}")
        out[kind] = name
    return out


class SwapBuildError(IdbenchError):
    """A swapper could not produce one item (the message starts with "swap failed")."""


def _guarded(load, name: str):
    return partial(_guarded_build, load, name)  # picklable when ``load`` is: swaps are built in workers


def _guarded_build(load, name: str) -> np.ndarray:
    try:
        img = load()
    except Exception as e:  # noqa: BLE001 - any failure of one swap is that item's failure, listed
        raise SwapBuildError(f"swap failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.dtype != np.uint8:
        raise SwapBuildError(f"swap failed: {name} is not an RGB uint8 image")
    return img


def swap_items(swapper, items, ctx) -> Iterator[DetectedImage]:
    """A swapper's outputs as pipeline items (built only when a stage misses its cache)."""
    for i, out in enumerate(swapper.outputs(items, ctx)):
        key = out.key or content_key("uncached", swapper.name, out.item.name, i)
        yield lazy_item(out.item.name, key, _guarded(out.load, out.item.name),
                        {"swap": out.item, "provenance": out.provenance, "index": i, "cacheable": bool(out.key)})


def swap_failures(skipped: Iterable[Tuple[str, str]], stage: str = "swap") -> List[dict]:
    """``stage`` says who asked for the swaps (``swap``: a swapper's evaluation; ``bias-swap``: the bias analysis)."""
    return [failure(stage if r.startswith("swap failed") else f"{stage}-detect", p,
                    r if r.startswith("swap failed") else f"no face in the swap ({r})") for p, r in skipped]


def make_estimators(device: str = "cpu",
                    chosen: Optional[Dict[str, str]] = None) -> Tuple[Dict[str, tuple], List[dict]]:
    """The pose/expression/gaze estimators (defaults, or ``chosen`` per kind); one that cannot be built is a listed
    failure."""
    fails: List[dict] = []
    try:
        from idbench.analysis.estimators import create_estimator
    except ImportError as e:
        return {}, [failure("estimator", "all", f"estimators unavailable: {e}")]
    out = {}
    for kind, name in {**ESTIMATOR_DEFAULTS, **(chosen or {})}.items():
        try:
            out[kind] = (name, create_estimator(name, device=device))
        except Exception as e:  # noqa: BLE001 - reported, the other columns go on
            fails.append(failure("estimator", name, f"{type(e).__name__}: {e}"))
    return out, fails


def estimate_cached(name: str, est, item: DetectedImage, face, cache: Cache) -> np.ndarray:
    """``est.estimate(image, face)``, cached by content (raises IdbenchError, also when cached)."""
    key = content_key("est", ESTIMATE_VERSION, name, item.key, np.round(face.box, 1).tolist())
    hit = cache.get_json("est", key)
    if hit is not None:
        if isinstance(hit, dict):
            raise IdbenchError(hit["error"])
        return np.asarray(hit, np.float64)
    try:
        value = np.asarray(est.estimate(item.image, face), np.float64)
    except IdbenchError as e:
        cache.put_json("est", key, {"error": str(e)})
        raise
    cache.put_json("est", key, value.tolist())
    return value


def _estimate_stage(items, estimators, cache) -> Iterator[DetectedImage]:
    for item in items:
        if not item.error and item.faces:
            est = {}
            for kind, (name, e) in estimators.items():
                try:
                    est[kind] = estimate_cached(name, e, item, item.faces[0], cache)
                except IdbenchError as err:
                    est[kind] = err
            item.meta["est"] = est
        yield item


def embed_swaps(swapper, items, ctx, encoders, cfg, cache, estimators=None, desc="swaps", total=None):
    """Swapper outputs -> detect once -> (estimates) -> embed with every encoder: an EmbeddingTable."""
    stream = swap_items(swapper, items, ctx)
    if getattr(swapper, "build_in_workers", False):
        stream = prebuild(stream, cfg.detector, cache)
    stream = detect_stream(stream, cfg.detector, cache, cfg.device, batch=cfg.detect_batch)
    if estimators:
        stream = _estimate_stage(stream, estimators, cache)
    return embed_detected(stream, encoders, cfg.detector, cache, cfg.progress, total=total, desc=desc)


def _dataset_estimate(kind, name, est, ctx, row, cache, memo):
    """Attributes of a dataset face, estimated once per run (targets and sources recur; cached)."""
    if (kind, row) not in memo:
        t = ctx.table
        try:
            memo[(kind, row)] = estimate_cached(name, est, t.item(row), t.faces[row], cache)
        except IdbenchError as e:
            memo[(kind, row)] = e
    return memo[(kind, row)]


def label_means(E: np.ndarray, labels: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of ``E``'s rows of each ``wanted`` label (one pass over E: O(N + len(wanted)))."""
    uniq, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(inv, minlength=len(uniq)))[:-1]]
    sums = np.add.reduceat(E[order], starts, axis=0, dtype=np.float64)  # one sum per label, in row order
    means = sums / np.bincount(inv, minlength=len(uniq))[:, None]
    means = (means / np.maximum(np.linalg.norm(means, axis=1), 1e-12)[:, None]).astype(E.dtype)
    return means[np.searchsorted(uniq, wanted)]  # normalised per label first: one N x D array, not three


def _identity_metrics(S, swaps, ctx, encoders, id_encs, M) -> Tuple[dict, dict, dict]:
    """Per-swap identity values (``id_distance``, ``id_relative``, ``id_retrieval_top1``), their directions
    and per-sample lists; each summary number is the mean of its per-swap values. ID retrieval searches every
    dataset face for a seeded, capped subset of the swaps (NaN for the others): linear in the dataset."""
    from idbench.analysis.sampling import capped_indices

    from idbench.analysis.protocol import MAX_SWAP_PROBES

    tgt = np.array([s.target for s in swaps])
    src_labels = np.array([s.source_label for s in swaps])
    probes = capped_indices(len(swaps), MAX_SWAP_PROBES, 0)
    values, directions, per = {}, {}, {}
    for n in encoders:
        e = S.embeddings[n]
        E = ctx.table.embeddings[n]
        src_mean = label_means(E, np.asarray(ctx.labels), src_labels)
        d_src = 1 - np.einsum("ij,ij->i", e, src_mean)
        d_tgt = 1 - np.einsum("ij,ij->i", e, E[tgt])
        values[f"id_distance[{n}]"], directions[f"id_distance[{n}]"] = d_src, "lower"
        # relative form (M.relative_error): 1 closer to the source, 0.5 tied, 0 closer to the target
        values[f"id_relative[{n}]"], directions[f"id_relative[{n}]"] = (d_src < d_tgt) + 0.5 * (d_src == d_tgt), \
            "higher"
        per[f"id_distance[{n}]"] = d_src.tolist()
        if n in id_encs:
            r = M.id_retrieval(e[probes], src_labels[probes], E, ctx.labels, k=1)
            hits = np.full(len(swaps), np.nan)
            hits[probes] = r.hits
            values[f"id_retrieval_top1[{n}]"], directions[f"id_retrieval_top1[{n}]"] = hits, "higher"
    return values, directions, per


ATTRIBUTE_COLUMNS = {"pose": ("pose_error", ("l2", "l2"), ("l1", "l1")),
                     "expression": ("expression_error", ("l2", "l2"), ("l1", "l1")),
                     "gaze": ("gaze_error", ("l1", "l1"), ("angular", "angles"))}


def _attribute_metrics(S, swaps, ctx, estimators, cache, fails, M) -> Tuple[dict, dict, dict, dict]:
    """Per-swap attribute errors (NaN where an estimate is missing), directions, per-sample lists, counts."""
    values, directions, per, counts, memo = {}, {}, {}, {}, {}
    first_row: Dict[str, int] = {}  # a source given by label only: its first face (one pass, not one per swap)
    for r, label in enumerate(list(ctx.labels)):
        first_row.setdefault(str(label), r)
    for kind, (ename, est) in estimators.items():
        trios = []
        for r, sw in enumerate(swaps):
            src_row = sw.source if sw.source is not None else first_row[str(sw.source_label)]
            trio = (S.item(r).meta.get("est", {}).get(kind),
                    _dataset_estimate(kind, ename, est, ctx, sw.target, cache, memo),
                    _dataset_estimate(kind, ename, est, ctx, src_row, cache, memo))
            bad = next((x for x in trio if not isinstance(x, np.ndarray)), False)
            if bad is not False:  # an estimator that cannot read one face loses that sample, for that column
                fails.append(failure("estimate", f"{sw.name} [{ename}]", bad if bad is not None else "no estimate"))
                trio = None
            trios.append(trio)
        ok = np.array([x is not None for x in trios])
        if not ok.any():
            continue
        s, t, src_attr = (np.array([x[i] for x in trios if x is not None], np.float64) for i in range(3))

        def spread(v):  # values of the ok swaps -> one per swap, NaN where missing
            out = np.full(len(swaps), np.nan)
            out[ok] = v
            return out

        cols = ATTRIBUTE_COLUMNS.get(kind)
        if cols:
            res = getattr(M, cols[0])(t, s)
            for suffix, attr in cols[1:]:
                values[f"{kind}_{suffix}[{ename}]"], directions[f"{kind}_{suffix}[{ename}]"] = spread(
                    getattr(res, attr)), "lower"
        # relative form: is the swap closer to the target's attribute than to the source's?
        r_t, r_s = np.abs(s - t).sum(1), np.abs(s - src_attr).sum(1)
        values[f"{kind}_relative[{ename}]"], directions[f"{kind}_relative[{ename}]"] = spread(
            (r_t < r_s) + 0.5 * (r_t == r_s)), "higher"
        per[f"{kind}_target"] = [None if x is None else x[1].tolist() for x in trios]
        per[f"{kind}_swapped"] = [None if x is None else x[0].tolist() for x in trios]
        counts[f"{kind}_n[{ename}]"] = int(ok.sum())
    return values, directions, per, counts


def swap_units(swaps, ctx) -> Tuple[List[str], str]:
    """The resampling unit of each swap and its name: a video's frames share one unit (target video x
    source), a photo swap is its own (target image x source image)."""
    out, video = [], False
    for s in swaps:
        v = bool(len(ctx.frames)) and ctx.frames[s.target] is not None
        video |= v
        out.append(f"{ctx.labels[s.target]}|{s.source_label}" if v else
                   f"{s.target}|{s.source if s.source is not None else s.source_label}")
    return out, "target video x source video" if video else "target image x source image"


def _sample_keys(swaps) -> List[str]:
    """What makes two swappers' swaps the same sample: target row, source (row or identity), frame."""
    return [f"{s.target}|{s.source if s.source is not None else s.source_label}|{s.frame}" for s in swaps]


def evaluate_swapper(swapper, ctx, encoders, id_encs, estimators, cfg, cache) -> dict:
    """One swapper's numbers (``summary``, ``directions``, ``per_sample``, ``params``, ``failures``)."""
    from idbench import analysis as M

    items, fails = swapper.plan(ctx)
    total = len(items) if hasattr(swapper, "swap") else None
    S = embed_swaps(swapper, items, ctx, encoders, cfg, cache, estimators, f"swaps {swapper.name}", total)
    fails += swap_failures(S.skipped)
    swaps = [S.item(r).meta["swap"] for r in range(len(S.paths))]
    out = {"params": swapper.params(), "provenance": swapper.provenance(), "n_planned": len(items),
           "failures": fails, "id_encoders": id_encs,
           "estimators": {k: v[0] for k, v in estimators.items()}}
    if not swaps:
        out.update({"summary": {"n_swaps": 0}, "directions": {"n_swaps": ""}, "per_sample": {}, "n": 0})
        return out
    values, directions, per = _identity_metrics(S, swaps, ctx, encoders, id_encs, M)
    a_val, a_dir, a_per, counts = _attribute_metrics(S, swaps, ctx, estimators, cache, fails, M)
    values.update(a_val)
    directions.update(a_dir)
    per.update(a_per)
    units, unit_name = swap_units(swaps, ctx)
    summary, intervals = {}, {}
    for m, v in values.items():  # the mean of the per-swap values, its interval over the units
        cm = M.cluster_mean_interval(v, units, n_boot=cfg.n_boot, seed=cfg.seed)
        summary[m], intervals[m] = cm.mean, None if cm.ci is None else list(cm.ci)
    for m, c in counts.items():
        summary[m], directions[m] = c, ""
    t = ctx.table
    per.update({"name": [s.name for s in swaps], "target_row": [s.target for s in swaps],
                "target_path": [str(t.paths[s.target]) for s in swaps],
                "source_path": [None if s.source is None else str(t.paths[s.source]) for s in swaps],
                "source": [s.source_label for s in swaps], "unit": units, "key": _sample_keys(swaps)})
    per["values"] = {m: [None if not np.isfinite(x) else float(x) for x in v] for m, v in values.items()}
    summary["n_swaps"], directions["n_swaps"] = len(swaps), ""
    from idbench.analysis.protocol import MAX_SWAP_PROBES

    out["id_retrieval_probes"] = {"n": min(len(swaps), MAX_SWAP_PROBES), "n_all": len(swaps),
                                  "cap": MAX_SWAP_PROBES, "seed": 0}
    out.update({"summary": summary, "directions": directions, "intervals": intervals, "per_sample": per,
                "n": len(swaps), "n_units": len(set(units)), "interval_unit": unit_name})
    return out


def compare_swappers(swappers: Dict[str, dict], n_boot: int = 1000, n_perm: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of every pair of swappers on the swaps both made (same target row, source, frame),
    per metric: difference, cluster-bootstrap interval, sign-flip p-value, Holm over the swapper pairs
    (:func:`idbench.analysis.pairwise_mean_differences`). ``{metric: [row per pair]}``; empty for < 2."""
    from idbench import analysis as M

    names = [n for n, r in swappers.items() if r.get("per_sample", {}).get("values")]
    out: Dict[str, list] = {}
    if len(names) < 2:
        return out
    per = {n: swappers[n]["per_sample"] for n in names}
    units = {k: u for n in names for k, u in zip(per[n]["key"], per[n]["unit"])}
    metrics = sorted(set.intersection(*(set(per[n]["values"]) for n in names)))
    for m in metrics:
        vals = {n: [np.nan if x is None else x for x in per[n]["values"][m]] for n in names}
        out[m] = M.pairwise_mean_differences(vals, units, keys={n: per[n]["key"] for n in names}, n_boot=n_boot,
                                             n_perm=n_perm, seed=seed)
    return out


def evaluate_swappers(cfg, ctx, encoders, swappers: Dict[str, object], cache) -> Tuple[dict, List[dict]]:
    """Every ``--swappers`` entry; returns (``results["swappers"]``, failures)."""
    from idbench.encoders import create_encoder

    id_encs = cfg.id_encoders or list(encoders)[:1]
    encoders = dict(encoders)
    missing = [n for n in id_encs if n not in encoders]
    for n in missing:
        encoders[n] = create_encoder(n, cfg.weights.get(n), cfg.device)
    if missing:  # the dataset's faces with the extra evaluators (same items, same rows)
        extra = embed_detected(ctx.table.images, {n: encoders[n] for n in missing}, cfg.detector, cache,
                               cfg.progress, desc="embed (id encoders)")
        for n in missing:
            ctx.table.embeddings[n] = extra.embeddings[n]
    estimators, fails = make_estimators(cfg.device, getattr(cfg, "swap_estimators", None))
    results = {}
    for spec, sw in swappers.items():
        results[display_name(spec, sw, results)] = evaluate_swapper(sw, ctx, encoders, id_encs, estimators, cfg,
                                                                    cache)
    return results, fails


def display_name(spec: str, swapper, taken) -> str:
    """A swapper's name in tables, charts and ``results.json``: ``results:DIR`` -> NAME or the folder's name
    (never an absolute path); other swappers keep their ``--swappers`` entry. Repeats get `` (2)``, ..."""
    name = swapper.name if spec.startswith("results:") else spec
    base, k = name, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    return name
