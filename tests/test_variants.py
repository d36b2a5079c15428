"""Controlled pseudo-swaps (idbench.swapper.variants): each changes one attribute family only.

Synthetic faces (the parametric 68-point layout of test_swapper) check each construction against an
independent computation (scikit-image's Lab conversion and similarity estimate, OpenCV drawing);
two shared photos check ``shape`` with dlib's own landmark predictor (skipped without ../shared).
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab
from skimage.transform import SimilarityTransform
from test_swapper import synth_face, synth_image

from idbench.errors import UnknownNameError
from idbench.swapper import blend as B
from idbench.regions import inner_mask
from idbench.swapper.variants import VARIANTS, VariantSwapper, make_variant, partner_jaw


def _pair():
    src, prt = synth_image(11, 230, 240, tint=(1.25, 0.9, 0.75)), synth_image(12, 260, 280, tint=(0.75, 1.0, 1.25))
    fs = synth_face(cx=118, cy=110, scale=120, angle=0.05)
    fp = synth_face(cx=140, cy=125, scale=105, sx=1.15, sy=0.92, angle=-0.1)  # wider, shorter face
    return src, fs, prt, fp


def _hull_mask(lm, shape):
    return B.landmark_mask(lm, shape) > 0


def test_registry_and_names():
    assert list(VARIANTS) == ["skin", "outside", "shape", "inner", "full"]
    with pytest.raises(UnknownNameError, match="skin"):
        make_variant("skn", *_pair())


def test_skin_changes_only_colour_statistics():
    src, fs, prt, fp = _pair()
    r = make_variant("skin", src, fs, prt, fp, seed=0)
    assert r.image.shape == src.shape
    assert np.array_equal(r.face.landmarks68, fs.landmarks68)  # no geometry change
    face = _hull_mask(fs.landmarks68, src.shape)
    assert np.array_equal(r.image[~face], src[~face])  # outside the face: the source's pixels
    core = r.mask == 1
    assert core.sum() > 2000
    # independent Reinhard transfer with scikit-image's Lab: source face pixels standardised by the
    # source face's Lab statistics, rescaled to the partner face's (colour statistics only; the
    # texture is the source's). Pixels whose expected colour is outside the sRGB gamut are clipped.
    lab_src, lab_prt = rgb2lab(src), rgb2lab(prt)
    face_p = _hull_mask(fp.landmarks68, prt.shape)
    expected = ((lab_src[core] - lab_src[face].mean(0)) / lab_src[face].std(0) * lab_prt[face_p].std(0)
                + lab_prt[face_p].mean(0))
    rgb = lab2rgb(expected[None])[0]
    in_gamut = (rgb > 0.01).all(1) & (rgb < 0.99).all(1)
    assert in_gamut.mean() > 0.3
    err = np.abs(rgb2lab(r.image)[core] - expected)[in_gamut]
    assert err.max() < 1.5, err.max(0)
    assert np.abs(lab_src[core] - expected).mean() > 10  # the change is real


def test_outside_keeps_every_face_pixel_of_the_source():
    import cv2

    src, fs, prt, fp = _pair()
    r = make_variant("outside", src, fs, prt, fp, seed=0)
    assert r.image.shape == prt.shape
    m = SimilarityTransform.from_estimate(fs.landmarks68.astype(np.float64), fp.landmarks68.astype(np.float64)).params[:2]
    warped = cv2.warpAffine(src, m, (prt.shape[1], prt.shape[0]), flags=cv2.INTER_LINEAR)
    lm = fs.landmarks68 @ m[:, :2].T + m[:, 2]
    face = _hull_mask(lm, prt.shape)
    diff = np.abs(r.image.astype(int) - warped.astype(int))[face]
    assert face.sum() > 3000 and diff.max() <= 1  # every pixel inside the face mask is the source's
    far = r.mask == 0
    assert far.sum() > 0.5 * far.size and np.array_equal(r.image[far], prt[far])  # hair/background: partner
    assert np.allclose(r.face.landmarks68, lm, atol=1e-3)


def test_shape_moves_the_jaw_and_nothing_else():
    import cv2

    src, fs, prt, fp = _pair()
    src = np.full_like(src, 90)
    for x, y in fs.landmarks68[:17]:  # a bright dot on every jaw point, a dark one on every inner point
        cv2.circle(src, (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
    r = make_variant("shape", src, fs, prt, fp, seed=0)
    new = r.face.landmarks68
    assert np.array_equal(new[17:], fs.landmarks68[17:])
    # the expected jaw: the partner's, brought into the source frame by its inner-landmark similarity
    t = SimilarityTransform.from_estimate(fp.landmarks68[17:].astype(np.float64), fs.landmarks68[17:].astype(np.float64))
    assert np.allclose(new[:17], t(fp.landmarks68[:17].astype(np.float64)), atol=1e-3)
    moved = np.linalg.norm(new[:17] - fs.landmarks68[:17], axis=1)
    assert moved.max() > 8  # the test pair's outlines really differ
    for x, y in new[:17]:  # the dots followed the jaw
        assert r.image[int(round(y)), int(round(x))].min() > 200
    eye = fs.landmarks68[36:48].mean(0).round().astype(int)
    assert r.image[eye[1], eye[0]].max() == 90  # the inner face did not move


def test_shape_jaw_is_closer_to_partner_in_normalised_coordinates():
    src, fs, prt, fp = _pair()
    r = make_variant("shape", src, fs, prt, fp)
    norm = lambda lm: B.normalise_landmarks(lm, align=True)[0]
    d_before = np.linalg.norm(norm(fs.landmarks68)[:17] - norm(fp.landmarks68)[:17])
    d_after = np.linalg.norm(norm(r.face.landmarks68)[:17] - norm(fp.landmarks68)[:17])
    assert d_after < 0.5 * d_before


def test_inner_keeps_partner_outside_the_inner_hull():
    src, fs, prt, fp = _pair()
    r = make_variant("inner", src, fs, prt, fp, seed=0)
    assert r.image.shape == prt.shape
    zero = r.mask == 0
    assert np.array_equal(r.image[zero], prt[zero])
    assert np.all(inner_mask(fp.landmarks68, prt.shape[:2])[r.mask > 0] > 0)  # blended only inside the inner hull
    assert (r.mask == 1).sum() > 500


def test_full_is_the_blendface_pseudo_swap():
    src, fs, prt, fp = _pair()
    r = make_variant("full", src, fs, prt, fp, seed=3)
    ref = B.swap_frames(src, fs, prt, fp, seed=3)  # the bias analysis' pseudo-swap
    assert np.array_equal(r.image, ref.image) and np.array_equal(r.mask, ref.mask)
    assert r.provenance["variant"] == "full"


def test_deterministic_and_bad_input_reported():
    src, fs, prt, fp = _pair()
    for v in VARIANTS:
        a, b = make_variant(v, src, fs, prt, fp, seed=1), make_variant(v, src, fs, prt, fp, seed=1)
        assert np.array_equal(a.image, b.image), v
        with pytest.raises(B.SwapError, match="source: no face"):
            make_variant(v, src, None, prt, fp)
        with pytest.raises(B.SwapError, match="target|partner"):
            make_variant(v, src, fs, prt[:20, :20], fp)


def test_partner_jaw_is_identity_for_the_same_face():
    fs = synth_face()
    assert np.allclose(partner_jaw(fs.landmarks68.astype(np.float64), fs.landmarks68.astype(np.float64)),
                       fs.landmarks68[:17], atol=1e-4)


def test_shape_on_photos_dlib_sees_the_new_jaw(faces_manifest, shared_faces):
    """dlib's 68-point predictor, run on the warped photo, finds the jaw near the partner's outline."""
    from idbench.cache import Cache
    from idbench.encoders.pipeline import detect_file
    from idbench.landmarks import landmarks68

    rows = {r["identity"]: shared_faces / r["path"] for r in faces_manifest}
    ids = sorted(rows)
    src_d, prt_d = (detect_file(rows[i], "dlib-hog", cache=Cache(enabled=False)) for i in (ids[3], ids[60]))
    fs, fp = src_d.faces[0], prt_d.faces[0]
    r = make_variant("shape", src_d.image, fs, prt_d.image, fp)
    found = landmarks68(r.image, fs.box)
    target, before = r.face.landmarks68[:17], fs.landmarks68[:17]
    assert np.linalg.norm(target - before, axis=1).mean() > 3  # the outlines differ
    assert np.linalg.norm(found[:17] - target, axis=1).mean() < np.linalg.norm(found[:17] - before, axis=1).mean()


def test_variant_swapper_is_a_pipeline_swapper():
    src, fs, prt, fp = _pair()
    sw = VariantSwapper("skin", k=7, seed=2)
    assert sw.name == "variant:skin" and sw.params()["variant"] == "skin" and sw.params()["k"] == 7
    assert np.array_equal(sw.swap(src, fs, prt, fp).image, make_variant("skin", src, fs, prt, fp).image)
    assert VariantSwapper("skin").params() != VariantSwapper("shape").params()  # distinct cache keys
    with pytest.raises(UnknownNameError):
        VariantSwapper("hair")
