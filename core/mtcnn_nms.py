"""Per-image NMS for facenet-pytorch's MTCNN, so a face gets the same box in a batch as alone.

facenet-pytorch (2.6.0) keeps the images of a batch apart in its non-maximum suppressions by
shifting each image's boxes by ``image_index * (max coordinate + 1)``. Candidate boxes of faces at
the top or left edge have negative coordinates, so a shifted box of one image can overlap (and
suppress, or be suppressed by) a box of the previous one: measured on ../shared/data/faces,
ben_affleck/01.jpg's box moved 15 px when batched with ben_affleck/02.jpg. :func:`install` swaps
the two batched NMS functions of ``facenet_pytorch.models.utils.detect_face`` for a loop over the
images. With one image the loop makes the very call the originals make (their shift is 0), so
per-image results are unchanged.
"""

from __future__ import annotations

import numpy as np

ORIGINALS: dict = {}  # facenet-pytorch's own functions, once replaced (the tests compare against them)


def _groups(idxs):
    """(image index, positions of its boxes) for each image present."""
    import torch

    for i in torch.unique(idxs).tolist():
        yield i, torch.nonzero(idxs == i).flatten()


def batched_nms(boxes, scores, idxs, threshold: float):
    """torchvision's ``batched_nms``, one image at a time (kept positions, highest score first)."""
    import torch
    from torchvision.ops import nms

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    keep = torch.cat([pos[nms(boxes[pos], scores[pos], threshold)] for _, pos in _groups(idxs)])
    return keep[scores[keep].sort(descending=True, stable=True)[1]]


def batched_nms_numpy(boxes, scores, idxs, threshold: float, method: str):
    """facenet-pytorch's numpy NMS ("Min" overlap in the last stage), one image at a time."""
    import torch
    from facenet_pytorch.models.utils.detect_face import nms_numpy

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    b, s = boxes.cpu().numpy(), scores.cpu().numpy()
    keep = []
    for _, pos in _groups(idxs):
        pos = pos.cpu().numpy()
        keep.append(pos[nms_numpy(b[pos], s[pos], threshold, method)])
    return torch.as_tensor(np.concatenate(keep).astype(np.int64), dtype=torch.long, device=boxes.device)


def install() -> None:
    """Patch facenet-pytorch's detect_face module (once per process)."""
    from facenet_pytorch.models.utils import detect_face

    if ORIGINALS:
        return
    ORIGINALS.update(batched_nms=detect_face.batched_nms, batched_nms_numpy=detect_face.batched_nms_numpy)
    detect_face.batched_nms = batched_nms
    detect_face.batched_nms_numpy = batched_nms_numpy
