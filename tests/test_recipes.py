"""Each evaluator's spec carries its official recipe and the conventions where idbench's output differs."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner


def test_encoder_specs_carry_the_official_fit_and_box():
    from idbench.encoders import get_spec

    for name in ("sphereface.sphere20a", "adaface.ir50", "adaface.ir101"):
        assert get_spec(name).fit == "template_to_image" and "matlab_cp2tform" in get_spec(name).recipe
    for name in ("facenet.vggface2", "facenet.casia"):
        assert get_spec(name).box_detector == "mtcnn" and "margin=14" in get_spec(name).recipe
    assert get_spec("arcface.r100").fit == "image_to_template" and get_spec("arcface.r100").box_detector == ""


def test_unknown_fit_is_refused():
    import dataclasses

    from idbench.align import fitted_matrix
    from idbench.encoders import get_spec

    with pytest.raises(ValueError, match="fit must be one of"):
        dataclasses.replace(get_spec("arcface.r100"), fit="sideways")
    with pytest.raises(ValueError, match="fit must be one of"):
        fitted_matrix(np.zeros((5, 2)), np.zeros((5, 2)), "sideways")


def test_template_to_image_is_the_inverse_of_the_reverse_fit():
    """By hand: the cp2tform matrix maps the template onto the points' least-squares image, i.e. it inverts the
    similarity fitted from the template to the points; it differs from the forward fit on noisy points."""
    import cv2

    from idbench.align import ARCFACE_DST, fitted_matrix, similarity_transform

    rng = np.random.default_rng(0)
    pts = ARCFACE_DST * 1.7 + np.array([40.0, 25.0]) + rng.normal(0, 2.0, (5, 2))
    m = fitted_matrix(pts, ARCFACE_DST, "template_to_image")
    back = similarity_transform(ARCFACE_DST, pts)  # template -> image
    np.testing.assert_allclose(cv2.invertAffineTransform(m), back, atol=1e-9)
    fwd = fitted_matrix(pts, ARCFACE_DST, "image_to_template")
    scale = lambda a: np.sqrt(abs(np.linalg.det(a[:, :2])))
    assert abs(scale(m) - scale(fwd)) > 1e-4  # the two fits differ in scale on real (noisy) points
    exact = ARCFACE_DST * 1.7 + np.array([40.0, 25.0])  # noise-free: both give the same similarity
    np.testing.assert_allclose(fitted_matrix(exact, ARCFACE_DST, "template_to_image"),
                               fitted_matrix(exact, ARCFACE_DST, "image_to_template"), atol=1e-9)


def test_bench_list_estimators_shows_conventions():
    from idbench.analysis.estimators import get_spec
    from idbench.bench.cli import app

    assert "head 0" in get_spec("gaze.l2cs").conventions and "radians" in get_spec("gaze.l2cs").conventions
    r = CliRunner().invoke(app, ["list", "estimators"])
    assert r.exit_code == 0, r.output
    line = next(l for l in r.output.splitlines() if l.startswith("gaze.l2cs"))
    assert "calls head 0 (fc_yaw_gaze) 'pitch'" in line and "degrees" in line


def test_saliency_crop_landmarks_follow_sphereface_narrow_crop():
    """The landmarks of a 112 x 96 crop are those of the square crop shifted by 8 px (noise-free points)."""
    import types

    from idbench.align import ARCFACE_DST
    from idbench.analysis.saliency import crop_face
    from idbench.encoders import get_spec
    from idbench.faces import Face

    img = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    lm = ARCFACE_DST * 2.0 + np.array([30.0, 20.0], np.float32)
    face = Face(np.array([20, 10, 280, 290], np.float32), 1.0, lm.astype(np.float32))
    crop, pts = crop_face(img, face, types.SimpleNamespace(spec=get_spec("sphereface.sphere20a")))
    assert crop.shape == (112, 96, 3)
    np.testing.assert_allclose(pts, ARCFACE_DST - np.array([8.0, 0.0]), atol=1e-3)
