"""``dlib.resnet_v1_torch``: the PyTorch port of dlib's face ResNet, read from dlib's own ``.dat``."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dlib = pytest.importorskip("dlib")

from idbench.encoders import create_encoder, get_spec  # noqa: E402
from idbench.encoders.dlib_dat import parse_dat, read_dat  # noqa: E402
from idbench.encoders.dlib_torch import DLIB_RESNET_DAT  # noqa: E402
from idbench.errors import WeightsFormatError  # noqa: E402
from idbench.weights import package_dir, resolve_weights  # noqa: E402

MAX_ABS_TARGET = 1e-3
COSINE_TARGET = 0.9999
N_FACES = 40


@pytest.fixture(scope="module", autouse=True)
def _lean_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(min(old, 2))
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def dat_path():
    try:
        return resolve_weights(DLIB_RESNET_DAT)
    except Exception as e:  # noqa: BLE001 - the weights ship with an optional package
        pytest.skip(f"dlib face-recognition weights unavailable: {e}")


@pytest.fixture(scope="module")
def dat_bytes(dat_path):
    return dat_path.read_bytes()


@pytest.fixture(scope="module")
def encoder(dat_path):
    return create_encoder("dlib.resnet_v1_torch")


def _models_dir():
    d = package_dir("face_recognition_models")
    return d / "models" if d else None


def _chips(shared_faces, faces_manifest, n):
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(_models_dir() / "shape_predictor_5_face_landmarks.dat"))
    idx = np.linspace(0, len(faces_manifest) - 1, n).round().astype(int)
    chips = []
    for i in idx:
        img = dlib.load_rgb_image(str(shared_faces / faces_manifest[i]["path"]))
        dets = detector(img, 1)
        if not len(dets):
            continue
        box = max(dets, key=lambda r: r.width() * r.height())
        chips.append(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
    return np.stack(chips)


# ------------------------------------------------------------------------------------------
# spec and file


def test_spec():
    spec = get_spec("dlib.resnet_v1_torch")
    assert spec.input_size == (150, 150) and spec.alignment == "dlib150" and spec.colour == "RGB"
    assert spec.mean == (122.782, 117.001, 104.298) and spec.std == (256.0, 256.0, 256.0)
    assert spec.embedding_size == 128 and spec.backend == "torch" and not spec.l2_normalised
    assert spec.weights[0].filename == "dlib_face_recognition_resnet_model_v1.dat"


def test_reads_shipped_dat(dat_path):
    net = read_dat(dat_path)
    np.testing.assert_allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-4)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("fc") == 1
    assert kinds.count("add_prev") == 14
    assert net.layers[-1].params["weight"].shape == (256, 128)


# ------------------------------------------------------------------------------------------
# parity with dlib on real faces


def test_parity_with_dlib_on_real_faces(shared_faces, faces_manifest, dat_path, encoder):
    chips = _chips(shared_faces, faces_manifest, N_FACES)
    assert len(chips) >= N_FACES * 0.8
    facerec = dlib.face_recognition_model_v1(str(dat_path))
    ref = np.array([np.array(facerec.compute_face_descriptor(c)) for c in chips])
    ours = encoder.embed(chips, normalise=False).astype(np.float64)
    max_abs = np.abs(ours - ref).max()
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert max_abs < MAX_ABS_TARGET, max_abs
    assert cos.min() > COSINE_TARGET, cos.min()
    # the batch overload agrees too, and embed() normalises by default
    ref_batch = np.array([np.array(d) for d in facerec.compute_face_descriptor(list(chips[:8]))])
    assert np.abs(ours[:8] - ref_batch).max() < MAX_ABS_TARGET
    np.testing.assert_allclose(np.linalg.norm(encoder.embed(chips[:4]), axis=1), 1, atol=1e-5)


def test_parity_without_shared_data(dat_path, encoder):
    """Random chips: runs everywhere (no ../shared), exercises the same network."""
    chips = np.random.default_rng(1).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    facerec = dlib.face_recognition_model_v1(str(dat_path))
    ref = np.array([np.array(d) for d in facerec.compute_face_descriptor(list(chips))])
    ours = encoder.embed(chips, normalise=False)
    assert np.abs(ours - ref).max() < MAX_ABS_TARGET


# ------------------------------------------------------------------------------------------
# gradients


def test_gradients_wrt_input_image(encoder):
    img = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (2, 3, 150, 150)).astype(np.float32))
    img.requires_grad_(True)
    emb = encoder.forward_tensor(img)
    assert emb.shape == (2, 128) and emb.requires_grad
    # an identity-style loss: cosine between the two embeddings
    loss = torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]).sum()
    loss.backward()
    g = img.grad
    assert torch.isfinite(g).all()
    assert g.abs().sum() > 0
    assert (g[0].abs() > 0).float().mean() > 0.5  # most pixels influence the embedding


# ------------------------------------------------------------------------------------------
# malformed, truncated and foreign files


def _assert_one_line_error(fn):
    with pytest.raises(WeightsFormatError) as e:
        fn()
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("name", ["shape_predictor_5_face_landmarks.dat", "mmod_human_face_detector.dat"])
def test_foreign_dlib_files_rejected(name):
    d = _models_dir()
    if d is None or not (d / name).is_file():
        pytest.skip(f"{name} not installed")
    msg = _assert_one_line_error(lambda: read_dat(d / name))
    assert name in msg
    _assert_one_line_error(lambda: create_encoder("dlib.resnet_v1_torch", weights=d / name))


@pytest.mark.parametrize("keep", [0, 1, 3, 40, 1000, 0.5, -1])
def test_truncated_bytes_rejected(dat_bytes, keep):
    k = int(len(dat_bytes) * keep) if isinstance(keep, float) else (keep % len(dat_bytes))
    msg = _assert_one_line_error(lambda: parse_dat(dat_bytes[:k], "cut.dat"))
    assert "cut.dat" in msg


def test_truncated_file_rejected_through_registry(dat_bytes, tmp_path):
    p = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    p.write_bytes(dat_bytes[: len(dat_bytes) - 4096])
    msg = _assert_one_line_error(lambda: create_encoder("dlib.resnet_v1_torch", weights=p))
    assert "truncated" in msg


def test_random_and_garbage_files_rejected(dat_bytes, tmp_path):
    p = tmp_path / "random.dat"
    p.write_bytes(os.urandom(2_000_000))
    _assert_one_line_error(lambda: read_dat(p))
    _assert_one_line_error(lambda: create_encoder("dlib.resnet_v1_torch", weights=p))
    _assert_one_line_error(lambda: parse_dat(b"not a dlib file at all" * 1000, "text.dat"))
    _assert_one_line_error(lambda: parse_dat(dat_bytes + b"\x00", "trailing.dat"))


def test_corrupted_structure_rejected(dat_bytes):
    # rename the first convolution's tag: same length, wrong layer type
    i = dat_bytes.index(b"con_4")
    _assert_one_line_error(lambda: parse_dat(dat_bytes[:i] + b"relu_" + dat_bytes[i + 5:], "renamed.dat"))
    # change the input size stored after the input layer name
    j = dat_bytes.index(b"input_rgb_image_sized") + len(b"input_rgb_image_sized")
    body = bytearray(dat_bytes)
    k = body.index(bytes([1, 150]), j)  # nr = 150 as a 1-byte integer
    body[k + 1] = 151
    msg = _assert_one_line_error(lambda: parse_dat(bytes(body), "size.dat"))
    assert "input size" in msg
