"""``bench``: the idbench command line (typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="idbench: benchmark and analysis toolkit for face identity encoders.")


MULTI_FACE_HELP = "several faces in an image: largest | center | all | skip (each choice is a warning row)"
MIN_FACE_HELP = "faces smaller than this many pixels (box side) are dropped, with a reason"
DEVICE_HELP = "cpu | cuda[:N] (an error without CUDA) | auto (CUDA when present)"
DETECT_BATCH_HELP = ("images per detector call (MTCNN, auto's fallback); default 32 on CUDA, 1 on CPU; "
                     "same-size images are batched")


def check_detect_batch(n: Optional[int]) -> Optional[int]:
    if n is not None and n < 1:
        fail(f"--detect-batch takes a positive number of images, got {n}")
    return n


def fail(msg: str, code: int = 2) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


WEIGHTS_HELP = ("NAME=PATH: explicit weight file of encoder NAME (repeatable; NAME as given or a contract's name), "
                "or of a learned swapper: its file's name (blendswap.pth, latest_net_G.pth, ...) or, with one file, "
                "its own name")


def parse_weights(items: List[str], encoders: List[str], swappers: List[str] = ()) -> Dict[str, str]:
    """``--weights NAME=PATH`` (every command): NAME must be one of the command's encoders (as given, or the
    ``name`` of a contract file among them) or a weight name of one of its learned swappers
    (:func:`idbench.swapper.learned.weight_names`, stored under the file's name); anything else is an
    error, never silently unused."""
    from idbench.encoders.contract import is_contract_path, read_contract
    from idbench.errors import IdbenchError
    from idbench.swapper.learned import weight_names

    known = {}
    for e in encoders:
        try:
            known[e] = read_contract(e).name if is_contract_path(e) else e
        except IdbenchError as err:
            fail(str(err))
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
                fail(str(UnknownNameError(f"{what} in --weights", name, uses)))
            fail(f"--weights names {name}, which this command does not use (it uses {', '.join(uses)})")
        out[match] = path
    return out


@app.command("list")
def list_cmd(what: str = typer.Argument(..., help="encoders | detectors | swappers | estimators | datasets | "
                                        "published"),
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
    elif what == "swappers":  # learned swappers also say whether their weight files are present
        from idbench.swapper import SWAPPERS
        from idbench.swapper.learned import weight_places, weight_status

        rows = [(n, SWAPPERS.spec(n).kind, weight_status(n), weight_places(n),
                 "; ".join(f"{p}: {d}" for p, d in SWAPPERS.spec(n).params) or "-",
                 SWAPPERS.spec(n).description) for n in SWAPPERS.names(pattern)]
        _table(("name", "kind", "weights", "weight files go in", "parameters", "description"),
               [(n + (":DIR" if SWAPPERS.spec(n).arg else ""), *rest) for n, *rest in rows])
    elif what == "published":  # the literature's reported numbers, with conventions and sources
        from idbench.bench import published as P

        rows = P.in_sets(P.load_published(), pattern)
        _table(P.LISTING_HEADER, P.listing_rows(rows))
        typer.echo("\n" + "\n".join(P.listing_conventions(rows)))
    elif what == "estimators":  # with where names, units or signs differ from the official outputs
        from idbench.analysis.estimators import ESTIMATORS

        _table(("name", "units", "description", "conventions vs the official output"),
               [(n, s.units or "-", s.description, s.conventions or "-")
                for n, s in ((n, ESTIMATORS.spec(n)) for n in ESTIMATORS.names(pattern))])
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
    fail(f"cannot list {what!r}: choose encoders, detectors, swappers, estimators, datasets or published")


def _table(header, rows) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    for r in [header, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


FRAMES_HELP = "frames read from each video input (evenly spaced; each frame a row with its frame index)"


def _cache(no_cache: bool, cache_dir: Optional[Path]):
    from idbench.cache import Cache

    from idbench.bench.validate import cache_read_only

    return Cache(cache_dir, enabled=not no_cache, read_only=not no_cache and cache_read_only(cache_dir))


@app.command()
def embed(inputs: List[Path] = typer.Argument(..., help="image files or folders (searched recursively)"),
          encoder: str = typer.Option("dlib", "--encoder", "-e", help="registered encoder name or contract .toml"),
          out: Path = typer.Option(..., "--out", "-o", help="output .npz"),
          detector: str = typer.Option("auto", "--detector", "-d", help="auto (dlib-hog, then mtcnn), dlib-hog, dlib-mmod, mtcnn, scrfd"),
          all_faces: bool = typer.Option(False, "--all-faces", help="embed every face (= --multi-face all)"),
          multi_face: str = typer.Option("largest", "--multi-face", help=MULTI_FACE_HELP),
          min_face: int = typer.Option(32, "--min-face", help=MIN_FACE_HELP),
          weights: List[str] = typer.Option([], "--weights", help=WEIGHTS_HELP),
          device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
          detect_batch: Optional[int] = typer.Option(None, "--detect-batch", help=DETECT_BATCH_HELP),
          frames: int = typer.Option(10, "--frames", help=FRAMES_HELP),
          no_cache: bool = typer.Option(False, "--no-cache"),
          cache_dir: Optional[Path] = typer.Option(None, "--cache-dir")):
    """Detect, align and embed faces; write OUT.npz (paths, frame, embeddings, bboxes, landmarks, skipped, warnings)."""
    import io

    import numpy as np

    from idbench.bench import validate as V
    from idbench.cache import write_atomic
    from idbench.escape import field  # one TSV row per skipped file, whatever its name holds
    from idbench.devices import resolve_device
    from idbench.errors import IdbenchError
    from idbench.face_policy import image_warnings
    from idbench.imageio import scan_inputs

    try:
        wpath = parse_weights(weights, [encoder]).get(encoder)
        V.validate_embed(encoder=encoder, detector=detector, inputs=inputs, out=out, weights=wpath,
                         cache_dir=cache_dir, no_cache=no_cache)
        policy = V.face_policy(multi_face, min_face, all_faces)
        V.check_numbers(min_face=min_face, detect_batch=detect_batch)
        device = resolve_device(device)
        from idbench.encoders import create_encoder  # imports torch: after the checks
        from idbench.pipeline import detect_paths, embed_detected

        enc = create_encoder(encoder, weights=wpath, device=device)
        encoder = enc.spec.name  # a contract file's leaderboard name
        listing = scan_inputs(inputs)  # every file under the folders: used, or ignored with a reason
        from idbench.bench.video_inputs import expand_videos

        vids = expand_videos(listing.files, frames)  # a video: --frames evenly spaced frames, a row each
        cache = _cache(no_cache, cache_dir)
        stream = detect_paths(vids.files, detector, cache, device, policy=policy,
                              batch=check_detect_batch(detect_batch))
        table = embed_detected(stream, {encoder: enc}, detector, cache, total=len(vids.files))
        skipped = ([(p, f"ignored: {r}") for p, r in listing.ignored] + vids.failed +
                   [(vids.label(p), r) for p, r in table.skipped])
        warnings = [{**w, "item": vids.label(w["item"])} for w in image_warnings(table.images)]
        buf = io.BytesIO()
        np.savez(buf, paths=np.array([vids.source(p)[0] for p in table.paths], dtype=str),
                 frame=np.array([vids.source(p)[1] for p in table.paths], np.int64),  # -1: a photo
                 embeddings=table.embeddings[encoder],
                 bboxes=table.bboxes, landmarks=table.landmarks, face_index=table.face_index,
                 skipped=np.array([f"{field(p)}\t{field(r)}" for p, r in skipped], dtype=str),
                 warnings=np.array([f"{field(w['item'])}\t{field(w['reason'])}" for w in warnings], dtype=str),
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
    from idbench.bench.drops import summary_lines

    drops = [{"stage": "list", "item": p, "reason": r} for p, r in listing.ignored] + \
        [{"stage": "read", "item": p, "reason": r} for p, r in vids.failed] + \
        [{**f, "item": vids.label(f["item"])} for f in table.failures]
    for line in summary_lines(drops, f'{out} "skipped"'):
        typer.echo(line)


from idbench.bench.steps import analyses_help, default_analyses  # noqa: E402  (the one list of analyses)


@app.command("run")
def run_cmd(
    encoders: str = typer.Option("dlib", "--encoders", help="comma-separated encoder names or contract .toml files"),
    dataset: str = typer.Option("sample", "--dataset", help="sample | folder | lfw | ffpp | bin:PATH (insightface .bin)"),
    root: Optional[Path] = typer.Option(None, "--root", help="dataset root"),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o"),
    swappers: str = typer.Option("", "--swappers", help="e.g. blend,ffpp:FaceShifter,results:DIR"),
    id_encoders: str = typer.Option("", "--id-encoders", help="evaluator encoders for ID retrieval of swaps"),
    swap_estimators: str = typer.Option("", "--swap-estimators", help="KIND=NAME,...: the swap evaluation's pose / "
                                        "expression / gaze estimators (e.g. pose=pose.hopenet)"),
    split: str = typer.Option("test", "--split", help="FF++ split"),
    compression: str = typer.Option("c23", "--compression", help="FF++ compression"),
    frames: int = typer.Option(10, "--frames", help="FF++ frames per video"),
    splits: Optional[Path] = typer.Option(None, "--splits", help="folder with FF++ train/val/test.json"),
    detector: str = typer.Option("auto", "--detector"),
    multi_face: str = typer.Option("largest", "--multi-face", help=MULTI_FACE_HELP),
    min_face: int = typer.Option(32, "--min-face", help=MIN_FACE_HELP),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    detect_batch: Optional[int] = typer.Option(None, "--detect-batch", help=DETECT_BATCH_HELP),
    k_partners: int = typer.Option(100, "--k-partners", help="candidates for the nearest-landmark partner"),
    n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap resamples for intervals"),
    saliency_faces: int = typer.Option(4, "--saliency-faces", help="faces per encoder for saliency (0: off)"),
    analyses: str = typer.Option(",".join(default_analyses()), "--analyses", help=analyses_help()),
    n_perm: int = typer.Option(2000, "--n-perm", help="permutations of the decomposition's paired tests"),
    saliency_region: str = typer.Option("inner", "--saliency-region", help="face region of the saliency ratio: "
                                        "inner | face | parsing:<PATH>"),
    weights: List[str] = typer.Option([], "--weights", help=WEIGHTS_HELP),
    no_cache: bool = typer.Option(False, "--no-cache"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
    flip_test: bool = typer.Option(False, "--flip-test", help="embed each face as the sum of its and its mirror's "
                                   "embeddings (arcface_torch / CurricularFace verification)"),
):
    """Run the benchmark; write leaderboard.csv, results.json and report.html into --out."""
    from idbench.bench import validate as V
    from idbench.errors import IdbenchError

    w = parse_weights(weights, [e for e in encoders.split(",") if e] + [e for e in id_encoders.split(",") if e],
                      [s.strip() for s in swappers.split(",") if s.strip()])
    from idbench.bench.steps import parse_analyses

    try:  # every argument checked before any work starts
        V.check_numbers(seed=seed, n_boot=n_boot, k_partners=k_partners, min_face=min_face, frames=frames,
                        saliency_faces=saliency_faces, n_perm=n_perm, detect_batch=detect_batch)
        enc_names = V.split_names(encoders, "--encoders")
        sw_names = [s for s in swappers.split(",") if s.strip()]
        id_names = V.split_names(id_encoders, "--id-encoders") if id_encoders.strip() else []
        V.validate_run(encoders=enc_names, id_encoders=id_names, detector=detector, swappers=sw_names, weights=w,
                       dataset=dataset, root=root, splits=splits, out=out, cache_dir=cache_dir, no_cache=no_cache)
        V.face_policy(multi_face, min_face)
        wanted = parse_analyses(analyses)
        from idbench.bench.swap_eval import parse_swap_estimators

        swap_est = parse_swap_estimators(swap_estimators)
    except IdbenchError as e:
        fail(str(e))
    from idbench.bench.run import RunConfig, run  # imports torch: after the checks

    if dataset.startswith("bin:") and detector == "auto":  # .bin crops are aligned: use them as they are
        detector = "aligned"

    cfg = RunConfig(dataset=dataset, root=str(root) if root else None,
                    encoders=enc_names, swappers=sw_names, multi_face=multi_face, min_face=min_face,
                    id_encoders=id_names, out=str(out), seed=seed, device=device,
                    detect_batch=check_detect_batch(detect_batch),
                    detector=detector, split=split, compression=compression, frames=frames,
                    splits=str(splits) if splits else None, k_partners=k_partners, n_boot=n_boot,
                    saliency_faces=saliency_faces, saliency_region=saliency_region,
                    cache_dir=str(cache_dir) if cache_dir else None,
                    no_cache=no_cache, weights=w, analyses=wanted, n_perm=n_perm, swap_estimators=swap_est,
                    flip_test=flip_test)
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
                        "verification_auc", "verification_accuracy", "retrieval_top1")
            if c in cols and (c == "name" or any(r.get(c) is not None for r in rows[1:]))]
    _table(show, [[_fmt(r.get(c)) for c in show] for r in rows[1:] if r["kind"] == "encoder"])
    for name, r in results.get("encoders", {}).items():
        if r.get("degenerate"):
            typer.echo(f"warning: {name}: {r['degenerate']}")
    for name, sw in results.get("swappers", {}).items():
        ci = sw.get("intervals") or {}  # each swap metric with its 95% interval
        summary = ", ".join(f"{k} {_fmt(v)}" + (f" [{_fmt(ci[k][0])}, {_fmt(ci[k][1])}]" if ci.get(k) else "")
                            for k, v in sw.get("summary", {}).items())
        typer.echo(f"swapper {name}: {summary}")
    if results.get("decomposition"):
        from idbench.bench.decomposition import summary_lines

        for line in summary_lines(results["decomposition"]):
            typer.echo(line)
    typer.echo(f"{results['dataset']['description']}")
    from idbench.bench.drops import summary_lines

    for line in summary_lines(results["failures"], f'{out / "results.json"} "failures"'):  # every drop, loud
        typer.echo(line)
    typer.echo(f"wrote {out / 'leaderboard.csv'}, {out / 'leaderboard.md'}, {out / 'leaderboard.tex'}, "
               f"{out / 'results.json'}, {out / 'report.html'}")


def _fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))


encoder_app = typer.Typer(no_args_is_help=True, help="Bring your own encoder: read a graph, check a contract.")
app.add_typer(encoder_app, name="encoder")


@encoder_app.command("inspect")
def encoder_inspect(path: Path = typer.Argument(..., help="an ONNX graph, or a contract .toml to check"),
                    device: str = typer.Option("cpu", "--device")):
    """Print what an ONNX graph says about its input and outputs, and a contract template to fill in
    (or, for a contract file, check it against its model and print the resolved contract)."""
    from idbench.errors import IdbenchError

    try:
        if str(path).lower().endswith(".toml"):
            _print_contract(path, device)
        else:
            _print_graph(path, device)
    except IdbenchError as e:
        fail(str(e))


def _print_graph(path: Path, device: str) -> None:
    from idbench.encoders.contract import contract_template
    from idbench.encoders.onnx_backend import output_width, read_graph

    info = read_graph(path, device)
    typer.echo(f"# {path}")
    typer.echo(f"# input  {info.input_name}  {list(info.input_shape)}  {info.input_dtype}  layout "
               f"{info.layout or 'unknown (declare it)'}  size {list(info.input_size)}")
    for name, shape in info.outputs:
        width = output_width(shape)
        typer.echo(f"# output {name}  {list(shape)}  width {width if width else 'symbolic (declare embedding_size)'}")
    typer.echo("# contract template (colour, mean, std and alignment cannot be read from a graph):")
    typer.echo(contract_template(info, path.resolve()), nl=False)


def _print_contract(path: Path, device: str) -> None:
    from idbench.encoders import create_encoder

    enc = create_encoder(path, device=device)
    s = enc.spec
    typer.echo(f"{path}: contract OK ({type(enc).__name__})")
    for key in ("name", "backend", "input_size", "layout", "colour", "mean", "std", "alignment", "output",
                "embedding_size"):
        typer.echo(f"  {key} = {getattr(s, key)!r}")
    typer.echo(f"  weights = {str(enc.weights_path)!r}")


@app.command("report")
def report_cmd(dirs: List[Path] = typer.Argument(..., help="run folders holding results.json"),
               out: Optional[Path] = typer.Option(None, "--out", "-o", help="where to write the merged report"),
               fmt: List[str] = typer.Option([], "--format", "-f",
                                             help="md | tex | html (repeatable; default: all three)"),
               preset: str = typer.Option("", "--preset", help="paper tables to write into OUT/tables/: "
                                          "encoder-bias, verification, faceshifter-swap, blendface-swap (comma list)"),
               columns: str = typer.Option("", "--columns", help="a paper table of these leaderboard columns, in "
                                           "this order (fnmatch patterns allowed: 'pose_l2[*]'): OUT/tables/custom.*"),
               tex_env: str = typer.Option("table", "--tex-env", help="table (one column) or table* (full width)"),
               caption: Optional[str] = typer.Option(None, "--caption", help="caption of the paper tables"),
               label: Optional[str] = typer.Option(None, "--label", help="LaTeX label of the paper table(s)"),
               figures: str = typer.Option("", "--figures", help="vector figures into OUT/figures/: pdf,svg"),
               published: str = typer.Option("", "--published", help="published result sets shown beside the "
                                             "swappers where dataset, protocol and evaluators match (all, "
                                             "ffpp-faceshifter, ...; see bench list published)")):
    """Rebuild a run's report, or merge several runs into one leaderboard and report; paper tables and figures."""
    from idbench.bench.report import FORMATS, merge_results, output_files, write_outputs
    from idbench.bench.report.paper import PRESETS

    formats = [f for item in fmt for f in item.split(",") if f] or list(FORMATS)
    for f in formats:
        if f not in FORMATS:
            fail(f"--format takes {' | '.join(FORMATS)}, got {f!r}")
    presets = [p for p in preset.split(",") if p]
    for p in presets:
        if p not in PRESETS:
            from idbench.errors import UnknownNameError

            fail(str(UnknownNameError("table preset", p, PRESETS)))
    if tex_env not in ("table", "table*"):
        fail(f"--tex-env takes table or table*, got {tex_env!r}")
    from idbench.bench.run_folder import read_results
    from idbench.errors import IdbenchError

    try:  # a received run folder: results.json checked, files only from inside the runs
        if len(dirs) == 1 and out is None:
            results = read_results(dirs[0])
            out = dirs[0]
        else:
            if out is None:
                fail("merging several runs needs --out DIR")
            results = merge_results(dirs, out)
        if published:
            from idbench.bench.published import published_block

            results["published"] = published_block(results, published)
        write_outputs(results, out, formats)
        written = output_files(out, formats)
        if presets or columns:
            from idbench.bench.report.paper import write_paper_tables

            written += write_paper_tables(results, out, presets, [c for c in columns.split(",") if c], tex_env,
                                          caption, label)
        if figures:
            from idbench.bench.report.figures import write_figures

            written += write_figures(results, out, [f for f in figures.split(",") if f])
    except IdbenchError as e:
        fail(str(e))
    typer.echo("wrote " + ", ".join(str(p) for p in written))


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
