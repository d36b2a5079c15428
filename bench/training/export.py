"""What a training run writes: full checkpoints (exact resume), ``backbone.pth`` and the encoder export.

``checkpoints/step_NNNNNNN.pt`` every ``save_every`` steps and at the end (model, head, optimizer,
scheduler, scaler, RNG states, step, config), ``last.pt`` (a copy of the latest) and ``backbone.pth``:
the backbone's plain state dict, the layout its encoder factory reads through :mod:`idbench.checkpoints`
(``create_encoder("arcface.r50", weights="RUN/backbone.pth")``, ``create_encoder("dlib.finetuned", ...)``;
for a converted ONNX graph: ``--init`` of a later run of the same ``--arch``).
At the end of every run, whatever the architecture: ``encoder.onnx`` (the backbone, NCHW input) and
``encoder.toml``, a contract file with the weights path relative to it, so
``bench run --encoders RUN/encoder.toml`` benchmarks the result (:func:`export_encoder`).
Writes are atomic (temporary file, then rename), so an interrupted run never leaves half a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import torch
from torch import nn

from idbench.atomic import atomic_file, atomic_write
from idbench.errors import IdbenchError, InputError

CHECKPOINT_FORMAT = "idbench.train"
CHECKPOINT_VERSION = 2  # 2: RNG states as plain tensors/lists (weights_only=True loads it)


def rng_state() -> dict:
    """Every RNG state as plain tensors, numbers and lists, so a checkpoint loads with ``weights_only=True``."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    st = {"torch": torch.get_rng_state(),
          "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, np.int64)), "pos": int(pos),
                    "has_gauss": int(has_gauss), "gauss": float(gauss)},
          "python": {"version": int(version), "state": list(py_state), "gauss": py_gauss}}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    npst, py = st["numpy"], st["python"]
    if isinstance(npst, dict):
        npst = (npst["kind"], np.asarray(npst["key"], np.int64).astype(np.uint32), npst["pos"], npst["has_gauss"],
                npst["gauss"])
    np.random.set_state(npst)
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]) if isinstance(py, dict) else py)
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


def backbone_state_dict(module: nn.Module) -> Dict[str, torch.Tensor]:
    """Plain state dict of the backbone (no wrappers, prefixes or preprocessing buffers), on CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def atomic_save(obj, path: Path) -> None:
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def save_run(out: Path, state: dict, step: int, keep: int) -> None:
    """Write the full checkpoint of ``step``, ``last.pt``, the backbone export; keep the ``keep`` newest."""
    ckpts = out / "checkpoints"
    numbered = ckpts / f"step_{step:07d}.pt"
    atomic_save(state, numbered)
    with atomic_file(out / "last.pt") as tmp:
        shutil.copyfile(numbered, tmp)
    atomic_save(state["model"], ckpts / f"step_{step:07d}.backbone.pth")
    atomic_save(state["model"], out / "backbone.pth")
    if keep > 0:
        for p in sorted(ckpts.glob("step_*.pt"))[:-keep]:
            p.unlink(missing_ok=True)
            p.with_name(p.name[:-3] + ".backbone.pth").unlink(missing_ok=True)


def load_checkpoint(path: os.PathLike) -> dict:
    """A full training checkpoint written by :func:`save_run`, read as data through the one checkpoint reader.

    Checkpoints hold only tensors, numbers, strings, lists and dicts (RNG states included), so they load with
    ``torch.load(weights_only=True)``: a ``--resume`` file (or a ``last.pt`` in a received run folder) runs no
    code. Older checkpoints (version 1, numpy RNG state pickled) need the trust switch ``IDBENCH_ALLOW_PICKLE=1``.
    """
    from idbench.checkpoints import read_checkpoint

    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an idbench training checkpoint")
    return ckpt


class _Embedding(nn.Module):
    """The backbone as exported: N x D float32 whatever shape its output has."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone(x)
        return y.reshape(y.shape[0], -1).float()


def _export_onnx(backbone: nn.Module, spec, path: Path) -> float:
    """Write the ONNX graph to ``path`` (in place only once checked); return the largest difference to the torch
    module on two random blobs (relative to the largest output value), checked with onnxruntime."""
    with atomic_file(path) as tmp:
        return _write_onnx(backbone, spec, tmp)


def _write_onnx(backbone: nn.Module, spec, tmp: Path) -> float:
    import onnxruntime as ort

    h, w = spec.input_size
    dev = next(backbone.parameters()).device  # compared on the CPU (no TF32 convolutions), then moved back
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, h, w, generator=g) * 255  # the blob of random RGB pixels under the spec's scaling
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    blob = (pixels.flip(1) if spec.colour == "BGR" else pixels).sub(mean).div(torch.tensor(spec.std).view(1, 3, 1, 1))
    was = backbone.training
    net = _Embedding(backbone.cpu()).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings of the TorchScript-based exporter
            if any(isinstance(m, torch.jit.ScriptModule) for m in backbone.modules()):
                net = torch.jit.trace(net, blob[:1])  # the exporter cannot trace into a TorchScript submodule itself
            torch.onnx.export(net, blob[:1], str(tmp), opset_version=17, dynamo=False, input_names=["input"],
                              output_names=["embedding"], dynamic_axes={"input": {0: "n"}, "embedding": {0: "n"}})
            ref = net(blob).numpy()
    except Exception as e:  # noqa: BLE001 - an operator the exporter does not support
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise IdbenchError(f"cannot export {spec.name} to ONNX ({first}); backbone.pth is saved") from None
    finally:
        backbone.to(dev).train(was)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"input": blob.numpy()})[0]
    diff = float(np.abs(got - ref).max() / max(1.0, float(np.abs(ref).max())))
    if not diff < 1e-4:
        raise IdbenchError(f"the ONNX export of {spec.name} differs from the torch module by {diff:.2e} (relative); "
                           f"backbone.pth is saved")
    return diff


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) else repr(v)


def export_encoder(out: Path, backbone: nn.Module, spec, name: str, about: str) -> Path:
    """``out/encoder.onnx`` and the contract ``out/encoder.toml`` describing it (the spec's crop, colour order
    and mean/std; NCHW; output ``embedding``); returns the contract's path."""
    onnx_path = out / "encoder.onnx"
    diff = _export_onnx(backbone, spec, onnx_path)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    keys = {"name": name, "weights": onnx_path.name, "backend": "onnx", "input_size": list(spec.input_size),
            "layout": "NCHW", "colour": spec.colour, "mean": list(spec.mean), "std": list(spec.std),
            "alignment": spec.alignment, "output": "embedding", "embedding_size": int(spec.embedding_size),
            "l2_normalised": bool(spec.l2_normalised), "sha256": sha,
            "licence": spec.licence or "weights: yours (bench train)", "paper": spec.paper,
            "description": f"{about}; torch state dict: backbone.pth; this ONNX export equals the torch module "
                           f"to {diff:.1e} (relative)"}
    text = "# written by bench train: benchmark with `bench run --encoders THIS_FILE`\n" + "".join(
        f"{k} = {_toml(v)}\n" for k, v in keys.items())
    path = out / "encoder.toml"
    atomic_write(path, text)
    return path
