"""``arcface.r18|r34|r50|r100`` (arcface_torch IResNets) and ``arcface.r100_blendface_repo`` (BlendFace's ArcFace).

Weights are the model zoo's ``backbone.pth`` files (arcface_torch README, "Model Zoo"). Every depth
is distributed as ``<model>/backbone.pth``, so idbench looks for them renamed to
``<model>_backbone.pth``, e.g. ``ms1mv3_arcface_r100_fp16_backbone.pth``, in
``$IDBENCH_HOME/weights/`` (``~/.cache/idbench/weights/``). Any other file with the same layout
(your own training run, another data set's model zoo entry) can be given explicitly::

    create_encoder("arcface.r100", weights="path/to/backbone.pth")
    bench embed --encoder arcface.r100 --weights path/to/backbone.pth ...

``arcface.r100_blendface_repo`` is the ArcFace IResNet-100 that the BlendFace authors release next to
BlendFace (``checkpoints/arcface.pt`` in their README), the baseline of the BlendFace paper.

All entries: insightface ``norm_crop`` alignment (``arcface112``), RGB, ``(pixel - 127.5) / 127.5``,
512-d, not normalised by the network. :func:`register_iresnet_encoder` is the one factory that this
module and :mod:`idbench.encoders.blendface` use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from idbench.errors import WeightsFormatError
from idbench.weights import WeightSource

from .base import TorchEncoder
from ._iresnet_arch import iresnet_param_count, parse_arch  # torch-free: torch loads with the first model
from .registry import ENCODERS
from .spec import EncoderSpec

INSIGHTFACE_LICENCE = ("InsightFace pretrained models: non-commercial research purposes only (arcface_torch "
                       "model zoo / insightface README); code: MIT")
ARCFACE_PAPER = ("Deng et al., ArcFace: Additive Angular Margin Loss for Deep Face Recognition (CVPR 2019); "
                 "An et al., Partial FC (CVPR 2022) for arcface_torch")
ARCFACE_TORCH_ZOO = "https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch#model-zoo"

#: which directories besides $IDBENCH_HOME/weights are searched for BlendFace-repository files
BLENDFACE_REPO_DIRS: Tuple[str, ...] = ("./checkpoints",)


def iresnet_weight_source(filename: str, arch: str, origin: str, search: Tuple[str, ...] = ()) -> WeightSource:
    """A checkpoint of ``arch``; files under ~half the float16 size are rejected as truncated downloads."""
    min_bytes = int(2 * iresnet_param_count(arch) * 0.95)
    return WeightSource(filename, origin, search=search, min_bytes=min_bytes)


#: the crop of the data insightface's recognition models (and BlendFace's, CurricularFace's) train and test on
INSIGHTFACE_RECIPE = ("insightface face_align.norm_crop: 5 points -> arcface_dst, similarity fitted image->template "
                      "(skimage), cv2.warpAffine bilinear, black border; RGB; (x/255 - 0.5)/0.5 (arcface_torch "
                      "inference.py)")


def iresnet_spec(name: str, arch: str, weights: WeightSource, licence: str, paper: str, description: str
                 ) -> EncoderSpec:
    return EncoderSpec(
        name=name, input_size=(112, 112), alignment="arcface112", colour="RGB",
        mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), embedding_size=512, l2_normalised=False,
        backend="torch", weights=(weights,), licence=licence, paper=paper, description=description,
        recipe=INSIGHTFACE_RECIPE,
    )


class IResNetEncoder(TorchEncoder):
    """TorchEncoder around an :class:`~idbench.encoders.iresnet.IResNet` read by ``load_iresnet_checkpoint``."""

    batch_size = 64

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], arch: str, device: str = "cpu"):
        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
        origin = spec.weights[0].origin if spec.weights else ""
        from .iresnet import load_iresnet_checkpoint

        module = load_iresnet_checkpoint(weights_path, arch, origin=origin)
        super().__init__(spec, module, weights_path, device)
        self.arch = arch


def register_iresnet_encoder(name: str, arch: str, filename: str, origin: str, *, search: Tuple[str, ...] = (),
                             licence: str = INSIGHTFACE_LICENCE, paper: str = ARCFACE_PAPER,
                             description: str = "") -> EncoderSpec:
    """Register an arcface_torch-layout IResNet encoder; returns its spec."""
    arch = parse_arch(arch)
    spec = iresnet_spec(name, arch, iresnet_weight_source(filename, arch, origin, search), licence, paper,
                        description)

    def factory(spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu") -> IResNetEncoder:
        return IResNetEncoder(spec, weights_path, arch, device)

    factory.__name__ = f"_{name.replace('.', '_')}"
    ENCODERS.add(name, spec, factory)
    return spec


# arcface_torch model zoo, MS1MV3 (the README's "ms1mv3_arcface_rNN_fp16" folders)

ARCFACE_SPECS = {}
for _arch in ("r18", "r34", "r50", "r100"):
    _folder = f"ms1mv3_arcface_{_arch}_fp16"
    ARCFACE_SPECS[_arch] = register_iresnet_encoder(
        f"arcface.{_arch}", _arch, f"{_folder}_backbone.pth",
        f"the arcface_torch model zoo ({ARCFACE_TORCH_ZOO}): {_folder}/backbone.pth, renamed {_folder}_backbone.pth",
        description=f"InsightFace IResNet-{_arch[1:]} ArcFace trained on MS1MV3 (arcface_torch model "
                    f"zoo); any arcface_torch {_arch} backbone.pth can be passed as weights",
    )
ENCODERS.set_default("arcface", "arcface.r100")  # `arcface` = the model zoo's r100 (timm-style default tag)

BLENDFACE_LICENCE = ("CC BY-NC-SA 4.0 (mapooon/BlendFace LICENSE.md; README: 'only for research purpose'); "
                     "weights trained on MS1MV3 (derived from the withdrawn MS-Celeb-1M)")
BLENDFACE_PAPER = ("Shiohara, Yang, Taketomi, BlendFace: Re-designing Identity Encoders for Face-Swapping "
                   "(ICCV 2023)")
BLENDFACE_REPO = "https://github.com/mapooon/BlendFace"

ARCFACE_BLENDFACE_REPO_SPEC = register_iresnet_encoder(
    "arcface.r100_blendface_repo", "r100", "arcface.pt",
    f"the BlendFace repository ({BLENDFACE_REPO}, README 'Pretrained Models': ArcFace), saved as "
    f"checkpoints/arcface.pt",
    search=BLENDFACE_REPO_DIRS, licence=BLENDFACE_LICENCE, paper=f"{BLENDFACE_PAPER}; {ARCFACE_PAPER}",
    description="ArcFace IResNet-100 released with BlendFace (the paper's ArcFace baseline; "
                "arcface_torch recipe on MS1MV3, per the repository's training/configs/ms1mv3_r100.py)",
)
