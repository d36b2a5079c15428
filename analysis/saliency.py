"""Where does an identity encoder look? Saliency maps of the similarity between a face and a reference.

Every map explains the cosine similarity ``cos(E(x), r)`` between the embedding of an aligned face
crop ``x`` (the encoder's own alignment, :func:`idbench.align.align_face`) and a reference
embedding ``r`` (another photo of the person, or by default the crop's own clean embedding, so
the map shows what the encoder needs to recognise this face as itself). Maps are H x W float32
arrays on the crop's pixel grid.

* :func:`occlusion` -- any :class:`~idbench.encoders.Encoder`, dlib's native one included: a grey
  (128) square slides over the crop and each pixel gets the mean drop of the similarity over the
  patches that covered it (Zeiler & Fergus, ECCV 2014). Batched through ``encoder.embed``.
* :func:`vanilla_gradient` -- :class:`~idbench.encoders.TorchEncoder` only: ``|d cos / d x|``,
  maximum over the colour channels (Simonyan et al., ICLRW 2014).
* :func:`integrated_gradients` -- TorchEncoder: ``(x - x0) * mean_a grad(x0 + a (x - x0))`` summed
  over channels, grey baseline ``x0`` (Sundararajan et al., ICML 2017); signed.
* :func:`grad_cam` -- TorchEncoder with a convolutional layer: ``relu(sum_k w_k A_k)`` with
  ``w_k`` the spatial mean of ``d cos / d A_k`` (Selvaraju et al., ICCV 2017), upsampled
  bilinearly. The layer is the ``layer`` argument (a module or a dotted name inside
  ``encoder.module``), else the encoder's ``gradcam_layer`` attribute, else the last residual
  stage (``blocks[-1]``, ``layer4``) or the last ``Conv2d``.

:func:`inner_face_mask` marks the inner face (brows, eyes, nose, mouth) of a crop from its
landmarks; :func:`inner_ratio` is the share of ``|saliency|`` inside it
(:func:`idbench.analysis.saliency_inner_ratio`); :func:`overlay` paints a map over the crop.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from idbench.align import alignment_matrix  # noqa: F401  (the one crop geometry; re-exported: its former home)
from idbench.errors import InputError
from idbench.faces import Face

METHODS = ("occlusion", "gradient", "integrated", "gradcam")
GREY = 128.0

__all__ = ["METHODS", "saliency", "occlusion", "vanilla_gradient", "integrated_gradients", "grad_cam",
           "overlay", "inner_face_mask", "inner_ratio", "alignment_matrix", "crop_face", "encoder_saliency_summary",
           "save_png"]


# ---------------------------------------------------------------------------------------------
# crops and masks
# ---------------------------------------------------------------------------------------------

def crop_face(image: np.ndarray, face: Face, encoder) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(aligned crop for ``encoder``, the face's landmarks in crop pixels: 68 x 2, or 5 x 2 without 68)."""
    from idbench.recipe_face import encoder_crop, recipe_face

    spec = encoder.spec
    face = recipe_face(image, face, spec.box_detector)
    crop = encoder_crop(image, face, spec)
    h, w = spec.input_size
    m = alignment_matrix(image, face, spec.alignment, h, spec.fit, w if w < h else None)  # as encoder_crop
    lm = face.landmarks68 if face.landmarks68 is not None else face.landmarks5
    pts = None if lm is None else np.asarray(lm, np.float64) @ m[:, :2].T + m[:, 2]
    return crop, pts


def inner_face_mask(crop_size: Union[int, Tuple[int, int]], landmarks_in_crop: np.ndarray,
                    margin: float = 0.0) -> np.ndarray:
    """The ``inner`` region (:func:`idbench.regions.inner_mask`) of a crop: hull of points 17-67."""
    from idbench.regions import inner_mask

    shape = (crop_size, crop_size) if isinstance(crop_size, (int, np.integer)) else tuple(crop_size)
    return inner_mask(landmarks_in_crop, shape, margin)


def inner_ratio(saliency_map: np.ndarray, mask: np.ndarray) -> float:
    """Share of ``|saliency|`` inside ``mask``: :func:`idbench.analysis.saliency_inner_ratio`."""
    try:
        from idbench.analysis import saliency_inner_ratio
    except ImportError:  # pragma: no cover - the metric library predates this module
        saliency_inner_ratio = _inner_ratio_local
    return float(saliency_inner_ratio(saliency_map, mask))


def _inner_ratio_local(saliency_map, mask) -> float:  # pragma: no cover - fallback only
    s = np.abs(np.asarray(saliency_map, np.float64))
    return float((s * np.asarray(mask, np.float64)).sum() / s.sum())


# ---------------------------------------------------------------------------------------------
# saliency methods
# ---------------------------------------------------------------------------------------------

def _check_crop(encoder, crop: np.ndarray) -> np.ndarray:
    c = np.asarray(crop)
    if c.ndim == 4 and c.shape[0] == 1:
        c = c[0]
    return encoder.check_faces(c[None])[0]


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _reference(encoder, crop: np.ndarray, reference: Optional[np.ndarray]) -> np.ndarray:
    if reference is None:
        return _unit(encoder.embed(crop[None])[0])
    r = np.asarray(reference, np.float64).reshape(-1)
    if r.shape[0] != encoder.spec.embedding_size:
        raise InputError(f"reference has {r.shape[0]} values, {encoder.spec.name} embeds to "
                         f"{encoder.spec.embedding_size}")
    return _unit(r)


def _grid(n: int, patch: int, stride: int) -> List[int]:
    pos = list(range(0, max(n - patch, 0) + 1, max(stride, 1)))
    if pos[-1] != max(n - patch, 0):
        pos.append(max(n - patch, 0))
    return pos


def occlusion(encoder, crop: np.ndarray, reference: Optional[np.ndarray] = None, patch: Optional[int] = None,
              stride: Optional[int] = None, fill: float = GREY, batch_size: int = 64) -> np.ndarray:
    """Occlusion sensitivity: per pixel, the mean drop of ``cos(E(x), r)`` when a grey square covers it.

    ``patch`` defaults to 1/5 of the crop side, ``stride`` to half the patch (9 x 9 = 81 occluded
    copies on a square crop; the last row/column of patches is aligned with the border so every
    pixel is covered). Positive values: hiding the pixel lowers the similarity. Works with any
    encoder (only ``embed`` is called), in batches of ``batch_size``.
    """
    crop = _check_crop(encoder, crop)
    h, w = crop.shape[:2]
    own = _unit(encoder.embed(crop[None])[0])
    r = own if reference is None else _reference(encoder, crop, reference)
    p = int(patch or max(1, round(min(h, w) / 5)))
    s = int(stride or max(1, p // 2))
    base = float(own @ r)
    boxes = [(y, x) for y in _grid(h, p, s) for x in _grid(w, p, s)]
    drops = np.zeros(len(boxes))
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i:i + batch_size]
        batch = np.repeat(crop[None], len(chunk), axis=0)
        for k, (y, x) in enumerate(chunk):
            batch[k, y:y + p, x:x + p] = np.uint8(np.clip(round(fill), 0, 255))
        emb = encoder.embed(batch)
        drops[i:i + len(chunk)] = base - emb.astype(np.float64) @ r
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (y, x), d in zip(boxes, drops):
        total[y:y + p, x:x + p] += d
        count[y:y + p, x:x + p] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def _need_torch(encoder, method: str):
    if not hasattr(encoder, "forward_tensor") or not hasattr(encoder, "module"):
        raise InputError(f"{method} saliency needs a TorchEncoder (differentiable forward_tensor); "
                         f"{encoder.spec.name} is a {type(encoder).__name__}: use method='occlusion'")
    import torch

    return torch


def _similarity(torch, encoder, x, r):
    e = encoder.forward_tensor(x)
    e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (e * torch.as_tensor(r, dtype=e.dtype, device=e.device)).sum(1)


def _input(torch, encoder, crop: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(crop)).to(encoder.device).permute(2, 0, 1)[None].float()


def vanilla_gradient(encoder, crop: np.ndarray, reference: Optional[np.ndarray] = None) -> np.ndarray:
    """``max_c |d cos(E(x), r) / d x_c|`` per pixel (TorchEncoder only)."""
    torch = _need_torch(encoder, "gradient")
    crop = _check_crop(encoder, crop)
    r = _reference(encoder, crop, reference)
    x = _input(torch, encoder, crop).requires_grad_(True)
    with torch.enable_grad():
        sim = _similarity(torch, encoder, x, r).sum()
        (g,) = torch.autograd.grad(sim, x)
    return g[0].abs().amax(0).detach().float().cpu().numpy()


def integrated_gradients(encoder, crop: np.ndarray, reference: Optional[np.ndarray] = None, steps: int = 32,
                         baseline: float = GREY, batch_size: int = 16) -> np.ndarray:
    """Integrated gradients of ``cos(E(x), r)`` from a uniform ``baseline`` image, summed over channels
    (signed; the channel-summed attributions add up to cos(x) - cos(baseline) up to the Riemann error).
    Midpoint rule with ``steps`` points, ``batch_size`` points per backward pass. TorchEncoder only."""
    torch = _need_torch(encoder, "integrated")
    crop = _check_crop(encoder, crop)
    r = _reference(encoder, crop, reference)
    x = _input(torch, encoder, crop)
    x0 = torch.full_like(x, float(baseline))
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    with torch.enable_grad():
        for i in range(0, steps, batch_size):
            a = alphas[i:i + batch_size].view(-1, 1, 1, 1)
            xs = (x0 + a * (x - x0)).requires_grad_(True)
            sim = _similarity(torch, encoder, xs, r).sum()
            (g,) = torch.autograd.grad(sim, xs)
            total += g.sum(0, keepdim=True)
    ig = (x - x0) * total / steps
    return ig[0].sum(0).detach().float().cpu().numpy()


def _resolve_layer(encoder, layer):
    from torch import nn

    module = encoder.module
    layer = layer if layer is not None else getattr(encoder, "gradcam_layer", None)
    if isinstance(layer, nn.Module):
        return layer
    if isinstance(layer, str):
        try:
            return module.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in module.named_modules() if n]
            raise InputError(f"{encoder.spec.name}: no layer {layer!r} "
                             f"(some layers: {', '.join(names[-8:])})") from None
    for name in ("blocks", "layer4", "features"):
        sub = getattr(module, name, None)
        if isinstance(sub, nn.Sequential) and len(sub):
            return sub[-1]
        if isinstance(sub, nn.Module) and not isinstance(sub, nn.Sequential):
            return sub
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise InputError(f"{encoder.spec.name}: no convolutional layer for Grad-CAM; pass layer=")
    return convs[-1]


def grad_cam(encoder, crop: np.ndarray, reference: Optional[np.ndarray] = None, layer=None) -> np.ndarray:
    """Grad-CAM of ``cos(E(x), r)`` at ``layer`` (module docstring), upsampled to the crop (>= 0)."""
    torch = _need_torch(encoder, "gradcam")
    import torch.nn.functional as F

    crop = _check_crop(encoder, crop)
    r = _reference(encoder, crop, reference)
    target = _resolve_layer(encoder, layer)
    store = {}

    def hook(_m, _i, out):
        store["a"] = out[0] if isinstance(out, (tuple, list)) else out

    handle = target.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            x = _input(torch, encoder, crop)
            sim = _similarity(torch, encoder, x, r).sum()
            a = store.get("a")
            if a is None or a.ndim != 4:
                got = None if a is None else tuple(a.shape)
                raise InputError(f"{encoder.spec.name}: the Grad-CAM layer gives {got}, "
                                 "not a N x C x H x W feature map")
            (g,) = torch.autograd.grad(sim, a)
    finally:
        handle.remove()
    w = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((w * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=crop.shape[:2], mode="bilinear", align_corners=False)
    return cam[0, 0].detach().float().cpu().numpy()


def saliency(encoder, crop: np.ndarray, reference: Optional[np.ndarray] = None, method: str = "occlusion",
             **kw) -> np.ndarray:
    """Dispatch to one of :data:`METHODS` (``occlusion`` | ``gradient`` | ``integrated`` | ``gradcam``)."""
    fns = {"occlusion": occlusion, "gradient": vanilla_gradient, "integrated": integrated_gradients,
           "gradcam": grad_cam}
    if method not in fns:
        raise InputError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    return fns[method](encoder, crop, reference, **kw)


# ---------------------------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------------------------

def overlay(face_rgb: np.ndarray, saliency_map: np.ndarray, alpha: float = 0.5,
            mask: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 RGB: ``|saliency|`` scaled to [0, 1] by its 99th percentile, JET colour map (red = most
    salient), blended over the face with weight ``alpha``; ``mask`` (optional) is outlined in white."""
    import cv2

    face = np.asarray(face_rgb)
    if face.ndim != 3 or face.shape[2] != 3:
        raise InputError(f"overlay: face must be H x W x 3, got {face.shape}")
    s = np.abs(np.asarray(saliency_map, np.float64))
    if s.shape != face.shape[:2]:
        s = cv2.resize(s, (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)
    top = float(np.percentile(s, 99)) if s.size else 0.0
    s = np.clip(s / top, 0, 1) if top > 0 else np.zeros_like(s)
    heat = cv2.applyColorMap(np.uint8(np.round(s * 255)), cv2.COLORMAP_JET)[:, :, ::-1]
    out = (1 - alpha) * face.astype(np.float64) + alpha * heat.astype(np.float64)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if mask is not None:
        m = (np.asarray(mask) > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out = np.ascontiguousarray(out)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out


def save_png(path: Union[str, Path], rgb: np.ndarray) -> Path:
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])):
        raise OSError(f"could not write {p}")
    return p


# ---------------------------------------------------------------------------------------------
# batch helper for bench run / bench saliency
# ---------------------------------------------------------------------------------------------

def face_saliency(encoder, image, face: Face, method: str = "occlusion",
                  reference: Optional[np.ndarray] = None, region: str = "inner", cache=None,
                  key: Optional[str] = None, **kw) -> Dict[str, Any]:
    """One face: crop, map, mask of ``region`` (:mod:`idbench.regions`), ratio inside it, overlay.

    ``image`` may be a callable returning it. With a ``cache`` and ``key`` (content of the image, the
    face and the encoder) the map and similarity are read back: no encoder call on a rerun.
    """
    from idbench.regions import region_mask

    img = image() if callable(image) else image
    crop, lm = crop_face(img, face, encoder)
    ckey = None if cache is None or key is None else f"{key}-{method}-{kw}" if kw else f"{key}-{method}"
    hit = cache.get_array("saliency", _hash(ckey)) if ckey else None
    meta = cache.get_json("saliency", _hash(ckey)) if hit is not None else None
    if hit is not None and meta is not None and reference is None:
        sal, similarity = hit, float(meta["similarity"])
    else:
        own = _unit(encoder.embed(crop[None])[0])
        ref = own if reference is None else _reference(encoder, crop, reference)
        sal = saliency(encoder, crop, ref, method, **kw)
        similarity = float(own @ ref)
        if ckey and reference is None:
            cache.put_array("saliency", _hash(ckey), sal)
            cache.put_json("saliency", _hash(ckey), {"similarity": similarity})
    mask = region_mask(region, lm, crop.shape[:2], crop) if lm is not None else None
    ratio = None
    if mask is not None and np.abs(sal).sum() > 0:
        ratio = inner_ratio(sal, mask)
    return {"crop": crop, "saliency": sal, "mask": mask, "inner_ratio": ratio, "similarity": similarity,
            "overlay": overlay(crop, sal, mask=mask), "region": region}


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def encoder_saliency_summary(encoder, items: Sequence[Tuple[Any, Face]], out_dir: Union[str, Path],
                             method: str = "occlusion", names: Optional[Sequence[str]] = None,
                             references: Optional[Sequence[Optional[np.ndarray]]] = None, region: str = "inner",
                             cache=None, keys: Optional[Sequence[str]] = None, progress: bool = True,
                             **kw) -> Dict[str, Any]:
    """Saliency of ``encoder`` on (image, face) pairs: overlays ``out_dir/<name>.png``, ``ratios.csv``.

    ``region`` names the face region of the ratio (:mod:`idbench.regions`; recorded in the result).
    Returns ``{"method", "region", "n", "overlays" (absolute paths), "maps" (``.npz``: crop, saliency, mask),
    "inner_ratios", "inner_ratio_mean",
    "inner_ratio_std", "csv"}``; a face whose map is all zero (the encoder ignored every patch)
    has ratio ``None`` and is left out of the mean.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, ratios, rows, maps = [], [], [], []
    from tqdm.auto import tqdm  # occlusion maps take seconds each: show progress

    for i, (image, face) in enumerate(tqdm(items, desc=f"saliency {getattr(encoder.spec, 'name', '')}",
                                           disable=not progress or len(items) < 2)):
        name = names[i] if names is not None else f"face_{i:03d}"
        ref = references[i] if references is not None else None
        res = face_saliency(encoder, image, face, method, ref, region, cache, keys[i] if keys else None, **kw)
        p = save_png(out / f"{name}_{method}.png", res["overlay"])
        paths.append(str(p.resolve()))
        # the raw map (cosine-drop units), crop and mask: the report redraws them on one shared colour scale
        np.savez_compressed(out / f"{name}_{method}.npz", crop=res["crop"], saliency=res["saliency"],
                            mask=res["mask"] if res["mask"] is not None else np.zeros(0))
        maps.append(str((out / f"{name}_{method}.npz").resolve()))
        ratios.append(res["inner_ratio"])
        rows.append({"name": name, "method": method, "inner_ratio": res["inner_ratio"],
                     "similarity": res["similarity"], "overlay": p.name})
    csv_path = out / "ratios.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["name", "method", "inner_ratio", "similarity", "overlay"])
        wr.writeheader()
        wr.writerows(rows)
    valid = [r for r in ratios if r is not None]
    return {"method": method, "region": region, "n": len(paths), "overlays": paths, "maps": maps, "inner_ratios": ratios,
            "inner_ratio_mean": float(np.mean(valid)) if valid else None,
            "inner_ratio_std": float(np.std(valid)) if valid else None, "csv": str(csv_path.resolve())}
