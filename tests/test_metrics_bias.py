"""Attribute-bias statistics against scikit-learn / SciPy, properties and the bootstrap."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score

from idbench.analysis import BiasGap, MetricInputError, auc_two_sample, bias_gap, ks_statistic, wasserstein_1d
from idbench.analysis.bias import _counts_from_indices, _replicate_stats

FAST = settings(max_examples=50, deadline=None)


@st.composite
def two_samples(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    na, nb = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):  # heavy ties
        return rng.integers(-2, 3, na) / 4.0, rng.integers(-2, 3, nb) / 4.0
    return rng.normal(0.3, 0.2, na), rng.normal(0.2, 0.3, nb)


def _sk_auc(a, b):
    return roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b])


@FAST
@given(two_samples())
def test_distribution_statistics_equal_references(ab):
    a, b = ab
    with warnings.catch_warnings():  # SciPy's p-value machinery warns on tiny samples; only D is compared
        warnings.simplefilter("ignore")
        d_ref = ks_2samp(a, b).statistic
    assert ks_statistic(a, b) == pytest.approx(d_ref, abs=1e-12)
    assert wasserstein_1d(a, b) == pytest.approx(wasserstein_distance(a, b), abs=1e-12)
    if len(a) + len(b) >= 2:
        assert auc_two_sample(a, b) == pytest.approx(_sk_auc(a, b), abs=1e-12)
    g = bias_gap(a, b, n_boot=0)
    assert g.auc == auc_two_sample(a, b) and g.ks == ks_statistic(a, b) and g.wasserstein == wasserstein_1d(a, b)
    assert g.mean_gap == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert g.positive_std == pytest.approx(a.std()) and g.swapped_std == pytest.approx(b.std())


def test_auc_pairs_by_hand():
    # pairs: 3>1, 3>2, 1<2 -> 0, 1=1 -> 1/2 ... a = [3, 1], b = [1, 2]: (1 + 1 + 0.5 + 0) / 4
    assert auc_two_sample([3, 1], [1, 2]) == 0.625
    g = bias_gap([3.0, 1.0], [1.0, 2.0], [0.0, 0.0], n_boot=0)
    assert g.auc == 0.625 and g.mean_gap == 0.5 and g.relative_gap == 0.25  # 0.5 / (2 - 0)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.booleans())
def test_identical_distributions_show_no_bias(seed, n, ties):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, n).astype(float) if ties else rng.normal(size=n)
    g = bias_gap(x, rng.permutation(x), n_boot=0)
    assert g.auc == 0.5 and g.mean_gap == pytest.approx(0.0, abs=1e-12)
    assert g.ks == 0.0 and g.wasserstein == pytest.approx(0.0, abs=1e-12)


@FAST
@given(two_samples(), st.integers(0, 2**32 - 1))
def test_bias_statistics_invariances(ab, seed):
    a, b = ab
    g = bias_gap(a, b, n_boot=0)
    rng = np.random.default_rng(seed)
    gp = bias_gap(rng.permutation(a), rng.permutation(b), n_boot=0)
    assert (gp.auc, gp.ks) == (g.auc, g.ks)
    assert gp.mean_gap == pytest.approx(g.mean_gap, abs=1e-12) and gp.wasserstein == pytest.approx(g.wasserstein)
    # a common shift moves nothing; a positive scale multiplies the distances only
    gs = bias_gap(2.0 * a + 0.5, 2.0 * b + 0.5, n_boot=0)
    assert (gs.auc, gs.ks) == (g.auc, g.ks)
    assert gs.mean_gap == pytest.approx(2 * g.mean_gap, abs=1e-12)
    assert gs.wasserstein == pytest.approx(2 * g.wasserstein, abs=1e-12)
    # swapping the groups mirrors the AUC and the gap
    gr = bias_gap(b, a, n_boot=0)
    assert gr.auc == pytest.approx(1 - g.auc, abs=1e-12) and gr.mean_gap == pytest.approx(-g.mean_gap, abs=1e-12)
    assert gr.ks == g.ks


def test_relative_gap_and_negatives():
    rng = np.random.default_rng(0)
    p, s, n = rng.normal(0.7, 0.05, 200), rng.normal(0.6, 0.05, 150), rng.normal(0.1, 0.05, 50)
    g = bias_gap(p, s, n, n_boot=200)
    assert g.relative_gap == pytest.approx((p.mean() - s.mean()) / (p.mean() - n.mean()))
    assert g.negative_mean == pytest.approx(n.mean()) and g.negative_std == pytest.approx(n.std())
    assert (g.n_positive, g.n_swapped, g.n_negative) == (200, 150, 50)
    lo, hi = g.relative_gap_ci
    assert lo < g.relative_gap < hi
    g0 = bias_gap(p, s, n_boot=200)
    assert g0.relative_gap is None and g0.relative_gap_ci is None and g0.negative_mean is None
    # no swap bias at all: swapped drawn like positives -> gap interval straddles 0, auc interval 0.5
    gz = bias_gap(p, rng.normal(0.7, 0.05, 150), n, n_boot=500)
    assert gz.mean_gap_ci[0] < 0 < gz.mean_gap_ci[1] and gz.auc_ci[0] < 0.5 < gz.auc_ci[1]


def test_replicate_stats_equal_materialised_resamples():
    rng = np.random.default_rng(4)
    p = rng.integers(0, 6, 17) / 5.0  # ties across and within groups
    s = rng.integers(0, 6, 11) / 5.0
    n = rng.normal(-0.5, 0.2, 9)
    B = 40
    ip, is_, in_ = rng.integers(0, 17, (B, 17)), rng.integers(0, 11, (B, 11)), rng.integers(0, 9, (B, 9))
    gap, auc, rel = _replicate_stats(p, s, n, _counts_from_indices(ip, 17), _counts_from_indices(is_, 11),
                                     _counts_from_indices(in_, 9))
    for b in range(B):
        pb, sb, nb = p[ip[b]], s[is_[b]], n[in_[b]]
        assert gap[b] == pytest.approx(pb.mean() - sb.mean(), abs=1e-12)
        assert auc[b] == pytest.approx(_sk_auc(pb, sb), abs=1e-12)
        assert rel[b] == pytest.approx((pb.mean() - sb.mean()) / (pb.mean() - nb.mean()), abs=1e-12)


def test_bootstrap_is_seeded_and_nested():
    rng = np.random.default_rng(8)
    p, s, n = rng.normal(0.6, 0.1, 300), rng.normal(0.5, 0.1, 300), rng.normal(0.0, 0.1, 100)
    a = bias_gap(p, s, n, n_boot=400, seed=1)
    assert a == bias_gap(p, s, n, n_boot=400, seed=1)
    b = bias_gap(p, s, n, n_boot=400, seed=2)
    assert b.mean_gap == a.mean_gap and b.mean_gap_ci != a.mean_gap_ci
    # same replicates, narrower level -> nested interval around the estimate
    c = bias_gap(p, s, n, n_boot=400, seed=1, ci=0.5)
    for wide, narrow, est in ((a.mean_gap_ci, c.mean_gap_ci, a.mean_gap), (a.auc_ci, c.auc_ci, a.auc),
                              (a.relative_gap_ci, c.relative_gap_ci, a.relative_gap)):
        assert wide[0] < narrow[0] < est < narrow[1] < wide[1]
    # the 95% half-width of the gap is close to 1.96 standard errors
    se = np.sqrt(p.var() / len(p) + s.var() / len(s))
    assert (a.mean_gap_ci[1] - a.mean_gap_ci[0]) / 2 == pytest.approx(1.96 * se, rel=0.2)


def test_bootstrap_resamples_groups_independently():
    """Two copies of one sample: a paired resample would give a zero-width gap interval."""
    x = np.random.default_rng(5).normal(0.5, 0.1, 400)
    g = bias_gap(x, x.copy(), n_boot=500, seed=0)
    assert g.mean_gap == 0.0 and g.auc == 0.5
    half = (g.mean_gap_ci[1] - g.mean_gap_ci[0]) / 2
    assert half == pytest.approx(1.96 * np.sqrt(2 * x.var() / len(x)), rel=0.2)
    assert g.auc_ci[0] < 0.5 < g.auc_ci[1] and g.auc_ci[1] - g.auc_ci[0] > 0.03


def test_to_dict_is_json_ready():
    g = bias_gap([0.9, 0.8, 0.7], [0.6, 0.7], [0.1, 0.2], n_boot=50)
    d = json.loads(json.dumps(g.to_dict()))
    for key in ("positive_mean", "swapped_mean", "negative_mean", "mean_gap", "relative_gap", "auc",
                "wasserstein", "ks"):
        assert d[key] == getattr(g, key)
    assert d["mean_gap_ci"] == list(g.mean_gap_ci) and len(d["auc_ci"]) == 2
    g0 = bias_gap([0.9, 0.8], [0.6, 0.7], n_boot=0)
    assert g0.to_dict()["mean_gap_ci"] is None and isinstance(g0, BiasGap)
    with pytest.raises(Exception):
        g0.mean_gap = 1.0  # frozen


def test_bias_input_errors():
    ok = [0.5, 0.6, 0.7]
    cases = [
        (([], ok), "positive_scores: needs at least 1"),
        ((ok, []), "swapped_scores: needs at least 1"),
        ((ok, ok, []), "negative_scores: needs at least 1"),
        (([0.5, np.nan], ok), "positive_scores: .*NaN"),
        ((ok, [0.1, np.inf]), "swapped_scores: .*NaN"),
        (([[0.5, 0.6]], ok), "1-D"),
        ((ok, ok, [0.6, 0.6]), "relative_gap is undefined"),  # mean positive = mean negative
    ]
    for args, match in cases:
        with pytest.raises(MetricInputError, match=match):
            bias_gap(*args, n_boot=10)
    for kw, match in ((dict(n_boot=-1), "n_boot"), (dict(ci=1.0), "ci"), (dict(ci=0), "ci"),
                      (dict(seed=-3), "seed"), (dict(n_boot=2.5), "n_boot")):
        with pytest.raises(MetricInputError, match=match):
            bias_gap(ok, ok, **kw)
