"""An ONNX recognition graph as a trainable torch module (``onnx2torch``), so any ONNX encoder can be fine-tuned.

:func:`onnx_to_torch` returns a ``torch.fx.GraphModule`` that takes the network's blob in **NCHW** (colour order,
mean and std already applied, as :class:`idbench.bench.training.Preprocessed` does) and returns N x D float32:

* **one output**: the graph is cut to the contract's ``output`` before conversion, so the other heads of a
  multi-output model (faceres' age and gender) are neither computed nor trained;
* **layout**: for an NHWC graph (TensorFlow exports) a ``permute`` to NHWC is the module's first node;
* **weights held as constants become parameters**: onnx2torch keeps every graph initializer that is not a
  Conv/Gemm/BatchNorm weight as a buffer, yet those are weights too (MatMul embedding layers, PReLU slopes,
  BatchNorm folded into Mul/Add). Every floating-point initializer with more than one element becomes an
  ``nn.Parameter``; scalars (clip bounds, in-graph pixel scaling), integer tensors (shapes, pads) and the running
  statistics of batch norms stay fixed;
* **batch-norm statistics are frozen** (:mod:`idbench.encoders.frozen_bn`): scale and shift train, the running mean
  and variance of the pretrained network are kept and used in training as at evaluation.

Before any training the module reproduces onnxruntime's outputs (``tests/test_onnx_torch.py``: the two real ONNX
encoders of ``../shared/models`` within 1e-4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Set, Union

import torch
from torch import fx, nn

from idbench.errors import WeightsFormatError

from .frozen_bn import freeze_batch_norms


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:200]


def single_output_model(model, output: str):
    """``model`` cut to the nodes that compute ``output`` from the graph input (unchanged when it is the only one)."""
    import onnx.utils

    outputs = [o.name for o in model.graph.output]
    if outputs == [output] or not output:
        return model
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    return onnx.utils.Extractor(model).extract_model(inputs, [output])


class _FrozenStatsBatchNorm(nn.Module):
    """onnx2torch's ``OnnxBatchNorm`` (a BatchNormalization whose inputs are not all constants), in inference mode."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, x, weight, bias, running_mean, running_var):
        return torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, False, 0.0, self.eps)


def _freeze_graph_batch_norms(gm: fx.GraphModule) -> Set[str]:
    """Freeze every batch norm; return the constants that are running statistics (they must stay buffers)."""
    from onnx2torch.node_converters.batch_norm import OnnxBatchNorm

    freeze_batch_norms(gm)
    statistics: Set[str] = set()
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), OnnxBatchNorm):
            gm.add_submodule(node.target, _FrozenStatsBatchNorm(gm.get_submodule(node.target).epsilon))
            statistics |= {a.target for a in node.args[3:5] if isinstance(a, fx.Node) and a.op == "get_attr"}
    return statistics


def constants_to_parameters(gm: fx.GraphModule, keep: Set[str] = frozenset()) -> int:
    """Turn the floating-point initializers with more than one element into parameters; returns their count."""
    if not hasattr(gm, "initializers"):  # every weight went into a Conv/Gemm/BatchNorm module
        return 0
    container = gm.get_submodule("initializers")
    n = 0
    for name, buf in list(container.named_buffers(recurse=False)):
        if buf.is_floating_point() and buf.numel() > 1 and f"initializers.{name}" not in keep:
            delattr(container, name)
            container.register_parameter(name, nn.Parameter(buf.detach().clone()))
            n += 1
    return n


def _nchw_input_flat_output(gm: fx.GraphModule, layout: str) -> None:
    """Make the module take NCHW (a permute for NHWC graphs) and return N x D (a flatten of N x D x 1 x 1)."""
    graph = gm.graph
    placeholder = next(n for n in graph.nodes if n.op == "placeholder")
    if layout == "NHWC":
        with graph.inserting_after(placeholder):
            nhwc = graph.call_method("permute", (placeholder, 0, 2, 3, 1))
        placeholder.replace_all_uses_with(nhwc, delete_user_cb=lambda user: user is not nhwc)
    out = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(out):
        flat = graph.call_function(torch.flatten, (out.args[0], 1))
    out.args = (flat,)
    graph.lint()
    gm.recompile()


def onnx_to_torch(path: Union[str, Path], layout: str = "NCHW", output: str = "") -> fx.GraphModule:
    """The ONNX graph at ``path`` as a trainable module (see the module docstring); ``output`` names the embedding
    (required when the graph has several outputs), ``layout`` is the graph input's (the contract's)."""
    import onnx
    from onnx2torch import convert

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError and friends
        raise WeightsFormatError(f"{path}: not a readable ONNX model ({_first_line(e)})") from None
    outputs = [o.name for o in model.graph.output]
    if output and output not in outputs:
        raise WeightsFormatError(f"{path}: has no output '{output}' (outputs: {', '.join(outputs)})")
    if not output and len(outputs) != 1:
        raise WeightsFormatError(f"{path}: has {len(outputs)} outputs ({', '.join(outputs)}); name the embedding")
    try:
        gm = convert(single_output_model(model, output))
    except Exception as e:  # noqa: BLE001 - NotImplementedError for an operator onnx2torch has no converter for
        raise WeightsFormatError(f"{path}: onnx2torch cannot convert this graph ({_first_line(e)}); fine-tune a "
                                 f"registered torch architecture or a TorchScript contract instead") from None
    constants_to_parameters(gm, keep=_freeze_graph_batch_norms(gm))
    _nchw_input_flat_output(gm, layout)
    return gm.float()
