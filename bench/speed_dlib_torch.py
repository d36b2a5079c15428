"""Throughput: ``dlib.resnet_v1_torch`` (one batched call) vs dlib's per-face ``compute_face_descriptor``.

Both run in the same process on the same batch of 150x150 chips (real dlib chips from
``../shared/data/faces`` when present, else random pixels: the cost does not depend on content).

    .venv/bin/python -m idbench.bench.speed_dlib_torch [--batch 64] [--repeats 3] [--device cpu|cuda] [--threads 2]

dlib is built with its own threading/BLAS choices; ``--threads`` sets torch's CPU threads
(default 2, the size of the shared CI machine). Reported: the best of ``--repeats`` timed runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from idbench.bench.dlib_torch_parity import DEFAULT_FACES, dlib_chips, manifest_paths  # noqa: E402


def make_chips(n: int, faces: Path) -> np.ndarray:
    if (faces / "MANIFEST.csv").is_file():
        chips, _ = dlib_chips(manifest_paths(faces, n))
        if len(chips) == n:
            return chips
    return np.random.default_rng(0).integers(0, 256, (n, 150, 150, 3), dtype=np.uint8)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    args = ap.parse_args(argv)

    import dlib
    import torch

    from idbench.encoders import create_encoder

    torch.set_num_threads(args.threads)
    chips = make_chips(args.batch, args.faces)

    enc = create_encoder("dlib.resnet_v1_torch", device=args.device)
    enc.batch_size = max(enc.batch_size, args.batch)
    sync = torch.cuda.synchronize if enc.device.type == "cuda" else (lambda: None)

    def run_torch():
        enc.embed(chips, normalise=False)
        sync()

    net = dlib.face_recognition_model_v1(str(enc.weights_path))

    def run_dlib():
        for c in chips:
            net.compute_face_descriptor(c)

    run_torch()  # warm-up (allocations, kernel selection)
    net.compute_face_descriptor(chips[0])
    t_torch = best_time(run_torch, args.repeats)
    t_dlib = best_time(run_dlib, args.repeats)

    n = len(chips)
    fps_torch, fps_dlib = n / t_torch, n / t_dlib
    print(f"batch of {n} chips 150x150, best of {args.repeats}; torch threads {torch.get_num_threads()}, "
          f"device {args.device}; dlib {dlib.__version__} (CUDA: {bool(dlib.DLIB_USE_CUDA)})")
    print(f"torch port (batched):           {fps_torch:8.1f} faces/s  ({t_torch * 1000:.0f} ms)")
    print(f"dlib compute_face_descriptor:   {fps_dlib:8.1f} faces/s  ({t_dlib * 1000:.0f} ms, one call per face)")
    print(f"ratio torch / dlib:             {fps_torch / fps_dlib:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
