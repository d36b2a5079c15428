"""Seeded, capped samples of pairs and probes, so that every analysis stays O(N) at any size.

Below its cap each function enumerates exactly (the numbers of small sets do not change); above
it, it draws a seeded uniform sample without replacement and says so (``PairSample.capped``).
Nothing here builds an N x N array: pairs are decoded from their index in the row-major
upper-triangle order, which is the order ``numpy.triu_indices(n, 1)`` lists them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np

from ._checks import MetricInputError, check_int

__all__ = ["PairSample", "capped_indices", "genuine_pairs", "impostor_pairs", "triangle_pair"]


@dataclass(frozen=True)
class PairSample:
    """Pairs ``(i, j)`` with ``i < j``, how many there were in all, the cap and whether it bit."""

    pairs: np.ndarray  # P x 2 int64
    n_all: int
    cap: int
    capped: bool

    def to_dict(self) -> Dict[str, Any]:
        return {"n": int(len(self.pairs)), "n_all": self.n_all, "cap": self.cap, "capped": self.capped}


def capped_indices(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """``arange(n)`` when ``n <= cap``, else ``cap`` indices drawn uniformly without replacement
    (``numpy.random.default_rng(seed).choice``), sorted ascending. O(cap) memory for large n."""
    n, cap = check_int(n, "n", 0), check_int(cap, "cap", 1)
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False).astype(np.int64))


def triangle_pair(t: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row-major upper-triangle index ``t`` of an n x n matrix -> ``(a, b)`` with ``a < b``.

    Row ``a`` starts at ``off(a) = a (n - 1) - a (a - 1) / 2``; ``a`` is the last row with
    ``off(a) <= t`` and ``b = a + 1 + t - off(a)`` (inverse of ``numpy.triu_indices(n, 1)``).
    """
    a_all = np.arange(max(n - 1, 0), dtype=np.int64)
    off = a_all * (n - 1) - a_all * (a_all - 1) // 2
    t = np.asarray(t, np.int64)
    a = np.searchsorted(off, t, side="right") - 1
    return a, a + 1 + t - off[a]


def _groups(labels: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label index per row, rows sorted by (label, row), start of each label's block in that order)."""
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise MetricInputError(f"labels: expected a 1-D array, got shape {lab.shape}")
    _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1).astype(np.int64)
    order = np.argsort(inv, kind="stable")
    return inv, order, np.r_[0, np.cumsum(counts)].astype(np.int64)


def genuine_pairs(labels: Any, max_per_identity: int, max_total: int, seed: int = 0) -> PairSample:
    """Same-label pairs ``(i, j)``, ``i < j``, in ``triu_indices`` order (sorted by ``i`` then ``j``).

    Identity ``L`` with ``c_L`` rows has ``C(c_L, 2)`` pairs: all of them when that is at most
    ``max_per_identity``, else that many drawn uniformly without replacement (seeded). If the
    union still holds more than ``max_total``, ``max_total`` of it are kept uniformly (seeded).
    Without caps biting this is every genuine pair, as the LFW "all pairs" protocol enumerates.
    """
    per, total = check_int(max_per_identity, "max_per_identity", 1), check_int(max_total, "max_total", 1)
    _, order, start = _groups(labels)
    rng = np.random.default_rng([int(seed), 1])
    parts, n_all, capped = [], 0, False
    for g in range(len(start) - 1):
        rows = order[start[g]:start[g + 1]]
        c = len(rows)
        m = c * (c - 1) // 2
        n_all += m
        if m == 0:
            continue
        if m > per:
            capped = True
            t = rng.choice(m, per, replace=False)
        else:
            t = np.arange(m)
        a, b = triangle_pair(t, c)
        parts.append(np.stack([rows[a], rows[b]], 1))
    pairs = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
    if len(pairs) > total:
        capped = True
        pairs = pairs[rng.choice(len(pairs), total, replace=False)]
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return PairSample(pairs.astype(np.int64), int(n_all), per, capped)


def impostor_pairs(labels: Any, max_pairs: int, seed: int = 0) -> PairSample:
    """Different-label pairs ``(i, j)``, ``i < j``: all of them in ``triu_indices`` order when there
    are at most ``max_pairs``, else the pairs at ``default_rng(seed).choice(M, max_pairs,
    replace=False)`` of that order (M = number of different-label pairs), in drawn order.

    The same pairs as filtering ``triu_indices(n, 1)`` then sampling, without building it: the
    t-th impostor pair is decoded in O(log n) (row ``i`` by cumulative counts; then the u-th
    column ``j > i`` outside ``i``'s label by a search over that label's rows).
    """
    cap = check_int(max_pairs, "max_pairs", 1)
    inv, order, start = _groups(labels)
    n = len(inv)
    rank = np.empty(n, np.int64)  # position of each row in `order`
    rank[order] = np.arange(n)
    same_after = start[inv + 1] - 1 - rank  # rows j > i with i's label
    per_row = (n - 1 - np.arange(n)) - same_after
    cum = np.r_[0, np.cumsum(per_row)]
    m = int(cum[-1])
    if m <= cap:
        t = np.arange(m, dtype=np.int64)
    else:
        t = np.random.default_rng(seed).choice(m, cap, replace=False).astype(np.int64)
    i = np.searchsorted(cum, t, side="right") - 1
    u = t - cum[i]
    # D_b = r_b - b over each label's sorted rows r_b is non-decreasing; the u-th column after i not of its
    # label is i + 1 + u + #{m : D_{a+1+m} - D_a <= u}; a global key (label, D) makes it one searchsorted
    pos = np.arange(n, dtype=np.int64)
    d = order - (pos - start[inv[order]])
    width = 2 * n + 1
    key = inv[order] * width + d
    g = np.searchsorted(key, inv[i] * width + u + d[rank[i]], side="right")
    j = i + 1 + u + (g - rank[i] - 1)
    return PairSample(np.stack([i, j], 1).astype(np.int64), m, cap, m > cap)
