"""Where does an encoder look? Share of saliency mass inside a face-region mask."""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from ._checks import MetricInputError, as_float_array

__all__ = ["saliency_inner_ratio"]


def saliency_inner_ratio(saliency: Any, mask: Any) -> Union[float, np.ndarray]:
    """Share of the absolute saliency mass inside a (binary or soft) mask.

    ``ratio = sum_xy |S(x, y)| M(x, y) / sum_xy |S(x, y)|`` with ``M`` in [0, 1] (e.g. the
    inner-face region of BlendFace's blending mask, Shiohara et al., ICCV 2023; an
    energy-based pointing-game style measure as in Score-CAM, Wang et al., CVPRW 2020).
    1 = all saliency on the inner face (what an identity encoder free of attribute bias
    should show), 0 = all outside. Higher is better.

    ``saliency``: H x W (returns a float) or N x H x W (returns the N per-map ratios).
    ``mask``: H x W (shared by every map) or the same shape as ``saliency``; booleans or
    values in [0, 1]. Raises :class:`MetricInputError` for NaN/inf, mismatched shapes, mask
    values outside [0, 1] or a map whose saliency is all zero.
    """
    s = np.abs(as_float_array(saliency, "saliency"))
    m = as_float_array(mask, "mask")
    if s.ndim not in (2, 3):
        raise MetricInputError(f"saliency: expected H x W or N x H x W, got shape {s.shape}")
    if s.size == 0:
        raise MetricInputError(f"saliency: is empty (shape {s.shape})")
    if m.shape != s.shape and m.shape != s.shape[-2:]:
        raise MetricInputError(f"mask: shape {m.shape} matches neither the saliency {s.shape} "
                               f"nor its last two axes {s.shape[-2:]}")
    if np.any(m < 0) or np.any(m > 1):
        raise MetricInputError(f"mask: values must lie in [0, 1], found [{m.min():.6g}, {m.max():.6g}]")
    flat_s = s.reshape(-1, s.shape[-2] * s.shape[-1])
    flat_m = np.broadcast_to(m, s.shape).reshape(flat_s.shape)
    total = flat_s.sum(axis=1)
    zero = np.flatnonzero(total == 0)
    if len(zero):
        where = "" if s.ndim == 2 else f" (map {int(zero[0])}, {len(zero)} in all)"
        raise MetricInputError(f"saliency: all-zero map{where}; the ratio is undefined")
    if not np.all(np.isfinite(total)):
        raise MetricInputError("saliency: the total mass overflows float64; rescale the maps")
    ratio = (flat_s * flat_m).sum(axis=1) / total
    ratio = np.clip(ratio, 0.0, 1.0)
    return float(ratio[0]) if s.ndim == 2 else ratio
