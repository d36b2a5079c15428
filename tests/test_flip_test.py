"""``--flip-test``: the embedding of a face is the sum of the network outputs for it and its mirror image
(arcface_torch's ``eval/verification.py`` and CurricularFace's ``util/utils.py`` evaluate this way)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import hog_faces

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"
FACES = REPO.parent / "shared" / "data" / "faces"


@pytest.fixture(scope="module")
def mobileface_crops():
    if not (MODELS / "mobileface.onnx").is_file() or not FACES.is_dir():
        pytest.skip("../shared/models or ../shared/data/faces is not available")
    from idbench.align import align_face

    faces = hog_faces(sorted(FACES.glob("*/01.jpg")), n=4)
    return np.stack([align_face(img, f, "arcface112") for img, f in faces])


def test_flip_test_sums_the_real_models_outputs_for_face_and_mirror(mobileface_crops):
    """Against onnxruntime run directly on the crops and on their mirrors (a real third-party model)."""
    import onnxruntime as ort

    from idbench.encoders import create_encoder, with_flip_test

    sess = ort.InferenceSession(str(MODELS / "mobileface.onnx"), providers=["CPUExecutionProvider"])

    def run(x):  # the model's README: RGB, raw 0..255, NHWC
        return sess.run(["batchnorm0/add_1:0"], {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]

    crops = mobileface_crops
    direct = run(crops) + run(crops[:, :, ::-1])
    direct /= np.linalg.norm(direct, axis=1, keepdims=True)
    enc = with_flip_test(create_encoder(REPO / "encoders" / "contracts" / "mobileface.toml"))
    assert enc.spec.flip_test
    ours = enc.embed(crops)
    assert np.abs(ours - direct).max() < 1e-5
    # a flip-test embedding cannot tell a face from its mirror; the plain one can
    assert np.abs(enc.embed(crops[:, :, ::-1]) - ours).max() < 1e-5
    plain = create_encoder(REPO / "encoders" / "contracts" / "mobileface.toml")
    assert np.abs(plain.embed(crops[:, :, ::-1]) - plain.embed(crops)).max() > 1e-2


def test_flip_test_changes_the_encoder_fingerprint():
    """Cached plain embeddings are never reused for a flip-test run (and the recipe defaults keep old keys)."""
    import dataclasses

    from idbench.encoders import get_spec
    from idbench.encoders.base import Encoder, with_flip_test
    from idbench.pipeline import encoder_fingerprint

    spec = get_spec("arcface.r100")
    plain = encoder_fingerprint(Encoder(spec))
    assert "flip_test" not in plain["spec"] and "fit" not in plain["spec"]
    flipped = encoder_fingerprint(with_flip_test(Encoder(spec)))
    assert flipped["spec"]["flip_test"] is True
    cp2 = encoder_fingerprint(Encoder(dataclasses.replace(spec, fit="template_to_image")))
    assert cp2["spec"]["fit"] == "template_to_image"


def test_bench_run_flip_test_is_recorded_in_results_and_tables(tmp_path):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    args = ["run", "--dataset", "sample", "--root", str(tmp_path / "sample"), "--encoders", "dlib", "--out",
            str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--n-boot", "20",
            "--saliency-faces", "0", "--analyses", "verification", "--flip-test"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["encoders"]["dlib"]["verification"]["flip_test"] is True
    assert res["provenance"]["arguments"]["flip_test"] is True
    assert "dlib (flip test)" in (tmp_path / "out" / "report.html").read_text()
