"""``bench run``: the benchmark; every argument is checked before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import (CacheDir, Compression, DetectBatch, Detector, Device, Frames, KPartners, MinFace, MultiFace,
                      NoCache, Seed, Weights, check_detect_batch, out_option, parse_weights)
from .output import echo_drops, fmt, table

NAME = "run"
ANALYSES = ("bias", "verification", "retrieval", "decomposition")


def command(
    encoders: str = typer.Option("dlib", "--encoders", help="comma-separated encoder names or contract .toml files"),
    dataset: str = typer.Option("sample", "--dataset", help="sample | folder | lfw | ffpp | bin:PATH (insightface .bin)"),
    root: Optional[Path] = typer.Option(None, "--root", help="dataset root"),
    out: out_option("run folder: leaderboard.csv/.md/.tex, results.json, report.html") = Path("runs/latest"),
    swappers: str = typer.Option("", "--swappers", help="e.g. blend,ffpp:FaceShifter,results:DIR"),
    id_encoders: str = typer.Option("", "--id-encoders", help="evaluator encoders for ID retrieval of swaps"),
    swap_estimators: str = typer.Option("", "--swap-estimators", help="KIND=NAME,...: the swap evaluation's pose / "
                                        "expression / gaze estimators (e.g. pose=pose.hopenet)"),
    split: str = typer.Option("test", "--split", help="FF++ split"),
    compression: Compression = "c23",
    frames: Frames = 10,
    splits: Optional[Path] = typer.Option(None, "--splits", help="folder with FF++ train/val/test.json"),
    detector: Detector = "auto",
    multi_face: MultiFace = "largest",
    min_face: MinFace = 32,
    seed: Seed = 0,
    device: Device = "cpu",
    detect_batch: DetectBatch = None,
    k_partners: KPartners = 100,
    n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap resamples for intervals"),
    saliency_faces: int = typer.Option(4, "--saliency-faces", help="faces per encoder for saliency (0: off)"),
    analyses: str = typer.Option("bias,verification,retrieval", "--analyses",
                                 help="comma list of bias, verification, retrieval, decomposition"),
    n_perm: int = typer.Option(2000, "--n-perm", help="permutations of the decomposition's paired tests"),
    saliency_region: str = typer.Option("inner", "--saliency-region", help="face region of the saliency ratio: "
                                        "inner | face | parsing:<PATH>"),
    weights: Weights = [],
    no_cache: NoCache = False,
    cache_dir: CacheDir = None,
    flip_test: bool = typer.Option(False, "--flip-test", help="embed each face as the sum of its and its mirror's "
                                   "embeddings (arcface_torch / CurricularFace verification)"),
):
    """Run the benchmark; write leaderboard.csv, results.json and report.html into --out."""
    from idbench.bench import validate as V
    from idbench.bench.decomposition import parse_analyses
    from idbench.bench.swap_eval import parse_swap_estimators

    w = parse_weights(weights, [e for e in encoders.split(",") if e] + [e for e in id_encoders.split(",") if e],
                      [s.strip() for s in swappers.split(",") if s.strip()])
    V.check_numbers(seed=seed, n_boot=n_boot, k_partners=k_partners, min_face=min_face, frames=frames,
                    saliency_faces=saliency_faces, n_perm=n_perm, detect_batch=detect_batch)
    enc_names = V.split_names(encoders, "--encoders")
    sw_names = [s for s in swappers.split(",") if s.strip()]
    id_names = V.split_names(id_encoders, "--id-encoders") if id_encoders.strip() else []
    V.validate_run(encoders=enc_names, id_encoders=id_names, detector=detector, swappers=sw_names, weights=w,
                   dataset=dataset, root=root, splits=splits, out=out, cache_dir=cache_dir, no_cache=no_cache)
    V.face_policy(multi_face, min_face)
    wanted = parse_analyses(analyses, ANALYSES)
    swap_est = parse_swap_estimators(swap_estimators)
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
    results = run(cfg)
    if "rank" in results:  # a torchrun worker: rank 0 reports
        return
    _summary(results, out)


def _summary(results: dict, out: Path) -> None:
    """The leaderboard's main columns, each swapper's metrics with their intervals, and every drop."""
    from idbench.bench.report import leaderboard_rows

    cols, rows = leaderboard_rows(results)
    show = [c for c in ("name", "positive_mean", "swapped_mean", "negative_mean", "bias_mean_gap", "bias_auc",
                        "verification_auc", "verification_accuracy", "retrieval_top1")
            if c in cols and (c == "name" or any(r.get(c) is not None for r in rows[1:]))]
    table(show, [[fmt(r.get(c)) for c in show] for r in rows[1:] if r["kind"] == "encoder"])
    for name, r in results.get("encoders", {}).items():
        if r.get("degenerate"):
            typer.echo(f"warning: {name}: {r['degenerate']}")
    for name, sw in results.get("swappers", {}).items():
        ci = sw.get("intervals") or {}  # each swap metric with its 95% interval
        summary = ", ".join(f"{k} {fmt(v)}" + (f" [{fmt(ci[k][0])}, {fmt(ci[k][1])}]" if ci.get(k) else "")
                            for k, v in sw.get("summary", {}).items())
        typer.echo(f"swapper {name}: {summary}")
    if results.get("decomposition"):
        from idbench.bench.decomposition import summary_lines

        for line in summary_lines(results["decomposition"]):
            typer.echo(line)
    typer.echo(f"{results['dataset']['description']}")
    echo_drops(results["failures"], f'{out / "results.json"} "failures"')  # every drop, loud
    typer.echo(f"wrote {out / 'leaderboard.csv'}, {out / 'leaderboard.md'}, {out / 'leaderboard.tex'}, "
               f"{out / 'results.json'}, {out / 'report.html'}")
