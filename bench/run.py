"""``bench run``: the end-to-end benchmark.

Reads a dataset, detects every face once (shared by all encoders), embeds with each encoder in
batches (content-addressed cache: an interrupted run resumes), then runs the requested analysis steps
(:mod:`idbench.bench.steps`: bias, verification, retrieval, saliency, decomposition, swap evaluation, and any
registered one) in one loop, each building what it needs once (the bias pseudo-swaps, the pairs), and writes
``leaderboard.csv``, ``results.json`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from idbench.cache import Cache
from idbench.encoders import create_encoders
from idbench.devices import resolve_device  # noqa: F401  (re-exported: bench.run.resolve_device)
from idbench.face_policy import FacePolicy, image_warnings
from idbench.pipeline import detect_paths, embed_detected, encoder_fingerprint, failure

from . import distributed as D
from .plan_swaps import bias_swapper, plan_swap_embeddings  # noqa: F401  (re-exported: their old home)


def _default_analyses() -> List[str]:
    from .steps import default_analyses

    return default_analyses()


@dataclass
class RunConfig:
    dataset: str = "sample"
    root: Optional[str] = None
    encoders: List[str] = field(default_factory=lambda: ["dlib"])
    swappers: List[str] = field(default_factory=list)
    id_encoders: List[str] = field(default_factory=list)
    swap_estimators: Dict[str, str] = field(default_factory=dict)  # kind -> estimator (swap_eval defaults otherwise)
    out: str = "runs/latest"
    seed: int = 0
    device: str = "cpu"
    detect_batch: Optional[int] = None  # images per detector call (None: 32 on CUDA for MTCNN, else 1)
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
    saliency_region: str = "inner"
    bias: bool = True
    analyses: List[str] = field(default_factory=_default_analyses)  # step names (idbench.bench.steps)
    n_perm: int = 2000  # permutations of the decomposition's paired tests
    cache_dir: Optional[str] = None
    no_cache: bool = False
    progress: bool = True
    weights: Dict[str, str] = field(default_factory=dict)
    flip_test: bool = False  # embeddings: face + mirror summed (arcface_torch / CurricularFace verification)


def build_swappers(cfg: "RunConfig") -> Dict[str, object]:
    """Every ``--swappers`` entry built through ``SWAPPERS.create`` before any work (unknown names, missing or
    wrong weight files fail here): each swapper gets the run's value of exactly the options its spec declares
    (seed, k, root, compression, frames...; an option with a ``weights_key`` takes ``--weights KEY=PATH``),
    the run's device and its weight files from ``--weights``."""
    from idbench.swapper import SWAPPERS, parse_swapper

    run = {"seed": cfg.seed, "k": cfg.k_partners, "root": cfg.root, "compression": cfg.compression,
           "frames": cfg.frames}
    out = {}
    for text in cfg.swappers:
        name, given = parse_swapper(text)
        options = dict(given)
        for opt in SWAPPERS.spec(name).options:
            if opt.weights_key and opt.weights_key in cfg.weights:
                options[opt.name] = cfg.weights[opt.weights_key]
            elif opt.name in run and opt.name not in options:
                options[opt.name] = run[opt.name]
        out[text] = SWAPPERS.create(name, weights=cfg.weights, device=cfg.device, **options)
    return out


def _detect_dataset(cfg, ds, encoders, cache, rank, world):
    """Stage 1 for the dataset: detect once, embed with every encoder (streamed; sharded under torchrun)."""
    shard = ds.items[rank::world]
    policy = FacePolicy(cfg.multi_face, cfg.min_face)
    stream = detect_paths([it.path for it in shard], cfg.detector, cache, cfg.device,
                          centers=[it.center for it in shard], policy=policy, batch=cfg.detect_batch)
    table = embed_detected(stream, encoders, cfg.detector, cache, cfg.progress and rank == 0, total=len(shard))
    if world > 1:  # gather the shards on rank 0, which does the analysis and writes the outputs
        import torch.distributed as dist

        from idbench.pipeline import merge_payloads, table_to_payload

        parts = [None] * world if rank == 0 else None
        dist.gather_object(table_to_payload(table), parts, dst=0)  # to rank 0 only: the others stop here
        if rank != 0:
            return None
        table = merge_payloads(parts, [str(it.path) for it in ds.items])
    return table


def _protocol_pairs(ds, row_items, failures):
    """Protocol pairs (LFW) mapped to rows; a pair with a missing face is a listed failure."""
    if ds.pairs is None:
        return None, None
    row_of_item = {it: r for r, it in enumerate(row_items)}
    keep = []
    for k, (i, j, _) in enumerate(ds.pairs):
        if i in row_of_item and j in row_of_item:
            keep.append(k)
        else:
            failures.append(failure("pairs", f"{ds.items[i].path} | {ds.items[j].path}", "protocol pair dropped: "
                                    "no face in " + ("both images" if i not in row_of_item and j not in row_of_item
                                                     else "one image")))
    pairs = np.array([[row_of_item[ds.pairs[k][0]], row_of_item[ds.pairs[k][1]], ds.pairs[k][2]] for k in keep],
                     np.int64).reshape(-1, 3)
    return pairs, ds.folds[keep]


def run(cfg: RunConfig) -> dict:
    """The benchmark into ``cfg.out``, which this run owns while it works (a lock: a second run into the same
    folder is refused with one line instead of mixing its files with this run's)."""
    import os

    from idbench.atomic import out_lock

    if int(os.environ.get("RANK", "0")) != 0:  # torchrun workers: rank 0 holds the lock and writes the outputs
        return _run(cfg)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    with out_lock(cfg.out), D.swap_shares_closed():  # then ranks waiting for swap shares return
        return _run(cfg)


def _run(cfg: RunConfig) -> dict:
    from idbench.bench.datasets import load_dataset
    from idbench.bench.run_checks import check_usable, drop_non_finite_encoders
    from idbench.bench.validate import cache_read_only
    from idbench.packed_cache import for_images
    from idbench.bench.provenance import provenance
    from idbench.bench.report import write_outputs
    from idbench.swapper import SwapContext

    from idbench.regions import check_region

    from .steps import RunContext, check_analyses, run_steps, selected

    cfg.analyses = check_analyses(cfg.analyses)  # unknown names fail before any work (did-you-mean)
    cfg.device = resolve_device(cfg.device)
    swappers = build_swappers(cfg)  # unknown names, missing folders or weight files fail before any work
    check_region(cfg.saliency_region)
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Cache(cfg.cache_dir, enabled=not cfg.no_cache,
                  read_only=not cfg.no_cache and cache_read_only(cfg.cache_dir))  # a warm read-only cache is used
    rank, world = _distributed(cfg)
    if rank != 0:  # rank 0 prepares the dataset (sample files, extracted frames) first
        import torch.distributed as dist

        dist.barrier()
    ds = load_dataset(cfg.dataset, cfg.root, split=cfg.split, compression=cfg.compression, frames=cfg.frames,
                      splits=cfg.splits, progress=cfg.progress and rank == 0)
    if world > 1 and rank == 0:
        import torch.distributed as dist

        dist.barrier()
    cache = for_images(cache, len(ds.items))  # VGGFace2 scale: one database, not ~11 files per image
    encoders = create_encoders(cfg.encoders, cfg.weights, cfg.device)  # keyed by leaderboard name
    if cfg.flip_test:
        from idbench.encoders import with_flip_test

        encoders = {n: with_flip_test(e) for n, e in encoders.items()}
    label = dict(zip(cfg.encoders, encoders))  # a contract path -> its name, for --id-encoders
    cfg.id_encoders = [label.get(n, n) for n in cfg.id_encoders]
    table = _detect_dataset(cfg, ds, encoders, cache, rank, world)
    if table is None:
        return {"rank": rank, **D.serve_swap_shares(cfg, encoders, cache)}  # its share of rank 0's swap plans
    item_of_path = {str(it.path): i for i, it in enumerate(ds.items)}
    row_items = [item_of_path[p] for p in table.paths]
    labels = np.array([ds.items[i].identity for i in row_items])
    failures = list(table.failures) + [failure("dataset", ds.root, n) for n in ds.notes]
    pairs, folds = _protocol_pairs(ds, row_items, failures)
    check_usable(len(table.paths), table.skipped, pairs, 0 if ds.pairs is None else len(ds.pairs))
    drop_non_finite_encoders(encoders, table.embeddings, failures)  # one bad encoder never sinks the run
    cfg.id_encoders = [n for n in cfg.id_encoders if n in encoders]
    ctx = SwapContext(table, labels, [ds.items[i].frame for i in row_items], ds.root,
                      {"video_pairs": ds.video_pairs})  # FF++ swappers read only the split's pairs
    results: dict = {"encoders": {n: {"n_faces": int(len(labels)), "n_identities": int(len(set(labels.tolist())))}
                                  for n in encoders}, "swappers": {}}
    sctx = RunContext(cfg, ctx, encoders, cache, failures, out_dir, pairs=pairs, folds=folds, swappers=swappers,
                      results=results)
    for n in encoders:  # a sanity check of every run, not an analysis: the flag travels with the numbers
        if sctx.degenerate(n):
            results["encoders"][n]["degenerate"] = sctx.degenerate(n)
    run_steps(selected(cfg.analyses), sctx)  # only what is asked for is computed
    weights = {n: encoder_fingerprint(e)["weights_sha256"] for n, e in encoders.items()}
    results["dataset"] = {"name": ds.name, "root": ds.root, "split": ds.split, "description": ds.description,
                          "n_items": len(ds.items), "n_faces": len(table.paths),
                          "skipped": [list(s) for s in table.skipped], "notes": list(ds.notes),
                          "ignored": ds.ignored, "n_ignored": len(ds.ignored),  # files under root not used
                          "warnings": image_warnings(table.images)}
    results["failures"] = failures
    results["device"] = cfg.device
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

    if cfg.device == "cuda":  # resolve_device has checked CUDA is there
        cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if cfg.device.startswith("cuda"):  # NCCL uses the current device: bind it before the first collective
        import torch

        torch.cuda.set_device(torch.device(cfg.device))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
    return dist.get_rank(), world


def _cfg_dict(cfg: RunConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)
