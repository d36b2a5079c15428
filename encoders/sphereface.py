"""``sphereface.sphere20a``: SphereFace-20 of clcarwin/sphereface_pytorch (CASIA-WebFace, LFW 99.22%).

The ID-retrieval evaluator of the FaceShifter line of face-swap papers (as ReliableSwap and SimSwap's
evaluations use it). The released ``model/sphere20a_20171020.7z`` unpacks to ``sphere20a_20171020.pth``,
the ``state_dict`` of ``net_sphere.sphere20a``: ``conv1_1 .. conv4_3`` (3 x 3 convs with bias) each followed
by ``relu*`` (PReLU), ``fc5`` (512 x 7 x 6 -> 512, the embedding) and ``fc6`` (the A-Softmax
``AngleLinear`` classifier, not needed here and dropped).

Contract (``lfw_eval.py``): ``cv2.imread`` (BGR) faces warped onto the 96 x 112 template ``ref_pts``
(insightface's ArcFace template shifted 8 px left, i.e. the centre 96 columns of the 112 x 112 ArcFace
crop), ``(pixel - 127.5) / 128``; output ``fc5``. The warp matrix is ``matlab_cp2tform``'s
``get_similarity_transform_for_cv2``: the similarity fitted from the template onto the image points and
inverted (``fit="template_to_image"``), bilinear ``cv2.warpAffine`` with a black border.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from .registry import ENCODERS, register_encoder
from .spec import EncoderSpec

SPHEREFACE_REPO = "https://github.com/clcarwin/sphereface_pytorch"


@register_encoder(EncoderSpec(
    name="sphereface.sphere20a", input_size=(112, 96), alignment="arcface112", colour="BGR", mean=(127.5,) * 3,
    std=(128.0,) * 3, embedding_size=512, l2_normalised=False, backend="torch",
    weights=(WeightSource("sphere20a_20171020.pth", f"{SPHEREFACE_REPO}: model/sphere20a_20171020.7z, unpacked "
                          f"(7z x sphere20a_20171020.7z)", min_bytes=40_000_000),),
    fit="template_to_image",
    recipe="lfw_eval.py alignment(): 5 points -> ref_pts (ArcFace template - 8 px in x), 96x112, "
           "matlab_cp2tform similarity fitted template->image and inverted, cv2.warpAffine bilinear, black "
           "border; BGR; (x - 127.5) / 128 in float32; fc5",
    licence="MIT (clcarwin/sphereface_pytorch LICENSE); weights trained on CASIA-WebFace (research use)",
    paper="Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition (CVPR 2017)",
    description="SphereFace-20 (A-Softmax, CASIA-WebFace), 112x96 BGR (x-127.5)/128: the face-swap "
                "literature's ID-retrieval evaluator"))
def _sphere20a(spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu") -> TorchEncoder:
    if weights_path is None:
        raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
    from .sphere20a_net import load_sphere20a  # torch only when the encoder is built

    return TorchEncoder(spec, load_sphere20a(weights_path, spec.weights[0].origin), weights_path, device)

ENCODERS.set_default("sphereface", "sphereface.sphere20a")
