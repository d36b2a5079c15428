"""Encoder contract files: a TOML file that declares how to run a third-party ONNX / TorchScript encoder.

Accepted anywhere an encoder name is (``create_encoder("path/model.toml")``, ``--encoders``,
``--id-encoders``, ``bench embed --encoder``). Keys mirror :class:`~idbench.encoders.spec.EncoderSpec`::

    name = "mobileface"                 # how it appears in leaderboards (required)
    weights = "mobileface.onnx"         # relative to this file, or absolute (required)
    backend = "onnx"                    # onnx | torchscript; default: from the weights' suffix
    input_size = [112, 112]             # [height, width] (required)
    layout = "NHWC"                     # NCHW | NHWC; default: read from the graph
    colour = "RGB"                      # RGB | BGR (required)
    mean = [0, 0, 0]                    # on 0..255 pixels, network channel order; a number for all three
    std = [1, 1, 1]                     # (required, both)
    alignment = "arcface112"            # arcface112 | dlib150 | mtcnn160 | ffhq256 | none (required)
    output = "batchnorm0/add_1:0"       # graph output; required when there are several
    embedding_size = 256                # checked against the graph when static, used when symbolic
    # optional: l2_normalised, licence, paper, description, sha256

What the graph says (layout, input size, output width) is read and checked against what is declared;
a contradiction is a one-line :class:`~idbench.errors.ContractError` naming both values. No heuristic
ever overrides a declared value. ``arcface112`` at another size is insightface's ``norm_crop`` template
scaled (multiples of 112, or of 128 with its 8-px shift); a width below the height (SphereFace's
112 x 96) is the centre columns of the square crop.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from idbench.errors import ContractError, WeightsNotFoundError
from idbench.weights import WeightSource, check_file

from .spec import ALIGNMENTS, COLOURS, LAYOUTS, EncoderSpec

REQUIRED = ("name", "weights", "input_size", "colour", "mean", "std", "alignment")
OPTIONAL = ("backend", "layout", "output", "embedding_size", "l2_normalised", "licence", "paper", "description",
            "sha256")
BACKENDS = ("onnx", "torchscript")
_SUFFIX_BACKEND = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
                   ".torchscript": "torchscript", ".jit": "torchscript"}


def is_contract_path(name: Union[str, Path]) -> bool:
    """Whether an encoder name is a contract file (by its ``.toml`` suffix)."""
    return str(name).lower().endswith(".toml")


@dataclass(frozen=True)
class Contract:
    """A parsed contract file; ``layout`` / ``embedding_size`` are None where left to the graph."""

    path: Path
    name: str
    weights: Path
    backend: str
    input_size: Tuple[int, int]
    colour: str
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    alignment: str
    layout: Optional[str] = None
    output: str = ""
    embedding_size: Optional[int] = None
    l2_normalised: bool = False
    licence: str = ""
    paper: str = ""
    description: str = ""
    sha256: Optional[str] = None

    def spec(self, layout: str, embedding_size: int) -> EncoderSpec:
        # the origin names no path: the cache key (spec + weights sha256) is the same wherever the contract lies
        source = WeightSource(self.weights.name, f"the weights = entry of contract {self.name}", sha256=self.sha256)
        return EncoderSpec(
            name=self.name, input_size=self.input_size, alignment=self.alignment, colour=self.colour,
            mean=self.mean, std=self.std, embedding_size=embedding_size, l2_normalised=self.l2_normalised,
            backend=self.backend, weights=(source,), licence=self.licence, paper=self.paper,
            description=self.description or f"contract {self.path.name}", layout=layout, output=self.output)


# sensible bounds (a contract file is untrusted input): crops up to 1024 px a side (an input_size of 112000
# asked for 37 GB), mean/std on 0..255 pixels, finite; names without control characters
MAX_INPUT_SIDE = 1024
MIN_INPUT_SIDE = 1
CHANNEL_RANGE = {"mean": (-255.0, 510.0), "std": (1e-4, 1e4)}
MAX_EMBEDDING = 65536


def _err(path: Path, msg: str) -> ContractError:
    return ContractError(f"{path}: {msg}")


def _channels(path: Path, key: str, value: Any) -> Tuple[float, float, float]:
    vals = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if not isinstance(vals, list) or len(vals) not in (1, 3) or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        raise _err(path, f"{key} must be a number or a list of 3 numbers, got {value!r}")
    vals = [float(v) for v in vals] * (3 if len(vals) == 1 else 1)
    if key == "std" and any(v == 0 for v in vals):
        raise _err(path, f"std must not contain 0, got {value!r}")
    lo, hi = CHANNEL_RANGE[key]
    if not all(math.isfinite(v) and lo <= v <= hi for v in vals):  # NaN/inf, or not on 0..255 pixels
        raise _err(path, f"{key} must be finite numbers in [{lo:g}, {hi:g}] (on 0..255 pixels), got {value!r}")
    return tuple(vals)  # type: ignore[return-value]


def _choice(path: Path, key: str, value: Any, allowed: Tuple[str, ...]) -> str:
    if value not in allowed:
        raise _err(path, f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _input_size(path: Path, value: Any, alignment: str) -> Tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise _err(path, f"input_size must be [height, width] (two positive integers), got {value!r}")
    if not all(MIN_INPUT_SIDE <= v <= MAX_INPUT_SIDE for v in value):
        raise _err(path, f"input_size sides must be {MIN_INPUT_SIDE}..{MAX_INPUT_SIDE} px, got {value!r}")
    h, w = value
    if alignment == "arcface112":
        if not (h % 112 == 0 or h % 128 == 0):
            raise _err(path, f"alignment arcface112 scales insightface's template to multiples of 112 or 128; "
                             f"input_size height {h} is neither")
        if w > h:
            raise _err(path, f"alignment arcface112 takes input_size width <= height, got {value!r}")
    elif h != w:
        raise _err(path, f"alignment {alignment} makes square crops; input_size {value!r} is not square")
    return h, w


def read_contract(path: Union[str, Path]) -> Contract:
    """Parse and validate a contract file (no model is opened)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ContractError(f"contract file {path} does not exist")
    try:
        data: Dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _err(path, f"not valid TOML ({str(e).splitlines()[0]})") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise _err(path, f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _err(path, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(known: {', '.join(REQUIRED + OPTIONAL)})")
    for key in ("name", "weights", "output", "licence", "paper", "description", "sha256"):
        if key in data and not isinstance(data[key], str):
            raise _err(path, f"{key} must be a string, got {data[key]!r}")
    if not data["name"].strip():
        raise _err(path, "name must not be empty")
    from idbench.escape import has_control, shown

    if has_control(data["name"]) or len(data["name"]) > 200:
        raise _err(path, f"name must be one line of at most 200 characters without control characters (TAB, "
                         f"newline, NUL), got {shown(data['name'][:60])!r}")
    alignment = _choice(path, "alignment", data["alignment"], ALIGNMENTS)
    weights = Path(data["weights"]).expanduser()
    weights = (weights if weights.is_absolute() else (path.parent / weights)).resolve()
    backend = data.get("backend") or _SUFFIX_BACKEND.get(weights.suffix.lower())
    if backend is None:
        raise _err(path, f"cannot tell the backend from the weights suffix {weights.suffix!r}; "
                         f"declare backend = \"onnx\" or \"torchscript\"")
    size = data.get("embedding_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and 0 < size <= MAX_EMBEDDING):
        raise _err(path, f"embedding_size must be a positive integer (1..{MAX_EMBEDDING}), got {size!r}")
    if not isinstance(data.get("l2_normalised", False), bool):
        raise _err(path, f"l2_normalised must be true or false, got {data['l2_normalised']!r}")
    return Contract(
        path=path, name=data["name"].strip(), weights=weights, backend=_choice(path, "backend", backend, BACKENDS),
        input_size=_input_size(path, data["input_size"], alignment),
        colour=_choice(path, "colour", data["colour"], COLOURS), mean=_channels(path, "mean", data["mean"]),
        std=_channels(path, "std", data["std"]), alignment=alignment,
        layout=_choice(path, "layout", data["layout"], LAYOUTS) if "layout" in data else None,
        output=data.get("output", ""), embedding_size=size, l2_normalised=data.get("l2_normalised", False),
        licence=data.get("licence", ""), paper=data.get("paper", ""), description=data.get("description", ""),
        sha256=(data.get("sha256") or "").lower() or None)


def _weights_file(contract: Contract, explicit: Optional[Union[str, Path]]) -> Path:
    path = Path(explicit).expanduser() if explicit is not None else contract.weights
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file {path} of contract {contract.path} does not exist; put the model "
                                   f"there or change weights = in the contract")
    check_file(path, WeightSource(path.name, f"the contract {contract.path}", sha256=contract.sha256))
    return path


def create_contract_encoder(path: Union[str, Path], weights: Optional[Union[str, Path]] = None,
                            device: str = "cpu"):
    """Build the encoder a contract file describes (``weights`` overrides the contract's file)."""
    contract = read_contract(path)
    wpath = _weights_file(contract, weights)
    if contract.backend == "onnx":
        from .onnx_backend import contract_onnx_encoder

        return contract_onnx_encoder(contract, wpath, device)
    from .torchscript_backend import contract_torchscript_encoder

    return contract_torchscript_encoder(contract, wpath, device)


def contract_template(info, weights: Path) -> str:
    """A contract to fill in for a graph ``info`` (:class:`~idbench.encoders.onnx_backend.GraphInfo`)."""
    from .onnx_backend import output_width

    h, w = info.input_size
    outs = [n for n, _ in info.outputs]
    width = output_width(dict(info.outputs)[outs[0]]) if len(outs) == 1 else None
    lines = [
        f'name = "{weights.stem}"',
        f'weights = "{weights}"',
        'backend = "onnx"',
        f"input_size = [{h or 'FILL_IN'}, {w or 'FILL_IN'}]",
        f'layout = "{info.layout}"' if info.layout else 'layout = "FILL_IN"  # NCHW or NHWC: not readable from the graph',
        'colour = "FILL_IN"  # RGB or BGR: what the network was trained on',
        "mean = [FILL_IN, FILL_IN, FILL_IN]  # on 0..255 pixels, e.g. [127.5, 127.5, 127.5]; [0, 0, 0] if the graph scales",
        "std = [FILL_IN, FILL_IN, FILL_IN]   # e.g. [127.5, 127.5, 127.5] or [128, 128, 128]; [1, 1, 1] for raw pixels",
        f'alignment = "{"arcface112" if (h or 0) % 112 == 0 else "FILL_IN"}"  # one of {", ".join(ALIGNMENTS)}',
    ]
    if len(outs) == 1:
        lines.append(f'output = "{outs[0]}"')
    else:
        lines.append(f'output = "FILL_IN"  # one of: {", ".join(outs)}')
    if width:
        lines.append(f"embedding_size = {width}")
    elif len(outs) == 1:
        lines.append("embedding_size = FILL_IN  # the output width is symbolic")
    else:
        widths = ", ".join(f"{n}: {output_width(s) or 'symbolic'}" for n, s in info.outputs)
        lines.append(f"embedding_size = FILL_IN  # the chosen output's width ({widths})")
    return "\n".join(lines) + "\n"
