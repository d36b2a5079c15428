"""Face swappers behind one interface (:mod:`idbench.swapper.types`, :mod:`idbench.swapper.pair`): the ``blend`` pseudo-swapper,
FaceForensics++'s manipulated videos (``ffpp:<Method>``), any method's outputs (``results:DIR``) and the
learned swappers ``inswapper``, ``blendswap``, ``simswap`` (:mod:`idbench.swapper.learned`).

>>> from idbench.swapper import SWAPPERS, create_swapper, list_swappers
"""

from .registry import SWAPPERS, SwapperSpec, create_swapper, get_spec, list_swappers, parse_swapper, register_swapper
from .types import SwapContext, SwapError, SwapFailure, SwapItem, SwapOutput, SwapResult, Swapper
from .pair import PairSwapper
from .partners import choose_partners, plan_partners
from .blend import BlendSwapper, blend_pair, swap_crops, swap_frames
from . import ffpp  # noqa: F401  (registers ffpp:<Method>)
from . import results  # noqa: F401  (registers results, used as results:DIR)
from . import learned  # noqa: F401  (registers inswapper, blendswap, simswap)

__all__ = ["SWAPPERS", "SwapperSpec", "create_swapper", "get_spec", "list_swappers", "parse_swapper",
           "register_swapper", "PairSwapper", "SwapContext", "SwapItem", "SwapOutput", "Swapper", "plan_partners",
           "BlendSwapper", "SwapError", "SwapFailure", "SwapResult", "blend_pair", "choose_partners", "swap_crops",
           "swap_frames"]
