"""``bench``: the idbench command line (typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="idbench: benchmark and analysis toolkit for face identity encoders.")


MULTI_FACE_HELP = "several faces in an image: largest | center | all | skip (each choice is a warning row)"
MIN_FACE_HELP = "faces smaller than this many pixels (box side) are dropped, with a reason"


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
          all_faces: bool = typer.Option(False, "--all-faces", help="embed every face (= --multi-face all)"),
          multi_face: str = typer.Option("largest", "--multi-face", help=MULTI_FACE_HELP),
          min_face: int = typer.Option(32, "--min-face", help=MIN_FACE_HELP),
          weights: Optional[Path] = typer.Option(None, "--weights", help="explicit weight file for the encoder"),
          device: str = typer.Option("cpu", "--device"),
          no_cache: bool = typer.Option(False, "--no-cache"),
          cache_dir: Optional[Path] = typer.Option(None, "--cache-dir")):
    """Detect, align and embed faces; write OUT.npz (paths, embeddings, bboxes, landmarks, skipped, warnings)."""
    import io

    import numpy as np

    from idbench.bench import validate as V
    from idbench.cache import write_atomic
    from idbench.errors import IdbenchError
    from idbench.face_policy import image_warnings
    from idbench.imageio import scan_inputs

    try:
        V.validate_embed(encoder=encoder, detector=detector, inputs=inputs, out=out, weights=weights,
                         cache_dir=cache_dir, no_cache=no_cache)
        policy = V.face_policy(multi_face, min_face, all_faces)
        from idbench.encoders import create_encoder  # imports torch: after the checks
        from idbench.encoders.pipeline import detect_file, embed_detected

        enc = create_encoder(encoder, weights=weights, device=device)
        listing = scan_inputs(inputs)  # every file under the folders: used, or ignored with a reason
        cache = _cache(no_cache, cache_dir)
        stream = (detect_file(p, detector, cache=cache, device=device, policy=policy) for p in listing.files)
        table = embed_detected(stream, {encoder: enc}, detector, cache, total=len(listing.files))
        skipped = [(p, f"ignored: {r}") for p, r in listing.ignored] + list(table.skipped)
        warnings = image_warnings(table.images)
        buf = io.BytesIO()
        np.savez(buf, paths=np.array(table.paths, dtype=str), embeddings=table.embeddings[encoder],
                 bboxes=table.bboxes, landmarks=table.landmarks, face_index=table.face_index,
                 skipped=np.array([f"{p}\t{r}" for p, r in skipped], dtype=str),
                 warnings=np.array([f"{w['item']}\t{w['reason']}" for w in warnings], dtype=str),
                 encoder=encoder)
        write_atomic(out, buf.getvalue())
    except IdbenchError as e:
        fail(str(e))
    for p, r in skipped:
        typer.echo(f"skipped {p}: {r}", err=True)
    for w in warnings:
        typer.echo(f"warning {w['item']}: {w['reason']}", err=True)
    typer.echo(f"{len(table.paths)} faces embedded with {encoder}, {len(skipped)} skipped, "
               f"{len(warnings)} warnings -> {out}")


@app.command("run")
def run_cmd(
    encoders: str = typer.Option("dlib", "--encoders", help="comma-separated encoder names"),
    dataset: str = typer.Option("sample", "--dataset", help="sample | folder | lfw | ffpp"),
    root: Optional[Path] = typer.Option(None, "--root", help="dataset root"),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o"),
    swappers: str = typer.Option("", "--swappers", help="e.g. blend,ffpp:FaceShifter,results:DIR"),
    id_encoders: str = typer.Option("", "--id-encoders", help="evaluator encoders for ID retrieval of swaps"),
    split: str = typer.Option("test", "--split", help="FF++ split"),
    compression: str = typer.Option("c23", "--compression", help="FF++ compression"),
    frames: int = typer.Option(10, "--frames", help="FF++ frames per video"),
    splits: Optional[Path] = typer.Option(None, "--splits", help="folder with FF++ train/val/test.json"),
    detector: str = typer.Option("auto", "--detector"),
    multi_face: str = typer.Option("largest", "--multi-face", help=MULTI_FACE_HELP),
    min_face: int = typer.Option(32, "--min-face", help=MIN_FACE_HELP),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    k_partners: int = typer.Option(100, "--k-partners", help="candidates for the nearest-landmark partner"),
    n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap resamples for intervals"),
    saliency_faces: int = typer.Option(4, "--saliency-faces", help="faces per encoder for saliency (0: off)"),
    weights: List[str] = typer.Option([], "--weights", help="NAME=PATH explicit weight file (repeatable)"),
    no_cache: bool = typer.Option(False, "--no-cache"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
):
    """Run the benchmark; write leaderboard.csv, results.json and report.html into --out."""
    from idbench.bench import validate as V
    from idbench.errors import IdbenchError

    w = {}
    for item in weights:
        if "=" not in item:
            fail(f"--weights takes NAME=PATH, got {item!r}")
        k, v = item.split("=", 1)
        w[k] = v
    try:  # every argument checked before any work starts
        enc_names = V.split_names(encoders, "--encoders")
        sw_names = [s for s in swappers.split(",") if s.strip()]
        id_names = V.split_names(id_encoders, "--id-encoders") if id_encoders.strip() else []
        V.validate_run(encoders=enc_names, id_encoders=id_names, detector=detector, swappers=sw_names, weights=w,
                       dataset=dataset, root=root, splits=splits, out=out, cache_dir=cache_dir, no_cache=no_cache)
        V.face_policy(multi_face, min_face)
    except IdbenchError as e:
        fail(str(e))
    from idbench.bench.run import RunConfig, run  # imports torch: after the checks

    cfg = RunConfig(dataset=dataset, root=str(root) if root else None,
                    encoders=enc_names, swappers=sw_names, multi_face=multi_face, min_face=min_face,
                    id_encoders=id_names, out=str(out), seed=seed, device=device,
                    detector=detector, split=split, compression=compression, frames=frames,
                    splits=str(splits) if splits else None, k_partners=k_partners, n_boot=n_boot,
                    saliency_faces=saliency_faces, cache_dir=str(cache_dir) if cache_dir else None,
                    no_cache=no_cache, weights=w)
    try:
        results = run(cfg)
    except IdbenchError as e:
        fail(str(e))
    except OSError as e:  # an output or cache write failed mid-run (disk full, ...)
        from idbench.errors import storage_error

        fail(str(storage_error(e.filename, e)) if e.filename else (e.strerror or str(e)))
    if "rank" in results:  # a torchrun worker: rank 0 reports
        return
    from idbench.bench.report import leaderboard_rows

    cols, rows = leaderboard_rows(results)
    show = [c for c in ("name", "positive_mean", "swapped_mean", "negative_mean", "bias_mean_gap", "bias_auc",
                        "verification_auc", "verification_accuracy", "retrieval_top1") if c in cols]
    _table(show, [[_fmt(r.get(c)) for c in show] for r in rows[1:] if r["kind"] == "encoder"])
    for name, sw in results.get("swappers", {}).items():
        summary = ", ".join(f"{k} {_fmt(v)}" for k, v in sw.get("summary", {}).items())
        typer.echo(f"swapper {name}: {summary}")
    typer.echo(f"{results['dataset']['description']}")
    typer.echo(f"wrote {out / 'leaderboard.csv'}, {out / 'results.json'}, {out / 'report.html'}")


def _fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))


@app.command("report")
def report_cmd(dirs: List[Path] = typer.Argument(..., help="run folders holding results.json"),
               out: Optional[Path] = typer.Option(None, "--out", "-o", help="where to write the merged report")):
    """Rebuild a run's report, or merge several runs into one leaderboard and report."""
    from idbench.bench.report import merge_results, write_outputs
    import json

    for d in dirs:
        if not (d / "results.json").is_file():
            fail(f"{d / 'results.json'} not found")
    if len(dirs) == 1 and out is None:
        results = json.loads((dirs[0] / "results.json").read_text())
        out = dirs[0]
    else:
        if out is None:
            fail("merging several runs needs --out DIR")
        results = merge_results(dirs)
    write_outputs(results, out)
    typer.echo(f"wrote {out / 'leaderboard.csv'}, {out / 'results.json'}, {out / 'report.html'}")


from idbench.bench import train_cli as _train_cli; _train_cli.register(app)


from idbench.bench import swap_cli as _swap_cli; _swap_cli.register(app)  # noqa: E402,E702


from idbench.bench import analysis_cli as _analysis_cli; _analysis_cli.register(app)  # noqa: E402,E702


def main() -> None:  # console script entry point
    """Any idbench error or storage failure that escapes a command is one line and exit status 2."""
    from idbench.errors import IdbenchError, storage_error

    try:
        app()
    except IdbenchError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # e.g. the disk filled up while the report was written
        msg = storage_error(e.filename, e) if e.filename else (e.strerror or str(e))
        typer.echo(f"error: {msg}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
