"""``bench prepare``: detect faces once and write aligned crops for ``bench train`` (:mod:`.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import CacheDir, Detector, Device, NoCache, Progress, Seed, open_cache, out_option

NAME = "prepare"


def command(
    input_folder: Path = typer.Argument(..., help="folder with one sub-folder of images per identity"),
    out: out_option("output DATA_DIR") = ...,
    alignments: str = typer.Option("arcface112,dlib150", "--alignments",
                                   help="comma-separated: arcface112 (112 ArcFace crop), dlib150 (dlib chip)"),
    split_identities: Optional[float] = typer.Option(
        None, "--split-identities", help="hold out this fraction of identities (writes train_/heldout_identities.txt)"),
    seed: Seed = 0,
    detector: Detector = "auto",
    device: Device = "cpu",
    no_cache: NoCache = False,
    cache_dir: CacheDir = None,
    progress: Progress = True,
):
    """Detect faces once, write aligned crops + 68 landmarks in crop coordinates + index.csv per alignment."""
    from idbench.bench.prepare import prepare
    from idbench.bench.validate import validate_command
    from idbench.devices import resolve_device

    validate_command(detector=detector, inputs=[input_folder], out_dir=out, cache_dir=cache_dir, no_cache=no_cache)
    s = prepare(input_folder, out, [a for a in alignments.split(",") if a], detector,
                open_cache(no_cache, cache_dir), split_identities, seed, progress, resolve_device(device))
    for item in s["skipped"]:
        typer.echo(f"skipped {item['path']}: {item['reason']}", err=True)
    split = s.get("split")
    extra = f"; {split['train']} train / {split['heldout']} held-out identities" if split else ""
    typer.echo(f"{s['faces']} faces of {s['identities']} identities ({len(s['skipped'])} images skipped)"
               f"{extra} -> {out}")
