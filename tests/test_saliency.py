"""Saliency maps of identity similarity: a synthetic encoder with a known receptive field, dlib, the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from idbench.analysis import saliency as S
from idbench.errors import InputError


def _quadrant_encoder():
    """A TorchEncoder whose network zeroes everything outside the top-left quadrant of its 64 x 64 input."""
    import torch
    from torch import nn

    from idbench.encoders import EncoderSpec, TorchEncoder

    class QuadrantNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 4 * 4, 16)

        def forward(self, x):
            keep = torch.zeros_like(x)
            keep[:, :, :32, :32] = 1
            y = torch.relu(self.conv(x * keep))
            return self.fc(nn.functional.adaptive_avg_pool2d(y, 4).flatten(1))

    torch.manual_seed(0)
    spec = EncoderSpec(name="test.quadrant", input_size=(64, 64), alignment="none", colour="RGB",
                       mean=(127.5, 127.5, 127.5), std=(64.0, 64.0, 64.0), embedding_size=16, l2_normalised=False,
                       backend="torch")
    enc = TorchEncoder(spec, QuadrantNet())
    enc.gradcam_layer = "conv"
    return enc


@pytest.fixture(scope="module")
def quadrant():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[:32, :32] = 1
    return _quadrant_encoder(), crop, mask


def test_synthetic_encoder_saliency_stays_in_its_quadrant(quadrant):
    enc, crop, mask = quadrant
    occ = S.occlusion(enc, crop, patch=6, stride=3)
    grad = S.vanilla_gradient(enc, crop)
    ig = S.integrated_gradients(enc, crop, steps=16)
    for name, m in (("occlusion", occ), ("gradient", grad), ("integrated", ig)):
        assert m.shape == (64, 64) and m.dtype == np.float32
        assert S.inner_ratio(m, mask) >= 0.9, name
    assert S.inner_ratio(grad, mask) == pytest.approx(1.0)  # exactly zero gradient outside
    cam = S.grad_cam(enc, crop)
    assert cam.shape == (64, 64) and cam.min() >= 0
    with pytest.raises(InputError, match="no layer"):
        S.grad_cam(enc, crop, layer="nope")


def test_occlusion_against_another_reference_and_ig_completeness(quadrant):
    enc, crop, mask = quadrant
    other = enc.embed(np.ascontiguousarray(crop[::-1])[None])[0]
    occ = S.occlusion(enc, crop, reference=other, patch=8, stride=8)
    assert np.isfinite(occ).all() and np.abs(occ).sum() > 0
    # integrated gradients add up to cos(x, r) - cos(baseline, r)
    import torch

    ref = S._unit(other)
    ig = S.integrated_gradients(enc, crop, reference=other, steps=64)
    with torch.no_grad():
        grey = np.full_like(crop, 128)
        sims = [float(S._unit(enc.embed(c[None])[0]) @ ref) for c in (crop, grey)]
    assert ig.sum() == pytest.approx(sims[0] - sims[1], abs=0.02)


def test_methods_need_a_torch_encoder_and_known_names(quadrant):
    enc, crop, _ = quadrant

    class Plain:
        spec = enc.spec
        check_faces = enc.check_faces
        embed = enc.embed

    with pytest.raises(InputError, match="TorchEncoder"):
        S.saliency(Plain(), crop, method="gradient")
    assert S.saliency(Plain(), crop, method="occlusion", patch=16, stride=16).shape == (64, 64)
    with pytest.raises(InputError, match="unknown saliency method"):
        S.saliency(enc, crop, method="lime")
    with pytest.raises(InputError):
        S.occlusion(enc, crop[:32])


def test_overlay_and_mask(tmp_path):
    face = np.full((100, 100, 3), 90, np.uint8)
    sal = np.zeros((50, 50))
    sal[10:20, 10:20] = 1.0  # resized to the face
    lm = np.array([[30, 40], [70, 40], [50, 60], [35, 75], [65, 75]], np.float64)
    mask = S.inner_face_mask(100, lm)
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    assert mask[60, 50] == 1 and mask[5, 5] == 0
    out = S.overlay(face, sal, mask=mask)
    assert out.shape == (100, 100, 3) and out.dtype == np.uint8
    assert out[30, 30, 0] > out[30, 30, 2]  # hot (red) where the saliency is, cool (blue) elsewhere
    assert out[80, 20, 2] > out[80, 20, 0]
    import cv2

    p = S.save_png(tmp_path / "o.png", out)
    assert np.array_equal(cv2.imread(str(p))[:, :, ::-1], out)
    with pytest.raises(InputError):
        S.inner_face_mask(100, lm[:3])


def test_crop_landmarks_match_alignment(shared_faces):
    import cv2

    from idbench.align import align_face
    from idbench.detectors import create_detector
    from idbench.imageio import read_image

    img = read_image(shared_faces / "abdullah_gul" / "01.jpg")
    face = create_detector("auto").detect(img)[0]
    for alignment, size in (("arcface112", 112), ("dlib150", 150), ("ffhq256", 256), ("mtcnn160", 160)):
        m = S.alignment_matrix(img, face, alignment, size)
        warped = cv2.warpAffine(img, m, (size, size))
        assert np.abs(warped.astype(float) - align_face(img, face, alignment, size)).mean() < 3, alignment


@pytest.fixture(scope="module")
def real_face(shared_faces):
    from idbench.detectors import create_detector
    from idbench.imageio import read_image

    img = read_image(shared_faces / "abdullah_gul" / "01.jpg")
    return img, create_detector("auto").detect(img)[0]


def test_dlib_native_occlusion_inner_ratio(real_face, tmp_path):
    from idbench.encoders import create_encoder

    enc = create_encoder("dlib")
    s = S.encoder_saliency_summary(enc, [real_face], tmp_path, names=["gul"], patch=30, stride=24)
    assert s["n"] == 1 and 0.3 < s["inner_ratio_mean"] < 1.0
    assert (tmp_path / "gul_occlusion.png").is_file()
    rows = list(csv.DictReader(open(s["csv"])))
    assert float(rows[0]["inner_ratio"]) == pytest.approx(s["inner_ratio_mean"])
    assert float(rows[0]["similarity"]) == pytest.approx(1.0, abs=1e-5)


def test_dlib_torch_port_gradient(real_face):
    from idbench.encoders import create_encoder, list_encoders

    if "dlib.resnet_v1_torch" not in list_encoders():
        pytest.skip("dlib.resnet_v1_torch is not registered")
    enc = create_encoder("dlib.resnet_v1_torch")
    res = S.face_saliency(enc, *real_face, method="gradient")
    assert res["saliency"].shape == (150, 150) and 0.2 < res["inner_ratio"] < 1.0
    cam = S.face_saliency(enc, *real_face, method="gradcam")  # default layer: the last residual block
    assert cam["saliency"].shape == (150, 150)


def test_cli_estimate_and_saliency(shared_faces, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    imgs = [str(shared_faces / "abdullah_gul" / "01.jpg"), str(shared_faces / "ben_affleck" / "01.jpg")]
    out = tmp_path / "pose.csv"
    r = CliRunner().invoke(app, ["estimate", "--estimator", "pose", "--out", str(out)] + imgs)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 2 and rows[0]["status"] == "ok"
    assert set(rows[0]) >= {"path", "x1", "y1", "x2", "y2", "yaw", "pitch", "roll"}
    assert -90 < float(rows[0]["yaw"]) < 90
    r = CliRunner().invoke(app, ["estimate", "--estimator", "pose.hopenet", "--out", str(out)] + imgs)
    assert r.exit_code != 0 and "hopenet_robust_alpha1.pkl" in r.output

    import idbench.encoders as encoders

    monkeypatch.setattr(encoders, "create_encoder", lambda *a, **k: _quadrant_encoder())
    monkeypatch.setattr("idbench.bench.validate.check_encoders", lambda names: None)  # a test-only encoder
    r = CliRunner().invoke(app, ["saliency", "--encoder", "test.quadrant", "--method", "gradient", "--out",
                                 str(tmp_path / "sal")] + imgs)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "sal" / "saliency.csv")))
    assert [row["status"] for row in rows] == ["ok", "ok"] and 0 <= float(rows[0]["inner_ratio"]) <= 1
    assert (tmp_path / "sal" / rows[0]["overlay"]).is_file()
    r = CliRunner().invoke(app, ["saliency", "--encoder", "x", "--method", "lime", "--out", str(tmp_path)] + imgs)
    assert r.exit_code != 0 and "--method" in r.output
