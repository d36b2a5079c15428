"""``gaze.l2cs``: L2CS-Net (Abdelrahman et al., 2022), Gaze360 model, user weights ``L2CSNet_gaze360.pkl``."""

from __future__ import annotations

from typing import Optional

import numpy as np

from idbench.weights import WeightSource

from .geometry import GAZE_COLUMNS
from idbench.imageio import pil_resize

from .networks import (RESNET50_MIN_BYTES, TorchEstimator, clamped_crop, cv2_resize, expected_angle,
                       load_binned_resnet)
from .registry import ALLOW_PICKLE, EstimatorSpec, register_estimator

L2CS_WEIGHTS = WeightSource(
    "L2CSNet_gaze360.pkl", "Ahmednull/L2CS-Net README (Gaze360 ResNet-50 model; Google Drive link)",
    search=("$TORCH_HOME/checkpoints",), min_bytes=RESNET50_MIN_BYTES)


class L2CSEstimator(TorchEstimator):
    """L2CS-Net (Abdelrahman et al., "L2CS-Net: Fine-Grained Gaze Estimation in Unconstrained
    Environments", 2022), Gaze360 model: ResNet-50 with two 90-bin heads (4-degree bins from -180),
    angle = ``sum_i p_i * i * 4 - 180``.

    The first head (``fc_yaw_gaze``) is the horizontal angle, the second (``fc_pitch_gaze``) the
    vertical one: Gaze360's labels are (yaw, pitch) with the direction ``(-cos p sin y, -sin p,
    -cos p cos y)``, idbench's gaze convention, so no sign change is needed; idbench returns
    (pitch, yaw). Input as in L2CS's ``pipeline.py``: the integer face box (clamped to the image), OpenCV
    bilinear resize to 224 x 224, then PIL bilinear resize to 448 x 448 (``utils.transformations``), RGB,
    ImageNet mean/std. L2CS was trained on RetinaFace boxes, a little looser than dlib's.

    Naming: the official ``L2CS.forward`` returns ``(pitch, yaw)`` from ``(fc_yaw_gaze, fc_pitch_gaze)``
    and ``Pipeline`` calls head 0 ``pitch``; by the geometry of Gaze360's labels head 0 is the
    horizontal angle, which idbench calls ``yaw``. The official pipeline returns radians, idbench degrees.
    """

    batch_size = 8

    def preprocess(self, image, face):
        # l2cs/pipeline.py: int() box clamped at 0, cv2.resize to 224 (bilinear); utils.py's transformations:
        # PIL Resize(448) (bilinear) -- the official double resize
        x0, y0, x1, y1 = (int(v) for v in face.box)
        crop = clamped_crop(image, x0, y0, x1, y1)
        return pil_resize(cv2_resize(crop, (224, 224)), (448, 448), "bilinear")

    def _decode(self, outputs):
        import torch

        yaw = expected_angle(outputs[0], 4.0, 180.0)
        pitch = expected_angle(outputs[1], 4.0, 180.0)
        return torch.stack([pitch, yaw], 1).cpu().numpy().astype(np.float64)


@register_estimator(EstimatorSpec(
    "gaze.l2cs", "gaze", "L2CS-Net ResNet-50, 2 x 90 bins (Gaze360); user weights L2CSNet_gaze360.pkl",
    GAZE_COLUMNS, weights=(L2CS_WEIGHTS,), units="degrees",
    conventions="head order and units differ from the official Pipeline: it returns (pitch, yaw) in radians "
                "and calls head 0 (fc_yaw_gaze) 'pitch'; idbench's yaw is head 0 (the horizontal angle by "
                "Gaze360's label geometry: the official 'pitch'), idbench's pitch is head 1 (the official "
                "'yaw'), both in degrees; signs unchanged (yaw > 0 towards image left, pitch > 0 up)",
    recipe="l2cs/pipeline.py: int() face box clamped at 0, cv2.resize to 224x224 (bilinear), then "
           "utils.transformations: PIL Resize(448) (bilinear); RGB; ImageNet mean/std",
    paper="Abdelrahman et al., L2CS-Net: Fine-Grained Gaze Estimation in Unconstrained Environments, 2022",
    licence="code: MIT (L2CS-Net); weights: trained on Gaze360 (research use)", options=(ALLOW_PICKLE,)))
def _gaze_l2cs(spec, weights_path, device="cpu", allow_pickle: Optional[bool] = None):
    return L2CSEstimator(spec, load_binned_resnet({"fc_yaw_gaze": 90, "fc_pitch_gaze": 90}, weights_path,
                         "an L2CS-Net (ResNet-50, 2 x 90 bins)", allow_pickle),
                         weights_path, device)
