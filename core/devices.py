"""Which device a run uses: one resolution for every stage, and never a silent CPU fallback.

:func:`resolve_device` turns ``--device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``) into the device every
stage gets (detector, torch and ONNX encoders, estimators, swappers); :func:`onnx_providers` is the
onnxruntime side of the same rule (CUDA asked for, but no CUDA provider: a one-line error).
``cpu`` imports nothing (a run that needs no torch does not load it).
"""

from __future__ import annotations

from typing import List

from .errors import IdbenchError, InputError


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda[:N]`` (an error when CUDA is unavailable: never a silent CPU fallback) or ``auto``."""
    if device == "cpu":
        return device
    if device != "auto" and not is_cuda(device):
        raise InputError(f"--device takes cpu, cuda, cuda:N or auto, got {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"--device {device} asked for, but CUDA is not available here (use --device cpu or auto)")
    return device


def onnx_providers(device: str) -> List[str]:
    """onnxruntime providers for ``device``; CUDA asked for but not available is an error, not a CPU run."""
    import onnxruntime as ort

    if is_cuda(device):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise IdbenchError(
                f"device {device!r} asked for, but this onnxruntime has no CUDAExecutionProvider (providers: "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
