"""Typed specs of the learned swappers: crops, identity encoder, paste-back, weight files, licence, paper.

The weight files are never downloaded. Each :class:`~idbench.weights.WeightSource` lists where its ecosystem
keeps the file (insightface's ``~/.insightface/models/``, the BlendFace repository's ``checkpoints/``, SimSwap's
``checkpoints/people/`` and ``arcface_model/``); ``$IDBENCH_HOME/weights/`` is searched first, and an explicit
path always wins (``weights={"inswapper_128.onnx": PATH}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from idbench.weights import WeightSource, idbench_home, resolve_weights, weights_presence

INSIGHTFACE_REPO = "https://github.com/deepinsight/insightface"
BLENDFACE_REPO = "https://github.com/mapooon/BlendFace"
SIMSWAP_REPO = "https://github.com/neuralchen/SimSwap"


@dataclass(frozen=True)
class Crop:
    """How a swapper crops one face: ``alignment`` is a geometry of :mod:`idbench.align` at ``size`` px."""

    alignment: str  # "arcface" (5-point similarity onto insightface's template) or "ffhq" (68-point FFHQ square)
    size: int
    pixels: str  # what the network sees, e.g. "RGB [0, 1]"


@dataclass(frozen=True)
class LearnedSwapperSpec:
    """Everything a learned swapper needs and promises, for listings, provenance and the docs."""

    name: str
    description: str
    source: Crop  # the crop the identity embedding is computed from
    target: Crop  # the crop the generator rewrites
    identity_encoder: str  # registry name of the identity encoder the swapper was trained with
    identity_note: str  # where that encoder's weights come from at run time
    paste_back: str
    weights: Tuple[WeightSource, ...]
    licence: str
    paper: str
    repository: str
    identity_from_registry: bool = False  # True: the identity encoder is built from idbench's encoder registry
    output_uint8: str = "round"  # how the official script turns the float output into uint8: round | truncate

    def weight_status(self) -> str:
        """'present' when every file resolves, else the first file that is 'missing' or 'corrupt'."""
        for source in self.weights:
            state = weights_presence((source,))
            if state != "present":
                return f"{state} ({source.filename})"
        return "present"

    def weight_files(self) -> Tuple[str, ...]:
        return tuple(s.filename for s in self.weights)

    def resolve(self, weights=None) -> Dict[str, Path]:
        """``{filename: path}`` of every weight file (explicit ``weights`` first, then the search folders);
        raises the one-line ``WeightsNotFoundError`` / ``WeightsFormatError`` of :func:`resolve_weights`."""
        return {s.filename: resolve_weights(s, explicit_path(weights, s)) for s in self.weights}

    def weight_names(self) -> Dict[str, str]:
        """The names ``--weights NAME=PATH`` takes for this swapper -> the file (or identity encoder) each sets:
        every file's name, the swapper's own name when it has one file, its registry identity encoder's name."""
        names = {f: f for f in self.weight_files()}
        if len(self.weights) == 1:
            names[self.name] = self.weights[0].filename
        if self.identity_from_registry:
            names[self.identity_encoder] = self.identity_encoder
        return names


def weight_place(source: WeightSource) -> str:
    """Where a weight file goes, for listings: ``FILE in ECOSYSTEM_DIR/ or $IDBENCH_HOME/weights/``."""
    dirs = [*source.search, str(idbench_home() / "weights")]
    return f"{source.filename} in " + " or ".join(d.rstrip("/") + "/" for d in dirs)


def explicit_path(weights: Optional[Dict[str, str]], source: WeightSource) -> Optional[str]:
    """The user's path for ``source`` from ``{filename: path}`` (or a bare path when the swapper has one file)."""
    if weights is None:
        return None
    if isinstance(weights, dict):
        return weights.get(source.filename)
    return str(weights)


INSWAPPER_WEIGHTS = WeightSource(
    "inswapper_128.onnx",
    f"insightface's model zoo ({INSIGHTFACE_REPO}, python-package 'inswapper_128.onnx'; "
    f"insightface.model_zoo.get_model('inswapper_128.onnx') keeps it in ~/.insightface/models/)",
    search=("~/.insightface/models",),
    min_bytes=1024,
)

BLENDSWAP_WEIGHTS = WeightSource(
    "blendswap.pth",
    f"the BlendFace repository ({BLENDFACE_REPO}, README 'Face-Swapping': the pretrained checkpoint, "
    f"which swapping/inference.py reads as checkpoints/blendswap.pth)",
    search=("./checkpoints", "./swapping/checkpoints"),
    min_bytes=1024,
)

SIMSWAP_G_WEIGHTS = WeightSource(
    "latest_net_G.pth",
    f"SimSwap's release checkpoints.zip ({SIMSWAP_REPO}, docs/guidance/preparation.md), unzipped as "
    f"checkpoints/people/latest_net_G.pth",
    search=("./checkpoints/people",),
    min_bytes=1024,
)

SIMSWAP_ARC_WEIGHTS = WeightSource(
    "arcface_checkpoint.tar",
    f"SimSwap's release arcface_checkpoint.tar ({SIMSWAP_REPO}, docs/guidance/preparation.md), kept in "
    f"arcface_model/ (a pickled whole model: needs IDBENCH_ALLOW_PICKLE=1, or its re-saved state_dict())",
    search=("./arcface_model", "./checkpoints"),
    min_bytes=1024,
)

INSWAPPER_SPEC = LearnedSwapperSpec(
    name="inswapper",
    description="insightface inswapper_128 (onnxruntime): 128x128 arcface-template target, source identity "
                "from w600k_r50 mapped through the graph's emap",
    source=Crop("arcface", 112, "the arcface.onnx encoder's input (RGB, (x - 127.5) / 127.5)"),
    target=Crop("arcface", 128, "RGB [0, 1] (cv2.dnn.blobFromImage(aimg, 1/255, swapRB=True))"),
    identity_encoder="arcface.onnx",
    identity_note="w600k_r50.onnx of insightface's buffalo_l pack (the arcface.onnx encoder); latent = "
                  "normalise(normalise(embedding) @ emap)",
    paste_back="inverse similarity warp of the 128 crop; crop-border mask eroded by 10% and blurred "
               "(insightface INSwapper.get(paste_back=True))",
    weights=(INSWAPPER_WEIGHTS,),
    licence="insightface pretrained models: non-commercial research purposes only",
    paper="no paper (insightface's inswapper, 2023); compared as a baseline in later face-swap papers",
    repository=INSIGHTFACE_REPO,
    identity_from_registry=True,
)

BLENDSWAP_SPEC = LearnedSwapperSpec(
    name="blendswap",
    description="BlendSwap (BlendFace repo): FaceShifter's AEI-Net with a mask head, identity from the "
                "BlendFace IResNet-100 stored in the same checkpoint",
    source=Crop("arcface", 112, "RGB [0, 1] (the checkpoint's Z_e normalises to [-1, 1])"),
    target=Crop("ffhq", 256, "RGB [0, 1]"),
    identity_encoder="blendface.r100",
    identity_note="the BlendFace r100 inside blendswap.pth (keys Z_e.1.*), as swapping/blendswap.py uses it",
    paste_back="the network blends its output into the 256 FFHQ target crop with its own mask head; the crop "
               "is pasted back by the inverse FFHQ affine warp with an eroded, blurred crop-border mask",
    weights=(BLENDSWAP_WEIGHTS,),
    licence="CC BY-NC-SA 4.0 (mapooon/BlendFace LICENSE.md; research purposes only)",
    paper="Shiohara, Yang, Taketomi, BlendFace: Re-designing Identity Encoders for Face-Swapping (ICCV 2023); "
          "Li et al., FaceShifter (arXiv 1912.13457) for AEI-Net",
    repository=BLENDFACE_REPO,
    output_uint8="truncate",  # swapping/inference.py: (output * 255).astype(np.uint8)
)

SIMSWAP_SPEC = LearnedSwapperSpec(
    name="simswap",
    description="SimSwap 224 (people checkpoint): ID injection by AdaIN residual blocks, identity from "
                "SimSwap's own ArcFace (arcface_checkpoint.tar)",
    source=Crop("arcface", 224, "RGB, ImageNet mean/std, resized (nearest) to 112 for the ArcFace"),
    target=Crop("arcface", 224, "RGB [0, 1]"),
    identity_encoder="simswap.arcface",
    identity_note="SimSwap's SE-ResNet ArcFace (arcface_model/arcface_checkpoint.tar, foamliu InsightFace-v2 "
                  "layout); not an idbench registry encoder",
    paste_back="inverse similarity warp of the 224 crop; crop-border mask eroded by 10% and blurred "
               "(SimSwap's reverse2wholeimage without the optional face-parsing mask)",
    weights=(SIMSWAP_G_WEIGHTS, SIMSWAP_ARC_WEIGHTS),
    licence="CC BY-NC 4.0 (neuralchen/SimSwap LICENSE; non-commercial research only)",
    paper="Chen, Chen, Ni, Ge, SimSwap: An Efficient Framework For High Fidelity Face Swapping (ACM MM 2020)",
    repository=SIMSWAP_REPO,
)

LEARNED_SPECS: Dict[str, LearnedSwapperSpec] = {s.name: s for s in (INSWAPPER_SPEC, BLENDSWAP_SPEC, SIMSWAP_SPEC)}
