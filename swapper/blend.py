"""The ``blend`` pseudo-swapper: BlendFace's inner-face blending (paper-protocol.md, section 1.2).

For an anchor image (the *source*: its inner face is kept, and so is its identity label) and a
partner image of another identity (the *target*: everything outside the inner face), the recipe is

1. partner: among K random images of other identities, the one with the nearest normalised
   68-point landmarks (:func:`choose_partners`);
2. inner-face masks of both faces (landmark hull by default, or a face-parsing backend);
3. colour transfer in OpenCV float Lab: the whole source image is shifted/scaled so that the mean
   and std of its face pixels match those of the target's face pixels (:func:`color_transfer`);
4. blend mask: intersection of the two masks; rejected when its area is not larger than half of the
   larger mask; Gaussian blur, divide by max, keep only pixels equal to 1 (an erosion), blur again,
   divide by max (:func:`blend_mask`);
5. ``out = M * recoloured_source + (1 - M) * target`` (:func:`composite`).

Two geometries:

* ``mode="crop"`` (the paper's): both faces are aligned to the 112x112 ArcFace template (5-point
  similarity, as ``idbench.align.arcface_crop``) and blended there; the output is the 112 crop.
  The blur kernel is the paper's 11x11.
* ``mode="frame"``: the source image is warped onto the target face with a similarity transform
  estimated from the 68 landmarks (Umeyama) and blended in the full target frame (only a region
  around the target face is touched); the kernel is scaled with the face size so the seam width
  matches the crop recipe.

Bad input is reported per item: :class:`SwapError` (an :class:`~idbench.errors.IdbenchError`) from
the single-pair functions, :class:`SwapFailure` records from :meth:`BlendSwapper.swap_batch`
(:meth:`idbench.swapper.PairSwapper.swap_batch`, shared with the learned swappers).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from idbench.align import arcface_matrix, similarity_transform
from idbench.errors import IdbenchError, InputError
from idbench.faces import Face
from idbench.regions import BROW_RAISE, MaskFn, face_mask, region_mask_fn

from .base import PairSwapper, plan_partners
from .parsing import PARSING_INNER, ParsingMask, _bisenet  # noqa: F401  (the former home of the network)

CROP_SIZE = 112
PAPER_KERNEL = 11  # Gaussian kernel of the paper's recipe at 112 px (OpenCV default sigma 2.0)
MIN_FACE_PX = 32
JAW_SLACK = 0.1  # how far (share of the face size) jaw points may lie outside the image


class SwapError(IdbenchError, ValueError):
    """One pair could not be swapped; ``reason`` is a short, stable phrase (also in the message)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class SwapResult:
    """A pseudo-swap. ``image``: uint8 RGB; ``mask``: float32 blend mask in [0, 1], same H x W."""

    image: np.ndarray
    mask: np.ndarray
    provenance: Dict[str, object] = field(default_factory=dict)
    face: Optional[Face] = None  # the target face in ``image``'s coordinates (align any encoder's crop with it)
    ok: bool = True

    @property
    def identity(self):
        return self.provenance.get("identity")


@dataclass
class SwapFailure:
    """A pair (or anchor) that could not be swapped, with the reason and what is known of it."""

    reason: str
    provenance: Dict[str, object] = field(default_factory=dict)
    ok: bool = False


# --- partner choice --------------------------------------------------------------------------------

def normalise_landmarks(landmarks68: np.ndarray, align: bool = False) -> np.ndarray:
    """N x 68 x 2 -> N x 68 x 2: translated to the centroid and scaled to unit RMS distance.

    With ``align=True`` each face is first mapped by its own ArcFace 5-point similarity transform
    (rotation/scale/translation removed the way the crops are aligned), so the distance compares
    face shapes in the template frame.
    """
    p = np.asarray(landmarks68, np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (68, 2):
        raise InputError(f"landmarks68 must be N x 68 x 2, got {p.shape}")
    if align:
        from idbench.faces import landmarks68_to_5

        out = np.empty_like(p)
        for i, q in enumerate(p):
            m = arcface_matrix(landmarks68_to_5(q))
            out[i] = q @ m[:, :2].T + m[:, 2]
        p = out
    c = p - p.mean(axis=1, keepdims=True)
    rms = np.empty(len(c))
    for a in range(0, len(c), 1 << 16):  # in row blocks: no second N x 68 x 2 temporary (1.1 GB at 1M faces)
        rms[a:a + (1 << 16)] = np.sqrt((c[a:a + (1 << 16)] ** 2).sum(axis=2).mean(axis=1))
    c /= np.maximum(rms, 1e-12)[:, None, None]
    return c


def sample_candidates(identities: Sequence, k: int = 100, seed: int = 0) -> List[np.ndarray]:
    """For each row, up to ``k`` distinct random rows of *other* identities (seeded, O(k) per row)."""
    ids = np.asarray([str(x) for x in identities])
    n = len(ids)
    rng = np.random.default_rng(seed)
    order = np.argsort(ids, kind="stable")  # rows grouped by identity
    uniq, start, count = np.unique(ids[order], return_index=True, return_counts=True)
    group = {u: (s, c) for u, s, c in zip(uniq, start, count)}
    out = []
    for i in range(n):
        s, c = group[ids[i]]
        pool = n - c
        if pool <= 0 or k <= 0:
            out.append(np.zeros(0, np.int64))
            continue
        pos = rng.choice(pool, size=min(k, pool), replace=False).astype(np.int64)
        pos[pos >= s] += c  # skip over this identity's block
        out.append(order[pos])
    return out


def choose_partners(landmarks68: np.ndarray, identities: Sequence, k: int = 100, seed: int = 0,
                    align: bool = False, return_candidates: bool = False):
    """For each anchor, the nearest-landmark image among ``k`` random images of other identities.

    Landmarks are normalised by :func:`normalise_landmarks` and compared by L2 distance over all
    68 points. Returns ``(partner, distance)``: int64 (N,) and float64 (N,); an anchor with no image
    of another identity gets partner -1 and distance inf. With ``return_candidates=True`` the list
    of candidate rows per anchor is returned as a third element (for checks).
    """
    lm = np.asarray(landmarks68, np.float64)
    ids = list(identities)
    if len(lm) != len(ids):
        raise InputError(f"{len(lm)} landmark sets but {len(ids)} identities")
    n = len(ids)
    partner = np.full(n, -1, np.int64)
    dist = np.full(n, np.inf)
    cands = sample_candidates(ids, k, seed) if n else []
    if n:
        flat = normalise_landmarks(lm, align=align).reshape(n, -1)
        for i, c in enumerate(cands):
            if len(c):
                d = np.linalg.norm(flat[c] - flat[i], axis=1)
                j = int(np.argmin(d))
                partner[i], dist[i] = int(c[j]), float(d[j])
    return (partner, dist, cands) if return_candidates else (partner, dist)


# --- masks ----------------------------------------------------------------------------------------

def landmark_mask(landmarks68: np.ndarray, shape: Tuple[int, int], brow_raise: float = BROW_RAISE) -> np.ndarray:
    """The ``face`` region's mask (:func:`idbench.regions.face_mask`): jaw hull plus raised brows."""
    return face_mask(landmarks68, shape, brow_raise)


def resolve_mask_fn(mask: Union[str, MaskFn, None] = "face", device: str = "cpu",
                    brow_raise: float = BROW_RAISE) -> MaskFn:
    """A region name (:mod:`idbench.regions`: ``face``, the default, ``inner``, ``parsing:<path>``;
    ``landmarks`` is the former name of ``face``) or any callable ``(image, lm68)``."""
    return region_mask_fn(mask, device, brow_raise)


def blend_mask(intersection: np.ndarray, ksize: int = PAPER_KERNEL) -> np.ndarray:
    """Blur, normalise by max, keep only pixels equal to 1 (erosion), blur, normalise (float32 0..1)."""
    import cv2

    k = int(ksize) | 1
    m = cv2.GaussianBlur(np.asarray(intersection, np.float32), (k, k), 0)
    mx = float(m.max())
    if mx <= 0:
        raise SwapError("empty mask", "the two inner-face masks do not overlap")
    m = m / mx
    m[m < 1.0 - 1e-6] = 0.0  # "== 1" up to float rounding of the kernel sum
    m[m > 0] = 1.0
    m = cv2.GaussianBlur(m, (k, k), 0)
    mx = float(m.max())
    if mx <= 0:
        raise SwapError("empty mask", "the overlap vanished after erosion (face too small for the kernel)")
    return np.clip(m / mx, 0.0, 1.0).astype(np.float32)


def color_transfer(source: np.ndarray, target: np.ndarray, source_mask: np.ndarray,
                   target_mask: np.ndarray) -> np.ndarray:
    """Reinhard transfer in OpenCV float Lab: the whole source recoloured to the target's face stats.

    Mean/std per channel over ``source_mask > 0`` pixels of the source and ``target_mask > 0`` of
    the target. Returns uint8 RGB (rounded, clipped).
    """
    import cv2

    s = cv2.cvtColor(source.astype(np.float32) * np.float32(1 / 255.0), cv2.COLOR_RGB2Lab)
    t = cv2.cvtColor(target.astype(np.float32) * np.float32(1 / 255.0), cv2.COLOR_RGB2Lab)
    ms, mt = (np.asarray(source_mask) > 0).astype(np.uint8), (np.asarray(target_mask) > 0).astype(np.uint8)
    if not ms.any() or not mt.any():
        raise SwapError("empty mask", "no face pixels for the colour statistics")
    # masked statistics by OpenCV (no copies of the masked pixels: 2.5x faster per training sample)
    s_mu, s_sd = (v.ravel() for v in cv2.meanStdDev(s, mask=ms))
    t_mu, t_sd = (v.ravel() for v in cv2.meanStdDev(t, mask=mt))
    gain = t_sd / np.maximum(s_sd, 1e-6)
    out = s * gain.astype(np.float32) + (t_mu - s_mu * gain).astype(np.float32)
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def composite(recoloured_source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``M * source + (1 - M) * target`` as uint8 (rounded): exactly the target where M == 0 and
    exactly the source where M == 1."""
    m = np.asarray(mask, np.float32)[..., None]
    out = m * recoloured_source.astype(np.float32) + (1.0 - m) * target.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --- input checks ---------------------------------------------------------------------------------

def prepare_image(image) -> np.ndarray:
    """uint8 RGB H x W x 3 from an array (grayscale accepted and converted) or a path."""
    from idbench.imageio import read_image, to_rgb_uint8

    if isinstance(image, (str, os.PathLike)):
        try:
            return read_image(image)
        except IdbenchError as e:
            raise SwapError("unreadable image", str(e)) from None
    if not isinstance(image, np.ndarray):
        raise SwapError("bad image", f"expected a numpy array or a path, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise SwapError("bad image", f"images must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 2)):
        return to_rgb_uint8(image, bgr=False)  # grayscale: replicated to 3 channels
    if image.ndim == 3 and image.shape[2] == 4:
        return to_rgb_uint8(image, bgr=False)
    if image.ndim != 3 or image.shape[2] != 3:
        raise SwapError("bad image", f"expected H x W x 3 (or grayscale H x W), got shape {image.shape}")
    if min(image.shape[:2]) == 0:
        raise SwapError("bad image", "empty image")
    return image


def face_landmarks(image: np.ndarray, face: Optional[Face], min_face: float = MIN_FACE_PX) -> np.ndarray:
    """The face's 68 landmarks after the per-item checks (no face, outside the image, too small)."""
    if face is None:
        raise SwapError("no face", "no face was detected in this image")
    lm = face.landmarks68
    if lm is None:
        from idbench.landmarks import landmarks68

        lm = landmarks68(image, face.box)
    lm = np.asarray(lm, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise SwapError("bad landmarks", f"expected 68 x 2 finite landmarks, got {lm.shape}")
    h, w = image.shape[:2]
    size = float(np.ptp(lm, axis=0).max())
    # inner points (brows, eyes, nose, mouth) must be inside; the jaw line may run off a tight crop by
    # up to ``JAW_SLACK`` of the face size (those pixels are simply not blended)
    slack = np.where(np.arange(68) < 17, JAW_SLACK * size, 0.0)
    out = ((lm[:, 0] < -slack) | (lm[:, 1] < -slack) | (lm[:, 0] > w - 1 + slack) | (lm[:, 1] > h - 1 + slack))
    if out.any():
        raise SwapError("landmarks outside the image",
                        f"{int(out.sum())} of 68 points outside a {w}x{h} image (x {lm[:, 0].min():.0f}.."
                        f"{lm[:, 0].max():.0f}, y {lm[:, 1].min():.0f}..{lm[:, 1].max():.0f})")
    if size < min_face:
        raise SwapError("face too small", f"landmark extent {size:.0f} px < {min_face:.0f} px")
    return lm


def _affine_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def transform_face(face: Face, m: np.ndarray) -> Face:
    """The same face record after a 2 x 3 affine warp of its image (box = bounds of the moved corners)."""
    f = lambda p: None if p is None else _affine_points(m, np.asarray(p, np.float64)).astype(np.float32)
    x1, y1, x2, y2 = [float(v) for v in face.box]
    c = f(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]))
    return Face(np.r_[c.min(0), c.max(0)].astype(np.float32), face.score, f(face.landmarks5), f(face.landmarks68),
                f(face.dlib5), face.detector)


def _warp(image: np.ndarray, m: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Warp an image and its validity mask (1 where the warp reads inside the image) to (w, h)."""
    import cv2

    w, h = size
    out = cv2.warpAffine(image, m.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # black, as arcface_crop
    ones = np.ones(image.shape[:2], np.float32)
    valid = cv2.warpAffine(ones, m.astype(np.float64), (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return out, (valid > 0.999).astype(np.float32)


# --- the blend itself -----------------------------------------------------------------------------

def blend_aligned(source: np.ndarray, source_lm: np.ndarray, target: np.ndarray, target_lm: np.ndarray,
                  mask_fn: Optional[MaskFn] = None, ksize: int = PAPER_KERNEL, min_overlap: float = 0.5,
                  source_valid: Optional[np.ndarray] = None, target_valid: Optional[np.ndarray] = None
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Blend two images already in the same frame (e.g. two 112 ArcFace crops). -> (image, mask).

    ``*_lm`` are the 68 landmarks in that frame; ``*_valid`` optional 0/1 maps of pixels that came
    from inside the original images (outside them nothing is blended). Raises :class:`SwapError`
    when the mask intersection is not larger than ``min_overlap`` times the larger mask.
    """
    if source.shape != target.shape:
        raise SwapError("shape mismatch", f"source {source.shape} vs target {target.shape}")
    mask_fn = mask_fn or resolve_mask_fn("face")
    ms = np.clip(np.asarray(mask_fn(source, source_lm), np.float32), 0, 1)
    mt = np.clip(np.asarray(mask_fn(target, target_lm), np.float32), 0, 1)
    if source_valid is not None:
        ms = ms * source_valid
    if target_valid is not None:
        mt = mt * target_valid
    inter = ms * mt
    a_s, a_t, a_i = float(ms.sum()), float(mt.sum()), float(inter.sum())
    if not a_i > min_overlap * max(a_s, a_t):
        raise SwapError("overlap too small",
                        f"mask intersection {a_i:.0f} px is not larger than {min_overlap:g} x the larger "
                        f"mask ({max(a_s, a_t):.0f} px)")
    m = blend_mask(inter, ksize)
    recol = color_transfer(source, target, ms, mt)
    return composite(recol, target, m), m


def align_crop(image: np.ndarray, face: Face, landmarks68: np.ndarray, size: int = CROP_SIZE):
    """ArcFace-template crop, with the 68 landmarks and the validity map moved into the crop."""
    lm5 = face.landmarks5
    if lm5 is None:
        from idbench.faces import landmarks68_to_5

        lm5 = landmarks68_to_5(landmarks68)
    m = arcface_matrix(np.asarray(lm5, np.float32), size)
    crop, valid = _warp(image, m, (size, size))
    return crop, _affine_points(m, landmarks68), valid, m


def _with_lm68(face: Face, lm68: np.ndarray) -> Face:
    if face.landmarks68 is not None:
        return face
    return Face(face.box, face.score, face.landmarks5, np.asarray(lm68, np.float32), face.dlib5, face.detector)


def _kernel_for(scale: float) -> int:
    """The paper's 11-px kernel at 112 px, rescaled to a frame where the face is 1/scale as large."""
    k = int(round(PAPER_KERNEL / max(scale, 1e-6)))
    return max(3, k | 1)


def checked_pair(source_image, source_face: Optional[Face], other_image, other_face: Optional[Face],
                 min_face: float = MIN_FACE_PX, other: str = "target"):
    """Both images as RGB uint8 with their 68 landmarks; a :class:`SwapError` says which side failed."""
    out = []
    for role, image, face in (("source", source_image, source_face), (other, other_image, other_face)):
        img = prepare_image(image)
        try:
            out += [img, face_landmarks(img, face, min_face)]
        except SwapError as e:
            raise SwapError(e.reason, f"{role}: {e.detail}") from None
    return tuple(out)


def blend_pair(source_image, source_face: Optional[Face], target_image, target_face: Optional[Face],
               mode: str = "crop", mask: Union[str, MaskFn, None] = "face", size: int = CROP_SIZE,
               min_overlap: float = 0.5, min_face: float = MIN_FACE_PX, seed: Optional[int] = None,
               provenance: Optional[dict] = None, mask_fn: Optional[MaskFn] = None) -> SwapResult:
    """Put the source's inner face on the target (``mode`` "crop" or "frame"); raises :class:`SwapError`."""
    src, s_lm, tgt, t_lm = checked_pair(source_image, source_face, target_image, target_face, min_face)
    fn = mask_fn or resolve_mask_fn(mask)
    prov = dict(provenance or {})
    prov.setdefault("swapper", "blend")
    prov.setdefault("mode", mode)
    if seed is not None:
        prov.setdefault("seed", seed)
    if mode == "crop":
        sc, slm, sv, _ = align_crop(src, source_face, s_lm, size)
        tc, tlm, tv, tm = align_crop(tgt, target_face, t_lm, size)
        img, m = blend_aligned(sc, slm, tc, tlm, fn, _kernel_for(CROP_SIZE / size), min_overlap, sv, tv)
        face = transform_face(_with_lm68(target_face, t_lm), tm)
        return SwapResult(img, m, prov, face)
    if mode == "frame":
        return _blend_frame(src, s_lm, tgt, t_lm, target_face, fn, min_overlap, prov)
    raise InputError(f"unknown blend mode {mode!r}: use 'crop' or 'frame'")


def _blend_frame(src, s_lm, tgt, t_lm, target_face, fn, min_overlap, prov) -> SwapResult:
    h, w = tgt.shape[:2]
    lm5 = target_face.landmarks5 if target_face is not None and target_face.landmarks5 is not None else None
    if lm5 is None:
        from idbench.faces import landmarks68_to_5

        lm5 = landmarks68_to_5(t_lm)
    scale = float(np.sqrt(abs(np.linalg.det(arcface_matrix(np.asarray(lm5, np.float32))[:, :2]))))
    k = _kernel_for(scale)
    # region of the target that can change: the target's face hull (with raised brows) plus the seams
    up = t_lm[17:27].mean(0) - t_lm[8]
    pts = np.concatenate([t_lm, t_lm[17:27] + up * 0.5])
    pad = 2 * k
    x0, y0 = np.floor(pts.min(0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    roi = (slice(y0, y1), slice(x0, x1))
    m = similarity_transform(s_lm, t_lm)
    m[:, 2] -= (x0, y0)  # into ROI coordinates
    s_roi, s_valid = _warp(src, m, (x1 - x0, y1 - y0))
    s_lm_roi = _affine_points(m, s_lm)
    t_lm_roi = t_lm - (x0, y0)
    img_roi, m_roi = blend_aligned(s_roi, s_lm_roi, tgt[roi], t_lm_roi, fn, k, min_overlap, s_valid, None)
    out = tgt.copy()
    out[roi] = img_roi
    mask = np.zeros((h, w), np.float32)
    mask[roi] = m_roi
    prov.setdefault("kernel", k)
    return SwapResult(out, mask, prov, _with_lm68(target_face, t_lm))


def swap_frames(source_image, source_face: Face, target_image, target_face: Face, seed: Optional[int] = None,
                **kw) -> SwapResult:
    """Full-frame pseudo-swap (source inner face onto the target frame); raises :class:`SwapError`."""
    return blend_pair(source_image, source_face, target_image, target_face, mode="frame", seed=seed, **kw)


def swap_crops(source_image, source_face: Face, target_image, target_face: Face, seed: Optional[int] = None,
               **kw) -> SwapResult:
    """112x112 ArcFace-crop pseudo-swap (the paper's geometry); raises :class:`SwapError`."""
    return blend_pair(source_image, source_face, target_image, target_face, mode="crop", seed=seed, **kw)


# --- the batched swapper --------------------------------------------------------------------------

class BlendSwapper(PairSwapper):
    """The one pseudo-swap (BlendFace's recipe), used by the bias analysis, ``bench swap`` and
    ``--swappers blend`` with the same parameters:

    * ``partner``: ``nearest-landmark`` (nearest normalised 68 landmarks among ``k`` seeded random
      images of other identities, the paper's) or ``random`` (one seeded random image of another identity);
    * ``mode``: ``frame`` (the source warped onto the full target frame by a 68-point similarity) or
      ``crop`` (both faces as 112x112 ArcFace crops, the paper's geometry; the output is the crop);
    * ``region``: the blended face region (:mod:`idbench.regions`: ``face`` = jaw hull + raised brows,
      ``inner``, ``parsing:<BiSeNet .pth>``); ``mask`` is its former name;
    * ``k``, ``seed``; ``min_overlap`` (share of the larger mask the intersection must exceed) and
      ``min_face`` (px of landmark extent) reject a pair with a reason.

    Every source row is swapped onto its partner (the target) and keeps its own identity label.
    """

    name = "blend"

    @property
    def build_in_workers(self) -> bool:  # a parsing network stays in the calling process
        return not str(self.params().get("region", "")).startswith("parsing:")

    def __init__(self, mode: str = "frame", k: int = 100, seed: int = 0, region: Union[str, MaskFn, None] = "face",
                 partner: str = "nearest-landmark", size: int = CROP_SIZE, align_partners: bool = False,
                 min_overlap: float = 0.5, min_face: float = MIN_FACE_PX, device: str = "cpu",
                 brow_raise: float = BROW_RAISE, mask: Union[str, MaskFn, None] = None):
        super().__init__(partner, k, seed)
        if mode not in ("crop", "frame"):
            raise InputError(f"unknown blend mode {mode!r}: use 'crop' or 'frame'")
        region = mask if mask is not None else region
        self.mode, self.size = mode, int(size)
        self.align_partners, self.min_overlap, self.min_face = align_partners, min_overlap, min_face
        self.region = region if isinstance(region, str) or region is None else getattr(region, "__name__", "callable")
        self.mask_name = self.region
        self.mask_fn = resolve_mask_fn(region, device, brow_raise)
        plan_partners([], [], partner)  # an unknown partner rule fails here, before any work

    def params(self) -> Dict[str, object]:
        p = {"partner": self.partner, "mode": self.mode, "region": self.region or "face", "k": self.k,
             "seed": self.seed, "min_overlap": self.min_overlap, "min_face": self.min_face}
        if self.mode == "crop":
            p["size"] = self.size
        if self.align_partners:
            p["align_partners"] = True
        return p

    def swap(self, source_image, source_face: Face, target_image, target_face: Face,
             provenance: Optional[dict] = None) -> SwapResult:
        """One pair; raises :class:`SwapError`."""
        return blend_pair(source_image, source_face, target_image, target_face, mode=self.mode, size=self.size,
                          min_overlap=self.min_overlap, min_face=self.min_face, seed=self.seed,
                          provenance=provenance, mask_fn=self.mask_fn)

    def usable(self, ctx) -> List[bool]:
        """In a run: faces whose landmark extent reaches ``min_face`` (the image-free part of the checks)."""
        return [f.landmarks68 is not None and float(np.ptp(np.asarray(f.landmarks68), axis=0).max()) >= self.min_face
                for f in ctx.table.faces]

    def partners(self, faces: Sequence[Optional[Face]], identities: Sequence) -> Tuple[np.ndarray, np.ndarray]:
        return plan_partners(faces, identities, self.partner, self.k, self.seed, align=self.align_partners)


# --- registry entry -------------------------------------------------------------------------------

from .registry import SwapperSpec, register_swapper  # noqa: E402


@register_swapper(SwapperSpec("blend", "BlendFace pseudo-swap: inner face of an anchor blended onto its "
                              "partner of another identity (Lab colour transfer, soft mask)", "pseudo",
                              params=(("partner", "nearest-landmark | random (default nearest-landmark)"),
                                      ("mode", "frame | crop (default frame)"),
                                      ("region", "face | inner | parsing:<PATH> (default face)"),
                                      ("k", "partner candidates (default 100)"), ("seed", "default: --seed"),
                                      ("mask", "a mask function or parsing:<PATH> replacing region (default none)"),
                                      ("size", "crop size in px"), ("align_partners", "align partners first"),
                                      ("min_overlap", "minimum mask overlap"), ("min_face", "minimum face width px"),
                                      ("brow_raise", "how far the mask reaches above the brows"))))
def _blend_factory(spec, weights, device, **kw):
    return BlendSwapper(device=device, **kw)
