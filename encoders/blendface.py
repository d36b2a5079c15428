"""``blendface.r100``: BlendFace (Shiohara et al., ICCV 2023), ArcFace retrained on attribute-blended faces.

Same network as ArcFace (arcface_torch IResNet-100, 112x112 ``norm_crop`` faces, RGB,
``(pixel - 127.5) / 127.5``, 512-d); the official checkpoint is ``blendface.pt`` from the BlendFace
repository (README "Pretrained Models"), which its README places in ``checkpoints/``. idbench looks
in ``$IDBENCH_HOME/weights/`` and ``./checkpoints/``; any other path can be passed explicitly::

    create_encoder("blendface.r100", weights="BlendFace/checkpoints/blendface.pt")

Its ArcFace baseline from the same repository is ``arcface.r100_blendface_repo``
(:mod:`idbench.encoders.arcface`), registered by the same factory.
"""

from __future__ import annotations

from .arcface import (ARCFACE_PAPER, BLENDFACE_LICENCE, BLENDFACE_PAPER, BLENDFACE_REPO, BLENDFACE_REPO_DIRS,
                      register_iresnet_encoder)

BLENDFACE_SPEC = register_iresnet_encoder(
    "blendface.r100", "r100", "blendface.pt",
    f"the BlendFace repository ({BLENDFACE_REPO}, README 'Pretrained Models': BlendFace), saved as "
    f"checkpoints/blendface.pt",
    search=BLENDFACE_REPO_DIRS, licence=BLENDFACE_LICENCE, paper=f"{BLENDFACE_PAPER}; {ARCFACE_PAPER}",
    description="BlendFace IResNet-100: ArcFace trained on attribute-blended images to reduce the attribute "
                "bias of identity similarity (official checkpoint)",
)
