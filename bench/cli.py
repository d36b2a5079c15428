"""``bench``: the idbench command line (typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="idbench: benchmark and analysis toolkit for face identity encoders.")


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


@app.command("list")
def list_cmd(what: str = typer.Argument(..., help="encoders | detectors | swappers | estimators | datasets"),
             pattern: Optional[str] = typer.Argument(None, help="fnmatch filter, e.g. 'arcface.*'")):
    """List registered components (encoders with a column saying whether their weights are present)."""
    if what == "encoders":
        from idbench.encoders import get_spec, list_encoders, weights_status

        rows = []
        for name in list_encoders(pattern):
            s = get_spec(name)
            rows.append((name, s.backend, f"{s.input_size[0]}x{s.input_size[1]}", s.alignment, s.colour,
                         str(s.embedding_size), weights_status(name), s.weights[0].filename if s.weights else "-"))
        header = ("name", "backend", "input", "alignment", "colour", "dim", "weights", "file")
        _table(header, rows)
    elif what == "detectors":
        from idbench.detectors import DETECTORS

        _table(("name", "description"), [(n, DETECTORS.spec(n).description) for n in DETECTORS.names(pattern)])
    else:
        registry = _other_registry(what)
        _table(("name", "description"), [(n, getattr(registry.spec(n), "description", "")) for n in
                                         registry.names(pattern)])


def _other_registry(what: str):
    if what == "swappers":
        from idbench.swapper import SWAPPERS

        return SWAPPERS
    if what == "estimators":
        from idbench.analysis.estimators import ESTIMATORS

        return ESTIMATORS
    if what == "datasets":
        from idbench.bench.datasets import DATASETS

        return DATASETS
    fail(f"cannot list {what!r}: choose encoders, detectors, swappers, estimators or datasets")


def _table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    for r in [header, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def _cache(no_cache: bool, cache_dir: Optional[Path]):
    from idbench.cache import Cache

    return Cache(cache_dir, enabled=not no_cache)


@app.command()
def embed(inputs: List[Path] = typer.Argument(..., help="image files or folders (searched recursively)"),
          encoder: str = typer.Option("dlib", "--encoder", "-e", help="registered encoder name"),
          out: Path = typer.Option(..., "--out", "-o", help="output .npz"),
          detector: str = typer.Option("auto", "--detector", "-d", help="auto (dlib-hog, then mtcnn), dlib-hog, dlib-mmod, mtcnn, scrfd"),
          all_faces: bool = typer.Option(False, "--all-faces", help="embed every face, not only the largest"),
          weights: Optional[Path] = typer.Option(None, "--weights", help="explicit weight file for the encoder"),
          device: str = typer.Option("cpu", "--device"),
          no_cache: bool = typer.Option(False, "--no-cache"),
          cache_dir: Optional[Path] = typer.Option(None, "--cache-dir")):
    """Detect, align and embed faces; write OUT.npz (paths, embeddings, bboxes, landmarks, skipped)."""
    import numpy as np

    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import embed_files
    from idbench.errors import IdbenchError

    try:
        enc = create_encoder(encoder, weights=weights, device=device)
        table = embed_files(inputs, {encoder: enc}, detector=detector, all_faces=all_faces,
                            cache=_cache(no_cache, cache_dir), device=device)
    except IdbenchError as e:
        fail(str(e))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array(table.paths, dtype=str), embeddings=table.embeddings[encoder],
             bboxes=table.bboxes, landmarks=table.landmarks, face_index=table.face_index,
             skipped=np.array([f"{p}\t{r}" for p, r in table.skipped], dtype=str), encoder=encoder)
    for p, r in table.skipped:
        typer.echo(f"skipped {p}: {r}", err=True)
    typer.echo(f"{len(table.paths)} faces embedded with {encoder}, {len(table.skipped)} skipped -> {out}")


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
