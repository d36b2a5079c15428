"""Verification metrics against scikit-learn, SciPy and brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from idbench.analysis import MetricInputError, eer, roc_auc, roc_curve, tar_at_far, verification_accuracy

FAST = settings(max_examples=50, deadline=None)


def _random_case(seed: int, n: int, ties: bool):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1  # both classes
    s = rng.integers(0, 4, n).astype(float) if ties else rng.normal(size=n) + 0.8 * y
    return s, y


@st.composite
def scored_pairs(draw, max_n: int = 60):
    n = draw(st.integers(2, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    ties = draw(st.booleans())
    return _random_case(seed, n, ties)


# --- ROC AUC ----------------------------------------------------------------------------------

@FAST
@given(scored_pairs())
def test_roc_auc_equals_sklearn(case):
    s, y = case
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_hand_example_with_ties():
    # genuine 3, 1; impostor 1, 0: pairs (3>1, 3>0, 1=1 -> 1/2, 1>0) -> 3.5 / 4
    assert roc_auc([3, 1, 1, 0], [1, 1, 0, 0]) == 0.875
    assert roc_auc([0.5] * 6, [1, 0, 1, 0, 1, 1]) == 0.5  # all tied
    assert roc_auc([1.0, 0.0], [1, 0]) == 1.0
    assert roc_auc([1.0, 0.0], [0, 1]) == 0.0


@FAST
@given(scored_pairs(), st.integers(0, 2**32 - 1))
def test_roc_auc_invariances(case, seed):
    s, y = case
    a = roc_auc(s, y)
    perm = np.random.default_rng(seed).permutation(len(s))
    assert roc_auc(s[perm], y[perm]) == a  # order of pairs does not matter
    assert roc_auc(3.0 * s + 7.0, y) == a  # increasing affine map keeps every comparison
    assert roc_auc(np.exp(s), y) == a
    assert roc_auc(s, 1 - y) == pytest.approx(1 - a, abs=1e-12)  # swapping classes


def test_roc_auc_accepts_bool_labels_and_lists():
    assert roc_auc([0.9, 0.2, 0.4], [True, False, True]) == 1.0


# --- ROC curve --------------------------------------------------------------------------------

@FAST
@given(scored_pairs())
def test_roc_curve_equals_sklearn(case):
    s, y = case
    far, tar, thr = roc_curve(s, y)
    f2, t2, th2 = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_array_equal(thr, th2)
    np.testing.assert_allclose(far, f2, atol=1e-15)
    np.testing.assert_allclose(tar, t2, atol=1e-15)


def test_roc_curve_hand_example():
    far, tar, thr = roc_curve([0.9, 0.8, 0.8, 0.1], [1, 1, 0, 0])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.1])
    np.testing.assert_allclose(far, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 1, 1])


# --- EER --------------------------------------------------------------------------------------

def _eer_reference(s, y):
    """The usual script: root of 1 - x - tpr(x) on the (scikit-learn) ROC curve."""
    fpr, tpr, _ = sk_roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0, xtol=1e-14)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(4, 80))
def test_eer_matches_brentq_reference(seed, n):
    s, y = _random_case(seed, n, ties=False)
    e, t = eer(s, y)
    assert e == pytest.approx(_eer_reference(s, y), abs=1e-9)
    assert 0.0 <= e <= 1.0 and np.isfinite(t)


def test_eer_hand_examples():
    # genuine .9 .8 .3, impostor .7 .2 .1: at t = .7 FAR = 1/3 = FRR
    e, t = eer([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0])
    assert e == pytest.approx(1 / 3) and t == pytest.approx(0.7)
    # perfect separation: EER 0 at the lowest genuine score
    e, t = eer([0.9, 0.6, 0.5, 0.1], [1, 1, 0, 0])
    assert e == 0.0 and t == pytest.approx(0.6)
    # all scores tied: EER 1/2 (the crossing is half-way along the one diagonal segment)
    e, t = eer([0.3] * 4, [1, 0, 1, 0])
    assert e == pytest.approx(0.5) and t == pytest.approx(0.3)
    # fully inverted scores: EER 1
    e, _ = eer([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])
    assert e == pytest.approx(1.0)


def test_eer_threshold_balances_far_and_frr():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(4000, int), np.zeros(4000, int)]
    s = rng.normal(size=8000) + 2.0 * y
    e, t = eer(s, y)
    far = np.mean(s[y == 0] >= t)
    frr = np.mean(s[y == 1] < t)
    assert abs(far - frr) < 2e-3 and abs(e - (far + frr) / 2) < 2e-3
    # two unit-variance normals 2 apart: EER = Phi(-1) = 0.1587
    assert e == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)), abs=0.015)


# --- TAR@FAR ----------------------------------------------------------------------------------

def _tar_at_far_loops(s, y, target):
    pos = [v for v, l in zip(s, y) if l == 1]
    neg = [v for v, l in zip(s, y) if l == 0]
    best = 0.0
    for t in sorted(set(s)) + [math.inf]:
        fa = sum(1 for v in neg if v >= t)
        if fa <= target * len(neg) + 1e-9:
            best = max(best, sum(1 for v in pos if v >= t) / len(pos))
    return best


@FAST
@given(scored_pairs(), st.sampled_from([0.0, 1e-3, 0.01, 0.1, 0.25, 1 / 3, 0.5, 1.0]))
def test_tar_at_far_matches_loops(case, target):
    s, y = case
    assert tar_at_far(s, y, target) == pytest.approx(_tar_at_far_loops(s.tolist(), y.tolist(), target), abs=1e-12)


def test_tar_at_far_hand_example_allows_exact_share():
    # 1000 impostors, one of them scores above every genuine pair except 3 of 4
    neg = np.linspace(0, 0.5, 1000)
    neg[-1] = 0.95
    s = np.r_[[0.99, 0.98, 0.97, 0.9], neg]
    y = np.r_[[1, 1, 1, 1], np.zeros(1000, int)]
    assert tar_at_far(s, y, 1e-3) == 1.0  # one false accept allowed -> threshold 0.9
    assert tar_at_far(s, y, 9.99e-4) == 0.75  # none allowed -> threshold above 0.95
    assert tar_at_far(s, y, 0.0) == 0.75
    assert tar_at_far(s, y, 1.0) == 1.0


def test_tar_at_far_is_monotone_in_far():
    s, y = _random_case(3, 500, ties=False)
    vals = [tar_at_far(s, y, f) for f in (0, 1e-3, 1e-2, 0.05, 0.1, 0.3, 1)]
    assert vals == sorted(vals) and vals[-1] == 1.0


# --- verification accuracy (LFW protocol) -----------------------------------------------------

def _accuracy_loops(s, y, fold_ids):
    accs = []
    for f in sorted(set(fold_ids)):
        train = [(v, l) for v, l, k in zip(s, y, fold_ids) if k != f]
        test = [(v, l) for v, l, k in zip(s, y, fold_ids) if k == f]
        u = sorted(set(v for v, _ in train))
        cands = [-math.inf] + [(a + b) / 2 for a, b in zip(u[:-1], u[1:])] + [math.inf]
        best_c, best = None, -1
        for c in cands:  # ascending: the first maximum is the lowest threshold
            correct = sum(1 for v, l in train if (v >= c) == (l == 1))
            if correct > best:
                best, best_c = correct, c
        # the chosen threshold is at least as good as any score used as a threshold
        for t in u:
            assert sum(1 for v, l in train if (v >= t) == (l == 1)) <= best
        accs.append(sum(1 for v, l in test if (v >= best_c) == (l == 1)) / len(test))
    return float(np.mean(accs)), float(np.std(accs))


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(20, 120), st.integers(2, 10), st.booleans())
def test_verification_accuracy_matches_loops_seeded_folds(seed, n, k, ties):
    s, y = _random_case(seed, n, ties)
    r = verification_accuracy(s, y, folds=k, seed=seed % 1000)
    perm = np.random.default_rng(seed % 1000).permutation(n)
    fold = np.empty(n, int)
    fold[perm] = np.arange(n) % k
    m, sd = _accuracy_loops(s.tolist(), y.tolist(), fold.tolist())
    assert r.mean == pytest.approx(m, abs=1e-12) and r.std == pytest.approx(sd, abs=1e-12)
    assert r.n_folds == k and len(r.fold_accuracies) == k and len(r.thresholds) == k


def test_verification_accuracy_lfw_fold_ids():
    # LFW View 2 layout: 10 consecutive sets of 600 pairs (here 30: 15 same, then 15 different)
    rng = np.random.default_rng(7)
    y = np.tile(np.r_[np.ones(15, int), np.zeros(15, int)], 10)
    s = rng.normal(size=300) + 1.5 * y
    fid = np.arange(300) // 30
    r = verification_accuracy(s, y, fold_ids=fid)
    m, sd = _accuracy_loops(s.tolist(), y.tolist(), fid.tolist())
    assert r.mean == pytest.approx(m, abs=1e-12) and r.std == pytest.approx(sd, abs=1e-12)
    assert r.n_folds == 10
    # fold ids may be any labels; the folds, not their names, matter
    names = np.array(["set%02d" % i for i in fid])
    assert verification_accuracy(s, y, fold_ids=names).mean == r.mean
    # explicit folds ignore `folds` and `seed`
    assert verification_accuracy(s, y, folds=3, seed=5, fold_ids=fid).mean == r.mean


def test_verification_accuracy_separable_and_seeded():
    s = np.r_[np.linspace(0.6, 1.0, 50), np.linspace(-1.0, 0.4, 50)]
    y = np.r_[np.ones(50, int), np.zeros(50, int)]
    r = verification_accuracy(s, y)
    assert r.mean == 1.0 and r.std == 0.0
    assert np.all((r.thresholds > 0.4) & (r.thresholds <= 0.6))
    s2, y2 = _random_case(11, 300, ties=False)
    a, b = verification_accuracy(s2, y2, seed=3), verification_accuracy(s2, y2, seed=3)
    assert a.mean == b.mean and np.array_equal(a.fold_accuracies, b.fold_accuracies)
    assert set(a.to_dict()) >= {"mean", "std", "fold_accuracies", "thresholds", "n_folds"}


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [roc_auc, roc_curve, eer, lambda s, y: tar_at_far(s, y, 0.01),
                                verification_accuracy])
@pytest.mark.parametrize("scores,labels,match", [
    ([0.1, np.nan, 0.3], [1, 0, 1], "NaN"),
    ([0.1, np.inf, 0.3], [1, 0, 1], "NaN/inf"),
    ([0.1, 0.2, 0.3], [1, 1, 1], "both classes"),
    ([0.1, 0.2, 0.3], [0, 0, 0], "both classes"),
    ([0.1, 0.2, 0.3], [1, 0], "length"),
    ([0.1, 0.2, 0.3], [1, 0, 2], "0 .different. or 1"),
    ([[0.1, 0.2], [0.3, 0.4]], [1, 0], "1-D"),
    ([], [], "at least 2"),
    ([0.1, 0.2], ["a", "b"], "0/1 labels"),
])
def test_verification_input_errors(fn, scores, labels, match):
    with pytest.raises(MetricInputError, match=match):
        fn(scores, labels)


def test_verification_parameter_errors():
    s, y = _random_case(0, 30, ties=False)
    for bad in (-0.1, 1.5, float("nan"), "x"):
        with pytest.raises(MetricInputError, match="far"):
            tar_at_far(s, y, bad)
    with pytest.raises(MetricInputError, match="folds"):
        verification_accuracy(s, y, folds=1)
    with pytest.raises(MetricInputError, match="folds"):
        verification_accuracy(s, y, folds=31)
    with pytest.raises(MetricInputError, match="2 distinct folds"):
        verification_accuracy(s, y, fold_ids=np.zeros(30))
    with pytest.raises(MetricInputError, match="fold_ids"):
        verification_accuracy(s, y, fold_ids=np.arange(29) % 10)
    assert issubclass(MetricInputError, ValueError)


def _delong_brute(scores, labels, z=1.959963984540054):
    """DeLong 1988 written out: every (genuine, impostor) pair's psi in a double loop, then the variance."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    psi = [[1.0 if x > v else 0.5 if x == v else 0.0 for v in neg] for x in pos]
    v10 = [sum(row) / len(neg) for row in psi]
    v01 = [sum(psi[i][j] for i in range(len(pos))) / len(pos) for j in range(len(neg))]
    auc = sum(v10) / len(pos)
    s10 = sum((v - auc) ** 2 for v in v10) / (len(pos) - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (len(neg) - 1)
    half = z * (s10 / len(pos) + s01 / len(neg)) ** 0.5
    return auc, max(0.0, auc - half), min(1.0, auc + half)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_ci_equals_delong_written_out(seed):
    from idbench.analysis import roc_auc, roc_auc_ci

    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 80))
    y = (rng.random(n) < 0.4).astype(int)
    y[:2], y[2:4] = 1, 0
    s = np.round(rng.normal(size=n) + y * rng.uniform(0, 2), 1)  # rounded: ties within and across classes
    auc, lo, hi = _delong_brute(s.tolist(), y.tolist())
    assert roc_auc(s, y) == pytest.approx(auc, abs=1e-12)
    np.testing.assert_allclose(roc_auc_ci(s, y), (lo, hi), atol=1e-12)
    wide = roc_auc_ci(s, y, level=0.99)
    assert wide[0] <= lo and wide[1] >= hi


def test_roc_auc_ci_covers_the_true_auc_about_95_percent_of_the_time():
    """Binormal scores with unit variances: true AUC = Phi(d / sqrt 2) (Hanley & McNeil 1982)."""
    from statistics import NormalDist

    from idbench.analysis import roc_auc_ci

    d, true = 1.0, NormalDist().cdf(1.0 / 2 ** 0.5)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        s = np.r_[rng.normal(d, 1, 60), rng.normal(0, 1, 90)]
        lo, hi = roc_auc_ci(s, np.r_[np.ones(60), np.zeros(90)])
        hits += lo <= true <= hi
    assert 0.92 <= hits / 400 <= 0.98, hits / 400


def test_roc_auc_ci_bad_input_is_one_line():
    from idbench.analysis import MetricInputError, roc_auc_ci

    with pytest.raises(MetricInputError, match="at least 2 pairs of each class"):
        roc_auc_ci([0.9, 0.1, 0.2], [1, 0, 0])
    with pytest.raises(MetricInputError, match="level"):
        roc_auc_ci([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], level=1.0)
    assert roc_auc_ci([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == (1.0, 1.0)  # separated: no spread
