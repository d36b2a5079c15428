"""``pose.hopenet``: HopeNet (Ruiz et al., CVPRW 2018), user weights ``hopenet_robust_alpha1.pkl``."""

from __future__ import annotations

from typing import Optional

import numpy as np

from idbench.weights import WeightSource

from .geometry import POSE_COLUMNS
from idbench.imageio import pil_resize

from .networks import RESNET50_MIN_BYTES, TorchEstimator, clamped_crop, expected_angle, load_binned_resnet
from .registry import ALLOW_PICKLE, EstimatorSpec, register_estimator

HOPENET_WEIGHTS = WeightSource(
    "hopenet_robust_alpha1.pkl",
    "natanielruiz/deep-head-pose README (300W-LP, alpha 1, robust to image quality; Google Drive link)",
    search=("$TORCH_HOME/checkpoints",), min_bytes=RESNET50_MIN_BYTES)


class HopeNetEstimator(TorchEstimator):
    """HopeNet (Ruiz, Chong & Rehg, "Fine-Grained Head Pose Estimation Without Keypoints", CVPRW 2018).

    ResNet-50 with three 66-bin heads (3-degree bins from -99 to +99); the angle is the expected
    value over the softmax, ``sum_i p_i * i * 3 - 99``. Input as in the authors' ``test_on_video_dlib.py``:
    the integer face box widened by half its width on each side, 3/4 of its height upwards and 1/4
    downwards (Python 2 integer division, clamped to the image), PIL bilinear resize (shorter side 224,
    the longer truncated) and centre-cropped to 224 x 224, RGB with ImageNet mean/std. Trained on 300W-LP with dlib-CNN-like boxes; idbench's default detector
    gives similar (HOG) boxes. HopeNet's signs are idbench's: yaw > 0 towards image left, pitch > 0
    up, roll > 0 clockwise (its ``draw_axis``), so the three values are returned unchanged.
    """

    def preprocess(self, image, face):
        # test_on_video_dlib.py (Python 2): integer box, margins by integer division, clamped, then
        # torchvision Scale(224) on a PIL image (bilinear, long side truncated) and CenterCrop(224)
        x0, y0, x1, y1 = (int(v) for v in face.box)
        w, h = abs(x1 - x0), abs(y1 - y0)
        x0, x1, y0, y1 = x0 - 2 * w // 4, x1 + 2 * w // 4, y0 - 3 * h // 4, y1 + h // 4
        crop = clamped_crop(image, x0, y0, x1, y1)
        ch, cw = crop.shape[:2]
        nw, nh = (224, int(224 * ch / cw)) if cw < ch else (int(224 * cw / ch), 224)
        r = crop if (nw, nh) == (cw, ch) else pil_resize(crop, (nw, nh), "bilinear")
        top, left = int(np.floor((nh - 224) / 2 + 0.5)), int(np.floor((nw - 224) / 2 + 0.5))  # Python 2 round()
        return np.ascontiguousarray(r[top:top + 224, left:left + 224])

    def _decode(self, outputs):
        yaw, pitch, roll = (expected_angle(o, 3.0, 99.0) for o in outputs)
        import torch

        return torch.stack([yaw, pitch, roll], 1).cpu().numpy().astype(np.float64)


@register_estimator(EstimatorSpec(
    "pose.hopenet", "pose", "HopeNet ResNet-50, 3 x 66 bins (300W-LP); user weights hopenet_robust_alpha1.pkl",
    POSE_COLUMNS, weights=(HOPENET_WEIGHTS,), units="degrees",
    conventions="same as the official test_on_video_dlib.py output: (yaw, pitch, roll) in degrees, HopeNet's "
                "(300W-LP) signs: yaw > 0 towards image left, pitch > 0 up, roll > 0 clockwise",
    recipe="test_on_video_dlib.py: integer dlib box widened by 2w/4 each side, 3h/4 up, h/4 down (Python 2 "
           "integer division), clamped; PIL bilinear resize of the shorter side to 224 (longer truncated), "
           "CenterCrop 224 (Python 2 round); RGB; ImageNet mean/std",
    paper="Ruiz, Chong & Rehg, Fine-Grained Head Pose Estimation Without Keypoints, CVPRW 2018",
    licence="code: Apache-2.0 (deep-head-pose); weights: trained on 300W-LP (research use)", options=(ALLOW_PICKLE,)))
def _pose_hopenet(spec, weights_path, device="cpu", allow_pickle: Optional[bool] = None):
    return HopeNetEstimator(spec, load_binned_resnet({"fc_yaw": 66, "fc_pitch": 66, "fc_roll": 66}, weights_path,
                            "a HopeNet (ResNet-50, 3 x 66 bins)", allow_pickle),
                            weights_path, device)
