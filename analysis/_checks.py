"""Input validation shared by the metric modules.

Every helper returns a clean ``numpy`` array (float64 for numbers) or raises
:class:`MetricInputError` with a one-line message that names the argument, says
what is wrong and what was expected.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from idbench.errors import InputError

__all__ = [
    "MetricInputError",
    "as_float_array",
    "as_scores",
    "as_binary_labels",
    "as_labels",
    "as_matrix",
    "same_shape",
    "check_int",
    "check_fraction",
]


class MetricInputError(InputError):
    """Invalid input to a metric (shape, NaN/inf, empty group, one-class labels, ...).

    A subclass of :class:`ValueError` (through :class:`idbench.errors.InputError`).
    """


def _shape(a: np.ndarray) -> str:
    return "x".join(str(s) for s in a.shape) or "scalar"


def as_float_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 array; rejects non-numeric data and NaN/inf."""
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise MetricInputError(f"{name}: cannot be read as an array ({e})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise MetricInputError(f"{name}: expected numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise MetricInputError(f"{name}: complex values are not supported")
    a = a.astype(np.float64, copy=False)
    if a.size and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise MetricInputError(f"{name}: contains {bad} NaN/inf value(s); drop or fix them first")
    return a


def as_scores(x: Any, name: str, min_len: int = 1) -> np.ndarray:
    """A finite 1-D float64 array with at least ``min_len`` entries."""
    a = as_float_array(x, name)
    if a.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {_shape(a)}")
    if len(a) < min_len:
        raise MetricInputError(f"{name}: needs at least {min_len} value(s), got {len(a)}")
    return a


def as_binary_labels(y: Any, name: str, n: int, need_both: bool = True) -> np.ndarray:
    """1-D labels of length ``n`` with values in {0, 1} (bools accepted) -> bool array.

    With ``need_both`` (the default) both classes must be present.
    """
    try:
        a = np.asarray(y)
    except Exception as e:
        raise MetricInputError(f"{name}: cannot be read as an array ({e})") from None
    if a.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {_shape(a)}")
    if len(a) != n:
        raise MetricInputError(f"{name}: length {len(a)} does not match the scores' length {n}")
    if a.dtype == np.bool_:
        b = a
    else:
        if a.dtype == object or not np.issubdtype(a.dtype, np.number):
            raise MetricInputError(f"{name}: expected 0/1 labels, got dtype {a.dtype}")
        vals = np.unique(a)
        if not np.all(np.isin(vals, (0, 1))):
            shown = ", ".join(repr(v) for v in vals[:5].tolist())
            raise MetricInputError(f"{name}: labels must be 0 (different) or 1 (same), found values {shown}")
        b = a == 1
    if need_both:
        n_pos = int(b.sum())
        if n_pos == 0 or n_pos == len(b):
            only = "1 (same)" if n_pos else "0 (different)"
            raise MetricInputError(f"{name}: all labels are {only}; both classes are needed")
    return b


def as_labels(x: Any, name: str, n: Optional[int] = None, n_name: str = "embeddings") -> np.ndarray:
    """1-D identity labels (any hashable dtype: ints, strings) of length ``n``."""
    try:
        a = np.asarray(x)
    except Exception as e:
        raise MetricInputError(f"{name}: cannot be read as an array ({e})") from None
    if a.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array of labels, got shape {_shape(a)}")
    if n is not None and len(a) != n:
        raise MetricInputError(f"{name}: {len(a)} labels for {n} {n_name}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise MetricInputError(f"{name}: contains NaN/inf labels")
    return a


def as_matrix(x: Any, name: str, cols: Optional[int] = None, min_rows: int = 1) -> np.ndarray:
    """A finite 2-D float64 array (N x D) with ``N >= min_rows`` (and ``D == cols`` when given)."""
    a = as_float_array(x, name)
    if a.ndim != 2:
        hint = " (use x.reshape(1, -1) for a single vector)" if a.ndim == 1 else ""
        raise MetricInputError(f"{name}: expected a 2-D array (N x D), got shape {_shape(a)}{hint}")
    if a.shape[0] < min_rows:
        raise MetricInputError(f"{name}: needs at least {min_rows} row(s), got {a.shape[0]}")
    if a.shape[1] == 0:
        raise MetricInputError(f"{name}: has 0 columns")
    if cols is not None and a.shape[1] != cols:
        raise MetricInputError(f"{name}: expected {cols} column(s), got {a.shape[1]}")
    return a


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise MetricInputError(f"{name_a} and {name_b} must have the same shape, got {_shape(a)} and {_shape(b)}")


def check_int(v: Any, name: str, lo: int, hi: Optional[int] = None) -> int:
    """An integer in ``[lo, hi]`` (``hi`` inclusive, open when None)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise MetricInputError(f"{name}: expected an integer, got {v!r}")
    v = int(v)
    if v < lo or (hi is not None and v > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise MetricInputError(f"{name}: must be {rng}, got {v}")
    return v


def check_fraction(v: Any, name: str, open_low: bool = False, open_high: bool = False) -> float:
    """A finite float in [0, 1] (ends excluded where asked)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name}: expected a number in [0, 1], got {v!r}") from None
    lo_bad = f <= 0 if open_low else f < 0
    hi_bad = f >= 1 if open_high else f > 1
    if not np.isfinite(f) or lo_bad or hi_bad:
        rng = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise MetricInputError(f"{name}: must be in {rng}, got {v!r}")
    return f

