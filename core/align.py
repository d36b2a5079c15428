"""Face alignment to the crops each encoder expects.

* ``arcface112``: 5-point similarity transform onto insightface's ``arcface_dst`` template, warped
  with ``cv2.warpAffine`` and a black border: the same as ``insightface.utils.face_align.norm_crop``.
  The fit direction is a parameter (:data:`FITS`): insightface fits image -> template
  (``image_to_template``); ``matlab_cp2tform`` (SphereFace's ``lfw_eval.py``, AdaFace's ``align_trans``)
  fits template -> image and inverts it (``template_to_image``): the two least-squares problems weight
  the residuals differently, so on real faces the cp2tform crop is a few percent larger.
* ``dlib150``: dlib's own 150x150 face chip (``dlib.get_face_chip``, padding 0.25) from its 5-point shape.
* ``mtcnn160``: facenet-pytorch's crop: the detector box plus a margin (14 px at 160, the maintainer's
  recommendation), no rotation, resized to 160x160.
* ``ffhq256``: the FFHQ oriented-square crop from 68 landmarks (NVlabs ffhq-dataset recipe, without
  its 4096-px supersampling and border blur), resized to 256.

Every crop's geometry is one 2 x 3 matrix from image pixels to crop pixels, given by one function,
:func:`alignment_matrix` (encoder crops, the pseudo-swap's crops, saliency maps, learned swappers' crops);
a crop pasted back goes through its inverse, :func:`invert_matrix`. The landmark alignments fit it by
least squares (:func:`similarity_transform`, Umeyama) onto a template scaled to the crop size
(:func:`arcface_matrix`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .faces import Face

ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def arcface_template(size: int = 112) -> np.ndarray:
    """The ArcFace template scaled as insightface does (multiples of 112, or of 128 with an 8-px shift)."""
    if size % 112 == 0:
        return ARCFACE_DST * (size / 112.0)
    if size % 128 == 0:
        r = size / 128.0
        return ARCFACE_DST * r + np.array([8.0 * r, 0.0], np.float32)
    raise ValueError(f"ArcFace alignment size must be a multiple of 112 or 128, got {size}")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping src to dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns", without reflection. Returns a 2 x 3 matrix.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var_s = (s_c ** 2).sum() / n
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


FITS = ("image_to_template", "template_to_image")


def fitted_matrix(points: np.ndarray, template: np.ndarray, fit: str = "image_to_template") -> np.ndarray:
    """The 2 x 3 image -> crop similarity for ``points`` onto ``template``, fitted in direction ``fit``.

    ``template_to_image`` is ``matlab_cp2tform``'s non-reflective similarity: least squares from the
    template onto the image points, then inverted (the crop still maps image pixels to the template).
    """
    if fit == "image_to_template":
        return similarity_transform(points, template)
    if fit == "template_to_image":
        import cv2

        return cv2.invertAffineTransform(similarity_transform(template, points))
    raise ValueError(f"alignment fit must be one of {FITS}, got {fit!r}")


def invert_matrix(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2 x 3 affine map (crop pixels -> image pixels: pasting a crop back)."""
    import cv2

    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def warp_affine(image: np.ndarray, m: np.ndarray, size: Sequence[int], reflect: bool = False) -> np.ndarray:
    """Bilinear warp into a ``size`` crop (an int: square; else (H, W)); black border, or mirrored with ``reflect``."""
    import cv2

    w, h = (size, size) if isinstance(size, int) else (size[1], size[0])
    if reflect:  # the FFHQ crops (ffhq-dataset pads by reflection)
        return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.warpAffine(image, m.astype(np.float64), (w, h), borderValue=0.0)


def arcface_matrix(landmarks5: np.ndarray, size: int = 112, fit: str = "image_to_template",
                   width: Optional[int] = None) -> np.ndarray:
    """Landmarks -> the 2 x 3 similarity onto the ArcFace template scaled to ``size`` (:func:`arcface_template`),
    or onto its centre ``width`` columns (SphereFace's 96 x 112 ``ref_pts`` are the template shifted left by
    (size - width) / 2)."""
    w = width or size
    return fitted_matrix(landmarks5, arcface_template(size) - np.array([(size - w) / 2.0, 0.0], np.float32), fit)


def arcface_crop(image: np.ndarray, landmarks5: np.ndarray, size: int = 112,
                 fit: str = "image_to_template", width: Optional[int] = None) -> np.ndarray:
    """The ``size`` x ``size`` ArcFace crop, or its centre ``width`` columns warped directly."""
    return warp_affine(image, arcface_matrix(landmarks5, size, fit, width), (size, width or size))


DLIB_CHIP_PADDING = 0.25  # dlib's own default for its face-recognition chips


def _dlib_points(image: np.ndarray, face: Face) -> np.ndarray:
    from .landmarks import dlib5

    return face.dlib5 if face.dlib5 is not None else dlib5(image, face.box)


def dlib_chip(image: np.ndarray, face: Face, size: int = 150, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    import dlib

    from .landmarks import dlib_shape

    return dlib.get_face_chip(image, dlib_shape(_dlib_points(image, face), face.box), size=size, padding=padding)


def dlib_chip_matrix(image: np.ndarray, face: Face, size: int = 150, padding: float = DLIB_CHIP_PADDING) -> np.ndarray:
    """The 2 x 3 image -> chip map of :func:`dlib_chip` (dlib's ``get_mapping_to_chip``).

    dlib's chip is the rectangle ``rect`` of ``get_face_chip_details`` rotated by ``angle`` about its
    centre, its corners mapped to the chip's corner pixels.
    """
    import cv2
    import dlib

    from .landmarks import dlib_shape

    d = dlib.get_face_chip_details(dlib_shape(_dlib_points(image, face), face.box), size, padding)
    r, a = d.rect, d.angle
    c = np.array([(r.left() + r.right()) / 2.0, (r.top() + r.bottom()) / 2.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]], np.float64)
    src = (corners - c) @ rot.T + c
    dst = np.array([[0, 0], [d.cols - 1, 0], [d.cols - 1, d.rows - 1]], np.float64)
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def _mtcnn_box(shape, box: np.ndarray, size: int, margin: float):
    """facenet-pytorch's ``extract_face`` box: margin given in pixels of the output size, clipped to the image."""
    x1, y1, x2, y2 = [float(v) for v in box]
    mx = margin * (x2 - x1) / (size - margin)
    my = margin * (y2 - y1) / (size - margin)
    h, w = shape[:2]
    return int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0)), int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))


def _resize_matrix(x0: int, y0: int, x1: int, y1: int, size: int) -> np.ndarray:
    """The 2 x 3 map of ``cv2.resize`` from the box [x0, x1) x [y0, y1) onto ``size`` x ``size`` (pixel centres)."""
    sx, sy = size / max(x1 - x0, 1), size / max(y1 - y0, 1)
    return np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]])


def mtcnn_crop(image: np.ndarray, box: np.ndarray, size: int = 160, margin: float = 14.0) -> np.ndarray:
    """facenet-pytorch's ``extract_face`` geometry: margin given in pixels of the output size."""
    import cv2

    bx1, by1, bx2, by2 = _mtcnn_box(image.shape, box, size, margin)
    crop = image[by1:by2, bx1:bx2]
    if crop.size == 0:
        raise ValueError(f"face box {box} lies outside the image")
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def ffhq_quad(lm68: np.ndarray) -> np.ndarray:
    """The FFHQ oriented square (4 corners) from 68 landmarks."""
    lm = np.asarray(lm68, np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_matrix(lm68: np.ndarray, size: int = 256) -> np.ndarray:
    """The 2 x 3 affine map from image pixels onto the ``size`` x ``size`` FFHQ crop (for pasting back)."""
    import cv2

    quad = ffhq_quad(lm68).astype(np.float32)
    dst = np.array([[0, 0], [0, size], [size, size]], np.float32)
    return cv2.getAffineTransform(quad[:3], dst)


def ffhq_crop(image: np.ndarray, lm68: np.ndarray, size: int = 256) -> np.ndarray:
    return warp_affine(image, ffhq_matrix(lm68, size), size, reflect=True)


CROP_SIZES = {"arcface112": 112, "dlib150": 150, "mtcnn160": 160, "ffhq256": 256, "none": 112}


def alignment_matrix(image: np.ndarray, face: Face, alignment: str, size: Optional[int] = None,
                     fit: str = "image_to_template", width: Optional[int] = None) -> np.ndarray:
    """The one crop geometry: the 2 x 3 float64 map from image pixels onto the crop :func:`align_face` makes.

    Used for every crop: encoders' (``align_face``), the pseudo-swap's, saliency maps', learned swappers' crops
    and, inverted (:func:`invert_matrix`), their paste-back. ``arcface112``: :func:`arcface_matrix` (``fit``,
    ``width``); ``ffhq256``: :func:`ffhq_matrix` (68 landmarks, fitted when missing); ``dlib150``:
    :func:`dlib_chip_matrix`; ``mtcnn160`` / ``none``: the box (whole image) resized.
    """
    s = size or CROP_SIZES.get(alignment, 112)
    if alignment == "arcface112":
        return arcface_matrix(face.landmarks5, s, fit, width).astype(np.float64)
    if alignment == "ffhq256":
        return ffhq_matrix(face.with_landmarks68(image).landmarks68, s).astype(np.float64)
    if alignment == "dlib150":
        return dlib_chip_matrix(image, face, s)
    if alignment == "mtcnn160":
        return _resize_matrix(*_mtcnn_box(image.shape, face.box, s, 14.0), s)
    if alignment == "none":
        h, w = image.shape[:2]
        return _resize_matrix(0, 0, w, h, s)
    raise ValueError(f"unknown alignment {alignment!r}")


def align_face(image: np.ndarray, face: Face, alignment: str, size: Optional[int] = None,
               fit: str = "image_to_template", width: Optional[int] = None) -> np.ndarray:
    """Crop ``face`` from an RGB uint8 image the way ``alignment`` says (see module docstring).

    ``fit`` and ``width`` (a narrower crop: its centre columns) apply to ``arcface112``, see :func:`arcface_crop`.
    """
    if alignment in ("arcface112", "ffhq256"):  # warped by the one matrix
        s = size or CROP_SIZES[alignment]
        m = alignment_matrix(image, face, alignment, s, fit, width)
        return warp_affine(image, m, (s, width or s) if alignment == "arcface112" else s, reflect=alignment == "ffhq256")
    if alignment == "dlib150":
        return dlib_chip(image, face, size or 150)  # dlib's own chip (its matrix: dlib_chip_matrix)
    if alignment == "mtcnn160":
        return mtcnn_crop(image, face.box, size or 160)  # crop + cv2.resize, as facenet-pytorch
    if alignment == "none":
        import cv2

        s = size or 112
        return cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA)
    raise ValueError(f"unknown alignment {alignment!r}")


def align_faces(image: np.ndarray, faces: Sequence[Face], alignment: str, size: Optional[int] = None) -> np.ndarray:
    crops = [align_face(image, f, alignment, size) for f in faces]
    if not crops:
        s = size or CROP_SIZES.get(alignment, 112)
        return np.zeros((0, s, s, 3), np.uint8)
    return np.stack(crops)
