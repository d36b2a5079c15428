"""Training of identity encoders: ArcFace / CosFace margin softmax, with optional BlendFace augmentation.

The recipe follows BlendFace's released training code (see ``docs/paper-protocol.md`` section 1):
an additive angular margin softmax (ArcFace, s=64, m=0.5; ``loss="cosface"`` gives the additive
cosine margin, m=0.35) over a classifier with L2-normalised weights, SGD (momentum 0.9, weight
decay 5e-4), polynomial decay (power 2) to zero, gradient-norm clipping at 5, and, with probability
``blend_prob`` per sample, the pseudo-swap augmentation: the anchor's inner face is blended onto a
partner (the nearest-landmark image of another identity among K random candidates) and the
result keeps the *anchor's* label; a random horizontal flip follows the blending. ``blend_prob``
0.5 is BlendFace, 0 the paired ArcFace baseline.

Runs on one CPU, one GPU or several processes under ``torchrun`` (DistributedDataParallel, gloo
on CPU, nccl on GPU). The global batch is the same whatever the world size: a seeded
``DistributedSampler`` shuffles per epoch and rank ``r`` takes positions ``r, r+W, ...`` of the
permutation, so the union of the ranks' step-``s`` batches is positions ``[sB, (s+1)B)`` of the
one-process order; the per-sample augmentation draws come from a generator keyed by
``(seed, epoch, index)``, and batch norms use statistics over the global batch (a small all-reduce
batch norm on CPU, ``SyncBatchNorm`` on GPU). Mixed precision (``torch.autocast`` + ``GradScaler``)
on GPU.

Outputs in ``out``: ``checkpoints/step_NNNNNNN.pt`` every ``save_every`` steps and at the end
(model, head, optimizer, scheduler, scaler, RNG states, step, config), ``last.pt`` (the latest),
``backbone.pth`` (the backbone's plain state dict, the layout its encoder factory reads: e.g.
``create_encoder("arcface.r50", weights="RUN/backbone.pth")``, ``create_encoder("dlib.finetuned",
weights=...)``), ``log.jsonl`` and ``log.csv`` (step, epoch, loss, accuracy, lr, blend rate).
``resume`` continues exactly from a full checkpoint.

Entry points: :func:`train` (a :class:`TrainConfig`), ``bench train`` and ``python -m idbench.bench.train``
(this module: the thin torchrun entry point; the code lives in :mod:`idbench.bench.training`, one module
per stage: config, data, loss, arch, loop, export, dist, batchnorm, logs).
"""

from __future__ import annotations

from .training import *  # noqa: F401,F403  (the public training API, re-exported for callers and tests)
from .training import __all__  # noqa: F401


def _main() -> None:  # python -m idbench.bench.train ARGS (torchrun entry point) = bench train ARGS
    import sys

    from .cli.application import main

    sys.argv.insert(1, "train")
    main()


if __name__ == "__main__":
    _main()
