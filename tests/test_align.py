import numpy as np
import pytest

from idbench.align import (ARCFACE_DST, align_face, arcface_crop, arcface_template, ffhq_quad,
                           similarity_transform)
from idbench.faces import landmarks68_to_5


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (17, 2.3, 40, -12), (-35, 0.6, 100, 250)])
def test_similarity_transform_recovers_template(angle, scale, tx, ty):
    a = np.deg2rad(angle)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = ARCFACE_DST @ r.T + np.array([tx, ty])  # template pushed through a known similarity
    m = similarity_transform(pts, ARCFACE_DST)
    np.testing.assert_allclose(_apply(m, pts), ARCFACE_DST, atol=1e-4)
    # and the estimated matrix is the exact inverse of the known one
    np.testing.assert_allclose(m[:, :2] @ r, np.eye(2), atol=1e-6)


def test_template_scaling_matches_insightface_rules():
    np.testing.assert_allclose(arcface_template(224), ARCFACE_DST * 2)
    np.testing.assert_allclose(arcface_template(128)[:, 0], ARCFACE_DST[:, 0] + 8)
    with pytest.raises(ValueError):
        arcface_template(100)


def test_arcface_crop_equals_insightface_norm_crop(t1_image):
    face_align = pytest.importorskip("insightface.utils.face_align")
    from idbench.detectors import create_detector

    faces = create_detector("dlib-hog").detect(t1_image)
    assert len(faces) >= 4
    for f in faces:
        ours = arcface_crop(t1_image, f.landmarks5).astype(int)
        ref = face_align.norm_crop(t1_image, f.landmarks5.astype(np.float32), image_size=112).astype(int)
        assert ours.shape == ref.shape == (112, 112, 3)
        assert np.abs(ours - ref).max() <= 1


def test_landmarks68_to_5_order():
    lm = np.zeros((68, 2), np.float32)
    lm[36], lm[39], lm[42], lm[45] = (10, 50), (20, 50), (40, 50), (50, 50)
    lm[30], lm[48], lm[54] = (30, 70), (15, 90), (45, 90)
    np.testing.assert_allclose(landmarks68_to_5(lm), [[15, 50], [45, 50], [30, 70], [15, 90], [45, 90]])


def test_ffhq_quad_is_a_square_centred_on_the_face():
    lm = np.zeros((68, 2))
    lm[36:42] = (40, 50)
    lm[42:48] = (80, 50)
    lm[48], lm[54] = (45, 100), (75, 100)
    q = ffhq_quad(lm)
    sides = np.linalg.norm(np.roll(q, -1, 0) - q, axis=1)
    np.testing.assert_allclose(sides, sides[0], rtol=1e-6)
    assert np.allclose(q.mean(0), [60, 50 + 0.1 * 50], atol=1e-6)


def test_align_face_all_templates(t1_image):
    from idbench.detectors import create_detector

    face = create_detector("dlib-hog").detect(t1_image)[0]
    for name, size in [("arcface112", 112), ("dlib150", 150), ("mtcnn160", 160), ("ffhq256", 256)]:
        crop = align_face(t1_image, face, name)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        assert crop.std() > 10  # a real face, not a black border


def test_mtcnn_faces_get_dlib_landmarks_on_the_face(t1_image):
    """dlib's predictors run in a dlib-style box derived from MTCNN's 5 points, so the 68 points agree."""
    from idbench.detectors import create_detector

    faces = [f for f in create_detector("mtcnn").detect(t1_image) if f.width >= 80]
    assert len(faces) >= 5
    for f in faces:
        ours5 = landmarks68_to_5(f.landmarks68)
        io = np.linalg.norm(f.landmarks5[1] - f.landmarks5[0])
        assert np.abs(ours5 - f.landmarks5).max() < 0.3 * io
