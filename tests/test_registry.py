import os

import numpy as np
import pytest

from idbench.encoders import create_encoder, get_spec, list_encoders, register_encoder
from idbench.encoders.spec import EncoderSpec
from idbench.errors import UnknownNameError, WeightsFormatError, WeightsNotFoundError
from idbench.registry import Registry
from idbench.weights import WeightSource, resolve_weights


def test_unknown_encoder_suggests_close_matches():
    with pytest.raises(UnknownNameError) as e:
        create_encoder("dlb")
    assert "Did you mean: dlib" in str(e.value)
    assert "\n" not in str(e.value)


def test_list_encoders_filter():
    assert "dlib" in list_encoders()
    assert all(n.startswith("dlib") for n in list_encoders("dlib*"))


def test_duplicate_registration_fails():
    r = Registry("thing")
    r.register("a", 1)(lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a", 2)(lambda: None)


def test_spec_validates_contract():
    with pytest.raises(ValueError, match="alignment"):
        EncoderSpec("x.y", (112, 112), "bogus", "RGB", (0,) * 3, (1,) * 3, 512, False, "torch")
    with pytest.raises(ValueError, match="colour"):
        EncoderSpec("x.y", (112, 112), "arcface112", "HSV", (0,) * 3, (1,) * 3, 512, False, "torch")


def test_missing_weights_name_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    src = WeightSource("nothing.pt", "the moon", search=("$TORCH_HOME/checkpoints", "~/.insightface/models/x"))
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_weights(src)
    msg = str(e.value)
    assert str(tmp_path / "home" / "weights" / "nothing.pt") in msg
    assert str(tmp_path / "torch" / "checkpoints" / "nothing.pt") in msg
    assert "the moon" in msg and "\n" not in msg


def test_weights_resolution_order_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path / "home"))
    eco = tmp_path / "eco"
    eco.mkdir()
    (eco / "w.bin").write_bytes(b"x" * 100)
    src = WeightSource("w.bin", "somewhere", search=(str(eco),), min_bytes=50)
    assert resolve_weights(src) == eco / "w.bin"
    (tmp_path / "home" / "weights").mkdir(parents=True)
    (tmp_path / "home" / "weights" / "w.bin").write_bytes(b"y" * 100)
    assert resolve_weights(src) == tmp_path / "home" / "weights" / "w.bin"  # IDBENCH_HOME wins
    small = tmp_path / "small.bin"
    small.write_bytes(b"z")
    with pytest.raises(WeightsFormatError, match="truncated"):
        resolve_weights(src, small)
    import hashlib

    good = hashlib.sha256(b"x" * 100).hexdigest()
    src_h = WeightSource("w.bin", "somewhere", sha256=good, search=(str(eco),))
    assert resolve_weights(src_h, eco / "w.bin")
    with pytest.raises(WeightsFormatError, match="sha256"):
        resolve_weights(src_h, tmp_path / "home" / "weights" / "w.bin")


def test_dlib_encoder_rejects_foreign_dat(tmp_path):
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    bad.write_bytes(os.urandom(2_000_000))
    with pytest.raises(WeightsFormatError):
        create_encoder("dlib", weights=bad)


def test_encoder_checks_input_shape():
    enc = create_encoder("dlib")
    with pytest.raises(ValueError, match="150 x 150"):
        enc.embed(np.zeros((2, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        enc.embed(np.zeros((2, 150, 150, 3), np.float32))
    assert enc.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
