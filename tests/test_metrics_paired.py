"""Paired bootstrap / permutation comparison of two encoders (idbench.analysis.paired)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom, norm

from idbench.analysis import MetricInputError, bias_gap, paired_bias_difference


def _dataset(rng, n_groups=40, per_group=4, shift_b=0.0, rho=0.8):
    """Grouped P/S/N scores of two correlated encoders. Each anchor group has ``per_group``
    positives and swaps and one negative; B's swapped scores are lowered by ``shift_b``."""
    g = np.repeat(np.arange(n_groups), per_group)
    u = rng.normal(0, 0.05, n_groups)  # anchor effect shared by both encoders

    def pair(mu, size, groups):
        e1 = rng.normal(0, 0.08, size)
        e2 = rho * e1 + np.sqrt(1 - rho ** 2) * rng.normal(0, 0.08, size)
        return mu + u[groups] + e1, mu + u[groups] + e2

    pa, pb = pair(0.70, len(g), g)
    sa, sb = pair(0.60, len(g), g)
    na, nb = pair(0.20, n_groups, np.arange(n_groups))
    return dict(a=(pa, sa, na), b=(pb, sb - shift_b, nb), groups=(g, g, np.arange(n_groups)))


def _run(d, **kw):
    (pa, sa, na), (pb, sb, nb), (gp, gs, gn) = d["a"], d["b"], d["groups"]
    return paired_bias_difference(pa, sa, na, pb, sb, nb, positive_groups=gp, swapped_groups=gs,
                                  negative_groups=gn, **kw)


def test_identical_score_sets_give_zero_difference_and_p_one():
    d = _dataset(np.random.default_rng(1))
    d["b"] = tuple(x.copy() for x in d["a"])
    r = _run(d, n_boot=300, n_perm=300, seed=3)
    for m in ("mean_gap", "relative_gap", "auc"):
        md = getattr(r, m)
        assert md.difference == 0.0
        assert md.p_value == 1.0
        assert md.ci == (0.0, 0.0)
        assert not md.significant()


def test_values_agree_with_bias_gap():
    d = _dataset(np.random.default_rng(2), shift_b=0.03)
    r = _run(d, n_boot=0, n_perm=0)
    for side, vals in (("a", d["a"]), ("b", d["b"])):
        ref = bias_gap(*vals, n_boot=0)
        assert getattr(r.mean_gap, side) == pytest.approx(ref.mean_gap, abs=1e-12)
        assert getattr(r.relative_gap, side) == pytest.approx(ref.relative_gap, abs=1e-12)
        assert getattr(r.auc, side) == pytest.approx(ref.auc, abs=1e-12)
    assert r.mean_gap.p_value is None and r.mean_gap.ci is None


def test_planted_difference_is_found():
    d = _dataset(np.random.default_rng(4), shift_b=0.05)  # B's swaps 0.05 lower: B has the larger gap
    r = _run(d, n_boot=1000, n_perm=1000, seed=0)
    for m in ("mean_gap", "relative_gap", "auc"):
        md = getattr(r, m)
        assert md.difference < 0, m
        assert md.ci[1] < 0, (m, md.ci)  # the interval excludes 0
        assert md.p_value < 0.01, (m, md.p_value)
        assert md.significant()
    assert r.mean_gap.difference == pytest.approx(-0.05, abs=0.015)


def test_no_difference_is_not_significant_at_the_nominal_rate():
    """Under H0 (B = A + exchangeable noise) the permutation test rejects at about alpha."""
    rng = np.random.default_rng(5)
    p = np.array([_run(_dataset(rng, n_groups=20), n_boot=0, n_perm=199, seed=k).mean_gap.p_value
                  for k in range(100)])
    rejected = int((p < 0.05).sum())
    assert rejected <= binom.ppf(0.999, 100, 0.05), rejected


def test_bootstrap_interval_covers_the_truth_at_the_nominal_rate():
    """200 simulated datasets with known population metrics: 95% intervals cover the truth in a share
    consistent with Binomial(200, 0.95) (two-sided 0.1% band)."""
    rng = np.random.default_rng(6)
    shift = 0.02
    sd = np.sqrt(0.05 ** 2 + 0.08 ** 2)  # marginal score sd (anchor effect + item noise)
    truth = {"mean_gap": -shift,
             "relative_gap": 0.1 / 0.5 - (0.1 + shift) / 0.5,
             "auc": norm.cdf(0.1 / (sd * np.sqrt(2))) - norm.cdf((0.1 + shift) / (sd * np.sqrt(2)))}
    hits = {m: 0 for m in truth}
    n_sim = 200
    for k in range(n_sim):
        r = _run(_dataset(rng, n_groups=60, per_group=5, shift_b=shift), n_boot=400, n_perm=0, seed=k)
        for m, t in truth.items():
            lo, hi = getattr(r, m).ci
            hits[m] += lo <= t <= hi
    print("coverage of the 95% intervals:", {m: h / n_sim for m, h in hits.items()})  # README numbers (-s)
    lo_ok, hi_ok = binom.ppf(0.0005, n_sim, 0.95), binom.ppf(0.9995, n_sim, 0.95)
    for m, h in hits.items():
        assert lo_ok <= h <= hi_ok, (m, h / n_sim)


def _brute_force_p(a, b, groups, metric):
    """Exact sign-flip p-value by enumerating every pattern, metrics recomputed with bias_gap."""
    units = sorted(set(np.concatenate(groups).tolist()))

    def stat(sa, sb):
        ga, gb = bias_gap(*sa, n_boot=0), bias_gap(*sb, n_boot=0)
        if metric == "mean_gap":
            return ga.mean_gap - gb.mean_gap
        if metric == "relative_gap":
            return ga.relative_gap - gb.relative_gap
        return ga.auc - gb.auc

    def norm_scale(side):  # the documented common scale for relative_gap / auc
        if metric == "mean_gap":
            return side
        p, s, n = side
        return tuple((x - n.mean()) / (p.mean() - n.mean()) for x in side)

    na, nb = norm_scale(a), norm_scale(b)
    t = stat(a, b)
    count, total = 0, 0
    for pattern in itertools.product([False, True], repeat=len(units)):
        flip = dict(zip(units, pattern))
        sa, sb = [], []
        for xa, xb, g in zip(na, nb, groups):
            f = np.array([flip[x] for x in g])
            sa.append(np.where(f, xb, xa))
            sb.append(np.where(f, xa, xb))
        count += abs(stat(sa, sb)) >= abs(t) - 1e-12
        total += 1
    return count / total


@pytest.mark.parametrize("metric", ["mean_gap", "relative_gap", "auc"])
def test_p_value_matches_brute_force_enumeration(metric):
    rng = np.random.default_rng(7)
    d = _dataset(rng, n_groups=6, per_group=2, shift_b=0.04)
    r = _run(d, n_boot=0, n_perm=64, seed=0)  # 2^6 = 64 patterns: exact
    assert r.exact and r.n_perm == 64
    expected = _brute_force_p(d["a"], d["b"], d["groups"], metric)
    assert getattr(r, metric).p_value == pytest.approx(expected, abs=1e-12)
    # Monte Carlo p with fewer draws than patterns estimates the exact value
    mc = _run(d, n_boot=0, n_perm=40, seed=1)
    assert not mc.exact
    assert abs(getattr(mc, metric).p_value - expected) < 0.3


def test_ungrouped_items_are_their_own_units_and_seeded():
    rng = np.random.default_rng(8)
    a = (rng.normal(0.7, 0.1, 30), rng.normal(0.6, 0.1, 30), rng.normal(0.2, 0.1, 10))
    b = tuple(x + rng.normal(0, 0.01, len(x)) for x in a)
    r1 = paired_bias_difference(*a, *b, n_boot=200, n_perm=200, seed=9)
    r2 = paired_bias_difference(*a, *b, n_boot=200, n_perm=200, seed=9)
    assert r1.n_units == 70
    assert r1.to_dict() == r2.to_dict()
    r3 = paired_bias_difference(*a, *b, n_boot=200, n_perm=200, seed=10)
    assert r3.mean_gap.ci != r1.mean_gap.ci


def test_bad_input_one_line_errors():
    a = (np.array([0.8, 0.7, 0.9]), np.array([0.6, 0.5, 0.7]), np.array([0.1, 0.2]))
    cases = [
        ((a[0], a[1], a[2], a[0][:2], a[1], a[2]), {}, "positive_a and positive_b"),
        ((a[0], a[1], a[2], a[0], a[1] * np.nan, a[2]), {}, "NaN"),
        ((a[0], a[1], np.array([0.8, 0.8]), a[0], a[1], a[2]), {}, "relative_gap is undefined"),
        ((*a, *a), {"positive_groups": [1, 2]}, "positive_groups"),
        ((*a, *a), {"positive_groups": [0] * 3, "swapped_groups": [0] * 3, "negative_groups": [0] * 2},
         "one unit"),
        ((*a, *a), {"n_boot": -1}, "n_boot"),
        ((*a, *a), {"ci": 1.0}, "ci"),
    ]
    for args, kw, match in cases:
        with pytest.raises(MetricInputError, match=match) as e:
            paired_bias_difference(*args, **kw)
        assert "\n" not in str(e.value)


def test_holm_adjust_by_hand():
    from idbench.analysis import holm_adjust

    # m = 4, sorted 0.01, 0.02, 0.03, 0.5 -> 4*0.01 = 0.04, 3*0.02 = 0.06, 2*0.03 = 0.06, max(0.06, 0.5) = 0.5
    got = holm_adjust([0.03, 0.5, 0.01, 0.02])
    assert np.allclose(got, [0.06, 0.5, 0.04, 0.06])
    assert np.allclose(holm_adjust([0.9, 0.8]), [1.0, 1.0])
    assert holm_adjust([]).shape == (0,)
    with pytest.raises(MetricInputError, match="p_values"):
        holm_adjust([0.2, 1.5])


def test_float32_level_differences_are_ties():
    """A numerically identical port (scores equal up to float32 rounding, one consistent sign) is not
    significantly different; with resolution 0 the sign-flip test would flag it."""
    d = _dataset(np.random.default_rng(11), n_groups=30)
    (pa, sa, na), gp = d["a"], d["groups"]
    d["b"] = (pa.astype(np.float32).astype(np.float64) + 3e-8, sa.astype(np.float32).astype(np.float64),
              na.astype(np.float32).astype(np.float64))
    r = _run(d, n_boot=0, n_perm=500, seed=0)
    for m in ("mean_gap", "relative_gap", "auc"):
        assert abs(getattr(r, m).difference) < 1e-6 and getattr(r, m).p_value == 1.0
    strict = _run(d, n_boot=0, n_perm=500, seed=0, resolution=0.0)
    assert strict.mean_gap.p_value < 0.05
