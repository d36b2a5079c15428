"""Face verification metrics on (score, label) pairs.

Conventions used throughout: ``labels[i] = 1`` when pair ``i`` shows the same identity
(genuine pair), ``0`` when it shows two identities (impostor pair); a higher score means
more similar (e.g. cosine similarity). A pair is *accepted* at threshold ``t`` when
``score >= t``. Then

* FAR(t) (false accept rate, = FPR) = #{impostor pairs with score >= t} / #impostor,
* TAR(t) (true accept rate, = TPR)  = #{genuine pairs with score >= t} / #genuine,
* FRR(t) = 1 - TAR(t).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._checks import MetricInputError, as_binary_labels, as_labels, as_scores, check_fraction, check_int

__all__ = ["roc_auc", "roc_auc_ci", "roc_curve", "eer", "tar_at_far", "verification_accuracy", "VerificationAccuracy"]


def _scores_labels(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray]:
    s = as_scores(scores, "scores", min_len=2)
    y = as_binary_labels(labels, "labels", len(s))
    return s, y


def _mann_whitney_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + 0.5 P(pos == neg) over all pairs, counted exactly with a sort."""
    neg_sorted = np.sort(neg)
    below = np.searchsorted(neg_sorted, pos, side="left")  # negatives strictly below each positive
    below_or_tied = np.searchsorted(neg_sorted, pos, side="right")
    # sum(below + 0.5 * ties) = sum(below + below_or_tied) / 2; integers, so the sum is exact
    twice = int(below.sum(dtype=np.int64)) + int(below_or_tied.sum(dtype=np.int64))
    return twice / (2.0 * len(pos) * len(neg))


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve, computed exactly as the Mann-Whitney statistic.

    ``AUC = (1 / (n_1 n_0)) * sum_{i: y_i=1} sum_{j: y_j=0} [ 1(s_i > s_j) + 0.5 * 1(s_i = s_j) ]``

    i.e. the probability that a random genuine pair scores higher than a random impostor
    pair, ties counted 1/2 (Hanley & McNeil, Radiology 1982). Equals the trapezoidal area
    under :func:`roc_curve` and ``sklearn.metrics.roc_auc_score``. 1 = perfect, 0.5 = chance.

    Raises :class:`MetricInputError` for NaN/inf scores, labels other than 0/1, length
    mismatch or a single class.
    """
    s, y = _scores_labels(scores, labels)
    return _mann_whitney_auc(s[y], s[~y])


def _placements(pos: np.ndarray, neg: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each genuine score the share of impostor scores below it (ties 1/2),
    for each impostor score the share of genuine scores above it (ties 1/2); each sorted once."""
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    v10 = (np.searchsorted(neg_sorted, pos, "left") + np.searchsorted(neg_sorted, pos, "right")) / (2.0 * len(neg))
    m = len(pos)
    v01 = (2 * m - np.searchsorted(pos_sorted, neg, "left") - np.searchsorted(pos_sorted, neg, "right")) / (2.0 * m)
    return v10, v01


def roc_auc_ci(scores: Any, labels: Any, level: float = 0.95) -> Tuple[float, float]:
    """DeLong's confidence interval of :func:`roc_auc` (DeLong, DeLong & Clarke-Pearson, Biometrics 1988).

    With ``m`` genuine scores ``X_i``, ``n`` impostor scores ``Y_j`` and ``psi(x, y) = 1(x > y) + 0.5 1(x = y)``:
    ``V10_i = (1/n) sum_j psi(X_i, Y_j)``, ``V01_j = (1/m) sum_i psi(X_i, Y_j)`` (their means are the AUC),
    ``Var(AUC) = s^2(V10) / m + s^2(V01) / n`` (sample variances, ``ddof=1``), and the interval is
    ``AUC -/+ z_{(1+level)/2} sqrt(Var)``, clipped to [0, 1]. Computed with sorts (Sun & Xu, IEEE SPL 2014),
    O((m + n) log(m + n)). It treats the pairs as independent observations, as pROC and most papers do:
    pairs that share images (sampled verification pairs) make it narrower than a resampling of identities.
    Needs at least 2 pairs of each class.
    """
    from statistics import NormalDist

    s, y = _scores_labels(scores, labels)
    level = check_fraction(level, "level", open_low=True, open_high=True)
    pos, neg = s[y], s[~y]
    if min(len(pos), len(neg)) < 2:
        raise MetricInputError(f"roc_auc_ci needs at least 2 pairs of each class, got {len(pos)} genuine and "
                               f"{len(neg)} impostor")
    v10, v01 = _placements(pos, neg)
    auc = float(v10.mean())
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(np.sqrt(v10.var(ddof=1) / len(pos) +
                                                                 v01.var(ddof=1) / len(neg)))
    return max(0.0, auc - half), min(1.0, auc + half)


def roc_curve(scores: Any, labels: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full ROC curve: ``(far, tar, thresholds)``, one point per distinct score.

    ``thresholds`` are the distinct scores in decreasing order, preceded by ``+inf``
    (nothing accepted, the point (0, 0)); ``far[i] = FAR(thresholds[i])`` and
    ``tar[i] = TAR(thresholds[i])`` with acceptance ``score >= threshold``. ``far`` and
    ``tar`` are non-decreasing and end at (1, 1).

    Convention: identical to ``sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)`` (fpr = FAR, tpr = TAR; scikit-learn >= 1.3 also uses ``inf``
    as the first threshold).
    """
    s, y = _scores_labels(scores, labels)
    fp, tp, thresholds = _roc_counts(s, y)
    return fp / fp[-1], tp / tp[-1], thresholds


def _roc_counts(s: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false accepts, true accepts, thresholds) at +inf and at every distinct score, descending."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]
    tp = np.cumsum(y_sorted, dtype=np.int64)[last_of_value]
    fp = (last_of_value + 1) - tp
    tp = np.r_[0, tp]
    fp = np.r_[0, fp]
    thresholds = np.r_[np.inf, s_sorted[last_of_value]]
    return fp, tp, thresholds


def eer(scores: Any, labels: Any) -> Tuple[float, float]:
    """Equal error rate: ``(eer, threshold)`` where FAR = FRR on the ROC curve.

    Walking :func:`roc_curve` from the strictest threshold, ``d = FAR - FRR`` goes from -1
    to +1. On the first ROC segment where ``d`` becomes >= 0, between points ``i-1`` and
    ``i``, the crossing is interpolated linearly:
    ``a = -d_{i-1} / (d_i - d_{i-1})``, ``EER = FAR_{i-1} + a (FAR_i - FAR_{i-1})``
    (= FRR there). This is the usual definition (e.g. ``brentq(lambda x: 1 - x -
    interp(x, fpr, tpr), 0, 1)`` in face-verification code; Bolle et al., Guide to
    Biometrics, 2004). The threshold is interpolated the same way between the two ROC
    thresholds; when one of them is the ``+inf`` sentinel, the finite one is returned.
    """
    far, tar, thr = roc_curve(scores, labels)
    d = far - (1.0 - tar)
    i = int(np.argmax(d >= 0))  # d[-1] = 1, so a crossing always exists; d[0] = -1, so i >= 1
    d0, d1 = d[i - 1], d[i]
    a = -d0 / (d1 - d0)
    rate = far[i - 1] + a * (far[i] - far[i - 1])
    t0, t1 = thr[i - 1], thr[i]
    t = t1 if not np.isfinite(t0) else t0 + a * (t1 - t0)
    return float(rate), float(t)


def tar_at_far(scores: Any, labels: Any, far: float) -> float:
    """TAR at a target FAR: the highest TAR among ROC operating points with ``FAR <= far``.

    Equivalently: the threshold is the lowest one whose FAR does not exceed ``far`` (the
    largest achievable FAR that is still <= the target), and the TAR is read there; no
    interpolation. This is the standard IJB-B/IJB-C convention (Whitelam et al., CVPRW
    2017; Maze et al., ICB 2018): ``TAR@FAR=1e-3`` etc. When ``far < 1 / n_impostor`` only
    the FAR = 0 points qualify (the result may then be 0). ``far`` is compared to the
    FAR counts with a 1e-9 slack so that e.g. 1e-3 with 1000 impostors allows 1 false accept.
    """
    target = check_fraction(far, "far")
    s, y = _scores_labels(scores, labels)
    fp, tp, _ = _roc_counts(s, y)
    ok = fp <= target * fp[-1] + 1e-9
    return float(tp[ok].max() / tp[-1])


@dataclass(frozen=True)
class VerificationAccuracy:
    """K-fold verification accuracy (LFW protocol).

    ``mean``/``std``: over folds (``std`` with ddof=0, as in the usual LFW scripts);
    ``fold_accuracies``/``thresholds``: one per fold, in fold order (sorted fold ids);
    a pair is predicted "same" when ``score >= threshold``.
    """

    mean: float
    std: float
    fold_accuracies: np.ndarray = field(repr=False)
    thresholds: np.ndarray = field(repr=False)
    n_folds: int = 10

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready; an infinite threshold (accept/reject everything) becomes None."""
        thr = [float(t) if np.isfinite(t) else None for t in self.thresholds]
        return {"mean": self.mean, "std": self.std, "n_folds": self.n_folds,
                "fold_accuracies": self.fold_accuracies.tolist(), "thresholds": thr}


def _best_threshold(s: np.ndarray, y: np.ndarray) -> float:
    """The threshold maximising accuracy on (s, y); the lowest one among equally good ones.

    Candidates: -inf (accept all), the midpoints between consecutive distinct scores, +inf
    (reject all); every split of the sorted scores is one candidate.
    """
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    yy = y[order].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    u = ss[starts]
    pos_per = np.add.reduceat(yy, starts)
    neg_per = np.diff(np.r_[starts, len(ss)]) - pos_per
    # candidate j rejects the j lowest distinct values (j = 0 .. m)
    tn = np.r_[0, np.cumsum(neg_per)]
    fn = np.r_[0, np.cumsum(pos_per)]
    correct = tn + (int(yy.sum()) - fn)
    j = int(np.argmax(correct))
    if j == 0:
        return -np.inf
    if j == len(u):
        return np.inf
    lo, hi = u[j - 1], u[j]
    c = 0.5 * lo + 0.5 * hi
    return float(c) if lo < c <= hi else float(hi)


def verification_accuracy(scores: Any, labels: Any, folds: int = 10, seed: int = 0,
                          fold_ids: Optional[Any] = None) -> VerificationAccuracy:
    """K-fold verification accuracy, the LFW protocol (Huang et al., 2007; "unrestricted"
    View 2 as reported by FaceNet, ArcFace, ...).

    For each fold ``k``: the threshold ``t_k`` maximising accuracy
    ``(TP + TN) / n`` on the other folds (see below for the candidates) is applied to
    fold ``k``: ``acc_k = mean_{i in k} 1((s_i >= t_k) == y_i)``. Returns
    ``mean_k acc_k`` and ``std_k acc_k`` (ddof=0).

    Threshold candidates are -inf, the midpoints between consecutive distinct training
    scores and +inf, so the training accuracy is the exact maximum over all thresholds; among
    equally accurate thresholds the lowest is taken (as ``argmax`` over an ascending grid in
    the common LFW scripts).

    Folds: ``fold_ids`` (length n, any labels; one fold per distinct value, at least 2)
    gives the folds explicitly, e.g. LFW's ``pairs.txt`` View 2 = 10 consecutive sets of
    600 pairs: ``fold_ids = np.arange(6000) // 600``; ``folds`` is then ignored. Otherwise
    ``folds`` folds of (almost) equal size come from ``numpy.random.default_rng(seed)
    .permutation(n)`` (pair ``perm[i]`` goes to fold ``i % folds``).
    """
    s, y = _scores_labels(scores, labels)
    n = len(s)
    if fold_ids is None:
        k = check_int(folds, "folds", 2, n)
        perm = np.random.default_rng(check_int(seed, "seed", 0)).permutation(n)
        fid = np.empty(n, np.int64)
        fid[perm] = np.arange(n) % k
    else:
        fid = as_labels(fold_ids, "fold_ids", n, "scores")
    ids = np.unique(fid)
    if len(ids) < 2:
        raise MetricInputError("fold_ids: needs at least 2 distinct folds, got 1")
    accs: List[float] = []
    thrs: List[float] = []
    for f in ids:
        test = fid == f
        t = _best_threshold(s[~test], y[~test])
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thrs.append(t)
    a = np.asarray(accs)
    return VerificationAccuracy(float(a.mean()), float(a.std()), a, np.asarray(thrs), len(ids))
