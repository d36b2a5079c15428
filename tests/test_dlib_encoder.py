import numpy as np
import pytest

from idbench.align import align_faces
from idbench.detectors import create_detector
from idbench.encoders import create_encoder
from idbench.imageio import read_image


def test_dlib_matches_compute_face_descriptor(t1_image):
    import dlib

    from idbench.landmarks import dlib_shape
    from idbench.weights import resolve_weights
    from idbench.encoders.dlib_native import DLIB_RESNET

    faces = create_detector("dlib-hog").detect(t1_image)
    enc = create_encoder("dlib")
    ours = enc.embed(align_faces(t1_image, faces, "dlib150"), normalise=False)
    ref_net = dlib.face_recognition_model_v1(str(resolve_weights(DLIB_RESNET)))
    for f, e in zip(faces, ours):
        # dlib's own path: full image + shape (it cuts the chip itself)
        ref = np.array(ref_net.compute_face_descriptor(t1_image, dlib_shape(f.dlib5, f.box)))
        np.testing.assert_allclose(e, ref, atol=1e-5)
    normed = enc.embed(align_faces(t1_image, faces, "dlib150"))
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1, atol=1e-5)


def test_same_person_closer_than_different(faces_manifest, shared_faces):
    rows = [r for r in faces_manifest if r["identity"] in sorted({r["identity"] for r in faces_manifest})[:8]]
    det, enc = create_detector("auto"), create_encoder("dlib")
    embs, labels = [], []
    for r in rows:
        img = read_image(shared_faces / r["path"])
        faces = det.detect(img)[:1]
        if faces:
            embs.append(enc.embed(align_faces(img, faces, "dlib150"))[0])
            labels.append(r["identity"])
    e, lab = np.array(embs), np.array(labels)
    d = np.linalg.norm(e[:, None] - e[None], axis=2)
    same = lab[:, None] == lab[None]
    off = ~np.eye(len(lab), dtype=bool)
    assert d[same & off].mean() + 0.2 < d[~same].mean()


def test_dlib_batches_through_torch_port_with_dlibs_numbers(shared_faces):
    """``dlib`` (torch port for batches >= torch_min_batch) gives ``dlib.native``'s embeddings to 1e-5."""
    pytest.importorskip("torch")
    from idbench.bench.dlib_torch_parity import dlib_chips, manifest_paths

    chips, _ = dlib_chips(manifest_paths(shared_faces, 24))
    fast, native = create_encoder("dlib"), create_encoder("dlib.native")
    assert len(chips) >= fast.torch_min_batch
    a, b = fast.embed(chips, normalise=False), native.embed(chips, normalise=False)
    assert fast._port is not None and native._port is None  # each took the path it says
    np.testing.assert_allclose(a, b, atol=1e-5)
    # and both match dlib's own call one chip at a time
    ref = np.array([np.array(native._net.compute_face_descriptor(c)) for c in chips[:4]])
    np.testing.assert_allclose(a[:4], ref, atol=1e-5)
