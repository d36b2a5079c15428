"""The one checkpoint reader: every torch loader (encoders, estimators, face parsing, training) reads through it.

:func:`read_state_dict` turns a checkpoint file into a flat ``{name: tensor}`` dict: ``torch.load(weights_only=True)``
first; a file that pickles whole objects is read only behind one explicit trust switch (``allow_pickle=True`` or
``IDBENCH_ALLOW_PICKLE=1``); the usual containers (``{'state_dict': ...}``, ``{'model': ...}``, DDP ``module.``,
``torch.compile``'s ``_orig_mod.``) are unwrapped. :func:`load_state_dict_checked` loads it strictly into a module
with one-line :class:`~idbench.errors.WeightsFormatError` reasons (missing/unexpected keys, shape mismatch, NaN).
:func:`read_torchscript` loads a TorchScript model (a program, not data) only behind the same switch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Tuple, Union

if TYPE_CHECKING:  # torch is imported by the functions: importing this module stays torch-free
    import torch
    from torch import nn

from .errors import WeightsFormatError, WeightsNotFoundError

__all__ = ["read_checkpoint", "read_state_dict", "read_torchscript", "load_state_dict_checked"]


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _allow_pickle(allow_pickle: Optional[bool]) -> bool:
    if allow_pickle is not None:
        return allow_pickle
    return os.environ.get("IDBENCH_ALLOW_PICKLE", "") not in ("", "0", "false", "no")


# 'state_dict_backbone': arcface_torch's training checkpoint (checkpoint_gpu_0.pt)
_CONTAINER_KEYS = ("state_dict_backbone", "state_dict", "model", "backbone", "model_state_dict", "net", "ema")
_STRIP_PREFIXES = ("module.", "_orig_mod.", "backbone.", "model.")


def _select(obj, key: str, path: Path):
    """The ``key`` entry of a checkpoint holding several nets (Deep3DFaceRecon's ``net_recon``)."""
    import torch

    if isinstance(obj, Mapping) and key in obj:
        return obj[key]
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj  # already the bare state dict
    entries = ", ".join(map(str, obj))[:200] if isinstance(obj, Mapping) else type(obj).__name__
    raise WeightsFormatError(f"{path}: checkpoint has no '{key}' entry (entries: {entries})")


def _unwrap(obj, path: Path) -> Dict[str, torch.Tensor]:
    """A checkpoint object -> a flat ``{name: tensor}`` dict."""
    import torch
    from torch import nn

    for _ in range(4):  # nested containers, e.g. {'model': {'state_dict': ...}}
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj and isinstance(obj[k], (Mapping, nn.Module))),
                     None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        kind = type(obj).__name__
        raise WeightsFormatError(f"{path}: holds a {kind}, not a state dict of tensors")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = ", ".join(list(map(str, obj))[:6])
        raise WeightsFormatError(f"{path}: holds no tensors (top-level keys: {keys}); not a model checkpoint")
    changed = True
    while changed:  # DDP 'module.', torch.compile '_orig_mod.', wrappers saved whole
        changed = False
        for prefix in _STRIP_PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                changed = True
    return tensors


def _check_regular(path: Path, hint: str = "") -> None:
    """A weight file must exist and be a regular file: a FIFO, device or socket is never opened."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is None or stat.S_ISDIR(mode):
        raise WeightsNotFoundError(f"weight file {path} does not exist{hint}")
    if not stat.S_ISREG(mode):
        raise WeightsFormatError(f"{path}: not a regular file (a FIFO, device or socket); not opened")


def read_checkpoint(path: Union[str, os.PathLike], origin: str = "", allow_pickle: Optional[bool] = None):
    """Load a PyTorch file as plain data (tensors, numbers, strings, lists, dicts) on the CPU.

    ``torch.load(weights_only=True)`` runs no code from the file; a file that pickles Python objects is
    refused unless ``allow_pickle`` (or ``IDBENCH_ALLOW_PICKLE=1``; the argument wins when given) says it
    is trusted. A special file (FIFO, device, socket) is never opened. Raises :class:`WeightsNotFoundError`
    for a missing file and :class:`WeightsFormatError` (one line) for anything that cannot be read.
    """
    import torch

    path = Path(path)
    hint = f"; get it again from {origin}" if origin else ""
    _check_regular(path, hint)
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        raise WeightsFormatError(f"{path}: empty file{hint}")
    if head.lstrip()[:1] in (b"<", b"{") or head.startswith(b"version https://git-lfs"):
        what = "a Git LFS pointer" if head.startswith(b"version https://git-lfs") else "text (an HTML/JSON page?)"
        raise WeightsFormatError(f"{path}: is {what}, not a PyTorch checkpoint{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        msg = str(e)
        if "Weights only load failed" in msg or "weights_only" in msg:
            if not _allow_pickle(allow_pickle):
                raise WeightsFormatError(
                    f"{path}: pickles Python objects, not just tensors (torch.load(weights_only=True) refused it); "
                    f"if you trust the file, pass allow_pickle=True (or set IDBENCH_ALLOW_PICKLE=1) "
                    f"or re-save its state_dict()") from None
            try:
                return torch.load(path, map_location="cpu", weights_only=False)
            except Exception as e2:  # noqa: BLE001
                raise WeightsFormatError(f"{path}: cannot be unpickled ({_first_line(e2)}){hint}") from None
        truncated = any(s in msg for s in ("central directory", "truncated", "unexpected EOF", "Ran out of input",
                                          "failed reading", "EOF"))
        reason = "truncated or corrupt" if truncated else "not a PyTorch checkpoint"
        raise WeightsFormatError(f"{path}: {reason} ({type(e).__name__}: {_first_line(e)}){hint}") from None


def read_torchscript(path: Union[str, os.PathLike], device: str = "cpu", allow_pickle: Optional[bool] = None):
    """A TorchScript model (``torch.jit.save``), loaded with ``torch.jit.load`` only behind the one trust switch.

    TorchScript is a program, not data: PyTorch's security policy asks that such a model be treated as code
    from its provider. So, like a pickling checkpoint, it is refused in one line unless ``allow_pickle`` (or
    ``IDBENCH_ALLOW_PICKLE=1``) says the file is trusted; nothing in it runs before that. Raises
    :class:`WeightsNotFoundError` for a missing file and :class:`WeightsFormatError` for anything else."""
    import torch

    path = Path(path)
    _check_regular(path)
    if not _allow_pickle(allow_pickle):
        raise WeightsFormatError(f"{path}: a TorchScript model is a program that runs when loaded (PyTorch's "
                                 f"security policy: treat it as code); if you trust the file, set "
                                 f"IDBENCH_ALLOW_PICKLE=1 (or pass allow_pickle=True), or export it to ONNX")
    try:
        return torch.jit.load(str(path), map_location=device)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError / ValueError for non-TorchScript files
        raise WeightsFormatError(f"{path}: not a TorchScript model ({_first_line(e)}); a plain state dict needs a "
                                 f"registered architecture, not a contract") from None


def read_state_dict(path: Union[str, os.PathLike], origin: str = "", allow_pickle: Optional[bool] = None,
                    key: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint as a flat ``{name: tensor}`` dict on the CPU.

    Loads through :func:`read_checkpoint` (``weights_only=True``; pickled objects only behind the one trust
    switch); ``key`` picks one entry of a file holding several nets (``"net_recon"``).
    """
    path = Path(path)
    obj = read_checkpoint(path, origin, allow_pickle)
    return _unwrap(_select(obj, key, path) if key else obj, path)


def _ignorable_missing(key: str) -> bool:
    return key.endswith("num_batches_tracked")  # absent in checkpoints from old PyTorch; BN fills it in


def load_state_dict_checked(module: nn.Module, state: Mapping[str, torch.Tensor], what: str,
                            path: Union[str, os.PathLike] = "checkpoint", hint: str = "",
                            optional: Tuple[str, ...] = ()) -> nn.Module:
    """``module.load_state_dict(state, strict=True)`` with one-line :class:`WeightsFormatError` reasons.

    ``what`` names the expected model in messages ("an IResNet-50 (r50)"); ``hint`` is appended to the
    key-mismatch message (e.g. what the file looks like instead). Keys starting with one of
    ``optional`` may be absent from the file (they keep the module's values), e.g. a vestigial head.
    """
    import torch

    expected = module.state_dict()
    optional = tuple(optional)
    missing = [k for k in expected if k not in state and not _ignorable_missing(k)
               and not (optional and k.startswith(optional))]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        example = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise WeightsFormatError(
            f"{path}: not {what} checkpoint: {len(missing)} missing and {len(unexpected)} unexpected keys "
            f"(e.g. {example}){hint}")
    for k, v in expected.items():
        if k in state and tuple(state[k].shape) != tuple(v.shape):
            raise WeightsFormatError(
                f"{path}: '{k}' has shape {tuple(state[k].shape)} but {what} needs {tuple(v.shape)}")
    for k, v in state.items():  # a sum is NaN/inf if any element is (and is much cheaper than isfinite().all())
        if v.is_floating_point() and v.numel() and not torch.isfinite(v.sum()):
            raise WeightsFormatError(f"{path}: '{k}' contains NaN or infinite values (corrupt checkpoint)")
    on_meta = any(t.is_meta for t in expected.values())
    if on_meta:  # a skeleton built on the meta device takes the file's tensors as they are (float32)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        for k, v in expected.items():
            if k not in state:  # only ignorable keys can be absent here
                state[k] = torch.zeros(v.shape, dtype=v.dtype)
    else:  # keys the file may lack (ignorable, optional) keep the module's own values
        state = {**{k: v for k, v in expected.items() if k not in state}, **state}
    try:
        module.load_state_dict(state, strict=True, assign=on_meta)
    except RuntimeError as e:
        raise WeightsFormatError(f"{path}: does not fit {what} ({_first_line(e)})") from None
    left = [k for k, t in module.state_dict().items() if t.is_meta]
    if left:
        raise WeightsFormatError(f"{path}: {len(left)} tensors of {what} were not filled (e.g. '{left[0]}')")
    return module
