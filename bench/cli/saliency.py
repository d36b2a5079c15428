"""``bench saliency``: saliency maps of identity similarity and their inner-face ratios
(:func:`idbench.bench.per_face.saliency_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import Detector, Device, Encoder, Frames, Inputs, Weights, out_option
from .output import echo_drops

NAME = "saliency"


def command(
    inputs: Inputs,
    encoder: Encoder = ...,
    out: out_option("output folder") = ...,
    method: str = typer.Option("occlusion", "--method", "-m", help="occlusion | gradient | integrated | gradcam "
                                                                   "(all but occlusion need a torch encoder)"),
    reference: Optional[Path] = typer.Option(None, "--reference", help="reference photo (default: each crop "
                                                                       "against its own embedding)"),
    weights: Weights = [],
    detector: Detector = "auto",
    device: Device = "cpu",
    region: str = typer.Option("inner", "--region", help="face region of the ratio: inner | face | "
                                                          "parsing:<BiSeNet .pth> (idbench.regions)"),
    frames: Frames = 10,
):
    """Saliency maps of identity similarity: overlay PNGs and a CSV of inner-face ratios."""
    from idbench.bench.per_face import saliency_files
    from idbench.bench.validate import validate_command
    from idbench.devices import resolve_device

    from .options import parse_weights

    validate_command(detector=detector, inputs=[*inputs, *([reference] if reference else [])], out_dir=out,
                     encoders=[encoder])
    s = saliency_files(inputs, encoder, out, method=method, device=resolve_device(device),
                       weights=parse_weights(weights, [encoder]).get(encoder),
                       detector=detector, reference=reference, region=region, frames=frames)
    mean = "n/a" if s["inner_ratio_mean"] is None else f"{s['inner_ratio_mean']:.3f}"
    typer.echo(f"{s['encoder']} {s['method']}: {s['maps']} maps of {s['images']} images, "
               f"mean inner-face ratio {mean} -> {s['csv']}")
    echo_drops(s["failures"], f"{s['csv']} status column")
