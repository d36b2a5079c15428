"""Face swappers: the ``blend`` pseudo-swapper and FaceForensics++'s manipulated videos.

>>> from idbench.swapper import SWAPPERS, create_swapper, list_swappers
"""

from .registry import SWAPPERS, SwapperSpec, create_swapper, get_spec, list_swappers, register_swapper
from .blend import (BlendSwapper, SwapError, SwapFailure, SwapResult, blend_pair, choose_partners,  # noqa: F401
                    swap_crops, swap_frames)
from . import ffpp  # noqa: F401  (registers ffpp:<Method>)
from . import learned  # noqa: F401  (registers inswapper, blendswap, simswap)

__all__ = ["SWAPPERS", "SwapperSpec", "create_swapper", "get_spec", "list_swappers", "register_swapper",
           "BlendSwapper", "SwapError", "SwapFailure", "SwapResult", "blend_pair", "choose_partners", "swap_crops",
           "swap_frames"]
