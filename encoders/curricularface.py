"""``curricularface.ir101``: CurricularFace (Huang et al., CVPR 2020) IR-101 from HuangYG123/CurricularFace.

The released file (README "Model": Google Drive / Baidu, ``CurricularFace_Backbone.pth``) is the backbone's
plain ``state_dict`` as ``train.py`` saves it (``torch.save(backbone.module.state_dict(), ...)``), keys of
``backbone/model_irse.py``'s ``IR_101`` (:mod:`idbench.encoders.irse`, no BatchNorm inside the PReLU pair).

Contract (the repository's ``config.py`` and PIL loaders): 112 x 112 faces on the ArcFace 5-point template,
RGB, ``Normalize([0.5]*3, [0.5]*3)``, i.e. ``(pixel - 127.5) / 127.5``; output the 512-d embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from idbench.checkpoints import load_state_dict_checked, read_state_dict
from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .arcface import INSIGHTFACE_RECIPE
from .base import TorchEncoder
from .registry import ENCODERS, register_encoder
from .spec import EncoderSpec

CURRICULARFACE_REPO = "https://github.com/HuangYG123/CurricularFace"


def load_curricularface(path: Path, depth: int = 100, origin: str = "") -> "IRBackbone":  # noqa: F821
    hint = f"; get it again from {origin}" if origin else ""
    state = read_state_dict(path, origin)
    from .irse import IRBackbone  # torch only when the encoder is built

    return load_state_dict_checked(IRBackbone(depth, mid_bn=False), state, "a CurricularFace IR-101"
                                   if depth == 100 else f"a CurricularFace IR-{depth}", path, hint).eval()


@register_encoder(EncoderSpec(
    name="curricularface.ir101", input_size=(112, 112), alignment="arcface112", colour="RGB", mean=(127.5,) * 3,
    std=(127.5,) * 3, embedding_size=512, l2_normalised=False, backend="torch",
    weights=(WeightSource("CurricularFace_Backbone.pth", f"the CurricularFace README's 'Model' section "
                          f"({CURRICULARFACE_REPO}; Google Drive / Baidu): CurricularFace_Backbone.pth",
                          min_bytes=100_000_000),),
    licence="MIT (HuangYG123/CurricularFace LICENSE); weights trained on MS1MV2 (research use)",
    paper="Huang et al., CurricularFace: Adaptive Curriculum Learning Loss for Deep Face Recognition (CVPR 2020)",
    description="CurricularFace IR-101 (face.evoLVe IR backbone, MS1MV2); RGB, (x - 127.5) / 127.5",
    recipe=INSIGHTFACE_RECIPE))
def _curricularface_ir101(spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu") -> TorchEncoder:
    if weights_path is None:
        raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
    return TorchEncoder(spec, load_curricularface(weights_path, 100, spec.weights[0].origin), weights_path, device)

ENCODERS.set_default("curricularface", "curricularface.ir101")
