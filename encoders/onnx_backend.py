"""Any recognition ONNX graph run by onnxruntime, under a declared :class:`EncoderSpec` contract.

:func:`read_graph` reads what a graph says about itself (input name, layout, size, dtype; every output and
its width); :class:`OnnxEncoder` checks the contract against it (a contradiction is a one-line
:class:`~idbench.errors.WeightsFormatError` naming both values) and runs the graph:

* layout NCHW or NHWC, read from the input shape when one of its axes is 3 and declared otherwise;
* float16 or float32 inputs;
* symbolic dimensions (batch, height, width, embedding width: the contract's value is used and the
  runtime output checked against it);
* several outputs (``spec.output`` names the embedding; required when there is more than one);
* a graph exported with a fixed batch (batches are padded to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from idbench.devices import onnx_providers  # noqa: F401  (one definition, shared with the SCRFD detector)
from idbench.errors import ContractError, WeightsFormatError

from .base import Encoder
from .spec import EncoderSpec

Dim = Union[int, str, None]


def static(dim: Dim) -> Optional[int]:
    """A dimension's value when the graph fixes it, else None (symbolic or unknown)."""
    return dim if isinstance(dim, int) and dim > 0 else None


@dataclass(frozen=True)
class GraphInfo:
    """What a recognition graph says about its input and outputs."""

    input_name: str
    input_shape: Tuple[Dim, ...]
    input_dtype: str  # "float32" | "float16"
    layout: Optional[str]  # None when no axis (or both candidate axes) is 3
    input_size: Tuple[Optional[int], Optional[int]]  # (h, w); None where symbolic
    outputs: Tuple[Tuple[str, Tuple[Dim, ...]], ...]

    @property
    def fixed_batch(self) -> Optional[int]:
        return static(self.input_shape[0])


def output_width(shape: Sequence[Dim]) -> Optional[int]:
    """Values per sample of an output (N x D, or N x D x 1 x 1); None when any of them is symbolic."""
    dims = [static(d) for d in shape[1:]]
    return int(np.prod(dims)) if dims and all(d is not None for d in dims) else None


def _layout_of(shape: Sequence[Dim]) -> Optional[str]:
    c_first, c_last = static(shape[1]) == 3, static(shape[3]) == 3
    if c_first != c_last:
        return "NCHW" if c_first else "NHWC"
    return None


def _session(path: Path, device: str, origin: str = ""):
    import onnxruntime as ort

    hint = f"; get it again from {origin}" if origin else ""
    head = path.read_bytes()[:64] if path.is_file() else b""
    if not head:
        raise WeightsFormatError(f"{path}: empty or unreadable file, not an ONNX model{hint}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = onnx_providers(device)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime's Fail / InvalidGraph / InvalidProtobuf
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise WeightsFormatError(f"{path}: not a readable ONNX model: onnxruntime cannot load it ({first}); "
                                 f"truncated or another format?{hint}") from None


def graph_info(session, path: Path) -> GraphInfo:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise WeightsFormatError(f"{path}: has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                                 f"a recognition model has one image input")
    inp = inputs[0]
    shape = tuple(inp.shape)
    if len(shape) != 4:
        raise WeightsFormatError(f"{path}: input '{inp.name}' has shape {list(shape)}, not a 4-d image batch")
    if inp.type not in ("tensor(float)", "tensor(float16)"):
        raise WeightsFormatError(f"{path}: input '{inp.name}' is {inp.type}; idbench feeds float32 or float16")
    layout = _layout_of(shape)
    hw = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    size = (static(hw[0]), static(hw[1])) if layout else (None, None)
    outs = tuple((o.name, tuple(o.shape)) for o in session.get_outputs())
    return GraphInfo(inp.name, shape, "float16" if inp.type == "tensor(float16)" else "float32", layout, size, outs)


def read_graph(path: Union[str, Path], device: str = "cpu") -> GraphInfo:
    """What ``bench encoder inspect`` prints: the graph's own description of its input and outputs."""
    path = Path(path)
    return graph_info(_session(path, device), path)


def check_contract(spec: EncoderSpec, info: GraphInfo, path: Path) -> Tuple[str, int]:
    """Check ``spec`` against the graph; return (output name, embedding width)."""
    where = f"{path}: contract {spec.name}"
    if info.layout is not None and info.layout != spec.layout:
        raise ContractError(f"{where} says layout {spec.layout} but the graph input '{info.input_name}' "
                                 f"{list(info.input_shape)} is {info.layout}")
    if info.layout is None:  # read the declared layout's axes instead
        c = info.input_shape[3] if spec.layout == "NHWC" else info.input_shape[1]
        if static(c) not in (None, 3):
            raise ContractError(f"{where} says layout {spec.layout} but the graph input "
                                     f"{list(info.input_shape)} has {c} channels on that axis, not 3")
        hw = info.input_shape[1:3] if spec.layout == "NHWC" else info.input_shape[2:4]
        info_size = (static(hw[0]), static(hw[1]))
    else:
        info_size = info.input_size
    for axis, declared, read in zip(("height", "width"), spec.input_size, info_size):
        if read is not None and read != declared:
            raise ContractError(f"{where} says input_size {list(spec.input_size)} but the graph input "
                                     f"'{info.input_name}' {list(info.input_shape)} has {axis} {read}")
    names = [n for n, _ in info.outputs]
    if spec.output:
        if spec.output not in names:
            raise ContractError(f"{where} names output '{spec.output}', the graph has: {', '.join(names)}")
        output = spec.output
    elif len(names) == 1:
        output = names[0]
    else:
        raise ContractError(f"{where}: the graph has {len(names)} outputs ({', '.join(names)}); declare "
                                 f"which one is the embedding with output = \"NAME\"")
    width = output_width(dict(info.outputs)[output])
    if width is not None and width != spec.embedding_size:
        raise ContractError(f"{where} says embedding_size {spec.embedding_size} but the graph output "
                                 f"'{output}' {list(dict(info.outputs)[output])} gives {width} values")
    return output, spec.embedding_size


def preprocess(faces: np.ndarray, spec: EncoderSpec, dtype=np.float32) -> np.ndarray:
    """uint8 RGB N x H x W x 3 -> the network's blob: colour order, (x - mean) / std, layout, dtype."""
    x = faces.astype(np.float32)
    if spec.colour == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=dtype)


class OnnxEncoder(Encoder):
    """A recognition ONNX graph under a checked contract."""

    batch_size = 32

    def __init__(self, spec: EncoderSpec, weights_path: Optional[Path], device: str = "cpu", session=None):
        if weights_path is None:
            raise WeightsFormatError(f"{spec.name} needs a weight file ({spec.weights[0].filename})")
        path = Path(weights_path)
        origin = spec.weights[0].origin if spec.weights else ""
        self.session = session if session is not None else _session(path, device, origin)
        self.graph = graph_info(self.session, path)
        self.output_name, _ = check_contract(spec, self.graph, path)
        self.input_dtype = np.float16 if self.graph.input_dtype == "float16" else np.float32
        self.fixed_batch = self.graph.fixed_batch
        if self.fixed_batch is not None:
            self.batch_size = self.fixed_batch
        super().__init__(spec, path)
        self.device = device
        self.providers = self.session.get_providers()

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        return preprocess(faces, self.spec, self.input_dtype)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        n = len(faces)
        x = self.preprocess(faces)
        if self.fixed_batch is not None and n < self.fixed_batch:  # pad to the exported batch
            x = np.concatenate([x, np.zeros((self.fixed_batch - n,) + x.shape[1:], x.dtype)])
        out = np.asarray(self.session.run([self.output_name], {self.graph.input_name: x})[0], np.float32)
        out = out[:n].reshape(n, -1)
        if out.shape[1] != self.spec.embedding_size:
            raise ContractError(f"{self.spec.name}: output '{self.output_name}' gives {out.shape[1]} values per face, "
                             f"the contract says embedding_size {self.spec.embedding_size}")
        return out


def contract_onnx_encoder(contract, weights_path: Path, device: str = "cpu") -> OnnxEncoder:
    """An :class:`OnnxEncoder` for a :class:`~idbench.encoders.contract.Contract`; what it leaves out
    (layout, embedding width) is read from the graph, and must be declared where the graph does not say."""
    session = _session(weights_path, device, f"the contract {contract.path}")
    info = graph_info(session, weights_path)
    layout = contract.layout or info.layout
    if layout is None:
        raise ContractError(f"{contract.path}: the graph input '{info.input_name}' {list(info.input_shape)} does not "
                            f"show its layout; declare layout = \"NCHW\" or \"NHWC\"")
    size = contract.embedding_size
    if size is None:
        outs = dict(info.outputs)
        name = contract.output or (info.outputs[0][0] if len(info.outputs) == 1 else "")
        size = output_width(outs[name]) if name in outs else None
        if size is None and name in outs:
            raise ContractError(f"{contract.path}: the graph output '{name}' {list(outs[name])} has a symbolic width; "
                                f"declare embedding_size")
        size = size or 1  # output missing or ambiguous: check_contract names the problem
    return OnnxEncoder(contract.spec(layout, size), weights_path, device, session=session)
