"""Cluster-bootstrap intervals and paired comparisons of swap metrics (idbench.analysis.cluster_mean).

Checked against brute force (the bootstrap replicate built sample by sample, the permutation test by
enumerating every flip) and, on simulated swaps with a known true mean (frames of one video sharing a
random effect), for coverage: the video-level interval covers the truth ~95% of the time, a frame-level
one does not; the sign-flip test rejects ~5% under H0; Holm is applied over swapper pairs.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from idbench.analysis import (MetricInputError, cluster_mean_interval, holm_adjust, paired_mean_difference,
                              pairwise_mean_differences)


def _videos(rng, n_videos=30, frames=10, mu=2.0, between=1.0, within=0.5):
    """Per-frame values of n_videos videos: mu + video effect + frame noise (ICC 0.8)."""
    effect = rng.normal(0, between, n_videos)
    x = mu + np.repeat(effect, frames) + rng.normal(0, within, n_videos * frames)
    return x, np.repeat(np.arange(n_videos), frames)


def test_interval_equals_a_brute_force_cluster_bootstrap():
    rng = np.random.default_rng(3)
    x, units = _videos(rng, n_videos=7, frames=4)
    x[5] = np.nan  # a missing estimate: left out
    res = cluster_mean_interval(x, units, n_boot=200, seed=11)
    assert res.mean == pytest.approx(np.nanmean(x)) and res.n == 27 and res.n_units == 7
    draws = np.random.default_rng(11).integers(0, 7, size=(200, 7))  # the same seeded draws
    groups = [x[units == g][np.isfinite(x[units == g])] for g in range(7)]
    reps = [np.concatenate([groups[g] for g in d]).mean() for d in draws]
    assert res.ci == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_video_level_interval_covers_the_true_mean_frame_level_does_not():
    rng = np.random.default_rng(0)
    cover_video = cover_frame = 0
    reps = 300
    for k in range(reps):
        x, units = _videos(rng)
        lo, hi = cluster_mean_interval(x, units, n_boot=400, seed=k).ci
        cover_video += lo <= 2.0 <= hi
        lo, hi = cluster_mean_interval(x, None, n_boot=400, seed=k).ci  # frames as if independent
        cover_frame += lo <= 2.0 <= hi
    assert 0.90 <= cover_video / reps <= 0.98, cover_video / reps
    assert cover_frame / reps < 0.75, cover_frame / reps  # the wrong unit: far too narrow


def test_paired_difference_coverage_and_type_one_error():
    rng = np.random.default_rng(1)
    reps, cover, reject_null, reject_alt = 300, 0, 0, 0
    for k in range(reps):
        x, units = _videos(rng)
        shared = x  # both swappers see the same videos: shared video effects
        a = shared + rng.normal(0, 0.3, len(x)) + 0.1
        b = shared + rng.normal(0, 0.3, len(x))
        d = paired_mean_difference(a, b, units, n_boot=300, n_perm=300, seed=k)
        cover += d.ci[0] <= 0.1 <= d.ci[1]
        null = paired_mean_difference(b + rng.normal(0, 0.3, len(x)), b, units, n_boot=0, n_perm=300, seed=k)
        reject_null += null.p_value < 0.05
        reject_alt += d.p_value < 0.05
    assert 0.90 <= cover / reps <= 0.98, cover / reps
    assert 0.015 <= reject_null / reps <= 0.09, reject_null / reps
    assert reject_alt / reps > 0.9  # 0.1 with shared video effects removed by pairing is easy to see


def test_exact_sign_flip_p_value_equals_enumeration():
    a = np.array([1.0, 1.2, 0.9, 2.0, 2.1, 1.7, 0.2])
    b = np.array([0.5, 1.0, 1.1, 1.0, 1.5, 1.6, 0.4])
    units = [0, 0, 1, 2, 2, 3, 4]
    d = paired_mean_difference(a, b, units, n_boot=0, n_perm=1000, seed=0)  # 2^5 = 32 <= 1000: exact
    D = np.array([np.sum((a - b)[np.array(units) == g]) for g in range(5)])
    t = (a - b).mean()
    stats = [np.dot(s, D) / len(a) for s in product([1, -1], repeat=5)]
    assert d.difference == pytest.approx(t)
    assert d.p_value == pytest.approx(np.mean(np.abs(stats) >= abs(t) - 1e-12))


def test_pairwise_holm_over_swapper_pairs_and_nan_alignment():
    rng = np.random.default_rng(2)
    x, units = _videos(rng, n_videos=12, frames=3)
    vals = {"A": x + 1.0, "B": x + rng.normal(0, 0.2, len(x)), "C": x.copy()}
    vals["C"][0] = np.nan  # missing in C: dropped from C's pairs only
    rows = pairwise_mean_differences(vals, units, n_boot=100, n_perm=200, seed=0)
    assert [(r["a"], r["b"]) for r in rows] == [("A", "B"), ("A", "C"), ("B", "C")]
    raw = [paired_mean_difference(vals[r["a"]], vals[r["b"]], units, n_boot=100, n_perm=200, seed=0).p_value
           for r in rows]
    assert [r["p_holm"] for r in rows] == pytest.approx(list(holm_adjust(raw)))
    ac = rows[1]
    assert ac["mean_a"] == pytest.approx(np.mean(vals["A"][1:])) and ac["difference"] == pytest.approx(1.0)
    assert rows[0]["significant"] and rows[1]["significant"]


def test_bad_input_is_one_line():
    with pytest.raises(MetricInputError, match="no finite value"):
        cluster_mean_interval([np.nan, np.nan])
    with pytest.raises(MetricInputError, match="at least 2 clusters"):
        paired_mean_difference([1, 2], [1, 3], units=["v", "v"])
    with pytest.raises(MetricInputError, match="same samples"):
        paired_mean_difference([1, 2], [1, 3, 4])
    assert cluster_mean_interval([1.0], n_boot=100).ci is None  # one unit: no interval


def test_keyed_pairs_are_compared_on_the_samples_both_scored():
    rng = np.random.default_rng(4)
    x, units = _videos(rng, n_videos=10, frames=2)
    keys = [f"s{i}" for i in range(len(x))]
    unit_of = dict(zip(keys, units))
    order = rng.permutation(len(x))[:15]  # B scored 15 of the samples, in another order
    vals = {"A": x + 0.5, "B": (x + rng.normal(0, 0.1, len(x)))[order]}
    (row,) = pairwise_mean_differences(vals, unit_of, keys={"A": keys, "B": [keys[i] for i in order]},
                                       n_boot=100, n_perm=100, seed=0)
    b_of = {keys[i]: v for i, v in zip(order, vals["B"])}  # by hand: the shared samples, in key order
    shared = sorted(b_of)
    ref = paired_mean_difference([vals["A"][keys.index(k)] for k in shared], [b_of[k] for k in shared],
                                 [unit_of[k] for k in shared], n_boot=100, n_perm=100, seed=0)
    assert row["n_shared"] == 15 and row["difference"] == pytest.approx(ref.difference)
    assert row["ci"] == pytest.approx(list(ref.ci)) and row["p_value"] == pytest.approx(ref.p_value)


def test_a_pair_swapped_twice_counts_once_with_its_mean():
    keys_a, a = ["p", "q", "r", "r"], [1.0, 2.0, 3.0, 5.0]  # r swapped twice by A
    (row,) = pairwise_mean_differences({"A": a, "B": [0.0, 0.0, 0.0]}, keys={"A": keys_a, "B": ["p", "q", "r"]},
                                       n_boot=0, n_perm=0)
    assert row["n_shared"] == 3 and row["mean_a"] == pytest.approx((1 + 2 + 4) / 3)
