"""Learned face swappers: ``inswapper``, ``blendswap``, ``simswap`` (weights are never downloaded).

>>> from idbench.swapper import create_swapper
>>> sw = create_swapper("blendswap", weights="BlendFace/swapping/checkpoints/blendswap.pth", seed=0)
>>> result = sw.swap(source_image, source_face, target_image, target_face)   # full frame, pasted back
>>> sw.model.net                                                             # the loaded network

``create_swapper`` returns a :class:`~.protocol.LearnedPairSwapper` (the Swapper interface of ``blend``:
FF++ split pairs in a run, else seeded pairs); its ``model`` is the loaded :class:`~._base.LearnedSwapper`.

Each swapper's typed spec (:data:`LEARNED_SPECS`) says which crops it takes, which identity encoder it was
trained with, how it pastes back, which weight files it needs and where each ecosystem keeps them.
``weights`` is a path (swappers with one file) or ``{filename: path}``. Torch and onnxruntime are imported
only when a swapper is built.
"""

from __future__ import annotations

from typing import Dict, Mapping

from idbench.registry import Option
from idbench.swapper.registry import SwapperSpec, register_swapper

from .spec import BLENDSWAP_SPEC, INSWAPPER_SPEC, LEARNED_SPECS, SIMSWAP_SPEC, Crop, LearnedSwapperSpec

__all__ = ["LEARNED_SPECS", "LearnedSwapperSpec", "Crop", "INSWAPPER_SPEC", "BLENDSWAP_SPEC", "SIMSWAP_SPEC",
           "learned_spec", "weight_status", "weight_places", "weight_names", "factory_weights"]


#: the options of every learned swapper (weights and device are create()'s own arguments)
LEARNED_OPTIONS = (Option("partner", "nearest-landmark", "folders: nearest-landmark | random (FF++: the split's "
                          "<target>_<source> pairs)"),
                   Option("k", 100, "partner candidates"), Option("seed", 0, "default: --seed"))
#: inswapper builds its identity encoder (arcface.onnx) itself
INSWAPPER_OPTIONS = LEARNED_OPTIONS + (
    Option("identity_encoder", None, "an Encoder to use instead of arcface.onnx"),
    Option("identity_weights", None, "arcface.onnx's w600k_r50.onnx (--weights arcface.onnx=PATH)",
           weights_key=INSWAPPER_SPEC.identity_encoder))


def _spec(learned: LearnedSwapperSpec, options=LEARNED_OPTIONS) -> SwapperSpec:
    return SwapperSpec(learned.name, learned.description, "learned", weights=learned.weights, licence=learned.licence,
                       paper=learned.paper, options=options)


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


def weight_places(name: str) -> str:
    """For listings: where each weight file of a learned swapper goes (inswapper: also its encoder's file)."""
    from .spec import weight_place

    spec = LEARNED_SPECS.get(name)
    if spec is None:
        return "-"
    places = [weight_place(s) for s in spec.weights]
    if spec.identity_from_registry:
        from idbench.encoders import get_spec

        places += [weight_place(s) for s in get_spec(spec.identity_encoder).weights]
    return "; ".join(places)


def weight_names(name: str) -> Dict[str, str]:
    """``--weights NAME=PATH`` names a swapper takes -> the file each sets ({} for swappers without weights)."""
    spec = LEARNED_SPECS.get(name)
    return spec.weight_names() if spec is not None else {}


def factory_weights(name: str, weights: Mapping[str, str]) -> Dict[str, object]:
    """The factory keywords of a learned swapper from ``--weights`` (keys as :func:`weight_names` gives them):
    ``weights={file: path}`` and, for inswapper, ``identity_weights`` (its arcface.onnx file)."""
    spec = LEARNED_SPECS.get(name)
    if spec is None:  # a learned swapper registered without a LearnedSwapperSpec takes no --weights
        return {}
    kw: Dict[str, object] = {"weights": {f: weights[f] for f in spec.weight_files() if f in weights} or None}
    if spec.identity_from_registry and spec.identity_encoder in weights:
        kw["identity_weights"] = weights[spec.identity_encoder]
    return kw


def _pairs(build, partner: str = "nearest-landmark", k: int = 100, seed: int = 0):
    """``build()``'s model behind the Swapper interface (FF++ split pairs in a run, else seeded pairs)."""
    from idbench.swapper.partners import check_partner_rule

    from .protocol import LearnedPairSwapper

    check_partner_rule(partner)  # an unknown partner rule fails before the weights are read
    return LearnedPairSwapper(build(), partner=partner, k=k, seed=seed)


@register_swapper(_spec(INSWAPPER_SPEC, INSWAPPER_OPTIONS))
def _inswapper(spec: SwapperSpec, weights=None, device: str = "cpu", identity_encoder=None,
               identity_weights=None, partner: str = "nearest-landmark", k: int = 100, seed: int = 0):
    from .inswapper import InSwapper

    return _pairs(lambda: InSwapper(INSWAPPER_SPEC, weights, device, identity_encoder, identity_weights), partner, k,
                  seed)


@register_swapper(_spec(BLENDSWAP_SPEC))
def _blendswap(spec: SwapperSpec, weights=None, device: str = "cpu", partner: str = "nearest-landmark",
               k: int = 100, seed: int = 0):
    from .blendswap import BlendSwap

    return _pairs(lambda: BlendSwap(BLENDSWAP_SPEC, weights, device), partner, k, seed)


@register_swapper(_spec(SIMSWAP_SPEC))
def _simswap(spec: SwapperSpec, weights=None, device: str = "cpu", partner: str = "nearest-landmark",
             k: int = 100, seed: int = 0):
    from .simswap import SimSwap

    return _pairs(lambda: SimSwap(SIMSWAP_SPEC, weights, device), partner, k, seed)
