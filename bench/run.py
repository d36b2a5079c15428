"""``bench run``: the end-to-end benchmark.

Reads a dataset, detects every face once (shared by all encoders), embeds with each encoder in
batches (content-addressed cache: an interrupted run resumes), builds the pseudo-swaps of the bias
analysis once, runs the per-encoder analysis and the swap evaluation, and writes
``leaderboard.csv``, ``results.json`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from idbench.cache import Cache, content_key
from idbench.encoders import create_encoder
from idbench.encoders.pipeline import DetectedImage, detect_file, embed_detected, encoder_fingerprint
from idbench.face_policy import FacePolicy, image_warnings


@dataclass
class RunConfig:
    dataset: str = "sample"
    root: Optional[str] = None
    encoders: List[str] = field(default_factory=lambda: ["dlib"])
    swappers: List[str] = field(default_factory=list)
    id_encoders: List[str] = field(default_factory=list)
    out: str = "runs/latest"
    seed: int = 0
    device: str = "cpu"
    detector: str = "auto"
    multi_face: str = "largest"  # face policy (idbench.face_policy): several faces in an image
    min_face: int = 32  # faces smaller than this (px) are dropped with a reason
    split: str = "test"
    compression: str = "c23"
    frames: int = 10
    splits: Optional[str] = None
    k_partners: int = 100
    n_boot: int = 1000
    saliency_faces: int = 4
    bias: bool = True
    cache_dir: Optional[str] = None
    no_cache: bool = False
    progress: bool = True
    weights: Dict[str, str] = field(default_factory=dict)


def _pseudo_swaps(cfg, table, plan, cache) -> List[Optional[tuple]]:
    """Build each planned pseudo-swap once: (swapped full image, face record to align with) or None."""
    from tqdm.auto import tqdm

    from idbench.swapper.blend import swap_frames

    out = []
    imgs = table.images_by_row
    for a, src, tgt in tqdm(plan.swaps, desc="pseudo-swaps", disable=not cfg.progress):
        s_item, t_item = imgs[src], imgs[tgt]
        try:
            res = swap_frames(s_item.image, table.faces[src], t_item.image, table.faces[tgt], seed=cfg.seed)
        except Exception as e:  # a per-pair failure is reported, not fatal
            out.append(("error", f"{s_item.path} -> {t_item.path}: {e}"))
            continue
        out.append((res, table.faces[tgt]))
    return out


def run(cfg: RunConfig) -> dict:
    from idbench.bench.datasets import load_dataset
    from idbench.bench.provenance import provenance
    from idbench.bench.report import write_outputs

    from . import encoder_analysis as EA

    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Cache(cfg.cache_dir, enabled=not cfg.no_cache)
    rank, world = _distributed(cfg)
    if rank != 0:  # rank 0 prepares the dataset (sample files, extracted frames) first
        import torch.distributed as dist

        dist.barrier()
    ds = load_dataset(cfg.dataset, cfg.root, split=cfg.split, compression=cfg.compression, frames=cfg.frames,
                      splits=cfg.splits, progress=cfg.progress and rank == 0)
    if world > 1 and rank == 0:
        import torch.distributed as dist

        dist.barrier()
    encoders = {n: create_encoder(n, cfg.weights.get(n), cfg.device) for n in cfg.encoders}
    # 1. detect once, embed with every encoder (streamed: each image decoded once)
    shard = ds.items[rank::world]
    policy = FacePolicy(cfg.multi_face, cfg.min_face)
    stream = (detect_file(it.path, cfg.detector, False, cache, cfg.device, it.center, policy) for it in shard)
    table = embed_detected(stream, encoders, cfg.detector, cache, cfg.progress and rank == 0, total=len(shard))
    if world > 1:  # gather the shards on rank 0, which does the analysis and writes the outputs
        import torch.distributed as dist

        from idbench.encoders.pipeline import merge_payloads, table_to_payload

        parts = [None] * world
        dist.all_gather_object(parts, table_to_payload(table))
        if rank != 0:
            return {"rank": rank, "n_faces": len(table.paths)}
        table = merge_payloads(parts, [str(it.path) for it in ds.items])
    item_of_path = {str(it.path): i for i, it in enumerate(ds.items)}
    row_items = [item_of_path[p] for p in table.paths]
    labels = np.array([ds.items[i].identity for i in row_items])
    by_path = {str(d.path): d for d in table.images}
    table.images_by_row = [by_path[p] for p in table.paths]
    # protocol pairs (LFW) mapped to rows; pairs with a missing face count as failures of the pipeline
    pairs = folds = None
    notes = list(ds.notes)
    if ds.pairs is not None:
        row_of_item = {it: r for r, it in enumerate(row_items)}
        keep = [k for k, (i, j, _) in enumerate(ds.pairs) if i in row_of_item and j in row_of_item]
        if len(keep) < len(ds.pairs):
            notes.append(f"{len(ds.pairs) - len(keep)} of {len(ds.pairs)} protocol pairs dropped: no face found")
        pairs = np.array([[row_of_item[ds.pairs[k][0]], row_of_item[ds.pairs[k][1]], ds.pairs[k][2]] for k in keep],
                         np.int64).reshape(-1, 3)
        folds = ds.folds[keep]
    # 2. pseudo-swaps for the bias analysis (built once, embedded by every encoder)
    plan = swaps = None
    if cfg.bias and ds.pairs is None:
        lm68 = np.array([f.landmarks68 for f in table.faces], np.float32)
        plan = EA.plan_bias(labels, lm68, k=cfg.k_partners, seed=cfg.seed)
        swaps = _pseudo_swaps(cfg, table, plan, cache)
        notes += [s[1] for s in swaps if s[0] == "error"]
    results: dict = {"encoders": {}, "swappers": {}}
    for name, enc in encoders.items():
        swap_emb = None
        if plan is not None:
            swap_emb = _embed_swaps(enc, swaps)
        res = EA.analyse(table.embeddings[name], labels, plan, swap_emb, pairs, folds, cfg.seed, cfg.n_boot)
        res["saliency"] = _saliency(cfg, enc, name, table, out_dir)
        results["encoders"][name] = res
    if cfg.swappers:
        from .swap_eval import evaluate_swappers

        results["swappers"] = evaluate_swappers(cfg, ds, table, labels, encoders, cache, out_dir)
    weights = {n: encoder_fingerprint(e)["weights_sha256"] for n, e in encoders.items()}
    results["dataset"] = {"name": ds.name, "root": ds.root, "split": ds.split, "description": ds.description,
                          "n_items": len(ds.items), "n_faces": len(table.paths),
                          "skipped": [list(s) for s in table.skipped], "notes": notes,
                          "ignored": ds.ignored, "n_ignored": len(ds.ignored),  # files under root not used
                          "warnings": image_warnings(table.images)}
    results["provenance"] = provenance(_cfg_dict(cfg), weights, results["dataset"], cfg.seed)
    results["cache"] = {"hits": cache.hits, "misses": cache.misses}
    write_outputs(results, out_dir)
    return results


def _distributed(cfg: RunConfig):
    """(rank, world size) under ``torchrun`` (gloo on CPU, NCCL on CUDA); (0, 1) otherwise."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if cfg.device == "cuda":
        cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    return dist.get_rank(), world


def _embed_swaps(enc, swaps) -> np.ndarray:
    from idbench.align import align_face

    emb = np.full((len(swaps), enc.spec.embedding_size), np.nan, np.float32)
    crops, idx = [], []
    for i, s in enumerate(swaps):
        if s[0] == "error":
            continue
        res, face = s
        crops.append(align_face(res.image, face, enc.spec.alignment, enc.spec.input_size[0]))
        idx.append(i)
    if crops:
        emb[idx] = enc.embed(np.stack(crops))
    return emb


def _saliency(cfg, enc, name, table, out_dir: Path) -> Optional[dict]:
    """Occlusion saliency on a few faces; inner-face ratio from the metric library."""
    if cfg.saliency_faces <= 0:
        return None
    try:
        from idbench.analysis.saliency import encoder_saliency_summary
    except ImportError:
        return None
    n = min(cfg.saliency_faces, len(table.paths))
    picks = np.random.default_rng(cfg.seed).choice(len(table.paths), n, replace=False) if n else []
    items = [(table.images_by_row[r].image, table.faces[r]) for r in picks]
    summary = encoder_saliency_summary(enc, items, out_dir / "saliency" / name.replace("/", "_"))
    for r in picks:
        table.images_by_row[r]._image = None
    return summary


def _cfg_dict(cfg: RunConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)
