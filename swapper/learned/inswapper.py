"""``inswapper``: insightface's ``inswapper_128.onnx`` through onnxruntime.

The I/O contract is insightface's ``python-package/insightface/model_zoo/inswapper.py`` (deepinsight/insightface
at commit 7fadd420c2351d0ffa8cac403421c1a3ed733365): two inputs, the 128x128 target crop (``norm_crop2``: the
arcface template at 128, RGB, ``/ 255``) first and the 1 x 512 source latent second; one 1 x 3 x 128 x 128 RGB
output in [0, 1]. The latent is ``normalise(normed_embedding @ emap)``, where ``emap`` (512 x 512) is the
graph's last initializer and the embedding is w600k_r50's (the ``arcface.onnx`` encoder) on the source's
112 arcface crop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from idbench.errors import WeightsFormatError
from idbench.swapper.types import SwapError

from ._base import LearnedSwapper
from .spec import INSWAPPER_SPEC, LearnedSwapperSpec

EMAP_SHAPE = (512, 512)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]


def read_emap(path: Path, origin: str) -> np.ndarray:
    """The graph's last initializer, which insightface uses as the embedding map; checked to be 512 x 512."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - DecodeError, ValueError, OSError
        raise WeightsFormatError(f"{path}: not a readable ONNX model ({_first_line(e)}); get it again from "
                                 f"{origin}") from None
    if not model.graph.initializer:
        raise WeightsFormatError(f"{path}: the ONNX graph has no initializers, so no emap; not inswapper_128")
    emap = numpy_helper.to_array(model.graph.initializer[-1])
    if emap.shape != EMAP_SHAPE:
        raise WeightsFormatError(f"{path}: last initializer has shape {emap.shape}, inswapper's emap is 512 x 512")
    return np.asarray(emap, np.float32)


class InSwapper(LearnedSwapper):
    def __init__(self, spec: LearnedSwapperSpec = INSWAPPER_SPEC, weights=None, device: str = "cpu",
                 identity_encoder=None, identity_weights: Optional[str] = None):
        super().__init__(spec, weights, device)
        import onnxruntime as ort

        from idbench.devices import onnx_providers

        path, origin = self.paths[spec.weights[0].filename], spec.weights[0].origin
        self.emap = read_emap(path, origin)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the unused emap initializer is not worth a warning
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=onnx_providers(device))
        except Exception as e:  # noqa: BLE001 - onnxruntime's Fail / InvalidGraph
            raise WeightsFormatError(f"{path}: onnxruntime cannot load it ({_first_line(e)})") from None
        self._check_io(path)
        if identity_encoder is None:
            from idbench.encoders import create_encoder

            identity_encoder = create_encoder(spec.identity_encoder, weights=identity_weights, device=device)
        self.encoder = identity_encoder

    def params(self) -> dict:
        own = super().params()
        enc_path = getattr(self.encoder, "weights_path", None)
        if enc_path is not None:  # the identity encoder's file changes the swaps too
            from idbench.weights import cached_sha256

            own["weights_sha256"][Path(enc_path).name] = cached_sha256(enc_path)
        return own

    def provenance(self) -> dict:
        prov = super().provenance()
        enc_path = getattr(self.encoder, "weights_path", None)
        prov["identity_weights"] = str(enc_path) if enc_path is not None else repr(self.encoder)
        return prov

    def _check_io(self, path: Path) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size = self.spec.target.size
        if len(inputs) != 2 or len(outputs) != 1:
            raise WeightsFormatError(f"{path}: has {len(inputs)} inputs and {len(outputs)} outputs; inswapper "
                                     f"has 2 (target, source) and 1")
        t, s = list(inputs[0].shape), list(inputs[1].shape)
        fits = lambda dim, want: not isinstance(dim, int) or dim <= 0 or dim == want  # symbolic dims pass
        if len(t) != 4 or not all(fits(d, w) for d, w in zip(t[1:], (3, size, size))):
            raise WeightsFormatError(f"{path}: first input is {t}, inswapper's target is N x 3 x {size} x {size}")
        if len(s) != 2 or not fits(s[1], EMAP_SHAPE[1]):
            raise WeightsFormatError(f"{path}: second input is {s}, inswapper's source latent is N x 512")
        self.target_name, self.source_name, self.output_name = inputs[0].name, inputs[1].name, outputs[0].name

    def identity(self, source_crop: np.ndarray) -> np.ndarray:
        emb = self.encoder.embed(source_crop[None])  # L2-normalised: insightface's normed_embedding
        latent = emb.reshape(1, -1) @ self.emap
        return (latent / np.linalg.norm(latent)).astype(np.float32)

    def generate(self, target_crop: np.ndarray, latent: np.ndarray) -> np.ndarray:
        import cv2

        # insightface's INSwapper.get: cv2.dnn.blobFromImage(crop, 1 / 255) (the crop here is already RGB);
        # x * (1/255) in OpenCV's arithmetic, not x / 255, so the truncated output keeps insightface's bytes
        blob = cv2.dnn.blobFromImage(np.ascontiguousarray(target_crop), 1.0 / 255.0, target_crop.shape[1::-1],
                                     (0.0, 0.0, 0.0), swapRB=False)
        pred = self.session.run([self.output_name], {self.target_name: np.ascontiguousarray(blob),
                                                      self.source_name: latent})[0]
        pred = np.asarray(pred, np.float32)
        if pred.shape != blob.shape:
            raise SwapError("inswapper output has the wrong shape", f"{pred.shape}")
        if not np.all(np.isfinite(pred)):
            raise SwapError("generator output is not finite")
        return np.clip(255.0 * pred[0].transpose(1, 2, 0), 0, 255).astype(np.uint8)  # truncates, as insightface
