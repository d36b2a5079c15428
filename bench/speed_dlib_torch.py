"""Throughput of dlib's ResNet: the torch port's fused inference path, its eager module, dlib's own call.

All three run in the same process on the same batch of 150x150 chips (real dlib chips from
``../shared/data/faces`` when present, else random pixels: the cost does not depend on content),
interleaved ``--repeats`` times (the machine may be shared); each one's best round is reported.

    .venv/bin/python -m idbench.bench.speed_dlib_torch [--batch 64] [--repeats 3] [--device cpu|cuda] [--threads 2]

* ``fused``: ``enc.embed`` = :class:`~idbench.encoders.dlib_resnet.DlibResNetInference` (affine layers and
  input scaling folded into the convolutions, channels-last, oneDNN convolution+add+ReLU in one call);
* ``eager``: ``enc.forward_tensor`` = the differentiable module, as ``embed`` ran before;
* ``dlib``: ``compute_face_descriptor`` once per chip.

``--threads`` sets torch's CPU threads (default 2, the size of the shared CI machine). Besides wall
faces/s it prints CPU-seconds per face (user+system of this process), less sensitive to other load.
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
    net = dlib.face_recognition_model_v1(str(enc.weights_path))

    def fused():
        enc.embed(chips, normalise=False)
        sync()

    def eager():
        with torch.inference_mode():
            enc.forward_tensor(enc.to_tensor(chips)).cpu()
        sync()

    def native():
        for c in chips:
            net.compute_face_descriptor(c)

    runs = {"torch port, fused (embed)": fused, "torch port, eager module": eager,
            "dlib compute_face_descriptor": native}
    for fn in runs.values():  # warm-up (allocations, kernel selection)
        fn() if fn is not native else net.compute_face_descriptor(chips[0])
    best = {k: (float("inf"), float("inf")) for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
    n = len(chips)
    print(f"batch of {n} chips 150x150, best of {args.repeats} interleaved rounds; torch threads "
          f"{torch.get_num_threads()}, device {args.device}; dlib {dlib.__version__} (CUDA: {bool(dlib.DLIB_USE_CUDA)})")
    for k, (wall, cpu) in best.items():
        print(f"{k:30s} {n / wall:8.1f} faces/s  ({wall * 1000:6.0f} ms; {cpu / n * 1000:6.1f} CPU-ms/face)")
    f, e, d = (n / best[k][0] for k in runs)
    print(f"fused / eager: {f / e:.2f}x   fused / dlib: {f / d:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
