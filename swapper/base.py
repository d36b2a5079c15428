"""The one Swapper interface (former home of its types; kept so old imports work).

* types: :mod:`idbench.swapper.types` (:class:`Swapper`, :class:`SwapItem`, :class:`SwapOutput`,
  :class:`SwapContext`, :class:`SwapResult`, :class:`SwapFailure`, :class:`SwapError`);
* the pair-at-a-time contract: :mod:`idbench.swapper.pair` (:class:`PairSwapper`);
* partner search: :mod:`idbench.swapper.partners` (:func:`plan_partners`, :func:`choose_partners`,
  :func:`random_other`);
* per-item input checks: :mod:`idbench.swapper.checks`.

How to add a swapper (one new file, registered, run through ``bench run``): ``docs/extending.md``,
section "Add a swapper" (a doctest, run by ``tests/test_docs_extending.py``).
"""

from __future__ import annotations

from .checks import MIN_FACE_PX  # noqa: F401
from .pair import PairSwapper, _swap_image, _Wrapped  # noqa: F401
from .partners import PARTNERS, check_partner_rule, choose_partners, plan_partners, random_other  # noqa: F401
from .types import (SWAP_VERSION, Failure, SwapContext, SwapError, SwapFailure, SwapItem, SwapOutput,  # noqa: F401
                    SwapResult, Swapper)
from .types import stem as _stem  # noqa: F401

__all__ = ["SWAP_VERSION", "PARTNERS", "Failure", "SwapContext", "SwapError", "SwapFailure", "SwapItem", "SwapOutput",
           "SwapResult", "Swapper", "PairSwapper", "plan_partners", "choose_partners", "random_other"]
