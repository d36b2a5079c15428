"""The metric tester: every entry of the metric catalogue against an independent reference, in one call.

Each catalogued metric gets a :class:`~idbench.analysis.testing.MetricCase`: seeded random inputs, the number
taken out of the catalogued function's result, and a reference that does not use idbench (scikit-learn, SciPy,
or a loop over the formula; the loops of tests/test_metrics_*.py are imported, not written twice). A metric
added to the catalogue without a case here fails ``test_every_catalogued_metric_matches_its_reference``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from idbench.analysis import catalogue, gaze_error, paired_cosine, pose_error, expression_error, shape_error
from idbench.analysis.catalogue import Metric
from idbench.analysis.testing import MetricCase, check_metric, check_metrics
from test_metrics_bias import _sk_auc
from test_metrics_retrieval import _case as _retrieval_case
from test_metrics_retrieval import _loops as _retrieval_loops
from test_metrics_verification import _accuracy_loops, _eer_reference, _tar_at_far_loops


# --- seeded inputs ------------------------------------------------------------------------------------------

def _bias_inputs(rng):
    n_p, n_s, n_n = rng.integers(5, 60, 3)
    p = rng.normal(0.6, 0.15, n_p)
    s = rng.normal(0.5, 0.2, n_s)
    if rng.random() < 0.5:  # ties between and within the groups
        p, s = np.round(p, 1), np.round(s, 1)
    return (p, s, rng.normal(0.1, 0.2, n_n)), {"n_boot": 0}


def _verification_inputs(rng, **kw):
    n = int(rng.integers(20, 120))
    y = rng.integers(0, 2, n)
    y[:2] = (0, 1)
    s = rng.normal(size=n) + 0.8 * y if rng.random() < 0.5 else rng.integers(0, 4, n).astype(float)
    return (s, y), kw


def _accuracy_inputs(rng):
    (s, y), _ = _verification_inputs(rng)
    return (s, y), {"fold_ids": rng.integers(0, 10, len(s)) % 10}


def _retrieval_inputs(k):
    def inputs(rng):
        probe, pl, gallery, gl = _retrieval_case(int(rng.integers(2**32)), int(rng.integers(1, 25)), 6, 2, 8)
        return (probe, pl, gallery, gl), {"k": k}
    return inputs


def _ffpp_inputs(rng):
    centres = rng.normal(size=(8, 16))
    vids = np.array([f"{i:03d}" for i in range(8)])
    gallery = np.repeat(centres, 4, axis=0) + 0.4 * rng.normal(size=(32, 16))
    src, tgt = rng.integers(0, 8, 30), rng.integers(0, 8, 30)
    swapped = 0.7 * centres[src] + 0.3 * centres[tgt] + 0.3 * rng.normal(size=(30, 16))
    return (swapped, vids[src], gallery, np.repeat(vids, 4)), {}


def _rows(k, scale=30.0):
    def inputs(rng):
        n = int(rng.integers(1, 40))
        return (rng.uniform(-scale, scale, (n, k)), rng.uniform(-scale, scale, (n, k))), {}
    return inputs


def _pair_inputs(rng):
    n, d = int(rng.integers(1, 30)), int(rng.integers(2, 64))
    return (rng.normal(size=(n, d)), rng.normal(size=(n, d))), {}


def _distances_inputs(rng):
    n = int(rng.integers(1, 50))
    right, wrong = rng.integers(0, 5, n).astype(float), rng.integers(0, 5, n).astype(float)  # many ties
    return (right, wrong), {}


def _saliency_inputs(rng):
    n, h, w = (int(v) for v in rng.integers(1, 6, 3) * (1, 4, 4))
    mask = rng.random((h, w)) if rng.random() < 0.5 else rng.random((h, w)) < 0.4
    return (rng.normal(size=(n, h, w)), mask), {}


# --- references (no idbench code) ----------------------------------------------------------------------------

def _mean_p(p, s, n, **_):
    return float(np.mean(p))


def _relative(p, s, n, **_):
    return (np.mean(p) - np.mean(s)) / (np.mean(p) - np.mean(n))


def _saliency_loops(sal, mask):
    """sum |S| M / sum |S| per map, by plain loops, then the mean over maps (a run reports the mean)."""
    ratios = []
    for m in sal.tolist():
        num = den = 0.0
        for row, mrow in zip(m, mask.tolist()):
            for v, mv in zip(row, mrow):
                num += abs(v) * float(mv)
                den += abs(v)
        ratios.append(num / den)
    return float(np.mean(ratios))


def _l1(a, b):
    return float(np.mean([sum(abs(x - y) for x, y in zip(ra, rb)) for ra, rb in zip(a.tolist(), b.tolist())]))


def _l2(a, b):
    return float(np.mean([math.sqrt(sum((x - y) ** 2 for x, y in zip(ra, rb)))
                          for ra, rb in zip(a.tolist(), b.tolist())]))


def _gaze_angle(t, s):
    """Mean arccos of the dot product of the gaze vectors, written here from the pitch-yaw convention."""
    def vec(p, y):
        p, y = math.radians(p), math.radians(y)
        return (-math.cos(p) * math.sin(y), -math.sin(p), -math.cos(p) * math.cos(y))
    angles = []
    for (pt, yt), (ps, ys) in zip(t.tolist(), s.tolist()):
        dot = sum(a * b for a, b in zip(vec(pt, yt), vec(ps, ys)))
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, dot)))))
    return float(np.mean(angles))


def _relative_loops(right, wrong):
    return float(np.mean([1.0 if r < w else 0.5 if r == w else 0.0 for r, w in zip(right, wrong)]))


def _bias(value, reference):
    return MetricCase(_bias_inputs, reference, value)


_AUC = _bias(lambda r: r.auc, lambda p, s, n, **_: _sk_auc(p, s))
_GAP = _bias(lambda r: r.mean_gap, lambda p, s, n, **_: np.mean(p) - np.mean(s))
_REL = _bias(lambda r: r.relative_gap, _relative)
_TOP = {k: MetricCase(_retrieval_inputs(k), lambda *a, k: _retrieval_loops(*a, k)[0].mean(), lambda r: r.accuracy)
        for k in (1, 5)}


def _count(fn, k):
    return MetricCase(_rows(k), lambda t, s: len(t), lambda r: r.n, function=fn)


CASES = {
    "positive_mean": _bias(lambda r: r.positive_mean, _mean_p),
    "swapped_mean": _bias(lambda r: r.swapped_mean, lambda p, s, n, **_: np.mean(s)),
    "negative_mean": _bias(lambda r: r.negative_mean, lambda p, s, n, **_: np.mean(n)),
    "bias_mean_gap": _GAP, "decomp_mean_gap": _GAP,
    "bias_relative_gap": _REL, "decomp_relative_gap": _REL, "mask_relative_gap": _REL,
    "bias_auc": _AUC, "decomp_auc": _AUC,
    "bias_wasserstein": _bias(lambda r: r.wasserstein, lambda p, s, n, **_: wasserstein_distance(p, s)),
    "bias_ks": _bias(lambda r: r.ks, lambda p, s, n, **_: ks_2samp(p, s).statistic),
    "verification_auc": MetricCase(_verification_inputs, lambda s, y: roc_auc_score(y, s)),
    "eer": MetricCase(_verification_inputs, _eer_reference, lambda r: r[0], atol=1e-9),
    "tar_at_far": MetricCase(lambda rng: _verification_inputs(rng, far=float(rng.choice([1e-3, 1e-2, 0.1, 0.3]))),
                             lambda s, y, far: _tar_at_far_loops(s.tolist(), y.tolist(), far)),
    "verification_accuracy": MetricCase(_accuracy_inputs, lambda s, y, fold_ids: _accuracy_loops(
        s.tolist(), y.tolist(), fold_ids.tolist())[0], lambda r: r.mean),
    "retrieval_top1": _TOP[1], "retrieval_top5": _TOP[5], "id_retrieval_top1": _TOP[1],
    "id_retrieval_ffpp": MetricCase(_ffpp_inputs, lambda *a: _retrieval_loops(*a, 1)[0].mean(),
                                    lambda r: r.accuracy),
    "saliency_inner_ratio": MetricCase(_saliency_inputs, _saliency_loops, lambda r: np.mean(r)),
    "id_distance": MetricCase(_pair_inputs, lambda a, b: np.mean(1 - np.diag(sk_cosine(a, b))),
                              lambda r: np.mean(1 - r)),
    "pose_l2": MetricCase(_rows(3), _l2, lambda r: r.mean_l2),
    "pose_l1": MetricCase(_rows(3), _l1, lambda r: r.mean_l1),
    "expression_l2": MetricCase(_rows(11, 2.0), _l2, lambda r: r.mean_l2),
    "expression_l1": MetricCase(_rows(11, 2.0), _l1, lambda r: r.mean_l1),
    "shape_l2": MetricCase(_rows(80, 1.0), _l2, lambda r: r.mean_l2),
    "shape_l1": MetricCase(_rows(80, 1.0), _l1, lambda r: r.mean_l1),
    "gaze_angular": MetricCase(_rows(2, 60.0), _gaze_angle, lambda r: r.mean_angle, rtol=1e-7, atol=1e-7),
    "gaze_l1": MetricCase(_rows(2, 60.0), _l1, lambda r: r.mean_l1),
    **{f"{a}_relative": MetricCase(_distances_inputs, _relative_loops) for a in ("id", "pose", "expression", "gaze")},
    "n_swaps": MetricCase(_pair_inputs, lambda a, b: len(a), len, function=paired_cosine),
    "pose_n": _count(pose_error, 3), "expression_n": _count(expression_error, 11),
    "gaze_n": _count(gaze_error, 2), "shape_n": _count(shape_error, 80),
}


def test_every_catalogued_metric_matches_its_reference():
    assert check_metrics(CASES) == len(catalogue.METRICS)


def test_a_metric_without_a_reference_fails_the_tester():
    new = Metric("sharpness_gap", "lower", "mean |x - y|", "nobody", "pose_error", unit="px", group="test")
    with pytest.raises(AssertionError, match="sharpness_gap: no reference case"):
        check_metrics(CASES, metrics=[*catalogue.METRICS, new])


def test_a_wrong_function_or_reference_is_caught():
    entry = catalogue.column_metric("pose_l1")
    bad = MetricCase(CASES["pose_l1"].inputs, _l2, CASES["pose_l1"].value)  # L1 judged against the L2 formula
    problems = check_metric(entry, bad, seeds=[0])
    assert len(problems) == 1 and "pose_l1: seed 0: pose_error gives" in problems[0]
    no_fn = Metric(**{**entry.__dict__, "function": "no_such_function"})
    assert "no_such_function" in check_metric(no_fn, CASES["pose_l1"])[0]
    sideways = Metric(**{**entry.__dict__, "direction": "smaller"})
    assert "direction must be higher, lower or ''" in check_metric(sideways, CASES["pose_l1"], seeds=[0])[0]
