"""``dlib.resnet_v1_torch``: dlib's face-recognition ResNet ported to PyTorch, read from dlib's own ``.dat``.

Same weights and same 150x150 dlib chip as the ``dlib`` encoder, but batched on CPU or GPU and
differentiable (``forward_tensor``), e.g. for identity losses. The weights are parsed straight
from ``dlib_face_recognition_resnet_model_v1.dat`` (shipped by the PyPI package
face-recognition-models) by :mod:`idbench.encoders.dlib_dat`; there is no converted copy.
``python -m idbench.bench.dlib_torch_parity`` checks the embeddings against ``compute_face_descriptor``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from idbench.errors import WeightsFormatError

from .base import TorchEncoder
from .registry import register_encoder
from .spec import EncoderSpec

from .dlib_native import DLIB_RESNET as DLIB_RESNET_DAT  # one definition of the shipped file

SPEC = EncoderSpec(
    name="dlib.resnet_v1_torch",
    input_size=(150, 150),
    alignment="dlib150",
    colour="RGB",
    mean=(122.782, 117.001, 104.298),  # dlib input_rgb_image avg_red/green/blue
    std=(256.0, 256.0, 256.0),  # dlib divides (pixel - avg) by 256
    embedding_size=128,
    l2_normalised=False,
    backend="torch",
    weights=(DLIB_RESNET_DAT,),
    licence="dlib model: public domain / CC0 (dlib-models README); dlib code: Boost Software License",
    paper="He et al., Deep Residual Learning for Image Recognition (CVPR 2016); D. King, "
          "'High Quality Face Recognition with Deep Metric Learning' (dlib blog, 2017)",
    description="dlib ResNet (29 conv layers, 128-d) in PyTorch, weights read from dlib's .dat; batched, "
                "CPU/GPU, differentiable",
)


class DlibTorchEncoder(TorchEncoder):
    """TorchEncoder around :class:`~idbench.encoders.dlib_resnet.DlibResNet`."""

    batch_size = 64

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu"):
        from .dlib_resnet import load_dlib_resnet

        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs {DLIB_RESNET_DAT.filename}")
        module = load_dlib_resnet(weights_path)
        file_mean = module.input_mean.tolist()
        if not np.allclose(file_mean, spec.mean, atol=1e-3):
            raise WeightsFormatError(
                f"{weights_path}: input layer averages {tuple(round(v, 3) for v in file_mean)} differ from "
                f"{spec.mean} of {spec.name}")
        super().__init__(spec, module, weights_path, device)
        self._fast = None  # (weight versions, DlibResNetInference) built on first embed

    def inference_module(self):
        """The folded, fused twin of ``self.module`` for ``embed`` (rebuilt when the weights change)."""
        import torch

        from .dlib_resnet import DlibResNetInference

        versions = tuple(p._version for p in self.module.parameters())
        if self._fast is None or self._fast[0] != versions:
            fast = DlibResNetInference(self.module).eval().to(self.device, memory_format=torch.channels_last)
            self._fast = (versions, fast)
        return self._fast[1]

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():  # N x H x W x 3 permuted is already channels-last: no copy
            return self.inference_module()(self.to_tensor(faces)).float().cpu().numpy()


@register_encoder(SPEC)
def _dlib_resnet_v1_torch(spec, weights_path, device="cpu"):
    return DlibTorchEncoder(spec, weights_path, device)
