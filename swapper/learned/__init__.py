"""Learned face swappers: ``inswapper``, ``blendswap``, ``simswap`` (weights are never downloaded).

>>> from idbench.swapper import create_swapper
>>> sw = create_swapper("blendswap", weights="BlendFace/swapping/checkpoints/blendswap.pth")
>>> result = sw.swap(source_image, source_face, target_image, target_face)   # full frame, pasted back

Each swapper's typed spec (:data:`LEARNED_SPECS`) says which crops it takes, which identity encoder it was
trained with, how it pastes back, which weight files it needs and where each ecosystem keeps them.
``weights`` is a path (swappers with one file) or ``{filename: path}``. Torch and onnxruntime are imported
only when a swapper is built.
"""

from __future__ import annotations

from idbench.swapper.registry import SwapperSpec, register_swapper

from .spec import BLENDSWAP_SPEC, INSWAPPER_SPEC, LEARNED_SPECS, SIMSWAP_SPEC, Crop, LearnedSwapperSpec

__all__ = ["LEARNED_SPECS", "LearnedSwapperSpec", "Crop", "INSWAPPER_SPEC", "BLENDSWAP_SPEC", "SIMSWAP_SPEC",
           "learned_spec", "weight_status"]


#: what `bench list swappers` shows for each learned swapper
LEARNED_PARAMS = (("weights", "a path or {file: path}; default: $IDBENCH_HOME/weights, then the ecosystem's folders"),
                  ("device", "cpu | cuda"))


def learned_spec(name: str) -> LearnedSwapperSpec:
    return LEARNED_SPECS[name]


def weight_status(name: str) -> str:
    """For listings: a learned swapper's weight status ('present', 'missing (FILE)', ...), else 'none needed'."""
    spec = LEARNED_SPECS.get(name)
    if spec is None:
        return "none needed"
    status = spec.weight_status()
    if status == "present" and spec.identity_from_registry:  # inswapper also needs arcface.onnx's w600k_r50
        from idbench.encoders import get_spec, weights_status

        if weights_status(spec.identity_encoder) != "present":
            return f"{weights_status(spec.identity_encoder)} ({get_spec(spec.identity_encoder).weights[0].filename})"
    return status


@register_swapper(SwapperSpec("inswapper", INSWAPPER_SPEC.description, kind="learned", params=LEARNED_PARAMS))
def _inswapper(spec: SwapperSpec, weights=None, device: str = "cpu", identity_encoder=None,
               identity_weights=None, **_):
    from .inswapper import InSwapper

    return InSwapper(INSWAPPER_SPEC, weights, device, identity_encoder, identity_weights)


@register_swapper(SwapperSpec("blendswap", BLENDSWAP_SPEC.description, kind="learned", params=LEARNED_PARAMS))
def _blendswap(spec: SwapperSpec, weights=None, device: str = "cpu", **_):
    from .blendswap import BlendSwap

    return BlendSwap(BLENDSWAP_SPEC, weights, device)


@register_swapper(SwapperSpec("simswap", SIMSWAP_SPEC.description, kind="learned", params=LEARNED_PARAMS))
def _simswap(spec: SwapperSpec, weights=None, device: str = "cpu", **_):
    from .simswap import SimSwap

    return SimSwap(SIMSWAP_SPEC, weights, device)
