"""Which weights a fine-tune trains: ``--freeze-until LAYER`` and ``--trainable-fraction F``.

Parameters are taken in the order the network uses them: the node order of a ``torch.fx`` graph (an ONNX graph
converted by :mod:`idbench.encoders.onnx_torch`; a weight held as a constant belongs to the node that reads it),
the definition order of any other module. A parameter's *layer* is the module that holds it (``layer3.1.conv2``)
or, in a converted graph, the node that reads it (``stage2_unit1_conv0_0``).

* ``freeze_until=LAYER``: every parameter before the first one of ``LAYER`` (the layer itself or a module below
  it: ``layer3`` covers ``layer3.1.conv2``) is frozen; ``LAYER`` and everything after it train;
* ``trainable_fraction=F`` (0 < F <= 1): the shortest run of last parameters holding at least F of all weights
  trains, the rest is frozen;
* both: a parameter trains only where both allow it.

Batch norms whose weights are all frozen get frozen statistics too (:mod:`idbench.encoders.frozen_bn`), so a
frozen layer computes exactly what it did before training.
"""

from __future__ import annotations

import difflib
from typing import List, Optional, Tuple

from torch import fx, nn

from idbench.encoders.frozen_bn import freeze_batch_norms
from idbench.errors import InputError

Ordered = List[Tuple[str, str, nn.Parameter]]  # (layer, parameter name, parameter)


def _graph_parameters(gm: fx.GraphModule) -> Ordered:
    out: Ordered = []
    params = dict(gm.named_parameters())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            sub = gm.get_submodule(node.target)
            out += [(node.target, f"{node.target}.{n}", p) for n, p in sub.named_parameters()]
        elif node.op == "get_attr" and node.target in params:
            readers = [u.target for u in node.users if u.op == "call_module"]
            out.append((readers[0] if readers else node.target, node.target, params[node.target]))
    return out


def ordered_parameters(module: nn.Module) -> Ordered:
    """Every parameter once, in the order the network uses it, with its layer name."""
    found = _graph_parameters(module) if isinstance(module, fx.GraphModule) else []
    found += [(n.rsplit(".", 1)[0] if "." in n else n, n, p) for n, p in module.named_parameters()]
    seen, out = set(), []
    for layer, name, p in found:
        if id(p) not in seen:
            seen.add(id(p))
            out.append((layer, name, p))
    return out


def _first_of(layers: List[str], until: str) -> int:
    for i, layer in enumerate(layers):
        if layer == until or layer.startswith(until + "."):
            return i
    names = list(dict.fromkeys(layers))
    close = difflib.get_close_matches(until, names, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} layers)" if len(names) > 12 else "")
    raise InputError(f"--freeze-until {until!r} is no layer of this network.{hint} Layers in order: {shown}")


def _fraction_start(sizes: List[int], fraction: float) -> int:
    """Index of the first parameter of the shortest tail holding at least ``fraction`` of all elements."""
    total, acc = sum(sizes), 0
    for i in range(len(sizes) - 1, -1, -1):
        acc += sizes[i]
        if acc >= fraction * total - 1e-9:
            return i
    return 0


def freeze_layers(module: nn.Module, freeze_until: Optional[str] = None,
                  trainable_fraction: Optional[float] = None) -> dict:
    """Set ``requires_grad`` by the two rules; returns what was frozen (for ``train.json``)."""
    params = ordered_parameters(module)
    start = 0
    if freeze_until:
        start = _first_of([layer for layer, _, _ in params], freeze_until)
    if trainable_fraction is not None:
        if not 0 < trainable_fraction <= 1:
            raise InputError(f"--trainable-fraction must be in (0, 1], got {trainable_fraction}")
        start = max(start, _fraction_start([p.numel() for _, _, p in params], trainable_fraction))
    for i, (_, _, p) in enumerate(params):
        p.requires_grad_(i >= start)
    if start > 0:
        freeze_batch_norms(module, lambda bn: bn.affine and not any(p.requires_grad for p in bn.parameters()))
    n_train = sum(p.numel() for _, _, p in params[start:])
    return {"parameters": sum(p.numel() for _, _, p in params), "trainable": n_train,
            "first_trainable": params[start][0] if start < len(params) else None,
            "frozen_tensors": start, "freeze_until": freeze_until, "trainable_fraction": trainable_fraction}
