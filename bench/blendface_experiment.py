"""BlendFace vs ArcFace fine-tuning of any encoder: a reproducible small experiment.

``--encoder`` is any trainable encoder ``bench train --arch`` takes: a registered torch encoder (default
``dlib.resnet_v1_torch``, dlib's face ResNet as a torch port), a contract file of an ONNX or TorchScript model
(``encoders/contracts/mobileface.toml``), or an insightface-style ONNX path. What it does (every step seeded;
re-running continues where it stopped):

1. ``bench prepare`` of ``--faces`` (one folder per identity) into ``WORK/data``: the encoder's crops (dlib
   150x150 chips or 112 ArcFace crops) with 68 landmarks, identities split into train and held-out
   (``--heldout`` fraction, ``--seed``; the same split for every encoder);
2. fine-tunes the encoder from its pretrained weights twice with the same schedule, seed and data order:
   ``--blend-prob 0`` (ArcFace loss only, ``WORK/arcface``) and ``--blend-prob 0.5`` (BlendFace,
   ``WORK/blendface``); ArcFace loss s=64 m=0.5, SGD, polynomial decay, classifier initialised at the class
   centroids of the pretrained embeddings; each run exports ``RUN/encoder.toml``;
3. evaluates the pretrained encoder and both fine-tunes (through their ``encoder.toml``) on the held-out
   identities with the protocol of :mod:`idbench.bench.encoder_analysis` (BlendFace's bias analysis: anchor vs
   other images of the same identity (positive), vs pseudo-swaps of those images onto their nearest-landmark
   partners (swapped), vs the nearest-landmark image of another identity (negative); bias gap and AUC;
   verification AUC; ID retrieval top-1), plus the ID retrieval of the pseudo-swaps (is the inner face's
   identity found?);
4. writes ``WORK/results.md`` (a markdown table) and ``WORK/results.json``.

Runs (2 CPU cores; the README's tables)::

    python -m idbench.bench.blendface_experiment --epochs 6                       # dlib, runs/blendface_dlib
    python -m idbench.bench.blendface_experiment --encoder encoders/contracts/mobileface.toml --epochs 6 \\
        --lr 0.01 --head-lr 0.01                                                  # runs/blendface_mobileface

Smoke run (a few minutes)::

    python -m idbench.bench.blendface_experiment --faces ../shared/data/faces --work /tmp/bf_smoke --steps 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

RUNS = (("arcface", "ArcFace fine-tune"), ("blendface", "BlendFace fine-tune"))
LABELS = {"dlib.resnet_v1_torch": "dlib"}  # the README's name for dlib's ResNet


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from idbench.bench.cli.options import Detector, Device, KPartners, Progress, Seed, add_argument  # bench's flags

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--encoder", default="dlib.resnet_v1_torch",
                   help="registered torch encoder, contract .toml (ONNX / TorchScript) or ONNX path")
    p.add_argument("--faces", type=Path, default=Path("../shared/data/faces"), help="one sub-folder per identity")
    p.add_argument("--work", type=Path, default=None, help="output folder (default runs/blendface_<encoder>)")
    p.add_argument("--heldout", type=float, default=0.2, help="fraction of identities held out for evaluation")
    add_argument(p, Seed, type=int, default=0)  # the split, training and evaluation
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--steps", type=int, default=None, help="total steps per run (overrides --epochs; smoke runs)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4,
                   help="learning rate (fine-tuning: 40-step probes raised the loss at >= 2e-3)")
    p.add_argument("--head-lr", type=float, default=5e-4)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-steps", type=int, default=20)
    add_argument(p, KPartners, type=int, default=100)
    p.add_argument("--blend-prob", type=float, default=0.5, help="blending probability of the BlendFace run")
    add_argument(p, Detector, default="auto")
    add_argument(p, Device, default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient-norm clip (0: off)")
    p.add_argument("--workers", type=int, default=0, help="data-loader workers")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the bias intervals")
    add_argument(p, Progress, default=True)
    p.add_argument("--eval-only", action="store_true", help="skip preparation and training (use what WORK holds)")
    return p.parse_args(argv)


def pretrained_encoder(name: str, device: str = "cpu"):
    """The encoder as it is benchmarked before fine-tuning (an ONNX path is read as ``arcface.onnx``)."""
    from idbench.encoders import create_encoder

    if name.lower().endswith(".onnx"):
        return create_encoder("arcface.onnx", weights=name, device=device)
    return create_encoder(name, device=device)


def prepare_data(args: argparse.Namespace, alignment: str) -> Path:
    from idbench.bench.prepare import prepare
    from idbench.cache import Cache

    data = args.work / "data"
    meta = data / "prepare.json"
    if meta.is_file():
        m = json.loads(meta.read_text())
        if (m.get("input") == str(args.faces) and alignment in m.get("alignments", [])
                and m.get("split", {}).get("heldout_fraction") == args.heldout
                and m.get("split", {}).get("seed") == args.seed):
            return data
    prepare(args.faces, data, (alignment,), args.detector, Cache(), args.heldout, args.seed,
            progress=args.progress)
    return data


def train_config(args: argparse.Namespace, data: Path, name: str, blend_prob: float):
    from idbench.bench.train import TrainConfig

    return TrainConfig(data=str(data), out=str(args.work / name), arch=args.encoder,
                       blend_prob=blend_prob, k_partners=args.k_partners, batch_size=args.batch_size,
                       epochs=args.epochs, steps=args.steps, lr=args.lr, head_lr=args.head_lr,
                       weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, grad_clip=args.grad_clip,
                       head_init="centroids",
                       seed=args.seed, device=args.device, workers=args.workers, threads=args.threads,
                       save_every=50, keep=2, resume="auto", progress=args.progress,
                       val="none")  # the held-out identities are the test set: they must not pick the checkpoint


def run_training(args: argparse.Namespace, data: Path) -> Dict[str, dict]:
    from idbench.bench.train import train

    out = {}
    for name, p in (("arcface", 0.0), ("blendface", args.blend_prob)):
        res = train(train_config(args, data, name, p))
        log = [json.loads(ln) for ln in (args.work / name / "log.jsonl").read_text().splitlines() if ln.strip()]
        # step-loop seconds from the log's timestamps: the same when a finished run is re-entered (resume)
        seconds = log[-1]["time"] - log[0]["time"] + args.batch_size / log[0]["samples_per_s"] if log else 0.0
        out[name] = {"blend_prob": p, "steps": res["step"], "seconds": round(seconds, 1),
                     "first_loss": log[0]["loss"] if log else None, "last_loss": log[-1]["loss"] if log else None,
                     "last_accuracy": log[-1]["accuracy"] if log else None,
                     "blend_rate": float(np.mean([r["blend_rate"] for r in log])) if log else None}
    return out


def pseudo_swaps(ps, plan):
    """The pseudo-swap image of every ``plan.swaps`` entry (source row's inner face on the partner);
    an all-zero image where the blend was rejected (its embedding is then marked NaN)."""
    from idbench.bench.train import PseudoSwapper

    sw = PseudoSwapper()
    h, w = ps.image(0).shape[:2]
    out = np.zeros((len(plan.swaps), h, w, 3), np.uint8)
    ok = np.zeros(len(plan.swaps), bool)
    for i, (_, src, tgt) in enumerate(plan.swaps):
        (a, va), (b, vb) = ps.read(src), ps.read(tgt)
        img = sw(a, ps.landmarks[src], b, ps.landmarks[tgt], va, vb)
        if img is not None:
            out[i], ok[i] = img, True
    return out, ok


def evaluate(args: argparse.Namespace, data: Path, pretrained) -> Dict[str, dict]:
    from idbench import analysis as M
    from idbench.bench.encoder_analysis import analyse, gallery_split, plan_bias
    from idbench.bench.prepare import load_prepared, read_names
    from idbench.encoders import create_encoder
    from idbench.swapper.blend import choose_partners

    held = read_names(data / "heldout_identities.txt")
    ps = load_prepared(data, pretrained.spec.alignment, held)
    labels = np.asarray(ps.identities)
    partner, _ = choose_partners(ps.landmarks, labels, k=args.k_partners, seed=args.seed)  # the pseudo-swap's rule
    plan = plan_bias(labels, partner, seed=args.seed)
    faces = ps.images()
    swaps, ok = pseudo_swaps(ps, plan)
    label = LABELS.get(pretrained.spec.name, pretrained.spec.name)
    rows = [(label, pretrained, None)]
    for run, title in RUNS:
        contract = args.work / run / "encoder.toml"
        p = 0.0 if run == "arcface" else args.blend_prob
        if contract.is_file():
            rows.append((f"{label} + {title} (p={p:g})", create_encoder(contract, device=_device(args)), contract))
    results, scores = {}, {}
    for title, enc, contract in rows:
        emb = enc.embed(faces)
        swap_emb = np.full((len(swaps), emb.shape[1]), np.nan, np.float32)
        if ok.any():
            swap_emb[ok] = enc.embed(swaps[ok])
        r = analyse(emb, labels, plan, swap_emb, seed=args.seed, n_boot=args.n_boot)
        scores[title] = r.pop("scores", None)
        gal, _ = gallery_split(labels)
        src = np.array([s[1] for s in plan.swaps], np.int64)
        keep = ok & ~np.isin(src, gal)  # swaps of gallery images would find their own source photo
        if keep.any() and len(gal) >= 2:
            r["swap_retrieval_top1"] = float(M.id_retrieval(swap_emb[keep], labels[src[keep]], emb[gal],
                                                            labels[gal]).accuracy)
        r["encoder"] = args.encoder if contract is None else str(contract)
        results[title] = r
    results["_eval"] = {"identities": len(held), "faces": len(ps), "swaps": int(len(plan.swaps)),
                        "swaps_rejected": int((~ok).sum())}
    results["_paired"] = paired(scores, plan, ok, args)
    return results


def paired(scores: Dict[str, Optional[dict]], plan, ok: np.ndarray, args: argparse.Namespace) -> List[dict]:
    """The BlendFace fine-tune against the pretrained encoder and against the ArcFace fine-tune on the same
    items: paired differences (BlendFace - other) of the three bias metrics, anchor-cluster bootstrap interval
    and sign-flip permutation p-value (:func:`idbench.analysis.paired_bias_difference`)."""
    from idbench import analysis as M

    titles = [t for t, sc in scores.items() if sc is not None]
    if len(titles) < 3:
        return []
    groups = {"positive_groups": [a for a, _ in plan.positive], "negative_groups": [a for a, _ in plan.negative],
              "swapped_groups": [s[0] for s, good in zip(plan.swaps, ok) if good]}
    out = []
    blend = titles[2]
    for other in titles[:2]:
        a, b = scores[blend], scores[other]
        try:
            d = M.paired_bias_difference(a["positive"], a["swapped"], a["negative"], b["positive"], b["swapped"],
                                         b["negative"], n_boot=args.n_boot, n_perm=2000, seed=args.seed,
                                         **groups).to_dict()
        except M.MetricInputError as e:
            out.append({"a": blend, "b": other, "error": str(e)})
            continue
        out.append({"a": blend, "b": other, **d})
    return out


def _device(args: argparse.Namespace) -> str:
    return "cuda" if args.device == "cuda" else "cpu"


def _f(v, nd: int = 3) -> str:
    return "" if v is None else f"{v:.{nd}f}"


TABLE_HEADER = ("| encoder (held-out identities) | positive | swapped | negative | bias gap [95% CI] | bias AUC | "
                "relative gap | verification AUC | ID retrieval top-1 | swap ID retrieval top-1 |")


def paired_table(rows: List[dict]) -> List[str]:
    """Markdown lines of :func:`paired` (empty when it has nothing)."""
    if not rows:
        return []
    lines = ["| paired difference (anchor-cluster bootstrap, sign-flip test) | mean gap [95% CI], p | "
             "relative gap [95% CI], p | bias AUC [95% CI], p |", "|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['a']} - {r['b']} | {r['error']} | | |")
            continue
        cells = [f"{r[m]['difference']:+.3f} [{r[m]['ci'][0]:+.3f}, {r[m]['ci'][1]:+.3f}], p = {r[m]['p_value']:.3f}"
                 for m in ("mean_gap", "relative_gap", "auc")]
        lines.append(f"| {r['a']} - {r['b']} ({r['n_units']} anchors) | " + " | ".join(cells) + " |")
    return lines


def table(results: Dict[str, dict]) -> List[str]:
    """The README's table (header and one row per encoder) from ``results.json``'s ``results``."""
    lines = [TABLE_HEADER, "|" + "---|" * 10]
    for title, r in results.items():
        if title.startswith("_"):
            continue
        b = r.get("bias", {})
        ci = b.get("mean_gap_ci")
        gap = _f(b.get("mean_gap")) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        lines.append(f"| {title} | {_f(b.get('positive_mean'))} | {_f(b.get('swapped_mean'))} | "
                     f"{_f(b.get('negative_mean'))} | {gap} | {_f(b.get('auc'))} | {_f(b.get('relative_gap'))} | "
                     f"{_f(r.get('verification', {}).get('auc'), 4)} | {_f(r.get('retrieval', {}).get('top1'))} | "
                     f"{_f(r.get('swap_retrieval_top1'))} |")
    return lines


def markdown(results: Dict[str, dict], training: Dict[str, dict], args: argparse.Namespace) -> str:
    ev = results.get("_eval", {})
    lines = [
        f"# BlendFace vs ArcFace fine-tuning of {args.encoder} (held-out identities)",
        "",
        f"Data: `{args.faces}`; {ev.get('identities')} held-out identities, {ev.get('faces')} faces, "
        f"{ev.get('swaps')} pseudo-swaps ({ev.get('swaps_rejected')} rejected by the blend's overlap check). "
        f"Seed {args.seed}.",
        "",
        *table(results),
        "",
        *paired_table(results.get("_paired", [])),
    ]
    lines += ["", "Bias gap: mean(positive) - mean(swapped), 95% bootstrap interval; bias AUC: P(positive > swapped) "
              "(0.5 = no attribute bias); relative gap: (P - S) / (P - N). Swap ID retrieval: share of pseudo-swaps "
              "whose nearest gallery face has the inner face's identity.", "", "## Training", "",
              "| run | blend prob | steps | seconds | first loss | last loss | last accuracy | realised blend rate |",
              "|---|---|---|---|---|---|---|---|"]
    for name, t in training.items():
        lines.append(f"| {name} | {t['blend_prob']} | {t['steps']} | {t['seconds']} | {_f(t['first_loss'])} | "
                     f"{_f(t['last_loss'])} | {_f(t['last_accuracy'])} | {_f(t['blend_rate'])} |")
    lines += ["", f"Schedule: batch {args.batch_size}, "
              + (f"{args.steps} steps" if args.steps else f"{args.epochs} epochs")
              + f", SGD lr {args.lr} (head {args.head_lr}), weight decay {args.weight_decay}, warm-up "
              f"{args.warmup_steps} steps then polynomial decay (power 2), gradient clip {args.grad_clip}; "
              f"ArcFace s=64, m=0.5; classifier initialised at the class centroids; K={args.k_partners}.",
              ""]
    return "\n".join(lines)


def _previous_training(work: Path) -> Dict[str, dict]:
    """The training summary of the run that trained what ``--eval-only`` evaluates (kept in results.json)."""
    prev = work / "results.json"
    return json.loads(prev.read_text()).get("training", {}) if prev.is_file() else {}


def _check_crop_size(spec) -> None:
    """``bench prepare`` cuts 112 ArcFace crops and 150 dlib chips; say so before any work for other sizes."""
    from idbench.bench.prepare import ALIGNMENT_SIZES
    from idbench.errors import InputError

    size = ALIGNMENT_SIZES.get(spec.alignment)
    if size is None or tuple(spec.input_size) != (size, size):
        raise InputError(f"{spec.name} takes {spec.input_size[0]}x{spec.input_size[1]} {spec.alignment} crops; bench "
                         f"prepare makes {', '.join(f'{a} at {n}' for a, n in ALIGNMENT_SIZES.items())}")


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    pretrained = pretrained_encoder(args.encoder, _device(args))
    if args.work is None:
        args.work = Path("runs") / f"blendface_{LABELS.get(pretrained.spec.name, pretrained.spec.name)}"
    _check_crop_size(pretrained.spec)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = args.work / "data" if args.eval_only else prepare_data(args, pretrained.spec.alignment)
    training = _previous_training(args.work) if args.eval_only else run_training(args, data)
    results = evaluate(args, data, pretrained)
    md = markdown(results, training, args)
    (args.work / "results.md").write_text(md)
    (args.work / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                         "training": training, "results": results,
                                                         "seconds": round(time.time() - t0, 1)}, indent=2))
    print(md)
    return results


if __name__ == "__main__":
    main()
