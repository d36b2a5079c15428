"""The metric catalogue: one entry per leaderboard metric, the single source of what a column is.

Each :class:`Metric` carries its direction (``higher``/``lower`` is better, ``""`` for counts), unit,
group, display name for papers, precision, whether rows of a table are on one scale for it
(``comparable``: bold is only allowed there), the formula and the paper that defines it, and the
:mod:`idbench.analysis` function that computes it. A leaderboard column is a catalogue name plus an
optional suffix: ``[encoder]`` / ``[estimator]`` / ``[variant]`` / ``[region]`` in brackets, or the target
FAR of ``tar_at_far_1e-3``. :func:`column_metric` maps a column to its entry and raises
:class:`~idbench.errors.UnknownNameError` for an uncatalogued one, so a new metric cannot be silently
dropped by a table: it must be added here (one line).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Metric", "MetricInfo", "METRICS", "column_metric", "split_column", "metric_direction", "register_metric",
           "unregister_metric", "metric_function"]


@dataclass(frozen=True)
class Metric:
    """One metric of the leaderboard."""

    name: str
    direction: str  # 'higher', 'lower' or '' (a count)
    formula: str
    reference: str
    function: str  # the idbench.analysis function that computes it, or 'package.module.function' ('' for counts)
    display: str = ""  # header text in paper tables (falls back to the name)
    unit: str = ""
    group: str = ""  # attribute bias / verification / retrieval / saliency / identity / pose / ... / count
    kind: str = "encoder"  # 'encoder' (a row per encoder) or 'swap' (a row per swapper)
    comparable: bool = True  # values of different rows are on one scale (raw cosines of two encoders are not)
    precision: int = 3  # decimals shown in tables

    @property
    def label(self) -> str:
        return self.display or self.name


MetricInfo = Metric  # the name earlier versions exported

_BLENDFACE = "BlendFace, Shiohara et al., ICCV 2023"
_FACESHIFTER = "FaceShifter, Li et al., CVPR 2020"
_R = "idbench definition (BlendFace '-R' formula not public)"
_B, _V, _RET, _ID = "attribute bias", "verification", "retrieval", "identity"


def _swap(name, direction, formula, reference, function, display, unit, group, precision=3) -> Metric:
    return Metric(name, direction, formula, reference, function, display, unit, group, "swap", True, precision)


def _count(name: str, what: str) -> Metric:
    return Metric(name, "", f"number of {what}", "idbench", "", name, "count", "count", "swap", False, 0)


METRICS: List[Metric] = [
    # attribute bias of an encoder (positive / swapped / negative similarity to an anchor); raw cosines of two
    # encoders are on different scales, so only the normalised columns are comparable across encoders
    Metric("positive_mean", "higher", "mean cos(anchor, other image of the same identity)", _BLENDFACE, "bias_gap",
           "positive", "cosine", _B, comparable=False),
    Metric("swapped_mean", "higher", "mean cos(anchor, pseudo-swap keeping the identity's inner face)", _BLENDFACE,
           "bias_gap", "swapped", "cosine", _B, comparable=False),
    Metric("negative_mean", "lower", "mean cos(anchor, nearest-landmark image of another identity)", _BLENDFACE,
           "bias_gap", "negative", "cosine", _B, comparable=False),
    Metric("bias_mean_gap", "lower", "mean(P) - mean(S)", _BLENDFACE + " (sec. 3 distributions, as a number)",
           "bias_gap", "bias gap", "cosine", _B, comparable=False, precision=4),
    Metric("bias_relative_gap", "lower", "(mean(P) - mean(S)) / (mean(P) - mean(N))",
           "idbench normalisation of " + _BLENDFACE, "bias_gap", "rel. gap", "share of P - N", _B),
    Metric("bias_auc", "lower", "P(p > s) + 0.5 P(p = s), p in P, s in S (0.5 = no bias)", "Mann & Whitney 1947",
           "bias_gap", "bias AUC", "probability", _B),
    Metric("bias_wasserstein", "lower", "integral |F_P(x) - F_S(x)| dx",
           "Vallender 1974; = scipy wasserstein_distance", "bias_gap", "W1(P, S)", "cosine", _B,
           comparable=False, precision=4),
    Metric("bias_ks", "lower", "sup_x |F_P(x) - F_S(x)|", "Kolmogorov-Smirnov; = scipy ks_2samp statistic",
           "bias_gap", "KS(P, S)", "CDF distance", _B),
    # attribute decomposition (one controlled pseudo-swap per attribute family, suffix [variant]) and mask
    # sensitivity (the full pseudo-swap under each named face region, suffix [region])
    Metric("decomp_mean_gap", "lower", "mean(P) - mean(S_variant)", "idbench attribute decomposition of "
           + _BLENDFACE, "bias_gap", "gap", "cosine", "decomposition", comparable=False, precision=4),
    Metric("decomp_relative_gap", "lower", "(mean(P) - mean(S_variant)) / (mean(P) - mean(N))",
           "idbench attribute decomposition of " + _BLENDFACE, "bias_gap", "relative gap", "share of P - N",
           "decomposition"),
    Metric("decomp_auc", "lower", "P(p > s) + 0.5 P(p = s), s in S_variant (0.5 = no bias)", "Mann & Whitney 1947",
           "bias_gap", "AUC", "probability", "decomposition"),
    Metric("mask_relative_gap", "lower", "(mean(P) - mean(S_region)) / (mean(P) - mean(N))",
           "idbench mask sensitivity of " + _BLENDFACE, "bias_gap", "relative gap", "share of P - N", "mask"),
    # verification
    Metric("verification_auc", "higher", "P(s_genuine > s_impostor) + 0.5 P(tie)", "Hanley & McNeil 1982",
           "roc_auc", "ver. AUC", "probability", _V, precision=4),
    Metric("eer", "lower", "FAR = FRR point, linear interpolation on the ROC", "Bolle et al., Guide to Biometrics 2004",
           "eer", "EER", "share", _V, precision=4),
    Metric("tar_at_far", "higher", "max TAR over ROC points with FAR <= target",
           "IJB-B/IJB-C protocol, Whitelam et al. 2017, Maze et al. 2018", "tar_at_far", "TAR@FAR", "share", _V),
    Metric("verification_accuracy", "higher", "mean over 10 folds of accuracy at the threshold best on the 9 other "
           "folds", "LFW, Huang et al. 2007 (View 2)", "verification_accuracy", "accuracy", "share", _V,
           precision=4),
    # retrieval
    Metric("retrieval_top1", "higher", "share of probes whose nearest gallery item (cosine) has their label",
           "closed-set rank-1 identification (CMC)", "id_retrieval", "top-1", "share", _RET),
    Metric("retrieval_top5", "higher", "share of probes with their label among the 5 nearest gallery items",
           "closed-set rank-5 identification (CMC)", "id_retrieval", "top-5", "share", _RET),
    # saliency
    Metric("saliency_inner_ratio", "higher", "sum |S| M / sum |S| (M = inner-face mask)",
           "energy-based pointing game, Score-CAM, Wang et al. CVPRW 2020", "saliency_inner_ratio", "inner ratio",
           "share", "saliency"),
    # swap identity (suffix [encoder]) and attributes (suffix [estimator])
    _swap("id_retrieval_top1", "higher", "share of swaps whose nearest dataset face (cosine) is the source's",
          _FACESHIFTER, "id_retrieval", "ID retrieval", "share", _ID),
    _swap("id_retrieval_ffpp", "higher", "share of swapped frames whose nearest gallery frame is from the source "
          "video", _FACESHIFTER + "; ReliableSwap, Yuan et al. 2023 (FF++)", "id_retrieval_ffpp", "ID retrieval",
          "share", _ID),
    _swap("id_distance", "lower", "mean 1 - cos(swap, source)", _BLENDFACE, "paired_cosine", "ID dist.",
          "1 - cos", _ID),
    _swap("id_relative", "higher", "share with d(swap, source) < d(swap, target) (+0.5 ties)", _R, "relative_error",
          "ID-R", "share", _ID),
    _swap("pose_l2", "lower", "mean ||(yaw, pitch, roll)_t - (yaw, pitch, roll)_s||_2 (degrees)", _FACESHIFTER,
          "pose_error", "pose L2", "degrees", "pose", 2),
    _swap("pose_l1", "lower", "mean sum |(yaw, pitch, roll)_t - (yaw, pitch, roll)_s| (degrees)", _BLENDFACE,
          "pose_error", "pose L1", "degrees", "pose", 2),
    _swap("pose_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1 pose", _R,
          "relative_error", "pose-R", "share", "pose"),
    _swap("expression_l2", "lower", "mean ||e_t - e_s||_2", _FACESHIFTER, "expression_error", "expr. L2",
          "estimator units", "expression"),
    _swap("expression_l1", "lower", "mean sum_k |e_t,k - e_s,k|", _BLENDFACE, "expression_error", "expr. L1",
          "estimator units", "expression"),
    _swap("expression_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1", _R,
          "relative_error", "expr.-R", "share", "expression"),
    _swap("gaze_angular", "lower", "mean angle between 3-D gaze vectors (degrees)",
          "MPIIGaze, Zhang et al. CVPR 2015; ETH-XGaze, Zhang et al. ECCV 2020", "gaze_error", "gaze angle",
          "degrees", "gaze", 2),
    _swap("gaze_l1", "lower", "mean sum |(pitch, yaw)_t - (pitch, yaw)_s| (degrees)", _BLENDFACE, "gaze_error",
          "gaze L1", "degrees", "gaze", 2),
    _swap("gaze_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1", _R,
          "relative_error", "gaze-R", "share", "gaze"),
    _swap("shape_l2", "lower", "mean ||c_src - c_swap||_2 (3DMM shape coefficients)", "HifiFace, Wang et al. IJCAI "
          "2021", "shape_error", "shape L2", "estimator units", "shape"),
    _swap("shape_l1", "lower", "mean sum_k |c_src,k - c_swap,k|", "HifiFace, Wang et al. IJCAI 2021 (L1 form)",
          "shape_error", "shape L1", "estimator units", "shape"),
    _count("n_swaps", "swaps scored"), _count("pose_n", "swaps with a pose estimate"),
    _count("expression_n", "swaps with an expression estimate"), _count("gaze_n", "swaps with a gaze estimate"),
    _count("shape_n", "swaps with a shape estimate"),
]

_BY_NAME: Dict[str, Metric] = {m.name: m for m in METRICS}
_FAR = re.compile(r"^(tar_at_far)_(.+)$")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the catalogue (a plugin's or an analysis step's new column). Registering the same entry
    again is a no-op; a different entry under a taken name raises ``ValueError``."""
    old = _BY_NAME.get(metric.name)
    if old is not None and old != metric:
        raise ValueError(f"metric '{metric.name}' is already catalogued with other metadata")
    if old is None:
        METRICS.append(metric)
        _BY_NAME[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a catalogued metric (a recipe or a test cleaning up after itself); an unknown name is a no-op."""
    metric = _BY_NAME.pop(name, None)
    if metric is not None:
        METRICS.remove(metric)


def metric_function(metric: Metric) -> Optional[Callable[..., Any]]:
    """The function that computes ``metric``: a bare name is an :mod:`idbench.analysis` function, a dotted
    ``package.module.function`` is imported (a plugin's metric); ``None`` for counts (no function)."""
    if not metric.function:
        return None
    module, _, name = metric.function.rpartition(".")
    return getattr(importlib.import_module(module or "idbench.analysis"), name)


def split_column(column: str) -> Tuple[str, str]:
    """(catalogue name, suffix): ``pose_l2[pose.pnp]`` -> (``pose_l2``, ``pose.pnp``);
    ``tar_at_far_1e-3`` -> (``tar_at_far``, ``1e-3``); ``bias_auc`` -> (``bias_auc``, ``""``)."""
    m = re.match(r"^(.*?)\[(.*)\]$", column)
    base, suffix = (m.group(1), m.group(2)) if m else (column, "")
    far = _FAR.match(base)
    if base not in _BY_NAME and far:
        return far.group(1), far.group(2)
    return base, suffix


def column_metric(column: str) -> Metric:
    """The catalogue entry of a leaderboard column; an uncatalogued column raises
    :class:`idbench.errors.UnknownNameError` (a ``KeyError``) with close matches."""
    base, _ = split_column(column)
    if base not in _BY_NAME:
        from idbench.errors import UnknownNameError

        raise UnknownNameError("metric (add it to idbench.analysis.catalogue)", base, _BY_NAME)
    return _BY_NAME[base]


def metric_direction(column: str) -> str:
    """'higher', 'lower' or '' (counts) for a leaderboard column (see :func:`column_metric`)."""
    return column_metric(column).direction
