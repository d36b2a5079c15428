"""Controlled pseudo-swaps that change one attribute family at a time (attribute decomposition).

From the same *source* (the image whose identity is kept) and *partner* (another identity, the
nearest-landmark partner of the BlendFace pseudo-swap), each variant changes one family only:

* ``skin``: skin colour only. The source is recoloured in OpenCV float Lab to the partner's face
  statistics (:func:`~idbench.swapper.blend.color_transfer`) and composited back onto the source
  inside its own face mask (soft, :func:`~idbench.swapper.blend.blend_mask`); no geometry change,
  every pixel outside the face mask is the source's.
* ``outside``: hair, ears, neck and background from the partner, the whole face kept. The source is
  warped onto the partner frame (the full swap's 68-point similarity) and its face region (jaw hull
  and raised brows) pasted with its own colours; the feather lies outside the face mask, so every
  pixel inside it is the warped source.
* ``shape``: face outline only. A thin-plate-spline warp of the source image moves its jaw line
  (landmarks 0-16) onto the partner's jaw, mapped into the source frame by the similarity that
  aligns the partner's inner landmarks (17-67) with the source's; the inner landmarks and the image
  border stay fixed, no pixel comes from the partner.
* ``inner``: the inner face only (brows, eyes, nose, mouth: hull of landmarks 17-67) on the
  partner's face, recoloured to the partner's face skin: the blend of the full swap with the
  ``inner`` region of :mod:`idbench.regions`.
* ``full``: the BlendFace pseudo-swap itself (:class:`~idbench.swapper.blend.BlendSwapper`, frame mode,
  region ``face``): the swap of the bias analysis.

Every variant is a deterministic function of its inputs (``seed`` is only recorded); bad input
raises :class:`~idbench.swapper.types.SwapError` with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from idbench.align import arcface_matrix, similarity_transform
from idbench.errors import InputError, UnknownNameError
from idbench.faces import Face, landmarks68_to_5
from idbench.regions import MaskFn, region_mask_fn

from .blend import BlendSwapper, _affine_points, _kernel_for, _warp, blend_mask, color_transfer, composite
from .checks import MIN_FACE_PX, checked_pair
from .pair import PairSwapper
from .types import SwapResult

__all__ = ["VARIANTS", "VariantSpec", "VariantSwapper", "make_variant", "tps_warp", "partner_jaw"]


@dataclass(frozen=True)
class VariantSpec:
    name: str
    changes: str  # the attribute family taken from the partner
    frame: str  # "source" or "partner": whose image geometry the output has
    build: Callable[..., SwapResult]


def _checked(source_image, source_face, partner_image, partner_face, min_face):
    return checked_pair(source_image, source_face, partner_image, partner_face, min_face, other="partner")


def _frame_kernel(lm68: np.ndarray) -> int:
    """The blend kernel of the full swap in a frame where this face is (the paper's 11 px at 112)."""
    scale = float(np.sqrt(abs(np.linalg.det(arcface_matrix(landmarks68_to_5(lm68))[:, :2]))))
    return _kernel_for(scale)


def _face_with(face: Optional[Face], lm68: np.ndarray) -> Face:
    """A face record with these 68 landmarks (box = their bounds, 5 points derived from them)."""
    lm = np.asarray(lm68, np.float32)
    score = face.score if face is not None else 1.0
    det = face.detector if face is not None else "variant"
    return Face(np.r_[lm.min(0), lm.max(0)].astype(np.float32), score, landmarks68_to_5(lm), lm, None, det)


def _skin(src, s_lm, prt, p_lm, s_face, p_face, fn: MaskFn) -> Tuple[np.ndarray, np.ndarray, Face]:
    ms, mp = fn(src, s_lm), fn(prt, p_lm)
    m = blend_mask(ms, _frame_kernel(s_lm))
    return composite(color_transfer(src, prt, ms, mp), src, m), m, _face_with(s_face, s_lm)


def _feather_outward(mask: np.ndarray, k: int) -> np.ndarray:
    """1 on the mask, a Gaussian fall-off of about k/2 px outside it (the seam lies outside)."""
    import cv2

    k = int(k) | 1
    grown = cv2.dilate((mask > 0).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(grown.astype(np.float32), (k, k), 0)
    return np.maximum((mask > 0).astype(np.float32), np.clip(soft, 0, 1))


def _outside(src, s_lm, prt, p_lm, s_face, p_face, fn: MaskFn) -> Tuple[np.ndarray, np.ndarray, Face]:
    h, w = prt.shape[:2]
    m = similarity_transform(s_lm, p_lm)  # the full swap's geometry: source onto the partner frame
    warped, valid = _warp(src, m, (w, h))
    lm = _affine_points(m, s_lm)
    keep = _feather_outward(fn(warped, lm), _frame_kernel(lm)) * valid
    return composite(warped, prt, keep), keep, _face_with(p_face, lm)


def tps_warp(image: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, step: int = 4) -> np.ndarray:
    """Thin-plate-spline warp moving ``src_pts`` to ``dst_pts`` (Bookstein 1989), same image size.

    The backward map x -> T(x) (``T(dst_i) = src_i`` exactly) is solved in closed form with the
    kernel r^2 log r, evaluated on a grid every ``step`` px, upsampled bilinearly and applied with
    ``cv2.remap`` (bilinear, border reflected).
    """
    import cv2

    d, s = np.asarray(dst_pts, np.float64), np.asarray(src_pts, np.float64)
    n = len(d)
    scale = max(image.shape[:2])
    dn, sn = d / scale, s / scale  # unit-size coordinates keep the system well conditioned

    def kern(a, b):
        r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.where(r2 > 0, 0.5 * r2 * np.log(np.maximum(r2, 1e-300)), 0.0)

    p = np.c_[np.ones(n), dn]
    lhs = np.zeros((n + 3, n + 3))
    lhs[:n, :n], lhs[:n, n:], lhs[n:, :n] = kern(dn, dn), p, p.T
    coef = np.linalg.solve(lhs, np.r_[sn, np.zeros((3, 2))])
    h, w = image.shape[:2]
    gy, gx = np.mgrid[0:h + step:step, 0:w + step:step].astype(np.float64)
    g = np.c_[gx.ravel(), gy.ravel()] / scale
    mapped = (kern(g, dn) @ coef[:n] + np.c_[np.ones(len(g)), g] @ coef[n:]) * scale
    mx = mapped[:, 0].reshape(gx.shape).astype(np.float32)
    my = mapped[:, 1].reshape(gx.shape).astype(np.float32)
    size = (gx.shape[1] * step, gx.shape[0] * step)
    mx = cv2.resize(mx, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    my = cv2.resize(my, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _border_points(h: int, w: int) -> np.ndarray:
    xs, ys = np.linspace(0, w - 1, 5), np.linspace(0, h - 1, 5)
    pts = [(x, y) for x in xs for y in (0, h - 1)] + [(x, y) for y in ys[1:-1] for x in (0, w - 1)]
    return np.array(pts, np.float64)


def partner_jaw(s_lm: np.ndarray, p_lm: np.ndarray) -> np.ndarray:
    """The partner's jaw (0-16) in the source frame: the similarity aligning its inner landmarks
    (17-67) with the source's removes pose, scale and position, so only the outline differs."""
    m = similarity_transform(p_lm[17:68], s_lm[17:68])
    return _affine_points(m, p_lm[0:17])


def _shape(src, s_lm, prt, p_lm, s_face, p_face, fn: MaskFn) -> Tuple[np.ndarray, np.ndarray, Face]:
    h, w = src.shape[:2]
    new_lm = s_lm.copy()
    new_lm[0:17] = partner_jaw(s_lm, p_lm)
    fixed = _border_points(h, w)
    out = tps_warp(src, np.r_[s_lm, fixed], np.r_[new_lm, fixed])
    changed = (np.abs(out.astype(np.int16) - src.astype(np.int16)).max(-1) > 0).astype(np.float32)
    return out, changed, _face_with(s_face, new_lm)


@lru_cache(maxsize=16)
def _mask_fn(region) -> MaskFn:
    return region_mask_fn(region)  # cached: a parsing region loads its network once


@lru_cache(maxsize=16)
def _blender(region, seed: int, min_face: float) -> BlendSwapper:
    return BlendSwapper(mode="frame", seed=seed, region=region, min_face=min_face)


def _blend_variant(region: str):
    """The BlendFace pseudo-swap itself (:class:`BlendSwapper`, frame mode) blending ``region``."""
    def build(source_image, source_face, partner_image, partner_face, seed=None, mask=None,
              min_face=MIN_FACE_PX, provenance=None) -> SwapResult:
        sw = _blender(mask or region, seed or 0, float(min_face))
        return sw.swap(source_image, source_face, partner_image, partner_face, provenance=provenance)
    return build


def _own_variant(fn_body):
    def build(source_image, source_face, partner_image, partner_face, seed=None, mask=None,
              min_face=MIN_FACE_PX, provenance=None) -> SwapResult:
        src, s_lm, prt, p_lm = _checked(source_image, source_face, partner_image, partner_face, min_face)
        fn = _mask_fn(mask or "face")
        img, m, face = fn_body(src, s_lm, prt, p_lm, source_face, partner_face, fn)
        return SwapResult(img, m.astype(np.float32), dict(provenance or {}), face)
    return build


VARIANTS: Dict[str, VariantSpec] = {v.name: v for v in (
    VariantSpec("skin", "skin colour (Lab statistics of the face)", "source", _own_variant(_skin)),
    VariantSpec("outside", "hair, ears, neck, background", "partner", _own_variant(_outside)),
    VariantSpec("shape", "face outline (jaw line)", "source", _own_variant(_shape)),
    VariantSpec("inner", "face skin, outline, hair, background (inner features kept)", "partner",
                _blend_variant("inner")),
    VariantSpec("full", "BlendFace pseudo-swap: hair, head shape, skin colour, background", "partner",
                _blend_variant("face")),
)}


def make_variant(name: str, source_image, source_face: Optional[Face], partner_image,
                 partner_face: Optional[Face], seed: Optional[int] = None,
                 mask: Optional[object] = None, min_face: float = MIN_FACE_PX,
                 provenance: Optional[dict] = None) -> SwapResult:
    """Build one controlled pseudo-swap (see the module doc); raises :class:`SwapError` for bad input.

    ``mask``: a face region of :mod:`idbench.regions` (``"face"``, ``"inner"``, ``"parsing:PATH"``) or a
    callable ``(image, lm68)``: the face mask of ``skin``/``outside``, the blend mask of
    ``full``/``inner`` (None = each variant's own: ``face``, and ``inner`` for the inner variant).
    ``result.face`` is the face in the output's coordinates.
    """
    if name not in VARIANTS:
        raise UnknownNameError("variant", name, VARIANTS)
    spec = VARIANTS[name]
    prov = {"swapper": f"variant:{name}", "variant": name, "changes": spec.changes, "frame": spec.frame}
    prov.update(provenance or {})
    if seed is not None:
        prov.setdefault("seed", seed)
    return spec.build(source_image, source_face, partner_image, partner_face, seed=seed, mask=mask,
                      min_face=min_face, provenance=prov)


class VariantSwapper(PairSwapper):
    """One variant as a pipeline swapper (:class:`~idbench.swapper.base.PairSwapper`): planned,
    cached by content, re-detected and embedded like any swap. Name ``variant:<name>``."""

    def __init__(self, variant: str, partner: str = "nearest-landmark", k: int = 100, seed: int = 0,
                 region: Optional[str] = None):
        if variant not in VARIANTS:
            raise UnknownNameError("variant", variant, VARIANTS)
        if region is not None and not isinstance(region, str):
            raise InputError("VariantSwapper: region must be a region name (face, inner, parsing:PATH)")
        super().__init__(partner, k, seed)
        self.variant, self.region, self.name = variant, region, f"variant:{variant}"

    @property
    def build_in_workers(self) -> bool:  # a parsing network stays in the calling process
        return not (self.region or "").startswith("parsing:")

    def params(self) -> Dict[str, object]:
        return {**super().params(), "variant": self.variant, "region": self.region or "default"}

    def swap(self, source_image, source_face, target_image, target_face) -> SwapResult:
        return make_variant(self.variant, source_image, source_face, target_image, target_face, seed=self.seed,
                            mask=self.region)
