"""``bench estimate``: head pose, gaze or expression of every face, one CSV row per face
(:func:`idbench.bench.per_face.estimate_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .errors import fail
from .options import Detector, Device, Frames, Inputs, Weights, out_option
from .output import echo_drops

NAME = "estimate"


def command(
    inputs: Inputs,
    estimator: str = typer.Option(..., "--estimator", "-e",
                                  help="pose | gaze | expression | shape (defaults) or a name from "
                                       "'bench list estimators' (pose.hopenet, gaze.l2cs, ...)"),
    out: out_option("CSV file to write") = ...,
    weights: Weights = [],
    detector: Detector = "auto",
    largest: bool = typer.Option(False, "--largest", help="only the largest face of each image"),
    device: Device = "cpu",
    frames: Frames = 10,
):
    """Estimate head pose, gaze or expression of every face; one CSV row per face (per video frame)."""
    from idbench.bench.per_face import estimate_files
    from idbench.bench.validate import validate_command
    from idbench.devices import resolve_device

    validate_command(detector=detector, inputs=inputs, out_file=out)
    s = estimate_files(inputs, estimator, out, weights=estimator_weights(weights, estimator),
                       device=resolve_device(device), detector=detector, largest=largest, frames=frames)
    typer.echo(f"{s['estimator']}: {s['estimated']} of {s['faces']} faces in {s['images']} images -> {s['csv']}")
    echo_drops(s["failures"], f"{s['csv']} status column")


def estimator_weights(items: List[str], estimator: str) -> Optional[str]:
    """The estimator's weight file from ``--weights``: ``NAME=PATH`` (NAME the estimator as given or its
    registered name) or, the command having one model, a bare ``PATH``."""
    from idbench.analysis.estimators import get_spec

    if len(items) > 1:
        fail(f"--weights: bench estimate runs one estimator, got {len(items)} weight files")
    if not items:
        return None
    name, sep, path = items[0].partition("=")
    if not sep or Path(items[0]).is_file():
        return items[0]
    if name not in (estimator, get_spec(estimator).name) or not path:
        fail(f"--weights names {name!r}, which this command does not use (it uses {estimator})")
    return path
