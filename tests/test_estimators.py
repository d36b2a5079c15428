"""Attribute estimators: conventions, flips, real frames, and the published-format loaders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from idbench.analysis import estimators as E
from idbench.analysis.estimators import deep3d, networks
from idbench.errors import UnknownNameError, WeightsFormatError, WeightsNotFoundError
from idbench.faces import Face

from conftest import SHARED

VIDEOS = SHARED / "videos"
# First photo of eight identities of ../shared/data/faces (LFW 250 px, 5celeb 150 px, a 112 px crop).
FLIP_IMAGES = ("abdullah_gul/01.jpg", "ali_naimi/01.jpg", "antonio_palocci/01.jpg", "ariel_sharon/01.jpg",
               "ben_affleck/01.jpg", "bill_mcbride/01.jpg", "charles_taylor/01.jpg", "gray_davis/01.jpg")


def test_import_is_light():
    code = ("import sys, idbench.analysis.estimators, idbench.analysis.saliency; "
            "bad = [m for m in ('torch', 'cv2', 'mediapipe', 'torchvision') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_registry():
    names = E.list_estimators()
    for n in ("pose.pnp", "pose.hopenet", "gaze.iris", "gaze.iris_head", "gaze.l2cs", "expression.landmarks",
              "expression.deep3d", "shape.deep3d"):
        assert n in names
    assert E.list_estimators(kind="pose") == ["pose.hopenet", "pose.pnp"]
    assert E.get_spec("pose").name == "pose.pnp" and E.get_spec("pose").columns == ("yaw", "pitch", "roll")
    assert E.get_spec("gaze").columns == ("pitch", "yaw")
    assert len(E.get_spec("expression").columns) == len(E.EXPRESSION_COLUMNS)
    assert len(E.get_spec("expression.deep3d").columns) == 64 and len(E.get_spec("shape.deep3d").columns) == 80
    assert E.create_estimator("pose").spec.name == "pose.pnp"
    with pytest.raises(UnknownNameError, match="Did you mean"):
        E.create_estimator("pose.pnpp")
    with pytest.raises(ValueError):
        E.EstimatorSpec("x.y", "age", "", ("a",))


# --- pose geometry ------------------------------------------------------------------------------

def _project(angles, t=(10.0, -20.0, 600.0), size=800):
    """The modelled points of the generic model rotated by (yaw, pitch, roll) and projected."""
    K = E.camera_matrix((size, size))
    P = E.MODEL_POINTS_3D @ E.rotation_from_euler(*angles).T + np.asarray(t)
    lm = P[:, :2] / P[:, 2:] * K[0, 0] + K[:2, 2]
    return np.nan_to_num(lm)  # unmodelled points are not used by the fit


def test_pnp_recovers_known_angles():
    rng = np.random.default_rng(0)
    for _ in range(40):
        ang = rng.uniform([-60, -35, -30], [60, 35, 30])
        R, t, err = E.solve_head_pose(_project(ang), (800, 800))
        np.testing.assert_allclose(E.euler_from_rotation(R), ang, atol=1.0)
        assert err < 0.1


def test_pose_sign_convention():
    nose, sellion = 30, 27
    lm = _project((25, 0, 0))
    assert lm[nose, 0] < lm[sellion, 0]  # yaw > 0: the nose points to image left
    lm = _project((0, 20, 0))
    assert lm[nose, 1] < _project((0, 0, 0))[nose, 1]  # pitch > 0: looking up
    lm = _project((0, 0, 15))
    assert lm[45, 1] > lm[36, 1]  # roll > 0: clockwise, the subject's left eye (image right) lower
    # gaze convention: the forward direction of a head at (yaw, pitch) has those gaze angles
    fwd = E.rotation_from_euler(30, -10, 5) @ np.array([0, 0, -1.0])
    np.testing.assert_allclose(E.gaze_angles(fwd), [-10, 30], atol=1e-9)


def test_mirrored_landmarks_negate_yaw_and_roll():
    ang = (20.0, -12.0, 8.0)
    lm = _project(ang)
    assert np.allclose(E.mirror_landmarks68(E.mirror_landmarks68(lm, 800), 800), lm)
    R, _, _ = E.solve_head_pose(E.mirror_landmarks68(lm, 800), (800, 800))
    np.testing.assert_allclose(E.euler_from_rotation(R), [-20, -12, -8], atol=1.0)


# --- real photos: flips -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flip_pairs(shared_faces):
    from idbench.detectors import create_detector
    from idbench.imageio import read_image

    det = create_detector("auto")
    pairs = []
    for rel in FLIP_IMAGES:
        img = read_image(shared_faces / rel)
        flipped = np.ascontiguousarray(img[:, ::-1])
        a, b = det.detect(img), det.detect(flipped)
        assert a and b, rel
        pairs.append((rel, img, a[0], flipped, b[0]))
    return pairs


def test_pose_flip_on_photos(flip_pairs):
    est = E.create_estimator("pose.pnp")
    for rel, img, face, flipped, fface in flip_pairs:
        p, q = est.estimate(img, face), est.estimate(flipped, fface)  # re-detected on the flipped image
        assert abs(p[0] + q[0]) < 5 and abs(p[1] - q[1]) < 5 and abs(p[2] + q[2]) < 5, (rel, p, q)
        # mirrored landmarks (no detector noise): antisymmetric up to the solver's precision
        mirrored = Face(fface.box, 1.0, fface.landmarks5, E.mirror_landmarks68(face.landmarks68, img.shape[1]))
        m = est.estimate(flipped, mirrored)
        np.testing.assert_allclose(m, p * [-1, 1, -1], atol=0.05)


def test_gaze_flip_on_photos(flip_pairs):
    est = E.create_estimator("gaze.iris")
    d_yaw, d_pitch = [], []
    for rel, img, face, flipped, fface in flip_pairs:
        g, h = est.estimate(img, face), est.estimate(flipped, fface)
        d_pitch.append(abs(g[0] - h[0]))
        d_yaw.append(abs(g[1] + h[1]))
        assert d_yaw[-1] < 10 and d_pitch[-1] < 10, (rel, g, h)
    # MediaPipe's iris is not exactly flip-equivariant: a few degrees of asymmetry on 100-px faces
    assert np.median(d_yaw) < 5 and np.median(d_pitch) < 5, (d_yaw, d_pitch)


# --- video frames ---------------------------------------------------------------------------------

def _frame(clip: str, index: int) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(VIDEOS / clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok, (clip, index)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def d6_frames():
    """LivePortrait's driving clip d6 (one woman, exaggerated expressions, 480 x 480). Frames picked by
    scanning every 6th frame with the estimators and checked by eye:
    0 and 6: neutral, mouth closed; 492: mouth wide open (tongue out);
    360: both irises in the image-right corners of the eyes (she looks to her left);
    1002: both irises in the image-left corners (she looks to her right); the head is near frontal in both."""
    if not (VIDEOS / "liveportrait_d6.mp4").is_file():
        pytest.skip("../shared/data/videos is not available")
    from idbench.detectors import create_detector

    det = create_detector("auto")
    out = {}
    for i in (0, 6, 360, 492, 1002):
        img = _frame("liveportrait_d6.mp4", i)
        faces = det.detect(img)
        assert faces, i
        out[i] = (img, faces[0])
    return out


def test_gaze_left_vs_right_in_video(d6_frames):
    for name in ("gaze.iris", "gaze.iris_head"):
        est = E.create_estimator(name)
        to_her_left = est.estimate(*d6_frames[360])  # irises towards image right
        to_her_right = est.estimate(*d6_frames[1002])  # irises towards image left
        assert to_her_left[1] < -10 and to_her_right[1] > 5, (name, to_her_left, to_her_right)


def test_expression_open_mouth_vs_neutral(d6_frames):
    est = E.create_estimator("expression")
    v = {i: est.estimate(*d6_frames[i]) for i in (0, 6, 492)}
    assert np.all(est.estimate(*d6_frames[0]) == v[0])  # an image against itself: distance 0
    neutral = np.linalg.norm(v[0] - v[6])
    opened = min(np.linalg.norm(v[0] - v[492]), np.linalg.norm(v[6] - v[492]))
    assert opened > 3 * neutral, (neutral, opened)
    col = E.EXPRESSION_COLUMNS.index("mouth_open")
    assert v[492][col] > 0.2 and abs(v[0][col]) < 0.05 and abs(v[6][col]) < 0.05


def test_expression_self_zero_and_flip(flip_pairs):
    est = E.create_estimator("expression.landmarks")
    rel, img, face, flipped, fface = flip_pairs[0]
    a = est.estimate(img, face)
    assert np.array_equal(a, est.estimate(img, face))
    # the mirror image swaps right/left measures and keeps the rest (re-detected: small noise)
    cols = list(E.EXPRESSION_COLUMNS)
    swap = [cols.index(c.replace("right", "LEFT").replace("left", "right").replace("LEFT", "left")) for c in cols]
    b = est.estimate(flipped, fface)
    np.testing.assert_allclose(b[swap], a, atol=0.1)


# --- networks with published weight formats (random weights) --------------------------------------

def _one_hot_heads(sd: dict, bins: dict) -> dict:
    """Zero the heads' weights and put a large bias on one bin each, so the decoded angle is known."""
    import torch

    for head, b in bins.items():
        sd[f"{head}.weight"] = torch.zeros_like(sd[f"{head}.weight"])
        bias = torch.full_like(sd[f"{head}.bias"], -30.0)
        bias[b] = 30.0
        sd[f"{head}.bias"] = bias
    return sd


@pytest.fixture(scope="module")
def net_weights(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("estimator_weights")
    hope = _one_hot_heads(networks.binned_resnet({"fc_yaw": 66, "fc_pitch": 66, "fc_roll": 66}).state_dict(),
                          {"fc_yaw": 40, "fc_pitch": 30, "fc_roll": 35})
    hope = {k: v for k, v in hope.items() if not k.endswith("num_batches_tracked")}  # PyTorch 0.3-era file
    torch.save(hope, d / "hopenet_robust_alpha1.pkl", _use_new_zipfile_serialization=False)
    l2cs = _one_hot_heads(networks.binned_resnet({"fc_yaw_gaze": 90, "fc_pitch_gaze": 90}).state_dict(),
                          {"fc_yaw_gaze": 50, "fc_pitch_gaze": 40})
    torch.save(l2cs, d / "L2CSNet_gaze360.pkl")
    # as research code often saves: the weights next to a pickled argparse.Namespace
    import argparse

    torch.save({"state_dict": hope, "args": argparse.Namespace(arch="ResNet50")}, d / "hopenet_pickled.pkl")
    net = deep3d.deep3d_net()
    for i, layer in enumerate(net.final_layers):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.constant_(layer.bias, float(i + 1))
    torch.save({"net_recon": net.state_dict(), "opt_00": {"state": {}, "param_groups": [{"lr": 1e-4}]}},
               d / "epoch_20.pth")
    return d


@pytest.fixture(scope="module")
def one_face(flip_pairs):
    return flip_pairs[0][1], flip_pairs[0][2]


def test_hopenet_loads_and_decodes(net_weights, one_face):
    est = E.create_estimator("pose.hopenet", weights=net_weights / "hopenet_robust_alpha1.pkl")
    img, face = one_face
    out = est.estimate_batch([img, img], [face, face])
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, [[40 * 3 - 99, 30 * 3 - 99, 35 * 3 - 99]] * 2, atol=1e-3)
    assert est.preprocess(img, face).shape == (224, 224, 3)


def test_pickled_checkpoint_needs_the_one_trust_switch(net_weights, one_face, monkeypatch):
    """Estimators read through idbench.checkpoints: allow_pickle= (or IDBENCH_ALLOW_PICKLE) is the only switch."""
    monkeypatch.delenv("IDBENCH_ALLOW_PICKLE", raising=False)
    path = net_weights / "hopenet_pickled.pkl"
    with pytest.raises(WeightsFormatError, match="allow_pickle=True"):
        E.create_estimator("pose.hopenet", weights=path)
    est = E.create_estimator("pose.hopenet", weights=path, allow_pickle=True)
    np.testing.assert_allclose(est.estimate(*one_face), [40 * 3 - 99, 30 * 3 - 99, 35 * 3 - 99], atol=1e-3)
    monkeypatch.setenv("IDBENCH_ALLOW_PICKLE", "1")
    assert E.create_estimator("pose.hopenet", weights=path).spec.name == "pose.hopenet"


def test_l2cs_loads_and_decodes(net_weights, one_face):
    est = E.create_estimator("gaze.l2cs", weights=net_weights / "L2CSNet_gaze360.pkl")
    out = est.estimate(*one_face)
    assert out.shape == (2,)
    np.testing.assert_allclose(out, [40 * 4 - 180, 50 * 4 - 180], atol=1e-3)  # (pitch, yaw): heads swapped


def test_deep3d_loads_and_splits(net_weights, one_face):
    est = E.create_estimator("expression.deep3d", weights=net_weights / "epoch_20.pth")
    img, face = one_face
    crop = est.preprocess(img, face)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8 and crop.mean() > 20
    coef = est.coefficients(img, face)
    assert {k: v.shape[0] for k, v in coef.items()} == E.DEEP3D_PARTS
    np.testing.assert_allclose(coef["exp"], 2.0, atol=1e-4)  # the second head
    np.testing.assert_allclose(coef["id"], 1.0, atol=1e-4)
    shape = E.create_estimator("shape.deep3d", weights=net_weights / "epoch_20.pth")
    assert shape.spec.kind == "shape" and len(shape.columns) == 80


def test_weights_missing_and_wrong(net_weights, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("pose.hopenet", "gaze.l2cs", "expression.deep3d"):
        with pytest.raises(WeightsNotFoundError, match=E.get_spec(name).weights[0].filename):
            E.create_estimator(name)
        assert E.weights_status(name) == "missing"
    # truncated download: smaller than a ResNet-50 can be
    data = (net_weights / "L2CSNet_gaze360.pkl").read_bytes()
    (tmp_path / "L2CSNet_gaze360.pkl").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsFormatError, match="truncated"):
        E.create_estimator("gaze.l2cs", weights=tmp_path / "L2CSNet_gaze360.pkl")
    # truncated but large enough to pass the size check: torch.load fails
    small = tmp_path / "small.pt"
    torch.save({"w": torch.zeros(1000)}, small)
    small.write_bytes(small.read_bytes()[:2000])
    with pytest.raises(WeightsFormatError, match="truncated or corrupt"):
        networks.load_network(networks.binned_resnet({"fc_yaw": 66}), small, "a HopeNet")
    # the other network's file
    with pytest.raises(WeightsFormatError, match="fc_yaw"):
        E.create_estimator("pose.hopenet", weights=net_weights / "L2CSNet_gaze360.pkl")
    other = tmp_path / "other.pt"  # a training checkpoint without the reconstruction net
    torch.save({"epoch": 20, "opt_00": {"lr": 1.0}}, other)
    with pytest.raises(WeightsFormatError, match="net_recon"):
        deep3d.deep3d_module(other)
