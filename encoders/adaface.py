"""``adaface.ir101`` / ``adaface.ir50``: AdaFace (Kim, Jain, Liu, CVPR 2022) IR backbones from mk-minchul/AdaFace.

The released files are PyTorch Lightning checkpoints (``adaface_ir101_webface12m.ckpt``,
``adaface_ir50_ms1mv2.ckpt``, ... in the README's "Pretrained Models" table): a ``state_dict`` whose backbone
keys carry the ``model.`` prefix (the margin head's ``head.kernel`` sits beside them), loaded in
``inference.py`` as ``{k[6:]: v for k, v in state_dict.items() if k.startswith('model.')}``. Any AdaFace
checkpoint of the same depth (other training sets) can be given explicitly as weights.

Contract (``inference.py``'s ``to_input``): 112 x 112 faces aligned to the ArcFace 5-point template
(their MTCNN ``get_reference_facial_points(default_square=True)``), warped by ``align_trans.warp_and_crop_face``
with ``matlab_cp2tform``'s similarity (fitted template -> image and inverted: ``fit="template_to_image"``),
**BGR**, ``(x / 255 - 0.5) / 0.5``.
The network returns ``(x / |x|, |x|)``; idbench takes ``x`` (it normalises itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from idbench.checkpoints import load_state_dict_checked, read_state_dict
from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from .registry import ENCODERS
from .spec import EncoderSpec

ADAFACE_REPO = "https://github.com/mk-minchul/AdaFace"
ADAFACE_PAPER = "Kim, Jain, Liu, AdaFace: Quality Adaptive Margin for Face Recognition (CVPR 2022)"
ADAFACE_LICENCE = "MIT (mk-minchul/AdaFace LICENSE); weights trained on WebFace4M/12M or MS1MV2 (research use)"


def backbone_state(state: Dict, path: Path) -> Dict:
    """The backbone's tensors of a Lightning checkpoint: ``model.``-prefixed keys, prefix removed."""
    if any(k.startswith("model.") for k in state):
        return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    backbone = {k: v for k, v in state.items() if not k.startswith("head.")}  # reader already stripped 'model.'
    if not backbone:
        raise WeightsFormatError(f"{path}: holds only the margin head ('head.*'), no 'model.' backbone keys")
    return backbone


def load_adaface(path: Path, depth: int, origin: str = "") -> "IRBackbone":  # noqa: F821
    hint = f"; get it again from {origin}" if origin else ""
    state = backbone_state(read_state_dict(path, origin), Path(path))
    label = f"an AdaFace IR-{101 if depth == 100 else depth}"  # face.evoLVe builds 'IR_101' with 100 layers
    from .irse import IRBackbone  # torch only when the encoder is built

    return load_state_dict_checked(IRBackbone(depth, mid_bn=True), state, label, path, hint).eval()


class AdaFaceEncoder(TorchEncoder):
    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], depth: int, device: str = "cpu"):
        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
        super().__init__(spec, load_adaface(weights_path, depth, spec.weights[0].origin), weights_path, device)


def _register(name: str, depth: int, filename: str, data: str) -> None:
    # a float32 IR-50 is ~170 MB, an IR-101 ~250 MB: well under half is a truncated download
    min_bytes = {50: 60_000_000, 101: 100_000_000}[depth]
    spec = EncoderSpec(
        name=name, input_size=(112, 112), alignment="arcface112", colour="BGR", mean=(127.5,) * 3,
        std=(127.5,) * 3, embedding_size=512, l2_normalised=False, backend="torch",
        weights=(WeightSource(filename, f"the AdaFace README's 'Pretrained Models' table ({ADAFACE_REPO}): "
                                        f"{filename}", min_bytes=min_bytes),),
        licence=ADAFACE_LICENCE, paper=ADAFACE_PAPER, fit="template_to_image",
        recipe="face_alignment/align.py: MTCNN 5 points -> get_reference_facial_points(default_square=True) "
               "(the ArcFace template), 112x112, matlab_cp2tform similarity fitted template->image and "
               "inverted, cv2.warpAffine bilinear, black border; RGB -> BGR; (x/255 - 0.5)/0.5 in float64, "
               "then float32",
        description=f"AdaFace IR-{depth} trained on {data} (Lightning .ckpt, 'model.' keys); BGR, (x/255-0.5)/0.5")

    def factory(spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu") -> AdaFaceEncoder:
        return AdaFaceEncoder(spec, weights_path, 100 if depth == 101 else depth, device)

    ENCODERS.add(name, spec, factory)


_register("adaface.ir101", 101, "adaface_ir101_webface12m.ckpt", "WebFace12M")
_register("adaface.ir50", 50, "adaface_ir50_ms1mv2.ckpt", "MS1MV2")

ENCODERS.set_default("adaface", "adaface.ir101")  # `adaface` = the flagship WebFace12M IR-101
