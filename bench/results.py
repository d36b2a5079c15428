"""Regenerate the README's "Results measured here" numbers: ``make results`` / ``python -m idbench.bench.results``.

Sections (``--sections``, default ``shared``; ``all`` = every one; each may take long, none runs in CI):

* ``shared``: ``bench run --encoders dlib --dataset folder --root ../shared/data/faces --swappers blend
  --out runs/shared``: the bias/verification/retrieval table of dlib and the ``blend`` swapper line;
* ``lfw``: ``bench run --encoders dlib --dataset lfw --root ../shared/data/lfw --out runs/lfw``: the
  10-fold accuracy line;
* ``blendface``: ``python -m idbench.bench.blendface_experiment --epochs 6`` (its own printed table);
* ``blendface_mobileface``: the same experiment for ``encoders/contracts/mobileface.toml`` (``--epochs 6 --lr 0.01
  --head-lr 0.01``, into ``RUNS/blendface_mobileface``): the README's mobileface table and paired differences;
* ``speed``: ``python -m idbench.bench.speed --limit 64 --video ../shared/data/videos/liveportrait_d6.mp4``.

Each section prints its markdown; with ``--write-readme README.md`` the block between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` is replaced by it, so the README numbers are
exactly what this command printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

SHARED = Path("../shared/data")
SECTIONS = ("shared", "lfw", "blendface", "blendface_mobileface", "speed")
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
    from idbench.bench.run import RunConfig, run

    res = run(RunConfig(dataset="folder", root=str(SHARED / "faces"), encoders=["dlib"], swappers=["blend"],
                        out=str(Path(args.runs) / "shared"), cache_dir=args.cache_dir))
    return shared_section(res)


def run_lfw(args) -> str:
    from idbench.bench.run import RunConfig, run

    res = run(RunConfig(dataset="lfw", root=str(SHARED / "lfw"), encoders=["dlib"], out=str(Path(args.runs) / "lfw"),
                        cache_dir=args.cache_dir))
    v = res["encoders"]["dlib"]["verification"]
    return (f"**LFW** (`bench run --encoders dlib --dataset lfw --root ../shared/data/lfw --out runs/lfw`): 10-fold "
            f"accuracy **{100 * v['accuracy_mean']:.2f}% ± {100 * v['accuracy_std']:.2f}** (AUC {v['auc']:.4f}, EER "
            f"{100 * v['eer']:.1f}%, TAR@FAR 1e-3 {v['tar_at_far_1e-3']:.3f}) on {v['n_pairs']} View 2 pairs; "
            f"{len(res.get('failures', []))} listed failures.")


def _module_output(argv: List[str]) -> str:
    out = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: python -m {' '.join(argv)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return "```\n" + out.stdout.strip() + "\n```"


def run_blendface_mobileface(args) -> str:
    import json

    from idbench.bench.blendface_experiment import paired_table, table

    work = Path(args.runs) / "blendface_mobileface"
    _module_output(["idbench.bench.blendface_experiment", *MOBILEFACE, "--work", str(work)])
    res = json.loads((work / "results.json").read_text())
    ev, tr = res["results"]["_eval"], res["training"]
    steps = ", ".join(f"{t['steps']} steps in {t['seconds'] / 60:.0f} min ({n})" for n, t in tr.items())
    return "\n".join([f"**`python -m idbench.bench.blendface_experiment {' '.join(MOBILEFACE)}`** ({ev['identities']} "
                      f"held-out identities, {ev['faces']} faces, {ev['swaps']} pseudo-swaps; {steps}):", "",
                      *table(res["results"]), "", *paired_table(res["results"].get("_paired", []))])


RUNNERS: Dict[str, Callable] = {
    "shared": run_shared, "lfw": run_lfw,
    "blendface": lambda a: _module_output(["idbench.bench.blendface_experiment", "--epochs", "6"]),
    "blendface_mobileface": run_blendface_mobileface,
    "speed": lambda a: _module_output(["idbench.bench.speed", "--limit", "64", "--video",
                                       str(SHARED / "videos" / "liveportrait_d6.mp4")]),
}


def write_block(readme: Path, name: str, text: str) -> None:
    """Replace the README block ``<!-- results:NAME -->...<!-- /results:NAME -->`` by ``text``."""
    src = readme.read_text()
    pat = re.compile(rf"(<!-- results:{name} -->\n).*?(\n<!-- /results:{name} -->)", re.S)
    if not pat.search(src):
        raise SystemExit(f"error: {readme} has no <!-- results:{name} --> block")
    readme.write_text(pat.sub(lambda m: m.group(1) + text + m.group(2), src))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="shared", help=f"comma-separated: {', '.join(SECTIONS)} or all")
    ap.add_argument("--write-readme", type=Path, default=None, help="README.md whose blocks are replaced")
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
        if args.write_readme:
            write_block(args.write_readme, n, text)


if __name__ == "__main__":
    main()
