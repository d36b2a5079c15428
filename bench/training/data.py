"""Training data: prepared crops with the BlendFace pseudo-swap augmentation and horizontal flips.

Every random draw of sample ``i`` comes from a generator keyed by ``(seed, epoch, i)``, so a sample is
augmented the same way in any process, data-loader worker or resumed run.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from idbench.errors import InputError

from ..prepare import PreparedSet


def nearest_partners(landmarks68: np.ndarray, identities: Sequence, k: int = 100, seed: int = 0) -> np.ndarray:
    """For each image, the nearest-landmark image of another identity among ``k`` random candidates.

    :func:`idbench.swapper.blend.choose_partners` (normalised 68-point landmarks, seeded candidate
    draw); ``-1`` where no image of another identity exists.
    """
    from idbench.swapper.blend import choose_partners

    return np.asarray(choose_partners(landmarks68, identities, k, seed)[0], np.int64)


def blend_kernel(size: int) -> int:
    """The paper's 11x11 blur at 112 px, scaled to a crop of ``size`` px (odd)."""
    return max(3, int(round(11 * size / 112.0)) | 1)


class PseudoSwapper:
    """BlendFace's pseudo-swap of two aligned crops (:func:`idbench.swapper.blend.blend_aligned`).

    ``__call__(anchor, anchor_lm, partner, partner_lm, anchor_valid=None, partner_valid=None)`` -> the
    anchor's inner face, recoloured, on the partner (uint8), or ``None`` when the blend is rejected
    (masks overlap too little): the official code then silently keeps the anchor, and so does
    :class:`CropDataset`. ``*_valid``: 0/1 maps of the pixels that lie inside the original photo
    (nothing is blended on a crop's black border). ``mask`` is ``"landmarks"`` (hull of jaw and
    raised brows) or ``"parsing:<BiSeNet .pth>"``.
    """

    def __init__(self, mask: str = "landmarks", min_overlap: float = 0.5):
        self.mask, self.min_overlap = mask, min_overlap
        self._fn = None

    def __getstate__(self):  # the resolved mask function (a closure / network) is rebuilt per process
        return {"mask": self.mask, "min_overlap": self.min_overlap, "_fn": None}

    def __call__(self, anchor, anchor_lm, partner, partner_lm, anchor_valid=None,
                 partner_valid=None) -> Optional[np.ndarray]:
        from idbench.swapper.blend import SwapError, blend_aligned, resolve_mask_fn

        if self._fn is None:
            self._fn = resolve_mask_fn(self.mask)
        try:
            img, _ = blend_aligned(anchor, anchor_lm, partner, partner_lm, self._fn, blend_kernel(anchor.shape[0]),
                                   self.min_overlap, anchor_valid, partner_valid)
        except SwapError:
            return None
        return img


class CropDataset(torch.utils.data.Dataset):
    """Prepared crops with BlendFace augmentation and horizontal flips.

    ``__getitem__(i)`` -> (float tensor 3 x H x W, RGB 0..255; label; 1 if blended else 0). All
    random draws of sample ``i`` come from a generator keyed by ``(seed, epoch, i)``, so a sample
    is augmented the same way in any process, worker or resumed run. Labels are re-numbered
    0..K-1 over ``classes`` (sorted identity names).
    """

    def __init__(self, data: PreparedSet, blend_prob: float = 0.0, k_partners: int = 100, flip: bool = True,
                 seed: int = 0, swapper: Optional[Callable] = None):
        if not 0.0 <= blend_prob <= 1.0:
            raise InputError(f"blend_prob must be in [0, 1], got {blend_prob}")
        self.data = data
        self.classes = sorted(set(data.identities))
        index = {n: i for i, n in enumerate(self.classes)}
        self.labels = np.array([index[n] for n in data.identities], np.int64)
        self.blend_prob = float(blend_prob)
        self.k_partners = int(k_partners)
        self.flip = flip
        self.seed = int(seed)
        self.swapper = swapper if swapper is not None else PseudoSwapper()
        self.epoch = 0
        self._partners: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.blend_prob > 0:
            self.partners(self.epoch)

    def partners(self, epoch: int) -> np.ndarray:
        """The partner of every image for ``epoch`` (a fresh candidate draw per epoch)."""
        if epoch not in self._partners:
            seed = self.seed * 1_000_003 + epoch
            if hasattr(self.data, "cache_path"):  # RecordIO / aligned crops: cached next to the data
                from .landmarks import partner_table

                self._partners = {epoch: partner_table(self.data, self.k_partners, seed)}
            else:
                self._partners = {epoch: nearest_partners(self.data.landmarks, self.data.identities,
                                                          self.k_partners, seed)}
        return self._partners[epoch]

    def sample(self, i: int, epoch: int) -> Tuple[np.ndarray, bool]:
        rng = np.random.default_rng([self.seed, epoch, int(i)])
        u_blend, u_flip = rng.random(2)
        img, valid = self.data.read(i)
        blended = False
        if self.blend_prob > 0 and u_blend < self.blend_prob:
            j = int(self.partners(epoch)[i])
            if j >= 0:
                partner, partner_valid = self.data.read(j)
                out = self.swapper(img, self.data.landmarks[i], partner, self.data.landmarks[j], valid, partner_valid)
                if out is not None:  # None: blend rejected, the anchor stays (as the official code)
                    img, blended = np.asarray(out, np.uint8), True
        if self.flip and u_flip < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img), blended

    def __getitem__(self, i):
        """``i``: a row (augmented for :attr:`epoch`) or an ``(epoch, row)`` pair (what the training loader asks
        for: persistent workers keep their own copy of the dataset, so the epoch travels with the index)."""
        epoch, i = (int(i[0]), int(i[1])) if isinstance(i, (tuple, list)) else (self.epoch, int(i))
        img, blended = self.sample(i, epoch)
        x = torch.from_numpy(img).permute(2, 0, 1).float()
        return x, int(self.labels[i]), int(blended)
