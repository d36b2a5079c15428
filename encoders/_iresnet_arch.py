"""IResNet depths and their parameter counts, without torch (encoder specs are built at import time)."""

from __future__ import annotations

import re
from typing import Dict, Tuple, Union

#: blocks per stage of each depth (arcface_torch's ``get_model``)
IRESNET_LAYERS: Dict[str, Tuple[int, int, int, int]] = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
    "r200": (6, 26, 60, 6),
}

_FC_SCALE = 7 * 7  # spatial size after four stride-2 stages on 112 x 112


def parse_arch(arch: Union[str, int]) -> str:
    """'r50', 'iresnet50', 'arcface.r50', 50 -> 'r50'."""
    m = re.search(r"(\d+)$", str(arch).strip().lower())
    key = f"r{m.group(1)}" if m else str(arch)
    if key not in IRESNET_LAYERS:
        raise ValueError(f"unknown IResNet architecture {arch!r}; known: {', '.join(IRESNET_LAYERS)}")
    return key


def iresnet_param_count(arch: Union[str, int], num_features: int = 512) -> int:
    """Number of stored floats (parameters and BN statistics) of a depth, without building it."""
    layers = IRESNET_LAYERS[parse_arch(arch)]
    bn = lambda c: 4 * c  # noqa: E731  weight, bias, running mean, running var
    n = 3 * 64 * 9 + bn(64) + 64
    cin = 64
    for planes, blocks in zip((64, 128, 256, 512), layers):
        n += cin * planes + bn(planes)  # downsample
        for i in range(blocks):
            c = cin if i == 0 else planes
            n += bn(c) + c * planes * 9 + bn(planes) + planes + planes * planes * 9 + bn(planes)
        cin = planes
    return n + bn(512) + 512 * _FC_SCALE * num_features + num_features + bn(num_features)
