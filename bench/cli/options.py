"""Every option that more than one command takes, defined once (typer ``Annotated`` aliases).

A command declares ``device: Device = "cpu"``: the flag, its type and its help come from here; the default
stays with the command (``bench train`` defaults to ``auto``, the others to ``cpu``). ``--out`` is one flag
spelling with a help per command (a file for ``embed``, a folder for ``swap``): :func:`out_option`.
Developer scripts (argparse) take the same flags and help through :func:`add_argument`.

Also here: turning option values into objects (``--weights NAME=PATH`` pairs, the cache).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Sequence, Tuple

import typer

from .errors import fail

DEVICE_HELP = "cpu | cuda[:N] (an error without CUDA) | auto (CUDA when present)"
WEIGHTS_HELP = ("NAME=PATH: explicit weight file of model NAME (repeatable): an encoder or estimator of the command "
                "(as given, or a contract's name), or a learned swapper's file (blendswap.pth, latest_net_G.pth, "
                "...; a one-file swapper: its own name)")
DETECTOR_HELP = "auto (dlib-hog, then mtcnn), dlib-hog, dlib-mmod, mtcnn, scrfd (bench list detectors)"
MULTI_FACE_HELP = "several faces in an image: largest | center | all | skip (each choice is a warning row)"
MIN_FACE_HELP = "faces smaller than this many pixels (box side) are dropped, with a reason"
DETECT_BATCH_HELP = ("images per detector call (MTCNN, auto's fallback); default 32 on CUDA, 1 on CPU; "
                     "same-size images are batched")
FRAMES_HELP = "frames read from each video (evenly spaced; each frame a row with its frame index; FF++: per video)"
SEED_HELP = "seed of every random choice of the command (same seed, same output)"

Device = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
Weights = Annotated[List[str], typer.Option("--weights", help=WEIGHTS_HELP)]
Detector = Annotated[str, typer.Option("--detector", "-d", help=DETECTOR_HELP)]
Encoder = Annotated[str, typer.Option("--encoder", "-e", help="registered encoder name (bench list encoders) "
                                      "or contract .toml")]
Seed = Annotated[int, typer.Option("--seed", help=SEED_HELP)]
NoCache = Annotated[bool, typer.Option("--no-cache", help="neither read nor write the detection/embedding cache")]
CACHE_DIR_HELP = ("cache folder (default $IDBENCH_HOME/cache, ~/.cache/idbench/cache; a warm read-only one is used "
                  "read-only)")
CacheDir = Annotated[Optional[Path], typer.Option("--cache-dir", help=CACHE_DIR_HELP)]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bars on stderr")]
Frames = Annotated[int, typer.Option("--frames", help=FRAMES_HELP)]
MultiFace = Annotated[str, typer.Option("--multi-face", help=MULTI_FACE_HELP)]
MinFace = Annotated[int, typer.Option("--min-face", help=MIN_FACE_HELP)]
DetectBatch = Annotated[Optional[int], typer.Option("--detect-batch", help=DETECT_BATCH_HELP)]
Compression = Annotated[str, typer.Option("--compression", help="FF++ compression (c0, c23, c40)")]
KPartners = Annotated[int, typer.Option("--k-partners", help="random candidates for the nearest-landmark partner")]
Inputs = Annotated[List[Path], typer.Argument(help="image files or folders (searched recursively; videos read as "
                                              "--frames frames)")]

SHARED = {"--device": Device, "--weights": Weights, "--detector": Detector, "--encoder": Encoder, "--seed": Seed,
          "--no-cache": NoCache, "--cache-dir": CacheDir, "--progress": Progress, "--frames": Frames,
          "--multi-face": MultiFace, "--min-face": MinFace, "--detect-batch": DetectBatch,
          "--compression": Compression, "--k-partners": KPartners}
OUT_FLAGS = ("--out", "-o")


def out_option(help: str):
    """``--out`` / ``-o``: one spelling for every command; what it names (a file, a folder) is the command's."""
    return Annotated[Path, typer.Option(*OUT_FLAGS, help=help)]


def option_flags(info) -> Tuple[str, ...]:
    """The flags a typer OptionInfo declares (``--progress/--no-progress``: both). In ``Annotated`` form typer takes
    the first flag as ``default``."""
    decls = list(getattr(info, "param_decls", None) or ())
    if isinstance(info.default, str) and info.default.startswith("-"):
        decls.insert(0, info.default)
    return tuple(f for d in decls for f in d.split("/"))


def add_argument(parser: argparse.ArgumentParser, option, **kwargs) -> None:
    """Add a shared option to a developer script's argparse parser: the commands' flags and help, the
    script's default (``add_argument(p, Device, default="cpu")``)."""
    info = option.__metadata__[0]
    flags = option_flags(info)
    if len(flags) == 2 and flags[1] == "--no-" + flags[0][2:]:  # --x/--no-x
        parser.add_argument(flags[0], action=argparse.BooleanOptionalAction, help=info.help, **kwargs)
    else:
        parser.add_argument(*flags, help=info.help, **kwargs)


def check_detect_batch(n: Optional[int]) -> Optional[int]:
    if n is not None and n < 1:
        fail(f"--detect-batch takes a positive number of images, got {n}")
    return n


def open_cache(no_cache: bool, cache_dir: Optional[Path]):
    """The cache of ``--no-cache`` / ``--cache-dir`` (a warm cache that cannot be written is used read-only)."""
    from idbench.cache import Cache

    from idbench.bench.validate import cache_read_only

    return Cache(cache_dir, enabled=not no_cache, read_only=not no_cache and cache_read_only(cache_dir))


def parse_weights(items: List[str], encoders: Sequence[str], swappers: Sequence[str] = ()) -> Dict[str, str]:
    """``--weights NAME=PATH`` (every command): NAME must be one of the command's encoders (as given, or the
    ``name`` of a contract file among them) or a weight name of one of its learned swappers
    (:func:`idbench.swapper.learned.weight_names`, stored under the file's name); anything else is an
    error, never silently unused."""
    from idbench.encoders.contract import is_contract_path, read_contract
    from idbench.swapper.learned import weight_names

    known = {e: read_contract(e).name if is_contract_path(e) else e for e in encoders}
    swapper_names = {n: key for s in swappers for n, key in weight_names(s).items()}
    out: Dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            fail(f"--weights takes NAME=PATH, got {item!r}")
        match = next((e for e, label in known.items() if name in (e, label)), None)
        if match is None and name in swapper_names:
            match = swapper_names[name]
        if match is None:
            from idbench.encoders import list_encoders
            from idbench.errors import UnknownNameError

            uses = [*known, *swapper_names]
            if name not in list_encoders():  # a typo: suggest this command's encoders and swapper files
                what = "encoder or weight file" if swapper_names else "encoder"
                raise UnknownNameError(f"{what} in --weights", name, uses)
            fail(f"--weights names {name}, which this command does not use (it uses {', '.join(uses)})")
        out[match] = path
    return out
