"""Intervals and paired comparisons of per-sample means whose samples come in clusters.

Every face-swap metric of idbench is the mean of a per-swap value (identity distance, retrieval hit,
pose/expression/gaze error, relative indicator). Swaps are not independent: the frames of one video
swap (FF++: ``<target>_<source>``) share their source, target and method failure modes. The unit of
resampling is therefore the *cluster* (a source/target pair, or a video), never the frame:

* :func:`cluster_mean_interval`: the mean ``sum_i x_i / n`` with a cluster (block) bootstrap percentile
  interval: G clusters drawn with replacement, each bringing all its samples, the replicate mean
  ``sum_g c_g S_g / sum_g c_g n_g`` (``c_g`` = times drawn, ``S_g`` its sum, ``n_g`` its size);
  Davison & Hinkley 1997, sec. 3.8; Field & Welsh 2007 (cluster bootstrap of a mean).
* :func:`paired_mean_difference`: two methods scored on the *same* samples: ``mean(a) - mean(b)``,
  the same cluster bootstrap drawn jointly for both (percentile interval), and a sign-flip
  permutation test on the clusters (under H0 a and b are exchangeable within a cluster, so each
  cluster's summed difference ``D_g`` changes sign with probability 1/2; Good 2005, ch. 3):
  ``p = (1 + #{|T*| >= |T|}) / (1 + n_perm)`` (Phipson & Smyth 2010), exact over all 2^G flips when
  ``2^G <= n_perm``. This is :func:`idbench.analysis.paired_bias_difference`'s procedure for a mean.
* :func:`pairwise_mean_differences`: every pair of methods, p-values Holm-adjusted over the pairs
  (:func:`idbench.analysis.holm_adjust`).

The bootstrap and permutation machinery is :mod:`idbench.analysis.bias`'s and
:mod:`idbench.analysis.paired`'s (one implementation). NaN samples (a missing estimate) are left out,
for both methods at once in the paired forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ._checks import MetricInputError, check_fraction, check_int
from .bias import _counts_from_indices, _interval
from .paired import RESOLUTION, MetricDifference, _flip_patterns, _p_value, holm_adjust

__all__ = ["ClusterMean", "cluster_mean_interval", "paired_mean_difference", "pairwise_mean_differences"]

Interval = Tuple[float, float]
_CHUNK = 1 << 21  # replicate x cluster cells per bootstrap chunk (bounded memory)


@dataclass(frozen=True)
class ClusterMean:
    """A mean with its cluster-bootstrap interval (None with fewer than 2 clusters or ``n_boot = 0``)."""

    mean: float
    ci: Optional[Interval]
    n: int
    n_units: int

    def to_dict(self) -> Dict[str, Any]:
        return {"mean": self.mean, "ci": None if self.ci is None else list(self.ci), "n": self.n,
                "n_units": self.n_units}


def _clusters(values: Any, units: Any, name: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite samples -> (per-cluster sums, per-cluster sizes, sample values)."""
    x = np.asarray(values, np.float64).reshape(-1)
    u = np.asarray([str(v) for v in (units if units is not None else range(len(x)))], dtype=object)
    if len(u) != len(x):
        raise MetricInputError(f"{name}: {len(x)} values but {len(u)} units")
    if np.isinf(x).any():
        raise MetricInputError(f"{name}: contains inf")
    keep = np.isfinite(x)
    x, u = x[keep], u[keep]
    _, inv = np.unique(u.astype(str), return_inverse=True)
    g = int(inv.max()) + 1 if len(inv) else 0
    return np.bincount(inv, x, g), np.bincount(inv, minlength=g).astype(np.float64), x


def _boot_means(sums: np.ndarray, sizes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Replicate means of the cluster bootstrap (``sums``: K x G, one row per quantity)."""
    g = sums.shape[1]
    per_chunk = max(1, min(n_boot, _CHUNK // max(g, 1)))
    out = []
    for start in range(0, n_boot, per_chunk):
        w = _counts_from_indices(rng.integers(0, g, size=(min(per_chunk, n_boot - start), g)), g)
        out.append((w @ sums.T) / (w @ sizes)[:, None])
    return np.concatenate(out, axis=0)


def cluster_mean_interval(values: Any, units: Optional[Any] = None, *, n_boot: int = 1000, seed: int = 0,
                          ci: float = 0.95) -> ClusterMean:
    """Mean of ``values`` with a cluster-bootstrap percentile interval over ``units`` (see the module doc).

    ``units[i]``: the cluster of sample ``i`` (any hashable; None = every sample its own unit, the
    ordinary bootstrap). NaN values are left out. Replicates from ``numpy.random.default_rng(seed)``.
    Raises :class:`MetricInputError` for no finite value, inf, or mismatched lengths.
    """
    n_boot, seed = check_int(n_boot, "n_boot", 0), check_int(seed, "seed", 0)
    level = check_fraction(ci, "ci", open_low=True, open_high=True)
    sums, sizes, x = _clusters(values, units, "values")
    if not len(x):
        raise MetricInputError("values: no finite value")
    interval = None
    if n_boot and len(sizes) >= 2:
        interval = _interval(_boot_means(sums[None], sizes, n_boot, np.random.default_rng(seed))[:, 0], level)
    return ClusterMean(float(x.mean()), interval, int(len(x)), int(len(sizes)))


def paired_mean_difference(a: Any, b: Any, units: Optional[Any] = None, *, n_boot: int = 1000,
                           n_perm: int = 1000, seed: int = 0, ci: float = 0.95,
                           resolution: float = RESOLUTION) -> MetricDifference:
    """``mean(a) - mean(b)`` over the same samples, cluster-bootstrap interval and sign-flip p-value.

    ``a[i]``, ``b[i]``: the two methods' values of sample ``i`` (same source/target); samples where
    either is NaN are left out of both. ``units``: the cluster of each sample (see
    :func:`cluster_mean_interval`). A difference below ``resolution`` gets p = 1. ``n_perm = 0``: no
    test (p None). Raises :class:`MetricInputError` for mismatched lengths or fewer than 2 clusters.
    """
    xa, xb = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if xa.shape != xb.shape:
        raise MetricInputError(f"a and b: {len(xa)} vs {len(xb)} values (the same samples are needed)")
    n_boot, n_perm, seed = (check_int(v, k, 0) for v, k in ((n_boot, "n_boot"), (n_perm, "n_perm"), (seed, "seed")))
    level = check_fraction(ci, "ci", open_low=True, open_high=True)
    both = np.where(np.isfinite(xa) & np.isfinite(xb), 0.0, np.nan)
    sa, sizes, va = _clusters(xa + both, units, "a")
    sb, _, vb = _clusters(xb + both, units, "b")
    if len(sizes) < 2:
        raise MetricInputError("units: the paired procedures need at least 2 clusters with values in both")
    ma, mb = float(va.mean()), float(vb.mean())
    rng = np.random.default_rng(seed)
    interval = None
    if n_boot:
        reps = _boot_means(np.stack([sa, sb]), sizes, n_boot, rng)
        interval = _interval(reps[:, 0] - reps[:, 1], level)
    p = None
    if n_perm:
        flips, exact = _flip_patterns(len(sizes), n_perm, rng)
        t_star = (np.where(flips, -1.0, 1.0) @ (sa - sb)) / sizes.sum()
        p = _p_value(ma - mb, t_star, exact, float(resolution))
    return MetricDifference(ma, mb, ma - mb, interval, p)


def _by_key(keys: Sequence[Any], values: np.ndarray) -> Dict[Any, float]:
    """Mean of the finite values of each key (NaN when it has none)."""
    sums: Dict[Any, list] = {}
    for k, v in zip(keys, values):
        sums.setdefault(k, []).append(v)
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for k, v in sums.items()}


def pairwise_mean_differences(values: Mapping[str, Any], units: Optional[Any] = None, *,
                              keys: Optional[Mapping[str, Sequence[Any]]] = None, n_boot: int = 1000,
                              n_perm: int = 1000, seed: int = 0, ci: float = 0.95,
                              alpha: float = 0.05) -> List[Dict[str, Any]]:
    """Every pair (A, B) of ``values`` (name -> per-sample values): :func:`paired_mean_difference` and
    Holm's adjustment over the pairs.

    Without ``keys`` all methods score the same samples in the same order (``units``: one per sample).
    With ``keys`` (name -> the sample key of each value), each pair is compared on the samples both
    scored, and ``units`` maps a sample key to its cluster (None: every sample its own); a method with
    several values for one key (the same pair swapped twice) is represented by their mean.

    Returns one dict per pair: ``a, b, n_shared, mean_a, mean_b, difference, ci, p_value, p_holm,
    significant`` (``p_holm < alpha``). Pairs whose comparison is undefined (fewer than 2 shared
    clusters) carry ``error`` and no p-value.
    """
    rows: List[Dict[str, Any]] = []
    for x, y in combinations(list(values), 2):
        va, vb, u = np.asarray(values[x], np.float64), np.asarray(values[y], np.float64), units
        if keys is not None:
            ka, kb = _by_key(keys[x], va), _by_key(keys[y], vb)
            common = sorted(set(ka) & set(kb), key=str)
            va, vb = np.array([ka[k] for k in common]), np.array([kb[k] for k in common])
            u = None if units is None else [units[k] for k in common]
        row: Dict[str, Any] = {"a": x, "b": y, "n_shared": int(len(va))}
        try:
            d = paired_mean_difference(va, vb, u, n_boot=n_boot, n_perm=n_perm, seed=seed, ci=ci)
        except MetricInputError as e:
            rows.append({**row, "error": str(e)})
            continue
        rows.append({**row, "mean_a": d.a, "mean_b": d.b, "difference": d.difference,
                     "ci": None if d.ci is None else list(d.ci), "p_value": d.p_value})
    tested = [r for r in rows if r.get("p_value") is not None]
    if tested:
        for r, adj in zip(tested, holm_adjust([r["p_value"] for r in tested])):
            r["p_holm"] = float(adj)
            r["significant"] = bool(adj < alpha)
    return rows
