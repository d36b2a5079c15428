"""What a training run writes: full checkpoints (exact resume) and the exported ``backbone.pth``.

``checkpoints/step_NNNNNNN.pt`` every ``save_every`` steps and at the end (model, head, optimizer,
scheduler, scaler, RNG states, step, config), ``last.pt`` (a copy of the latest) and ``backbone.pth``:
the backbone's plain state dict, the layout its encoder factory reads through :mod:`idbench.checkpoints`
(``create_encoder("arcface.r50", weights="RUN/backbone.pth")``, ``create_encoder("dlib.finetuned", ...)``).
Writes are atomic (temporary file, then rename), so an interrupted run never leaves half a checkpoint.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Dict

import numpy as np
import torch
from torch import nn

from idbench.errors import InputError

CHECKPOINT_FORMAT = "idbench.train"
CHECKPOINT_VERSION = 1


def rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


def backbone_state_dict(module: nn.Module) -> Dict[str, torch.Tensor]:
    """Plain state dict of the backbone (no wrappers, prefixes or preprocessing buffers), on CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_run(out: Path, state: dict, step: int, keep: int) -> None:
    """Write the full checkpoint of ``step``, ``last.pt``, the backbone export; keep the ``keep`` newest."""
    ckpts = out / "checkpoints"
    numbered = ckpts / f"step_{step:07d}.pt"
    atomic_save(state, numbered)
    shutil.copyfile(numbered, out / ".last.pt.tmp")
    os.replace(out / ".last.pt.tmp", out / "last.pt")
    atomic_save(state["model"], ckpts / f"step_{step:07d}.backbone.pth")
    atomic_save(state["model"], out / "backbone.pth")
    if keep > 0:
        for p in sorted(ckpts.glob("step_*.pt"))[:-keep]:
            p.unlink(missing_ok=True)
            p.with_name(p.name[:-3] + ".backbone.pth").unlink(missing_ok=True)


def load_checkpoint(path: os.PathLike) -> dict:
    """A full training checkpoint written by :func:`save_run`.

    ``weights_only=False`` on purpose, and only here: the file holds RNG states (numpy's and Python's
    are tuples of Python objects) and was written by a run of this code into its own ``--out`` folder,
    so it is trusted like the run itself. Weights from anywhere else (``--init``, encoder files) go through
    :func:`idbench.checkpoints.read_state_dict` and its one trust switch.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an idbench training checkpoint")
    return ckpt
