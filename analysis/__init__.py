"""idbench's metric library: pure numpy, no torch, no OpenCV.

Verification (ROC AUC, ROC curve, EER, TAR@FAR, LFW 10-fold accuracy), ID retrieval
(generic and the FaceForensics++ convention), BlendFace's attribute-bias analysis (gap, AUC,
Wasserstein, KS, relative gap with bootstrap intervals), face-swap attribute errors (pose,
gaze, expression, shape, relative form) and the saliency inner-face ratio. Every function
validates its input and raises :class:`MetricInputError` (a ``ValueError``) with a one-line
message. :data:`METRICS` lists each metric with its direction, formula and reference; see
also the README's "Metrics" section.

Importing this package must not import torch or cv2 (estimators and saliency maps that need
them live in submodules imported on demand).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List

from ._checks import MetricInputError
from .attributes import (GazeErrorResult, PoseErrorResult, VectorErrorResult, expression_error, gaze_error,
                         gaze_vectors, pose_error, relative_error, shape_error)
from .bias import BiasGap, auc_two_sample, bias_gap, ks_statistic, wasserstein_1d
from .cluster_mean import ClusterMean, cluster_mean_interval, paired_mean_difference, pairwise_mean_differences
from .paired import MetricDifference, PairedBiasDifference, holm_adjust, paired_bias_difference
from .retrieval import RetrievalResult, id_retrieval, id_retrieval_ffpp
from .saliency_metrics import saliency_inner_ratio
from .similarity import cosine_similarity, l2_normalize, paired_cosine
from .verification import VerificationAccuracy, eer, roc_auc, roc_curve, tar_at_far, verification_accuracy

__all__ = [
    "MetricInputError",
    "cosine_similarity", "paired_cosine", "l2_normalize",
    "roc_auc", "roc_curve", "eer", "tar_at_far", "verification_accuracy", "VerificationAccuracy",
    "id_retrieval", "id_retrieval_ffpp", "RetrievalResult",
    "bias_gap", "BiasGap", "auc_two_sample", "wasserstein_1d", "ks_statistic",
    "paired_bias_difference", "PairedBiasDifference", "MetricDifference", "holm_adjust",
    "cluster_mean_interval", "ClusterMean", "paired_mean_difference", "pairwise_mean_differences",
    "pose_error", "gaze_error", "gaze_vectors", "expression_error", "shape_error", "relative_error",
    "PoseErrorResult", "GazeErrorResult", "VectorErrorResult",
    "saliency_inner_ratio",
    "MetricInfo", "METRICS", "metric_direction",
]


@dataclass(frozen=True)
class MetricInfo:
    """One metric: its leaderboard name, which direction is better, formula and reference."""

    name: str
    direction: str  # 'higher' or 'lower'
    formula: str
    reference: str
    function: str  # the idbench.analysis function that computes it


_BLENDFACE = "BlendFace, Shiohara et al., ICCV 2023"
_FACESHIFTER = "FaceShifter, Li et al., CVPR 2020"

METRICS: List[MetricInfo] = [
    # attribute bias of an encoder (positive / swapped / negative similarity to an anchor)
    MetricInfo("positive_mean", "higher", "mean cos(anchor, other image of the same identity)", _BLENDFACE,
               "bias_gap"),
    MetricInfo("swapped_mean", "higher", "mean cos(anchor, pseudo-swap keeping the identity's inner face)",
               _BLENDFACE, "bias_gap"),
    MetricInfo("negative_mean", "lower", "mean cos(anchor, nearest-landmark image of another identity)",
               _BLENDFACE, "bias_gap"),
    MetricInfo("bias_mean_gap", "lower", "mean(P) - mean(S)", _BLENDFACE + " (sec. 3 distributions, as a number)", "bias_gap"),
    MetricInfo("bias_relative_gap", "lower", "(mean(P) - mean(S)) / (mean(P) - mean(N))",
               "idbench normalisation of " + _BLENDFACE, "bias_gap"),
    MetricInfo("bias_auc", "lower", "P(p > s) + 0.5 P(p = s), p in P, s in S (0.5 = no bias)",
               "Mann & Whitney 1947", "bias_gap"),
    MetricInfo("bias_wasserstein", "lower", "integral |F_P(x) - F_S(x)| dx", "Vallender 1974; = scipy wasserstein_distance",
               "bias_gap"),
    MetricInfo("bias_ks", "lower", "sup_x |F_P(x) - F_S(x)|", "Kolmogorov-Smirnov; = scipy ks_2samp statistic",
               "bias_gap"),
    # attribute decomposition (one controlled pseudo-swap per attribute family, column suffix [variant])
    # and mask sensitivity (the full pseudo-swap under each named face region, suffix [region])
    MetricInfo("decomp_mean_gap", "lower", "mean(P) - mean(S_variant)", "idbench attribute decomposition of "
               + _BLENDFACE, "bias_gap"),
    MetricInfo("decomp_relative_gap", "lower", "(mean(P) - mean(S_variant)) / (mean(P) - mean(N))",
               "idbench attribute decomposition of " + _BLENDFACE, "bias_gap"),
    MetricInfo("decomp_auc", "lower", "P(p > s) + 0.5 P(p = s), s in S_variant (0.5 = no bias)",
               "Mann & Whitney 1947", "bias_gap"),
    MetricInfo("mask_relative_gap", "lower", "(mean(P) - mean(S_region)) / (mean(P) - mean(N))",
               "idbench mask sensitivity of " + _BLENDFACE, "bias_gap"),
    # verification
    MetricInfo("verification_auc", "higher", "P(s_genuine > s_impostor) + 0.5 P(tie)", "Hanley & McNeil 1982",
               "roc_auc"),
    MetricInfo("eer", "lower", "FAR = FRR point, linear interpolation on the ROC", "Bolle et al., Guide to Biometrics 2004",
               "eer"),
    MetricInfo("tar_at_far", "higher", "max TAR over ROC points with FAR <= target",
               "IJB-B/IJB-C protocol, Whitelam et al. 2017, Maze et al. 2018", "tar_at_far"),
    MetricInfo("verification_accuracy", "higher",
               "mean over 10 folds of accuracy at the threshold best on the 9 other folds",
               "LFW, Huang et al. 2007 (View 2)", "verification_accuracy"),
    # retrieval
    MetricInfo("retrieval_top1", "higher", "share of probes whose nearest gallery item (cosine) has their label",
               "closed-set rank-1 identification (CMC)", "id_retrieval"),
    MetricInfo("retrieval_top5", "higher", "share of probes with their label among the 5 nearest gallery items",
               "closed-set rank-5 identification (CMC)", "id_retrieval"),
    MetricInfo("id_retrieval_top1", "higher", "share of swaps whose nearest dataset face (cosine) is the source's",
               _FACESHIFTER, "id_retrieval"),
    MetricInfo("id_retrieval_ffpp", "higher", "share of swapped frames whose nearest gallery frame is from the source video",
               _FACESHIFTER + "; ReliableSwap, Yuan et al. 2023 (FF++)", "id_retrieval_ffpp"),
    # swap attributes and identity
    MetricInfo("id_distance", "lower", "mean 1 - cos(swap, source)", _BLENDFACE, "paired_cosine"),
    MetricInfo("id_relative", "higher", "share with d(swap, source) < d(swap, target) (+0.5 ties)",
               "idbench definition (BlendFace '-R' formula not public)", "relative_error"),
    MetricInfo("pose_l2", "lower", "mean ||(yaw, pitch, roll)_t - (yaw, pitch, roll)_s||_2 (degrees)", _FACESHIFTER,
               "pose_error"),
    MetricInfo("pose_l1", "lower", "mean sum |(yaw, pitch, roll)_t - (yaw, pitch, roll)_s| (degrees)", _BLENDFACE,
               "pose_error"),
    MetricInfo("pose_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1 pose",
               "idbench definition (BlendFace '-R' formula not public)", "relative_error"),
    MetricInfo("expression_l2", "lower", "mean ||e_t - e_s||_2", _FACESHIFTER, "expression_error"),
    MetricInfo("expression_l1", "lower", "mean sum_k |e_t,k - e_s,k|", _BLENDFACE, "expression_error"),
    MetricInfo("expression_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1",
               "idbench definition (BlendFace '-R' formula not public)", "relative_error"),
    MetricInfo("gaze_angular", "lower", "mean angle between 3-D gaze vectors (degrees)",
               "MPIIGaze, Zhang et al. CVPR 2015; ETH-XGaze, Zhang et al. ECCV 2020", "gaze_error"),
    MetricInfo("gaze_l1", "lower", "mean sum |(pitch, yaw)_t - (pitch, yaw)_s| (degrees)", _BLENDFACE, "gaze_error"),
    MetricInfo("gaze_relative", "higher", "share with d(swap, target) < d(swap, source) (+0.5 ties), L1",
               "idbench definition (BlendFace '-R' formula not public)", "relative_error"),
    MetricInfo("shape_l2", "lower", "mean ||c_src - c_swap||_2 (3DMM shape coefficients)", "HifiFace, Wang et al. IJCAI 2021",
               "shape_error"),
    MetricInfo("shape_l1", "lower", "mean sum_k |c_src,k - c_swap,k|", "HifiFace, Wang et al. IJCAI 2021 (L1 form)",
               "shape_error"),
    # saliency
    MetricInfo("saliency_inner_ratio", "higher", "sum |S| M / sum |S| (M = inner-face mask)",
               "energy-based pointing game, Score-CAM, Wang et al. CVPRW 2020", "saliency_inner_ratio"),
]

_BY_NAME: Dict[str, MetricInfo] = {m.name: m for m in METRICS}


def metric_direction(column: str) -> str:
    """'higher' or 'lower' for a leaderboard column: the name in :data:`METRICS`, optionally
    followed by a ``[model]`` suffix (``pose_l2[pose.pnp]``) or, for ``tar_at_far``, by the
    target FAR (``tar_at_far_1e-3``). Raises :class:`idbench.errors.UnknownNameError` (a
    ``KeyError``) for an unknown metric."""
    base = re.sub(r"\[.*\]$", "", column)
    if base not in _BY_NAME and base.startswith("tar_at_far"):
        base = "tar_at_far"
    if base not in _BY_NAME:
        from idbench.errors import UnknownNameError

        raise UnknownNameError("metric", base, _BY_NAME)
    return _BY_NAME[base].direction
