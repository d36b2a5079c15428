"""Every crop's matrix comes from idbench.align.alignment_matrix, and equals an independent reference.

The call sites (encoder crops, the pseudo-swap's crop, saliency maps, learned swappers' crops and paste-back,
``bench prepare``) used to build their matrices each its own way; these tests pin each one to a reference
computed here without idbench's geometry: scikit-image's ``SimilarityTransform.estimate`` (what insightface's
``norm_crop`` / ``estimate_norm`` use), a direct least-squares fit for MATLAB cp2tform's direction, a
3-point solve for the FFHQ quad, ``np.linalg.inv`` for the paste-back.
"""

from __future__ import annotations

import numpy as np
import pytest

from idbench.faces import Face, landmarks68_to_5

DST112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                   [70.7299, 92.2041]], np.float32)  # insightface's arcface_dst, written out again


def _template(size: int) -> np.ndarray:
    """insightface's estimate_norm rule: multiples of 112 scale; multiples of 128 scale and shift 8 px."""
    if size % 112 == 0:
        return DST112 * (size / 112.0)
    r = size / 128.0
    return DST112 * r + np.array([8.0 * r, 0.0], np.float32)


def _skimage_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    import warnings

    tf = pytest.importorskip("skimage.transform").SimilarityTransform()
    with warnings.catch_warnings():  # scikit-image >= 0.26 prefers from_estimate; estimate is what insightface calls
        warnings.simplefilter("ignore", FutureWarning)
        assert tf.estimate(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    return tf.params[:2]


def _lstsq_template_to_image(template: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """cp2tform 'nonreflective similarity': x' = a x - b y + c, y' = b x + a y + d by least squares, inverted."""
    t, p = np.asarray(template, np.float64), np.asarray(pts, np.float64)
    rows = [[x, -y, 1, 0] for x, y in t] + [[y, x, 0, 1] for x, y in t]
    a, b, c, d = np.linalg.lstsq(np.array(rows), np.r_[p[:, 0], p[:, 1]], rcond=None)[0]
    fwd = np.array([[a, -b, c], [b, a, d], [0, 0, 1]])
    return np.linalg.inv(fwd)[:2]


def _face(seed: int) -> Face:
    """A face-like 68-point set (rotated, scaled, jittered) and its record."""
    rng = np.random.default_rng(seed)
    base = np.zeros((68, 2))
    base[:17] = np.c_[np.linspace(-1, 1, 17), 0.2 + 0.8 * (1 - np.linspace(-1, 1, 17) ** 2)]  # jaw
    base[17:27] = np.c_[np.linspace(-0.8, 0.8, 10), np.full(10, -0.55)]  # brows
    base[27:36] = np.c_[np.r_[np.zeros(4), np.linspace(-0.2, 0.2, 5)], np.r_[np.linspace(-0.4, 0.05, 4), np.full(5, 0.15)]]
    eye = np.c_[np.cos(np.linspace(0, 2 * np.pi, 7)[:6]) * 0.15, np.sin(np.linspace(0, 2 * np.pi, 7)[:6]) * 0.06]
    base[36:42], base[42:48] = eye + [-0.4, -0.35], eye + [0.4, -0.35]
    base[48:68] = np.c_[np.cos(np.linspace(0, 2 * np.pi, 21)[:20]) * 0.3, 0.5 + np.sin(np.linspace(0, 2 * np.pi, 21)[:20]) * 0.1]
    a, s = rng.uniform(-0.4, 0.4), rng.uniform(40, 90)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lm = (base @ rot.T * s + rng.uniform(90, 130, 2) + rng.normal(0, 0.8, base.shape)).astype(np.float32)
    return Face(np.r_[lm.min(0), lm.max(0)].astype(np.float32), 0.9, landmarks68_to_5(lm), lm, None, "test")


def _image(seed: int, h: int = 240, w: int = 220) -> np.ndarray:
    import cv2

    small = np.random.default_rng(seed).uniform(0, 255, (10, 10, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", [112, 224, 128])
def test_encoder_arcface_crop_matrix_is_insightfaces(seed, size):
    import cv2

    from idbench.align import align_face, alignment_matrix

    face, img = _face(seed), _image(seed)
    ref = _skimage_fit(face.landmarks5, _template(size))
    m = alignment_matrix(img, face, "arcface112", size)
    np.testing.assert_allclose(m, ref, atol=1e-6)
    # the encoder's crop is the warp by that matrix (insightface's norm_crop: bilinear, black border)
    np.testing.assert_array_equal(align_face(img, face, "arcface112", size), cv2.warpAffine(img, m, (size, size)))


@pytest.mark.parametrize("seed", SEEDS)
def test_cp2tform_direction_and_narrow_crop(seed):
    from idbench.align import alignment_matrix

    face, img = _face(seed), _image(seed)
    ref = _lstsq_template_to_image(_template(112), face.landmarks5)
    np.testing.assert_allclose(alignment_matrix(img, face, "arcface112", 112, "template_to_image"), ref, atol=1e-6)
    # SphereFace's 96 x 112: the template's centre columns (shifted left by 8 px)
    ref96 = _lstsq_template_to_image(_template(112) - [8.0, 0.0], face.landmarks5)
    np.testing.assert_allclose(alignment_matrix(img, face, "arcface112", 112, "template_to_image", 96), ref96, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_ffhq_matrix_maps_the_quad_onto_the_crop(seed):
    from idbench.align import alignment_matrix, ffhq_quad

    face, img = _face(seed), _image(seed)
    quad = ffhq_quad(face.landmarks68).astype(np.float32).astype(np.float64)
    dst = np.array([[0, 0], [0, 256], [256, 256]], np.float64)
    a = np.c_[quad[:3], np.ones(3)]
    ref = np.linalg.solve(a, dst).T  # the affine map sending three quad corners to three crop corners
    np.testing.assert_allclose(alignment_matrix(img, face, "ffhq256", 256), ref, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_pseudo_swap_crop_uses_the_same_matrix(seed):
    from idbench.swapper.blend import align_crop

    face, img = _face(seed), _image(seed)
    for size in (112, 224):
        _, lm_in_crop, _, m = align_crop(img, face, face.landmarks68.astype(np.float64), size)
        ref = _skimage_fit(face.landmarks5, _template(size))
        np.testing.assert_allclose(m, ref, atol=1e-6)
        np.testing.assert_allclose(lm_in_crop, face.landmarks68 @ ref[:, :2].T + ref[:, 2], atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_saliency_crop_matrix_is_the_encoders(seed):
    from idbench.analysis import saliency as S

    face, img = _face(seed), _image(seed)
    np.testing.assert_allclose(S.alignment_matrix(img, face, "arcface112", 112),
                               _skimage_fit(face.landmarks5, _template(112)), atol=1e-6)
    np.testing.assert_allclose(S.alignment_matrix(img, face, "arcface112", 112, "template_to_image", 96),
                               _lstsq_template_to_image(_template(112) - [8.0, 0.0], face.landmarks5), atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_learned_swapper_crops_and_paste_back(seed):
    from idbench.swapper.learned.paste import crop_face, crop_matrix, paste_back
    from idbench.swapper.learned.spec import Crop

    face, img = _face(seed), _image(seed)
    _, m128 = crop_face(img, face, Crop("arcface", 128, "BGR"))  # inswapper's 128 crop (insightface's norm_crop2)
    np.testing.assert_allclose(m128, _skimage_fit(face.landmarks5, _template(128)), atol=1e-6)
    quad = __import__("idbench.align", fromlist=["ffhq_quad"]).ffhq_quad(face.landmarks68).astype(np.float32)
    ref = np.linalg.solve(np.c_[quad[:3].astype(np.float64), np.ones(3)],
                          np.array([[0, 0], [0, 256], [256, 256]], np.float64)).T
    np.testing.assert_allclose(crop_matrix(img, face, Crop("ffhq", 256, "RGB")), ref, atol=1e-6)
    # paste-back: a crop that is exactly the warped frame goes back (inside the mask's core) unchanged
    crop, m = crop_face(img, face, Crop("arcface", 112, "RGB"))
    out, mask = paste_back(img, crop, m)
    inv = np.linalg.inv(np.r_[m, [[0, 0, 1]]])[:2]
    centre = inv @ np.array([56.0, 60.0, 1.0])  # a crop pixel well inside the mask, mapped back to the frame
    x, y = int(round(centre[0])), int(round(centre[1]))
    assert mask[y, x] > 0.99 and np.abs(out[y, x].astype(int) - img[y, x].astype(int)).max() <= 3


def test_bench_prepare_crop_matrix_is_the_encoders():
    from idbench.bench.prepare import crop_with_landmarks

    face, img = _face(5), _image(5)
    with pytest.MonkeyPatch.context() as mp:  # keep the test's 68 points (no dlib refit)
        import idbench.bench.prepare as P

        mp.setattr(P, "consistent_landmarks", lambda image, f: f)
        crop, lm, valid = crop_with_landmarks(img, face, "arcface112")
    ref = _skimage_fit(face.landmarks5, _template(112))
    np.testing.assert_allclose(lm, face.landmarks68 @ ref[:, :2].T + ref[:, 2], atol=1e-4)
