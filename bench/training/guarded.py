"""The guarded run: which validation set a run uses, validation at start and after every epoch, ``best/``, the stop.

``--val`` (``TrainConfig.val``):

* ``auto`` (default): the held-out identities of the data (``DATA/heldout_identities.txt``, written by
  ``bench prepare --split-identities``) when that file exists, else no validation (one line says so);
* ``heldout`` / ``heldout:FILE``: the rows of the identities listed in FILE (default that file);
* ``bin:PATH`` or ``PATH.bin``: an insightface verification set (:mod:`idbench.bench.binset`);
* ``none``: no validation, no guard.

Written by rank 0: ``RUN/validation.jsonl`` (one record per validation: step, epoch, set, auc, accuracy,
pos_mean, neg_mean, neg_std), ``RUN/best/backbone.pth`` + ``RUN/best/validation.json`` (highest AUC so far, the
starting model included). When :class:`.validation.Guard` stops the run, the best weights are restored before
the export, so ``RUN/encoder.toml`` is the best model, never the damaged one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Optional

from idbench.errors import InputError

from ..prepare import read_names
from .export import atomic_save, backbone_state_dict
from .validation import ValSet, bin_valset, heldout_valset, read_records, validate


def _data_folder(cfg) -> Path:
    from .sources import source_kind

    p = source_kind(cfg.data)[1]
    return p.parent if p.suffix == ".rec" else p


def validation_set(cfg, spec) -> Optional[ValSet]:
    """The run's validation set (see the module docstring); ``None``: no validation."""
    from .sources import open_source

    val = (cfg.val or "none").strip()
    if val == "none":
        return None
    if val.startswith("bin:") or val.endswith(".bin"):
        vs = bin_valset(val[4:] if val.startswith("bin:") else val)
        if tuple(vs.images.shape[1:3]) != tuple(spec.input_size):
            raise InputError(f"--val {val}: {vs.images.shape[2]}x{vs.images.shape[1]} crops, the network takes "
                             f"{spec.input_size[1]}x{spec.input_size[0]}")
        return vs
    default = _data_folder(cfg) / "heldout_identities.txt"
    if val == "auto":
        if not default.is_file():
            print(f"note: no validation ({default} not found; --val heldout:FILE or --val bin:PATH to guard the run)",
                  file=sys.stderr)
            return None
        val = "heldout"
    if val == "heldout" or val.startswith("heldout:"):
        names_file = Path(val[8:]) if val.startswith("heldout:") else default
        if not names_file.is_file():
            raise InputError(f"--val {val}: {names_file} not found")
        src = open_source(cfg.data, cfg.alignment or spec.alignment, read_names(names_file))
        if len(src) == 0:
            raise InputError(f"--val {val}: no images of the identities in {names_file}")
        return heldout_valset(src, f"{len(set(src.identities))} held-out identities")
    raise InputError(f"--val {val!r}: expected auto, none, heldout[:FILE], bin:PATH or a .bin file")


def _record(run, epoch: int) -> dict:
    rec = validate(run.net, run.val, run.d.device, run.cfg.val_flip)
    return {"step": run.step, "epoch": epoch, **{k: (float(v) if isinstance(v, float) else v) for k, v in rec.items()}}


def _write(run, rec: dict, best: bool) -> None:
    if not run.d.main:
        return
    with open(run.out / "validation.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    if best:
        (run.out / "best").mkdir(exist_ok=True)
        atomic_save(backbone_state_dict(run.arch.module), run.out / "best" / "backbone.pth")
        (run.out / "best" / "validation.json").write_text(json.dumps(rec, indent=2))


def _line(rec: dict, best: bool) -> str:
    return (f"validation step {rec['step']} ({rec['set']}): AUC {rec['auc']:.4f}, accuracy {rec['accuracy']:.4f}, "
            f"same {rec['pos_mean']:.3f}, different {rec['neg_mean']:.3f} +- {rec['neg_std']:.3f}"
            + (" (best)" if best else ""))


def start_validation(run, fresh: bool) -> None:
    """Validate the starting model (a fresh run), or keep the log up to the resumed step."""
    if run.val is None:
        return
    if run.d.main:
        kept = read_records(run.out / "validation.jsonl", run.step) if not fresh else []
        (run.out / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    if fresh:
        rec = _record(run, 0)
        best = run.guard.update(rec)
        _write(run, rec, best)
        if run.d.main:
            print(_line(rec, best), file=sys.stderr)


def check_validation(run, write: Callable[[str], None]) -> Optional[str]:
    """Validate after an epoch; the guard's stop message, or None to go on."""
    rec = _record(run, run.step // run.steps_per_epoch)
    best = run.guard.update(rec)
    _write(run, rec, best)
    if run.d.main:
        write(_line(rec, best))
    return run.guard.stop_reason(rec)


def restore_best(run) -> None:
    """Load ``RUN/best/backbone.pth`` into the network (after a guard stop, before the export)."""
    import torch

    run.d.barrier()
    state = torch.load(run.out / "best" / "backbone.pth", map_location="cpu", weights_only=True)
    run.arch.module.load_state_dict(state)
