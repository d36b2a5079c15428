"""Cosine similarity between embeddings (the score every face-recognition metric starts from)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import MetricInputError, as_matrix, same_shape

__all__ = ["l2_normalize", "cosine_similarity", "paired_cosine"]


def l2_normalize(x: Any, name: str = "x") -> np.ndarray:
    """Rows of an N x D array divided by their L2 norm: ``x_i / ||x_i||_2``.

    Raises :class:`MetricInputError` for a zero row (its direction is undefined), NaN/inf
    or a non-2-D input.
    """
    a = as_matrix(x, name)
    peak = np.abs(a).max(axis=1)
    zero = np.flatnonzero(peak == 0)
    if len(zero):
        raise MetricInputError(f"{name}: row {int(zero[0])} is a zero vector ({len(zero)} in all); "
                               "cosine similarity is undefined for it")
    a = a / peak[:, None]  # rows scaled to max |x| = 1 first: no overflow/underflow in the norm
    return a / np.linalg.norm(a, axis=1)[:, None]


def cosine_similarity(a: Any, b: Any) -> np.ndarray:
    """All-pairs cosine similarity: ``S[i, j] = <a_i, b_j> / (||a_i|| ||b_j||)``.

    ``a`` is Na x D, ``b`` is Nb x D; returns an Na x Nb float64 matrix, clipped to
    [-1, 1] against rounding. Rows are L2-normalised inside, so the result does not
    change when a row is multiplied by a positive number. Zero rows, NaN/inf and
    mismatched D raise :class:`MetricInputError`.

    Convention: the standard face-recognition score (ArcFace, Deng et al., CVPR 2019;
    higher = more similar).
    """
    an = l2_normalize(a, "a")
    bn = l2_normalize(b, "b")
    if an.shape[1] != bn.shape[1]:
        raise MetricInputError(f"a and b must have the same dimension D, got {an.shape[1]} and {bn.shape[1]}")
    return np.clip(an @ bn.T, -1.0, 1.0)


def paired_cosine(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine similarity of two N x D arrays: ``s_i = <a_i, b_i> / (||a_i|| ||b_i||)``.

    Returns a length-N float64 vector in [-1, 1] (e.g. the anchor-vs-positive scores of
    BlendFace's bias analysis). Same validation as :func:`cosine_similarity`, and ``a``
    and ``b`` must have the same shape.
    """
    an = l2_normalize(a, "a")
    bn = l2_normalize(b, "b")
    same_shape(an, bn, "a", "b")
    return np.clip(np.einsum("ij,ij->i", an, bn), -1.0, 1.0)
