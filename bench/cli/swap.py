"""``bench swap``: write swaps of a folder of images (or FF++ frames) to a folder (:mod:`idbench.bench.swap_folder`)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import typer

from .errors import fail
from .options import CacheDir, Compression, Detector, Device, Frames, NoCache, Seed, Weights, out_option
from .output import echo_drops

NAME = "swap"


def command(
    inputs: List[Path] = typer.Argument(..., help="image files/folders (identity = parent folder name); "
                                                  "for ffpp:<Method>, the FF++ root"),
    swapper: str = typer.Option("blend", "--swapper", "-s", help="blend | inswapper | blendswap | simswap | "
                                                                 "ffpp:<Method> (bench list swappers)"),
    out: out_option("output folder") = ...,
    seed: Seed = 0,
    k: int = typer.Option(100, "--k", help="random other-identity candidates per anchor"),
    mode: str = typer.Option("frame", "--mode", help="blend: frame (full images, the default of every blend) | "
                                                     "crop (112 ArcFace crops, the paper's geometry)"),
    partner: str = typer.Option("nearest-landmark", "--partner", help="nearest-landmark | random"),
    limit: Optional[int] = typer.Option(None, "--limit", help="at most this many swaps (a seeded sample of "
                                                             "anchors; FF++: frames)"),
    region: str = typer.Option("face", "--region", "--mask", help="blend: blended face region: face | inner | "
                                                                  "parsing:<BiSeNet .pth> (idbench.regions)"),
    weights: Weights = [],
    detector: Detector = "auto",
    compression: Compression = "c23",
    frames: Frames = 10,
    sheet_rows: int = typer.Option(40, "--sheet-rows", help="swaps shown on the contact sheet"),
    device: Device = "cpu",
    no_cache: NoCache = False,
    cache_dir: CacheDir = None,
):
    """Write swapped images (full frames, pasted back), masks, a manifest CSV and a contact sheet into --out."""
    from idbench.bench.swap_folder import swap_ffpp, swap_images
    from idbench.bench.validate import check_swappers, validate_command
    from idbench.devices import resolve_device
    from idbench.swapper import SWAPPERS, parse_swapper

    from .options import open_cache, parse_weights

    if mode not in ("crop", "frame"):
        fail(f"--mode must be crop or frame, got {mode!r}")
    validate_command(detector=detector, inputs=inputs, out_dir=out, cache_dir=cache_dir, no_cache=no_cache)
    name, _ = parse_swapper(swapper)  # unknown names raise with suggestions
    kind = SWAPPERS.spec(name).kind
    w = parse_weights(weights, [], [name])
    if kind in ("pseudo", "learned"):
        options = _pair_options(name, kind, mode, region, w)
        check_swappers([name], "folder", w)  # a learned swapper's files: found before any work
        s = swap_images(name, inputs, out, seed=seed, k=k, partner=partner, limit=limit, detector=detector,
                        cache=open_cache(no_cache, cache_dir), device=resolve_device(device),
                        sheet_rows=sheet_rows, progress=True, frames=frames, **options)
    elif kind == "dataset" and name.startswith("ffpp:"):
        if len(inputs) != 1:
            fail("ffpp:<Method> takes exactly one INPUT: the FaceForensics++ root")
        s = swap_ffpp(name, inputs[0], out, compression=compression, frames=frames, limit=limit,
                      sheet_rows=sheet_rows)
    else:
        fail(f"swapper {swapper!r} cannot be run by bench swap (it reads results; use bench run --swappers)")
    typer.echo(f"{s['n_ok']} swaps written, {s['n_failed']} failed -> {s['manifest']}, {s['contact_sheet']}")
    echo_drops(s["failures"], f'{s["manifest"]} rows with status error')


def _pair_options(name: str, kind: str, mode: str, region: str, weights: Dict[str, str]) -> Dict[str, object]:
    """The factory options of a pair swapper from ``bench swap``'s flags (blend's flags are blend's only)."""
    from idbench.errors import InputError

    if kind == "pseudo":
        return {"mode": mode, "region": region}
    if mode != "frame" or region != "face":
        raise InputError(f"--mode and --region are blend's options; {name} swaps its own crop and pastes it back "
                         f"into the full frame")
    from idbench.swapper.learned import factory_weights

    return factory_weights(name, weights)
