"""`bench embed` on good and bad input: bad files are reported, the rest still gets embedded."""

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.bench.cli import app


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, t1_image, t1_path):
    import cv2

    from idbench.detectors import create_detector

    d = tmp_path_factory.mktemp("inputs")
    face = create_detector("dlib-hog").detect(t1_image)[0]
    x1, y1, x2, y2 = face.box.astype(int)
    m = int(face.width)
    crop = t1_image[max(y1 - m, 0):y2 + m, max(x1 - m, 0):x2 + m]
    bgr = np.ascontiguousarray(crop[:, :, ::-1])
    cv2.imwrite(str(d / "ok.jpg"), bgr)
    cv2.imwrite(str(d / "gray.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    rgba = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    cv2.imwrite(str(d / "rgba.png"), rgba)
    cv2.imwrite(str(d / "sixteen.png"), bgr.astype(np.uint16) * 257)
    big = cv2.resize(bgr, None, fx=6000 / bgr.shape[1], fy=6000 / bgr.shape[1], interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(d / "huge.jpg"), big)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(d / "noface.png"), np.full((200, 200, 3), 128, np.uint8))
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + rng.bytes(3000))
    (d / "truncated.jpg").write_bytes((d / "ok.jpg").read_bytes()[:200])
    (d / "notes.txt").write_text("not an image")
    (d / "empty.png").write_bytes(b"")
    return d


def test_embed_handles_bad_input(inputs, tmp_path):
    out = tmp_path / "x.npz"
    files = sorted(str(p) for p in inputs.iterdir())
    res = CliRunner().invoke(app, ["embed", "--encoder", "dlib", "--out", str(out), "--cache-dir",
                                   str(tmp_path / "cache"), *files])
    assert res.exit_code == 0, res.output
    z = np.load(out)
    embedded = {p.rsplit("/", 1)[-1] for p in z["paths"]}
    skipped = {s.split("\t")[0].rsplit("/", 1)[-1]: s.split("\t")[1] for s in z["skipped"]}
    assert {"ok.jpg", "gray.png", "rgba.png", "sixteen.png", "huge.jpg"} <= embedded
    assert {"noface.png", "corrupt.jpg", "truncated.jpg", "notes.txt", "empty.png"} <= set(skipped)
    assert skipped["noface.png"] == "no face detected"
    assert "empty" in skipped["empty.png"]
    assert all("\n" not in r for r in skipped.values())
    e = z["embeddings"]
    assert e.dtype == np.float32 and e.shape == (len(z["paths"]), 128)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert z["bboxes"].shape == (len(e), 4) and z["landmarks"].shape == (len(e), 5, 2)
    # the same face in five encodings is the same identity
    idx = [i for i, p in enumerate(z["paths"]) if p.rsplit("/", 1)[-1] in {"ok.jpg", "gray.png", "sixteen.png", "huge.jpg"}]
    sims = e[idx] @ e[idx].T
    assert sims.min() > 0.9
    # huge image: the box is in the original's pixel coordinates
    huge = [i for i, p in enumerate(z["paths"]) if p.endswith("huge.jpg")][0]
    assert z["bboxes"][huge][2] > 1600


def test_embed_all_faces_and_cache(t1_path, tmp_path):
    args = ["embed", "--encoder", "dlib", "--detector", "dlib-hog", "--all-faces", "--cache-dir",
            str(tmp_path / "c"), str(t1_path)]
    r1 = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a.npz")])
    assert r1.exit_code == 0, r1.output
    a = np.load(tmp_path / "a.npz")
    assert len(a["paths"]) >= 4 and len(set(a["face_index"])) == len(a["paths"])
    from idbench.cache import Cache

    cache = Cache(tmp_path / "c")
    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import embed_files

    t = embed_files([t1_path], {"dlib": create_encoder("dlib")}, detector="dlib-hog", all_faces=True,
                    cache=cache, progress=False)
    assert cache.misses == 0 and cache.hits == 1 + len(a["paths"])  # faces + one embedding per face
    np.testing.assert_allclose(t.embeddings["dlib"], a["embeddings"], atol=1e-6)


def test_embed_unknown_encoder_is_one_line(tmp_path, t1_path):
    r = CliRunner().invoke(app, ["embed", "--encoder", "arcfce.r100", "--out", str(tmp_path / "x.npz"),
                                 str(t1_path)])
    assert r.exit_code == 2
    assert "unknown encoder 'arcfce.r100'" in r.output


def test_list_encoders_shows_weights_column():
    r = CliRunner().invoke(app, ["list", "encoders"])
    assert r.exit_code == 0
    line = [l for l in r.output.splitlines() if l.startswith("dlib ")][0]
    assert "present" in line
