"""Loader throughput: can the augmentation pipeline keep a GPU fed?

``python -m idbench.bench.loader_speed --data DATA [--blend-prob 0.5] [--workers 0,2] [--gpu-steps 5]
[--batch-size 128] [--samples 200]`` prints

* samples/s of one process producing training samples (decode, BlendFace pseudo-swap, flip, tensor), without
  blending and with the given blending probability, and the time of each blending stage;
* samples/s in total through the training ``DataLoader`` (pinned memory on GPU, persistent workers, prefetch) with
  each number of workers;
* the workers needed to feed ``--gpu-steps`` optimiser steps per second of ``--batch-size`` samples
  (``ceil(gpu_steps x batch / samples-per-s of one worker)``).

Numbers depend on the machine and on what else runs on it; the command that produced the README's is there.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import List, Sequence

import numpy as np


def _dataset(data: str, blend_prob: float, alignment: str, seed: int):
    from .training.config import TrainConfig, train_identities
    from .training.data import CropDataset, PseudoSwapper
    from .training.sources import open_source

    src = open_source(data, alignment, train_identities(TrainConfig(data=data, out="")))
    return CropDataset(src, blend_prob, 100, True, seed, PseudoSwapper())


def per_process_rate(ds, rows: Sequence[int], epoch: int = 0) -> float:
    """Samples/s of ``ds[i]`` in this process (partners drawn before the clock starts)."""
    ds.set_epoch(epoch)
    t = time.perf_counter()
    for i in rows:
        ds[int(i)]
    return len(rows) / (time.perf_counter() - t)


def loader_rate(ds, workers: int, batch: int, n_batches: int, pin: bool) -> float:
    """Samples/s through the training DataLoader (``loop.make_loader``), the first batch excluded (start-up)."""
    from .training.loop import make_loader

    ds.set_epoch(0)
    order = np.random.default_rng(0).permutation(len(ds))
    batches = [order[(k * batch) % len(ds):][:batch].tolist() for k in range(n_batches + 1)]
    it = iter(make_loader(ds, batches, workers, pin))
    next(it)
    t = time.perf_counter()
    n = sum(len(x[0]) for x in it)
    return n / (time.perf_counter() - t)


def blend_stages(ds, rows: Sequence[int]) -> dict:
    """Mean milliseconds per sample of: reading both crops, the masks, colour transfer, blur + composite."""
    from idbench.swapper.blend import blend_mask, color_transfer, composite, resolve_mask_fn

    from .training.data import blend_kernel

    partners = ds.partners(0)
    mask_fn = resolve_mask_fn(ds.swapper.mask)
    t = {"read": 0.0, "masks": 0.0, "colour": 0.0, "blur+composite": 0.0}
    n = 0
    for i in rows:
        j = int(partners[i])
        if j < 0:
            continue
        t0 = time.perf_counter()
        a, av = ds.data.read(int(i))
        b, bv = ds.data.read(j)
        t1 = time.perf_counter()
        ms = mask_fn(a, ds.data.landmarks[i]) * (1 if av is None else av)
        mt = mask_fn(b, ds.data.landmarks[j]) * (1 if bv is None else bv)
        t2 = time.perf_counter()
        rec = color_transfer(a, b, ms, mt)
        t3 = time.perf_counter()
        composite(rec, b, blend_mask(ms * mt, blend_kernel(a.shape[0])))
        t4 = time.perf_counter()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[k] += dt
        n += 1
    return {k: 1000 * v / max(n, 1) for k, v in t.items()}


def main(argv: List[str] = None) -> dict:
    from idbench.bench.cli.options import Seed, add_argument  # bench's --seed

    ap = argparse.ArgumentParser(prog="python -m idbench.bench.loader_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="bench prepare folder, rec:DIR or aligned:DIR")
    ap.add_argument("--alignment", default="arcface112")
    ap.add_argument("--blend-prob", type=float, default=0.5)
    ap.add_argument("--workers", default="0,2", help="comma list of DataLoader worker counts to time")
    ap.add_argument("--samples", type=int, default=200, help="samples timed per process measurement")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=4, help="batches timed per DataLoader measurement")
    ap.add_argument("--gpu-steps", type=float, default=5.0, help="optimiser steps per second the GPU could do")
    add_argument(ap, Seed, type=int, default=0)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out: dict = {"per_worker": {}, "loader": {}}
    for p in sorted({0.0, a.blend_prob}):
        ds = _dataset(a.data, p, a.alignment, a.seed)
        rows = np.random.default_rng(a.seed).permutation(len(ds))[:a.samples]
        out["per_worker"][p] = per_process_rate(ds, rows)
        print(f"one process, blend-prob {p}: {out['per_worker'][p]:.0f} samples/s", flush=True)
    ds = _dataset(a.data, 1.0, a.alignment, a.seed)
    out["blend_ms"] = blend_stages(ds, rows[:min(len(rows), 100)])
    print("blending, ms per sample: " + ", ".join(f"{k} {v:.2f}" for k, v in out["blend_ms"].items()))
    ds = _dataset(a.data, a.blend_prob, a.alignment, a.seed)
    for w in [int(x) for x in a.workers.split(",") if x.strip()]:
        out["loader"][w] = loader_rate(ds, w, a.batch_size, a.batches, torch.cuda.is_available())
        print(f"DataLoader, {w} workers, blend-prob {a.blend_prob}: {out['loader'][w]:.0f} samples/s", flush=True)
    need = a.gpu_steps * a.batch_size
    out["workers_needed"] = {p: math.ceil(need / r) for p, r in out["per_worker"].items()}
    for p, n in out["workers_needed"].items():
        print(f"to feed {a.gpu_steps:g} steps/s x {a.batch_size} = {need:.0f} samples/s at blend-prob {p}: "
              f"{n} workers like this machine's")
    return out


if __name__ == "__main__":
    main()
