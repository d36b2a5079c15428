"""Unit-length rows for the pipeline's embedding tables (every encoder's output is normalised here).

Tolerant by design: a zero row stays zero (``eps``), so one degenerate face cannot crash a batch; the metric
library's strict :func:`idbench.analysis.similarity.l2_normalize` refuses zero rows instead.
"""

from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x_i / max(||x_i||_2, eps)`` row by row, as float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
