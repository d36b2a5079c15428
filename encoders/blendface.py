"""``blendface.r100``: BlendFace (Shiohara et al., ICCV 2023), ArcFace retrained on attribute-blended faces.

Same network as ArcFace (arcface_torch IResNet-100, 112x112 ``norm_crop`` faces, RGB,
``(pixel - 127.5) / 127.5``, 512-d); the official checkpoint is ``blendface.pt`` from the BlendFace
repository (README "Pretrained Models"), which its README places in ``checkpoints/``. idbench looks
in ``$IDBENCH_HOME/weights/`` and ``./checkpoints/``; any other path can be passed explicitly::

    create_encoder("blendface.r100", weights="BlendFace/checkpoints/blendface.pt")

``blendface.r18|r34|r50`` read the ``backbone.pth`` of your own BlendFace-recipe training runs (``bench train
--blend-prob``); BlendFace publishes only the r100. Its ArcFace baseline is ``arcface.r100_blendface_repo``
(:mod:`idbench.encoders.arcface`), registered by the same factory.
"""

from __future__ import annotations

from .arcface import (ARCFACE_PAPER, BLENDFACE_LICENCE, BLENDFACE_PAPER, BLENDFACE_REPO, BLENDFACE_REPO_DIRS,
                      register_iresnet_encoder)
from .registry import ENCODERS

BLENDFACE_SPEC = register_iresnet_encoder(
    "blendface.r100", "r100", "blendface.pt",
    f"the BlendFace repository ({BLENDFACE_REPO}), README 'Pretrained Models': the BlendFace checkpoint "
    f"blendface.pt (the repository keeps it in checkpoints/)",
    search=BLENDFACE_REPO_DIRS, licence=BLENDFACE_LICENCE, paper=f"{BLENDFACE_PAPER}; {ARCFACE_PAPER}",
    description="BlendFace IResNet-100: ArcFace trained on attribute-blended images to reduce the attribute "
                "bias of identity similarity (official checkpoint)",
)

# BlendFace-recipe IResNets of other depths have no official weights: these entries read the backbone.pth of a
# run of ``bench train --blend-prob ...`` (idbench.bench.train exports to ``blendface.rNN``).
TRAINED_BLENDFACE_SPECS = {
    arch: register_iresnet_encoder(
        f"blendface.{arch}", arch, f"blendface_{arch}_backbone.pth",
        f"a 'bench train --arch iresnet{arch[1:]} --blend-prob ...' run (RUN/backbone.pth; no official {arch} "
        f"BlendFace weights exist), copied as blendface_{arch}_backbone.pth",
        licence="your own training run (the BlendFace recipe: CC BY-NC-SA 4.0 code by Shiohara et al.)",
        paper=f"{BLENDFACE_PAPER}; {ARCFACE_PAPER}",
        description=f"IResNet-{arch[1:]} trained with BlendFace's attribute-blended swaps by idbench's trainer "
                    f"(pass the run's backbone.pth as weights)",
    )
    for arch in ("r18", "r34", "r50")
}

# `blendface` = the official r100 (the paper's model)
ENCODERS.set_default("blendface", "blendface.r100")
