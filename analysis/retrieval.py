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
    """Indices of the k most similar gallery rows per probe (cosine), ties by gallery order."""
    pn = l2_normalize(probe, "probe")
    gn = l2_normalize(gallery, "gallery")
    # identical gallery directions get bit-identical scores: score the unique rows, map back
    gu, inverse = np.unique(gn, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(gu) == len(gn):  # no duplicates: score the rows in place
        gu, inverse = gn, slice(None)
    out = np.empty((len(pn), k), np.int64)
    step = max(1, _CHUNK_ENTRIES // max(1, len(gn)))
    n_gal = len(gn)
    for a in range(0, len(pn), step):
        s = (pn[a:a + step] @ gu.T)[:, inverse]
        s = np.rint(s * _SNAP)  # see _SNAP
        if k == 1:
            out[a:a + step, 0] = np.argmax(s, axis=1)  # first maximum = lowest gallery index
        elif n_gal < (1 << 22):
            # unique integer keys ordered by (score desc, gallery index asc): |s| <= 2**40, so key < 2**62
            key = -s.astype(np.int64) * n_gal + np.arange(n_gal)
            part = np.argpartition(key, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(key, part, axis=1), axis=1)
            out[a:a + step] = np.take_along_axis(part, order, axis=1)
        else:
            out[a:a + step] = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return out


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
