"""idbench's metric library: pure numpy, no torch, no OpenCV.

Verification (ROC AUC, ROC curve, EER, TAR@FAR, LFW 10-fold accuracy), ID retrieval
(generic and the FaceForensics++ convention), BlendFace's attribute-bias analysis (gap, AUC,
Wasserstein, KS, relative gap with bootstrap intervals), face-swap attribute errors (pose,
gaze, expression, shape, relative form) and the saliency inner-face ratio. Every function
validates its input and raises :class:`MetricInputError` (a ``ValueError``) with a one-line
message. :data:`METRICS` (the metric catalogue, :mod:`idbench.analysis.catalogue`) lists each metric with its
direction, unit, group, formula and reference; the tables of docs/metrics.md are generated from it.

Importing this package must not import torch or cv2 (estimators and saliency maps that need
them live in submodules imported on demand).
"""

from __future__ import annotations

from ._checks import MetricInputError
from .catalogue import METRICS, Metric, MetricInfo, column_metric, metric_direction
from .attributes import (GazeErrorResult, PoseErrorResult, VectorErrorResult, expression_error, gaze_error,
                         gaze_vectors, pose_error, relative_error, shape_error)
from .bias import BiasGap, auc_two_sample, bias_gap, ks_statistic, wasserstein_1d
from .cluster_mean import ClusterMean, cluster_mean_interval, paired_mean_difference, pairwise_mean_differences
from .paired import MetricDifference, PairedBiasDifference, holm_adjust, paired_bias_difference
from .retrieval import RetrievalResult, id_retrieval, id_retrieval_ffpp
from .saliency_metrics import saliency_inner_ratio
from .similarity import cosine_similarity, l2_normalize, paired_cosine
from .verification import VerificationAccuracy, eer, roc_auc, roc_auc_ci, roc_curve, tar_at_far, verification_accuracy

__all__ = [
    "MetricInputError",
    "cosine_similarity", "paired_cosine", "l2_normalize",
    "roc_auc", "roc_auc_ci", "roc_curve", "eer", "tar_at_far", "verification_accuracy", "VerificationAccuracy",
    "id_retrieval", "id_retrieval_ffpp", "RetrievalResult",
    "bias_gap", "BiasGap", "auc_two_sample", "wasserstein_1d", "ks_statistic",
    "paired_bias_difference", "PairedBiasDifference", "MetricDifference", "holm_adjust",
    "cluster_mean_interval", "ClusterMean", "paired_mean_difference", "pairwise_mean_differences",
    "pose_error", "gaze_error", "gaze_vectors", "expression_error", "shape_error", "relative_error",
    "PoseErrorResult", "GazeErrorResult", "VectorErrorResult",
    "saliency_inner_ratio",
    "Metric", "MetricInfo", "METRICS", "metric_direction", "column_metric",
]
