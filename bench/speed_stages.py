"""Faces/s per stage and device: ``python -m idbench.bench.speed --devices cpu,cuda [--limit 48]``.

In one process, on the same decoded images, each row times one stage on one device after a warm-up
call (model loading, kernel selection): *detection* (``dlib-hog``, CPU only; ``mtcnn`` one image per
call and ``--detect-batch`` images per call, with the landmark fits every face gets) and *embedding*
(``--encoder``, default ``dlib``: its batched torch port on the GPU) of the faces MTCNN found, aligned
beforehand. A device that cannot run here gets its rows with the reason ("no CUDA here", or the
one-line error, e.g. an onnxruntime without the CUDA provider) instead of a number.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence

import numpy as np


def _sync(device: str) -> Callable[[], None]:
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    return torch.cuda.synchronize


def _unavailable(device: str) -> Optional[str]:
    """Why ``device`` cannot run here, or None."""
    from idbench.devices import resolve_device
    from idbench.errors import IdbenchError

    try:
        resolve_device(device)
    except IdbenchError:
        return "no CUDA here"
    return None


def _timed(fn: Callable[[], int], device: str):
    """(faces, seconds) of ``fn`` (returns a face count), after one warm-up call."""
    sync = _sync(device)
    fn()
    sync()
    t = time.perf_counter()
    n = fn()
    sync()
    return n, time.perf_counter() - t


def _row(stage: str, what: str, device: str, result) -> str:
    head = f"{stage:10s} {what:26s} {device:7s}"
    if isinstance(result, str):
        return f"{head} {result}"
    n, s = result
    return f"{head} {n / s:8.1f} faces/s  ({n} faces in {s:.2f} s)"


def detection_rows(images: Sequence[np.ndarray], device: str, batch: int) -> List[str]:
    from idbench.detectors import create_detector
    from idbench.errors import IdbenchError

    def per_image(name: str) -> int:
        det = create_detector(name, device)
        return sum(len(det.detect(im)) for im in images)

    def batched() -> int:
        det = create_detector("mtcnn", device)
        return sum(len(f) for i in range(0, len(images), batch) for f in det.detect_batch(images[i:i + batch]))

    why = _unavailable(device)
    hog = _timed(lambda: per_image("dlib-hog"), device) if device == "cpu" else "CPU only (dlib-bin has no CUDA)"
    rows = [_row("detection", "dlib-hog", device, hog)]
    for what, fn in (("mtcnn, 1 image per call", lambda: per_image("mtcnn")),
                     (f"mtcnn, batches of {batch}", batched)):
        try:
            result = why or _timed(fn, device)
        except IdbenchError as e:
            result = str(e)
        rows.append(_row("detection", what, device, result))
    return rows


def embedding_row(crops: np.ndarray, encoder: str, device: str) -> str:
    from idbench.encoders import create_encoder
    from idbench.errors import IdbenchError

    result = _unavailable(device)
    if result is None:
        try:
            enc = create_encoder(encoder, device=device)
            result = _timed(lambda: len(enc.embed(crops)), device)
        except IdbenchError as e:
            result = str(e)
    return _row("embedding", encoder, device, result)


def stage_rows(images: Sequence[np.ndarray], devices: Sequence[str], batch: int, encoder: str) -> List[str]:
    """Every row, the devices side by side per stage; every embedding row embeds the same crops."""
    from idbench.align import align_face
    from idbench.detectors import create_detector
    from idbench.encoders import create_encoder

    rows = [r for d in devices for r in detection_rows(images, d, batch)]
    spec = create_encoder(encoder).spec  # a contract file's too
    found = create_detector("mtcnn").detect_batch(images)
    crops = [align_face(im, f[0], spec.alignment, spec.input_size[0]) for im, f in zip(images, found) if f]
    return rows + [embedding_row(np.stack(crops), encoder, d) for d in devices]
