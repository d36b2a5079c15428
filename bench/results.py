"""Regenerate the "Results measured here" numbers of docs/results.md: ``make results`` / ``python -m idbench.bench.results``.

Sections (``--sections``, default ``shared``; ``all`` = every one; each may take long, none runs in CI):

* ``shared``: ``bench run --encoders dlib --dataset folder --root ../shared/data/faces --swappers blend
  --out runs/shared``: the bias/verification/retrieval table of dlib and the ``blend`` swapper line;
* ``lfw``: ``bench run --encoders dlib,mobileface.toml,faceres.toml --dataset lfw --root ../shared/data/lfw
  --out runs/lfw``: LFW 10-fold accuracy of dlib and the two real ONNX encoders, next to the figures
  measured independently (``../shared/models/README.md``; dlib's author's for dlib);
* ``decomposition``: ``bench run --encoders dlib,mobileface.toml,faceres.toml --analyses
  bias,verification,retrieval,decomposition --dataset folder --root ../shared/data/faces --out
  runs/decomposition``: the bias table of the three encoders and the per-attribute relative gaps;
* ``blendface``: ``python -m idbench.bench.blendface_experiment --epochs 6 --work runs/blendface_dlib`` (dlib's
  ResNet): its ``results.md`` table;
* ``blendface_mobileface``: the same experiment for ``encoders/contracts/mobileface.toml`` (``--epochs 6 --lr 0.01
  --head-lr 0.01``, into ``RUNS/blendface_mobileface``): the mobileface table and paired differences;
* ``scale``: ``python -m idbench.bench.scale``: time and peak memory of every analysis phase on synthetic
  LFW-like and VGGFace2-like embeddings at 10k, 100k and 1M faces (about an hour on a busy 2-core machine);
* ``speed``: ``python -m idbench.bench.speed --limit 200 --sizes 200,700 --rounds 3``,
  ``python -m idbench.bench.speed_dlib_torch --repeats 5``, ``python -m idbench.bench.speed --devices
  cpu,cuda --limit 64`` (faces/s per stage and device) and ``python -m idbench.bench.speed_cpu --images 200
  --e2e 700,2000,13233`` (CPU per stage and cold throughput of ``bench embed --encoder dlib`` up to all of LFW).

Each section prints its markdown; with ``--write docs/results.md`` (``--write-readme``, its older name) the
block between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` is replaced by it, so the published
numbers are exactly what this command printed. Runs share the cache, so a section whose run is already cached
takes about a minute.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Sequence

SHARED = Path("../shared/data")
SECTIONS = ("shared", "lfw", "decomposition", "blendface", "blendface_mobileface", "speed", "scale")
CONTRACTS = Path(__file__).resolve().parents[1] / "encoders" / "contracts"
THREE = ["dlib", str(CONTRACTS / "mobileface.toml"), str(CONTRACTS / "faceres.toml")]
# figures measured outside idbench: ../shared/models/README.md (same LFW images, own pipeline); dlib's author
INDEPENDENT_LFW = {"dlib": "dlib's author: 99.38%", "mobileface": "94.17 ± 1.38 %, AUC 0.981",
                   "faceres": "96.92 ± 0.79 %, AUC 0.994"}
# the mobileface fine-tune: dlib's schedule (6 epochs, batch 32, 20 warm-up steps); lr 0.01 = the largest of
# 5e-4, 2e-3, 1e-2, 5e-2 whose 40-step probe lowered the training loss (5e-2 raised it), as for dlib
MOBILEFACE = ("--encoder", "encoders/contracts/mobileface.toml", "--epochs", "6", "--lr", "0.01", "--head-lr", "0.01")


def _f(v, nd: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def encoder_row(name: str, r: dict) -> str:
    """One row of the shared-faces table from ``results["encoders"][name]``."""
    b, v, t = r.get("bias", {}), r.get("verification", {}), r.get("retrieval", {})
    ci = b.get("mean_gap_ci") or [None, None]
    return (f"| {name} | {_f(b.get('positive_mean'))} | {_f(b.get('swapped_mean'))} | {_f(b.get('negative_mean'))} | "
            f"{_f(b.get('mean_gap'))} [{_f(ci[0])}, {_f(ci[1])}] | {_f(b.get('auc'), 3)} | "
            f"{_f(b.get('relative_gap'), 3)} | {_f(v.get('auc'))} | {_f(v.get('eer'))} | "
            f"{_f(v.get('tar_at_far_1e-3'), 3)} | {_f(v.get('accuracy_mean'))} | "
            f"{_f(t.get('top1'), 3)} / {_f(t.get('top5'), 3)} |")


def shared_section(res: dict) -> str:
    """The shared-faces markdown (table, then the swapper line) from a run's results."""
    ds = res["dataset"]
    n_fail = len(res.get("failures", []))
    lines = [f"**`bench run --encoders dlib --dataset folder --root ../shared/data/faces --swappers blend "
             f"--out runs/shared`** ({ds['n_items']} photos, {ds['n_faces']} faces; {n_fail} listed failures in "
             f"`results.json`):", "",
             "| encoder | positive | swapped | negative | bias gap [95% CI] | bias AUC | relative gap | verif. AUC | "
             "EER | TAR@FAR 1e-3 | 10-fold acc. | top-1 / top-5 retrieval |",
             "|" + "---|" * 12]
    lines += [encoder_row(n, r) for n, r in res["encoders"].items()]
    sw = res.get("swappers", {}).get("blend")
    if sw:
        s = sw["summary"]
        enc = next(iter(res["encoders"]))
        p = sw["params"]
        lines += ["", f"`blend` as a swapper ({s['n_swaps']} swaps of {sw['n_planned']} planned; partner "
                      f"{p['partner']}, mode {p['mode']}, region {p['region']}, k {p['k']}, seed {p['seed']}): "
                      f"identity cosine distance to the source {_f(s.get(f'id_distance[{enc}]'), 3)}, ID retrieval "
                      f"top-1 of the source {_f(s.get(f'id_retrieval_top1[{enc}]'), 3)}, closer to the source than "
                      f"to the target in {100 * s.get(f'id_relative[{enc}]', 0):.1f}%."]
    return "\n".join(lines)


def run_shared(args) -> str:
    return shared_section(_run(args, "shared", dataset="folder", root=str(SHARED / "faces"), encoders=["dlib"],
                               swappers=["blend"]))


def _run(args, name: str, **kw) -> dict:
    from idbench.bench.run import RunConfig, run

    return run(RunConfig(out=str(Path(args.runs) / name), cache_dir=args.cache_dir, **kw))


def _ci(v, ci, nd: int = 3) -> str:
    ci = ci or [None, None]
    return f"{_f(v, nd)} [{_f(ci[0], nd)}, {_f(ci[1], nd)}]"


def lfw_section(res: dict) -> str:
    """The LFW table (one row per encoder) from a run's results."""
    ds = res["dataset"]
    lines = [f"**LFW** (`bench run --encoders dlib,encoders/contracts/mobileface.toml,encoders/contracts/faceres.toml "
             f"--dataset lfw --root ../shared/data/lfw --out runs/lfw`; {ds['n_items']} images, "
             f"{len(res.get('failures', []))} listed failures):", "",
             "| encoder | LFW 10-fold accuracy | AUC | EER | TAR@FAR 1e-3 | independent figure |", "|" + "---|" * 6]
    for name, r in res["encoders"].items():
        v = r["verification"]
        lines.append(f"| {name} | {100 * v['accuracy_mean']:.2f}% ± {100 * v['accuracy_std']:.2f} | {v['auc']:.4f} | "
                     f"{100 * v['eer']:.2f}% | {v['tar_at_far_1e-3']:.3f} | {INDEPENDENT_LFW.get(name, 'n/a')} |")
    n_pairs = next(iter(res["encoders"].values()))["verification"]["n_pairs"]
    lines += ["", f"{n_pairs} View 2 pairs of the deep-funneled images, threshold chosen on the other 9 folds."]
    return "\n".join(lines)


def run_lfw(args) -> str:
    return lfw_section(_run(args, "lfw", dataset="lfw", root=str(SHARED / "lfw"), encoders=THREE))


def decomposition_section(res: dict) -> str:
    """The three encoders' bias table and the decomposition's relative gap per variant."""
    ds, dec = res["dataset"], res["decomposition"]
    lines = [f"**Bias of three real encoders** (`bench run --encoders dlib,encoders/contracts/mobileface.toml,"
             f"encoders/contracts/faceres.toml --analyses bias,verification,retrieval,decomposition --dataset folder "
             f"--root ../shared/data/faces --out runs/decomposition`; {ds['n_items']} photos, "
             f"{dec['n_planned_swaps']} planned swaps, seed {dec['seed']}):", "",
             "| encoder | positive | swapped | negative | bias gap [95% CI] | relative gap [95% CI] | bias AUC [95% CI] |",
             "|" + "---|" * 7]
    for name, r in res["encoders"].items():
        b = r["bias"]
        lines.append(f"| {name} | {_f(b['positive_mean'], 3)} | {_f(b['swapped_mean'], 3)} | {_f(b['negative_mean'], 3)} "
                     f"| {_ci(b['mean_gap'], b.get('mean_gap_ci'))} | {_ci(b['relative_gap'], b.get('relative_gap_ci'))} "
                     f"| {_ci(b['auc'], b.get('auc_ci'))} |")
    variants = dec["variants"]
    lines += ["", "Relative gap [95% CI] per attribute family (section \"Attribute decomposition\"):", "",
              "| encoder | " + " | ".join(variants) + " |", "|" + "---|" * (len(variants) + 1)]
    for name, per in dec["encoders"].items():
        lines.append(f"| {name} | " + " | ".join(
            _ci(per[v].get("relative_gap"), per[v].get("relative_gap_ci")) if "error" not in per[v] else "n/a"
            for v in variants) + " |")
    rows = dec.get("pairwise", [])
    pairs = {tuple(sorted((r["encoder_a"], r["encoder_b"]))) for r in rows}
    metrics = {r["metric"] for r in rows}
    lines += ["", f"Pairwise (paired bootstrap and permutation tests, Holm-adjusted): {sum(bool(r.get('significant')) for r in rows)} "
                  f"of {len(rows)} comparisons ({len(variants)} variants x {len(pairs)} encoder pairs x {len(metrics)} "
                  f"metrics) significant at 0.05."]
    return "\n".join(lines)


def run_decomposition(args) -> str:
    return decomposition_section(_run(args, "decomposition", dataset="folder", root=str(SHARED / "faces"),
                                      encoders=THREE, analyses=["bias", "verification", "retrieval", "decomposition"],
                                      saliency_faces=0))


def _module_output(argv: List[str]) -> str:
    out = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: python -m {' '.join(argv)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return "```\n" + out.stdout.strip() + "\n```"


DLIB = ("--epochs", "6")
SPEED_CPU = ("--images", "200", "--e2e", "700,2000,13233")  # 13,233: all of LFW


def experiment_block(args, work: str, argv: Sequence[str]) -> str:
    """Run (or finish) one BlendFace experiment and format its tables (training time left out: it varies)."""
    import json

    from idbench.bench.blendface_experiment import paired_table, table

    wdir = Path(args.runs) / work
    _module_output(["idbench.bench.blendface_experiment", *argv, "--work", str(wdir)])
    res = json.loads((wdir / "results.json").read_text())
    ev, tr = res["results"]["_eval"], res["training"]
    steps = ", ".join(f"{t['steps']} steps ({n})" for n, t in tr.items())
    return "\n".join([f"**`python -m idbench.bench.blendface_experiment {' '.join(argv)} --work runs/{work}`** "
                      f"({ev['identities']} held-out identities, {ev['faces']} faces, {ev['swaps']} pseudo-swaps; "
                      f"{steps}):", "", *table(res["results"]), "", *paired_table(res["results"].get("_paired", []))])


SCALE_HEADER = ("**`python -m idbench.bench.scale`** (synthetic 128-D embeddings, seed 0; per phase CPU seconds, wall "
                "seconds and peak MB above the phase start; exponent of CPU time ~ N^k fitted over the three sizes). "
                "Caps: 5,000 same-identity pairs per identity and 100,000 in all, 20,000 impostor pairs, 20,000 "
                "face-retrieval probes, 5,000 swaps retrieved among all faces; 1,000 bootstrap replicates of the bias "
                "gap; 100 partner candidates per face.")

RUNNERS: Dict[str, Callable] = {
    "shared": run_shared, "lfw": run_lfw, "decomposition": run_decomposition,
    "blendface": lambda a: experiment_block(a, "blendface_dlib", DLIB),
    "blendface_mobileface": lambda a: experiment_block(a, "blendface_mobileface", MOBILEFACE),
    "speed": lambda a: "\n\n".join([
        "`python -m idbench.bench.speed --limit 200 --sizes 200,700 --rounds 3`:",
        _module_output(["idbench.bench.speed", "--limit", "200", "--sizes", "200,700", "--rounds", "3"]),
        "`python -m idbench.bench.speed_dlib_torch --repeats 5`:",
        _module_output(["idbench.bench.speed_dlib_torch", "--repeats", "5"]),
        "`python -m idbench.bench.speed --devices cpu,cuda --limit 64`:",
        _module_output(["idbench.bench.speed", "--devices", "cpu,cuda", "--limit", "64"]),
        f"`python -m idbench.bench.speed_cpu {' '.join(SPEED_CPU)}` (cold `bench embed --encoder dlib` on the first N "
        "LFW images; CPU per stage, then end to end):",
        _module_output(["idbench.bench.speed_cpu", *SPEED_CPU])]),
    "scale": lambda a: SCALE_HEADER + "\n\n" + _module_output(["idbench.bench.scale"]).strip("`\n"),
}


RESULTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "results.md"  # where the blocks live


def write_block(page: Path, name: str, text: str) -> None:
    """Replace the block ``<!-- results:NAME -->...<!-- /results:NAME -->`` of ``page`` by ``text``."""
    from idbench.bench.docs import replace_block

    try:
        page.write_text(replace_block(page.read_text(), "results", name, text))
    except KeyError:
        raise SystemExit(f"error: {page} has no <!-- results:{name} --> block") from None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="shared", help=f"comma-separated: {', '.join(SECTIONS)} or all")
    ap.add_argument("--write", "--write-readme", dest="write", type=Path, default=None,
                    help=f"the page whose blocks are replaced ({RESULTS_PAGE.relative_to(RESULTS_PAGE.parents[1])})")
    ap.add_argument("--runs", default="runs", help="where the runs write their outputs")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    names = SECTIONS if args.sections == "all" else [s for s in args.sections.split(",") if s]
    for n in names:
        if n not in RUNNERS:
            raise SystemExit(f"error: unknown section {n!r}: use {', '.join(SECTIONS)} or all")
    for n in names:
        text = RUNNERS[n](args)
        print(f"<!-- results:{n} -->\n{text}\n<!-- /results:{n} -->", flush=True)
        if args.write:
            write_block(args.write, n, text)


if __name__ == "__main__":
    main()
