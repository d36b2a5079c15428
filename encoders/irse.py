"""The face.evoLVe "IR" backbone (TreB1eN / ZhaoJ9014 lineage), as AdaFace and CurricularFace release it.

Module tree and ``state_dict`` keys follow ``net.py`` of mk-minchul/AdaFace and ``backbone/model_irse.py``
of HuangYG123/CurricularFace: ``input_layer.{0 conv, 1 bn, 2 prelu}``, ``body.N.shortcut_layer.{0 conv,
1 bn}`` (a ``MaxPool2d(1, stride)`` without parameters where the width does not change),
``body.N.res_layer.*``, ``output_layer.{0 bn2d, 3 linear, 4 bn1d (affine=False)}``. The two differ in
one place: AdaFace's ``BasicBlockIR`` has a BatchNorm between the first conv and the PReLU
(``res_layer`` = bn, conv, bn, prelu, conv, bn); CurricularFace's ``bottleneck_IR`` has none
(bn, conv, prelu, conv, bn). Input 112 x 112; output the 512-d embedding before any normalisation.
"""

from __future__ import annotations

from typing import Dict, Tuple

from torch import nn

#: units per stage (face.evoLVe's ``get_blocks``)
IR_UNITS: Dict[int, Tuple[int, int, int, int]] = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3),
                                                  100: (3, 13, 30, 3)}
_WIDTHS = (64, 128, 256, 512)


class IRBlock(nn.Module):
    def __init__(self, in_ch: int, depth: int, stride: int, mid_bn: bool):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False)]
        layers += [nn.BatchNorm2d(depth)] if mid_bn else []
        layers += [nn.PReLU(depth), nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRBackbone(nn.Module):
    """IR-18/34/50/100 on 112 x 112 input; ``mid_bn`` selects AdaFace's block (True) or CurricularFace's."""

    def __init__(self, num_layers: int, mid_bn: bool):
        super().__init__()
        if num_layers not in IR_UNITS:
            raise ValueError(f"IR depth must be one of {sorted(IR_UNITS)}, got {num_layers}")
        self.num_layers, self.mid_bn = num_layers, mid_bn
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks, in_ch = [], 64
        for depth, units in zip(_WIDTHS, IR_UNITS[num_layers]):
            for i in range(units):
                blocks.append(IRBlock(in_ch, depth, 2 if i == 0 else 1, mid_bn))
                in_ch = depth
        self.body = nn.Sequential(*blocks)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512, affine=False))

    def forward(self, x):
        return self.output_layer(self.body(self.input_layer(x)))
