"""Closed-set identification (ID retrieval) by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import numpy as np

from ._checks import MetricInputError, as_labels, check_int
from .similarity import l2_normalize

__all__ = ["RetrievalResult", "id_retrieval", "id_retrieval_ffpp"]

# Similarities are snapped to a grid of 2**-40 (about 1e-12) before ranking, so that scores
# equal up to float rounding (BLAS may round the same dot product differently at different
# positions of a matrix) tie and are resolved by gallery order instead of by rounding noise.
_SNAP = 2.0 ** 40
_CHUNK_ENTRIES = 1 << 22  # probes x gallery entries per block (32 MiB of float64)


@dataclass(frozen=True)
class RetrievalResult:
    """Top-k retrieval of probes in a gallery.

    ``accuracy``: share of probes with a hit; ``hits[i]``: probe ``i`` is a hit;
    ``predicted[i]``: label of probe ``i``'s nearest gallery item (rank 1);
    ``topk_indices[i]``: gallery rows of its k nearest items, nearest first.
    """

    accuracy: float
    hits: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    topk_indices: np.ndarray = field(repr=False)
    k: int = 1

    @property
    def n_probes(self) -> int:
        return int(len(self.hits))

    def to_dict(self) -> Dict[str, Any]:
        return {"accuracy": self.accuracy, "k": self.k, "n_probes": self.n_probes,
                "hits": self.hits.tolist(), "predicted": self.predicted.tolist()}


def _rank(probe: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most similar gallery rows per probe (cosine), ties by gallery order.

    Exact, blocked: probes x gallery in tiles of at most _CHUNK_ENTRIES scores, a running top-k per
    probe, so memory is O((N + G) D) and never a probes x gallery matrix.
    """
    pn = l2_normalize(probe, "probe")
    gn = l2_normalize(gallery, "gallery")
    # identical gallery directions get bit-identical scores: score the unique rows, map back
    gu, inverse = np.unique(gn, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(gu) == len(gn):  # no duplicates: score the rows in place
        gu, inverse = gn, None
    else:  # unique rows in order of their first copy, so a lower unique index = an earlier gallery row
        first = np.full(len(gu), len(gn), np.int64)
        np.minimum.at(first, inverse, np.arange(len(gn)))
        perm = np.argsort(first)
        rank = np.empty_like(perm)
        rank[perm] = np.arange(len(perm))
        gu, inverse = gu[perm], rank[inverse]
    del gn
    out = np.empty((len(pn), k), np.int64)
    g_step = max(k, min(len(gu), _CHUNK_ENTRIES // 256))
    p_step = max(1, _CHUNK_ENTRIES // g_step)
    for a in range(0, len(pn), p_step):
        score, top = _top_unique(pn[a:a + p_step], gu, min(k, len(gu)), g_step)
        out[a:a + p_step] = top if inverse is None else _expand_duplicates(score, top, inverse, k)
    return out


def _top_k_keys(score: np.ndarray, index: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per row, the k entries first in (score descending, index ascending) order, in that order."""
    if score.shape[1] > k:
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(score, part, axis=1).min(axis=1, keepdims=True)
        # entries tied with the k-th score compete on index: keep every one >= the k-th score
        keep = score >= kth
        if keep.sum(axis=1).max() > k:
            order = np.lexsort((index, -score), axis=1)[:, :k]
            return np.take_along_axis(score, order, axis=1), np.take_along_axis(index, order, axis=1)
        score, index = np.take_along_axis(score, part, axis=1), np.take_along_axis(index, part, axis=1)
    order = np.lexsort((index, -score), axis=1)[:, :k]
    return np.take_along_axis(score, order, axis=1), np.take_along_axis(index, order, axis=1)


def _first_snapped_max(raw: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per row, the first column with the largest snapped score ``rint(raw * _SNAP)`` and that score.

    Snapping is monotone, so only entries within one grid step of the row's raw maximum can share its
    snapped value; rows with several such entries are snapped and searched in full."""
    j = np.argmax(raw, axis=1)
    m = raw[np.arange(len(raw)), j]
    near = (raw >= (m - 1.0 / _SNAP)[:, None]).sum(axis=1) > 1
    if near.any():
        s = np.rint(raw[near] * _SNAP)
        j[near] = np.argmax(s == np.rint(m[near] * _SNAP)[:, None], axis=1)
    return j, np.rint(m * _SNAP)


def _top_unique(pn: np.ndarray, gu: np.ndarray, k: int, g_step: int) -> Tuple[np.ndarray, np.ndarray]:
    """Running top-k of snapped scores over gallery blocks (earlier blocks win ties: lower index)."""
    best_s = np.full((len(pn), 0), -np.inf)
    best_i = np.zeros((len(pn), 0), np.int64)
    for b in range(0, len(gu), g_step):
        raw = pn @ gu[b:b + g_step].T
        if k == 1:
            j, sj = _first_snapped_max(raw)
            if b == 0:
                best_s, best_i = sj[:, None], (j + b)[:, None]
            else:
                better = sj > best_s[:, 0]
                best_s[better, 0], best_i[better, 0] = sj[better], j[better] + b
            continue
        s = np.rint(raw * _SNAP)  # see _SNAP
        idx = np.broadcast_to(np.arange(b, b + s.shape[1]), s.shape)
        best_s, best_i = _top_k_keys(np.concatenate([best_s, s], 1), np.concatenate([best_i, idx], 1), k)
    return best_s, best_i


def _expand_duplicates(score: np.ndarray, top_u: np.ndarray, inverse: np.ndarray, k: int) -> np.ndarray:
    """Unique-row top-k -> gallery-row top-k. The top-k gallery rows all copy one of the top-k unique rows
    ranked by (score, first copy), so those rows' first k copies, ranked by (score, row), hold the answer."""
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    if k == 1:
        return order[starts[top_u]]
    cand = np.full(top_u.shape + (k,), -1, np.int64)
    for c in range(k):  # c-th copy of each candidate unique row (-1 when it has fewer)
        has = counts[top_u] > c
        cand[..., c][has] = order[starts[top_u[has]] + c]
    score = np.repeat(score[..., None], k, axis=2).reshape(len(top_u), -1)
    cand = cand.reshape(len(top_u), -1)
    score = np.where(cand >= 0, score, -np.inf)
    _, idx = _top_k_keys(score, np.where(cand >= 0, cand, np.iinfo(np.int64).max), k)
    return idx


def _retrieve(probe: Any, probe_labels: Any, gallery: Any, gallery_labels: Any, k: Any,
              names: Tuple[str, str, str, str]) -> RetrievalResult:
    n_probe, n_plab, n_gal, n_glab = names
    p = np.asarray(probe) if not isinstance(probe, np.ndarray) else probe
    g = np.asarray(gallery) if not isinstance(gallery, np.ndarray) else gallery
    # shape checks first so that messages name the caller's arguments
    if p.ndim != 2 or g.ndim != 2:
        bad, arr = (n_probe, p) if p.ndim != 2 else (n_gal, g)
        raise MetricInputError(f"{bad}: expected a 2-D array (N x D), got shape {arr.shape}")
    if p.shape[0] == 0 or g.shape[0] == 0:
        raise MetricInputError(f"{n_probe if p.shape[0] == 0 else n_gal}: is empty")
    if p.shape[1] != g.shape[1]:
        raise MetricInputError(f"{n_probe} and {n_gal} must have the same dimension D, "
                               f"got {p.shape[1]} and {g.shape[1]}")
    pl = as_labels(probe_labels, n_plab, len(p), n_probe)
    gl = as_labels(gallery_labels, n_glab, len(g), n_gal)
    k = check_int(k, "k", 1, len(g))
    distinct = np.unique(gl)
    if len(distinct) < 2:
        raise MetricInputError(f"{n_glab}: the gallery holds a single label ({distinct[0]!r}); "
                               "retrieval needs at least 2")
    missing = ~np.isin(pl, distinct)
    if missing.any():
        first = pl[np.flatnonzero(missing)[0]]
        raise MetricInputError(f"{n_plab}: {int(missing.sum())} probe(s) have a label absent from the gallery "
                               f"(first: {first!r}); closed-set retrieval needs every probe label in the gallery")
    try:
        top = _rank(p, g, k)
    except MetricInputError as e:  # re-label 'probe'/'gallery' with the caller's argument names
        msg = str(e)
        if msg.startswith("probe:"):
            msg = n_probe + msg[len("probe"):]
        elif msg.startswith("gallery:"):
            msg = n_gal + msg[len("gallery"):]
        raise MetricInputError(msg) from None
    hits = np.any(gl[top] == pl[:, None], axis=1)
    return RetrievalResult(float(hits.mean()), hits, gl[top[:, 0]], top, k)


def id_retrieval(probe: Any, probe_labels: Any, gallery: Any, gallery_labels: Any, k: int = 1) -> RetrievalResult:
    """Closed-set top-k identification accuracy by cosine similarity.

    ``accuracy = (1/N) sum_i 1( y_i in { g_label[j] : j in topk_i } )`` where ``topk_i``
    are the k gallery rows with the highest ``cos(probe_i, gallery_j)`` (CMC rank-k
    identification rate; e.g. the MegaFace/IJB-C 1:N protocol, and FaceShifter's "ID
    retrieval" with k = 1).

    ``probe``: N x D, ``gallery``: G x D embeddings (any scale; rows are L2-normalised);
    labels: 1-D arrays of ints or strings. Ties: scores equal up to about 1e-12 (and
    always identical gallery vectors) are ordered by gallery position, first row first
    (stable sort), so the result does not depend on BLAS rounding.

    Raises :class:`MetricInputError` for bad shapes, NaN/inf, zero vectors, ``k`` outside
    ``[1, G]``, a gallery with a single label, or a probe label absent from the gallery.
    """
    return _retrieve(probe, probe_labels, gallery, gallery_labels, k,
                     ("probe", "probe_labels", "gallery", "gallery_labels"))


def id_retrieval_ffpp(swapped: Any, source_ids: Any, gallery: Any, gallery_video_ids: Any,
                      k: int = 1) -> RetrievalResult:
    """ID retrieval of swapped faces, FaceForensics++ convention (FaceShifter, Li et al.,
    CVPR 2020; ReliableSwap, Yuan et al., 2023).

    The gallery holds several frames (typically 10) of every FF++ source video, the probes
    are frames of the swapped videos; ``source_ids[i]`` is the id of the video whose face
    was the swap's source. A probe is a hit when the gallery frame(s) nearest to it by
    cosine (top-k; k = 1 in the papers) belong to the source video:
    ``accuracy = (1/N) sum_i 1( source_ids[i] in { video(j) : j in topk_i } )``.
    Same computation, tie rule and validation as :func:`id_retrieval`, with
    ``gallery_video_ids`` as the gallery labels.
    """
    return _retrieve(swapped, source_ids, gallery, gallery_video_ids, k,
                     ("swapped", "source_ids", "gallery", "gallery_video_ids"))
