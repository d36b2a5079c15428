"""The GPU path: batched detection gives the per-image faces, devices are honoured or refused in one line.

Everything here runs on CPU except the tests marked ``cuda`` (skipped without a CUDA device).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# two HOG misses (MTCNN finds them) and ben_affleck/01-02.jpg, whose boxes facenet-pytorch's own batched
# NMS mixes up (see idbench.mtcnn_nms); the rest: the two sizes of the folder's first images
HOG_MISSES = ("ben_affleck/02.jpg", "halle_berry/03.jpg")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not _cuda(), reason="no CUDA device")


def _photos(shared_faces: Path, n: int):
    names = ["ben_affleck/01.jpg", *HOG_MISSES, "ben_affleck/03.jpg"]
    files = [shared_faces / x for x in names]
    if not all(p.is_file() for p in files):
        pytest.skip("the shared faces changed")
    rest = [p for p in sorted(shared_faces.glob("*/*.jpg")) if p not in files]
    return files + rest[: n - len(files)]


def _assert_same_faces(got, ref, px: float = 1e-3):
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert a.detector == b.detector
        np.testing.assert_allclose(a.box, b.box, atol=px)
        np.testing.assert_allclose(a.landmarks5, b.landmarks5, atol=px)
        assert abs(a.score - b.score) < 1e-5
        assert np.abs(a.landmarks68 - b.landmarks68).max() <= 1.0  # dlib's fit on a box rounded to pixels


# ------------------------------------------------------------------------------------------------
# batched MTCNN == per-image MTCNN


def test_mtcnn_batch_matches_facenet_pytorch_one_image_at_a_time(shared_faces, monkeypatch):
    """Reference: facenet-pytorch's own code (its NMS functions restored), one image per call."""
    pytest.importorskip("facenet_pytorch")
    from facenet_pytorch.models.utils import detect_face

    from idbench.detectors import create_detector
    from idbench.imageio import read_image
    from idbench.mtcnn_nms import ORIGINALS

    images = [read_image(p) for p in _photos(shared_faces, 10)]
    assert len({im.shape for im in images}) >= 2  # several size groups, several images in one of them
    det = create_detector("mtcnn")
    batched = det.detect_batch(images)
    for name, fn in ORIGINALS.items():
        monkeypatch.setattr(detect_face, name, fn)
    reference = [det.detect(im) for im in images]
    assert sum(map(len, reference)) >= len(images)
    for got, ref in zip(batched, reference):
        _assert_same_faces(got, ref)


@pytest.mark.parametrize("which", ["batched_nms", "batched_nms_numpy"])
def test_facenet_pytorch_batched_nms_needs_the_per_image_fix(which):
    """Why idbench.mtcnn_nms exists, on a constructed case: facenet-pytorch keeps a batch's images apart by
    shifting image i's boxes by i * (max coordinate + 1), so a candidate box of image 1 that crosses the
    top-left edge lands on image 0's box and one suppresses the other; per image, both are kept."""
    pytest.importorskip("facenet_pytorch")
    import torch

    from idbench import mtcnn_nms

    mtcnn_nms.install()
    upstream = mtcnn_nms.ORIGINALS[which]
    fixed = getattr(mtcnn_nms, which)
    boxes = torch.tensor([[60.0, 60.0, 100.0, 100.0],  # image 0: a face at the bottom-right, max coordinate 100
                          [-40.0, -40.0, -1.0, -1.0]])  # image 1: a candidate crossing the top-left corner
    scores, idxs = torch.tensor([0.9, 0.8]), torch.tensor([0, 1])
    args = (boxes, scores, idxs, 0.5) + (("Min",) if which == "batched_nms_numpy" else ())
    # shifted by 101, image 1's box is [61, 61, 100, 100]: IoU 0.95 with image 0's, so upstream drops it
    assert sorted(upstream(*args).tolist()) == [0]
    assert sorted(fixed(*args).tolist()) == [0, 1]
    # one image alone: the same call as upstream (its shift is 0)
    one = (boxes[:1], scores[:1], idxs[:1] * 0, 0.5) + args[4:]
    assert fixed(*one).tolist() == upstream(*one).tolist() == [0]


def _inputs(shared_faces: Path, tmp_path: Path, n: int):
    import cv2

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 128, np.uint8))
    files = _photos(shared_faces, n)
    return files[:3] + [bad] + files[3:] + [blank]


@pytest.mark.parametrize("detector", ["auto", "mtcnn"])
def test_batched_detect_paths_match_per_image(detector, shared_faces, tmp_path, monkeypatch):
    """``--detect-batch 4`` on CPU (auto: HOG in workers, MTCNN batched here; mtcnn: batched here) gives
    the faces, errors and order of the per-image stream."""
    pytest.importorskip("facenet_pytorch")
    from idbench.cache import Cache
    from idbench.pipeline import detect_paths, detect_stream, file_item

    inputs = _inputs(shared_faces, tmp_path, 10)
    monkeypatch.setenv("IDBENCH_WORKERS", "2")
    batched = list(detect_paths(inputs, detector, Cache(tmp_path / "c"), "cpu", batch=4))
    serial = list(detect_stream((file_item(p) for p in inputs), detector, Cache(enabled=False), "cpu", batch=1))
    assert [d.path for d in batched] == [Path(p) for p in inputs]
    assert [d.error for d in batched] == [d.error for d in serial]
    assert [d.error for d in serial].count(None) == len(inputs) - 2  # broken.jpg and blank.png
    for a, b in zip(batched, serial):
        _assert_same_faces(a.faces, b.faces)
    if detector == "auto":
        assert [f.detector for d in batched[1:3] for f in d.faces] == ["mtcnn", "mtcnn"]  # the HOG misses
    again = list(detect_paths(inputs, detector, Cache(tmp_path / "c"), "cpu", batch=4))  # all from the cache
    assert [[f.to_dict() for f in d.faces] for d in again] == [[f.to_dict() for f in d.faces] for d in batched]


def test_batch_size_and_where_detection_runs():
    from idbench.pipeline import DEFAULT_DETECT_BATCH, _workers_detect, detect_batch_size

    assert detect_batch_size("mtcnn", "cpu") == 1  # CPU: one image at a time unless asked
    assert detect_batch_size("mtcnn", "cpu", 8) == 8
    assert detect_batch_size("auto", "cuda") == DEFAULT_DETECT_BATCH  # its MTCNN fallback batches
    assert detect_batch_size("dlib-hog", "cuda") == 1  # nothing to batch
    assert _workers_detect("auto", "cpu", 1) and _workers_detect("auto", "cuda", DEFAULT_DETECT_BATCH)  # HOG
    assert _workers_detect("dlib-hog", "cuda", 1)  # dlib-bin has no CUDA: CPU workers
    assert _workers_detect("mtcnn", "cpu", 1) and not _workers_detect("mtcnn", "cpu", 4)


# ------------------------------------------------------------------------------------------------
# a device that cannot be honoured is one error line, never a silent CPU run


@pytest.mark.skipif(_cuda(), reason="CUDA is present")
@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "CUDA is not available here"),
    (["--device", "gpu"], "--device takes cpu, cuda, cuda:N or auto"),
    (["--detect-batch", "0"], "--detect-batch 0: must be an integer in 1..4096"),
])
def test_embed_refuses_a_device_it_cannot_use(args, message, shared_faces, tmp_path):
    photo = str(sorted(shared_faces.glob("*/*.jpg"))[0])
    r = subprocess.run([sys.executable, "-m", "idbench.bench._entry", "embed", "--no-cache", "--out",
                        str(tmp_path / "e.npz"), *args, photo], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert not (tmp_path / "e.npz").exists()


def _fake_scrfd_weights(home: Path) -> Path:
    w = home / "weights" / "det_10g.onnx"
    w.parent.mkdir(parents=True, exist_ok=True)
    w.write_bytes(b"\0" * 1_100_000)  # never read: the provider check comes first
    return w


def test_scrfd_on_cuda_without_the_cuda_provider_is_one_error(shared_faces, tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    from idbench.cache import Cache
    from idbench.detectors import create_detector
    from idbench.errors import IdbenchError
    from idbench.pipeline import detect_paths

    monkeypatch.setenv("IDBENCH_HOME", str(tmp_path))
    weights = _fake_scrfd_weights(tmp_path)
    with pytest.raises(IdbenchError, match="no CUDAExecutionProvider") as e:
        create_detector("scrfd", "cuda", str(weights))
    assert "\n" not in str(e.value) and "--device cpu" in str(e.value)
    files = sorted(shared_faces.glob("*/*.jpg"))[:3]
    with pytest.raises(IdbenchError, match="no CUDAExecutionProvider"):  # raised, not a skip reason per image
        list(detect_paths(files, "scrfd", Cache(enabled=False), "cuda"))


# ------------------------------------------------------------------------------------------------
# on a GPU (skipped here)


def _embed(files, out: Path, device: str, *extra: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "idbench.bench._entry", "embed", "--no-cache", "--out", str(out),
                        "--device", device, *extra, *map(str, files)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


@needs_cuda
@pytest.mark.parametrize("encoder", ["dlib", "encoders/contracts/mobileface.toml"])
def test_cuda_bench_embed_matches_cpu(encoder, shared_faces, tmp_path):
    """``bench embed --device cuda`` (HOG on CPU workers, the encoder on the GPU) == ``--device cpu``."""
    if encoder.endswith(".toml"):
        ort = pytest.importorskip("onnxruntime")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            pytest.skip("onnxruntime without the CUDA provider")
        if not (ROOT.parent / "shared" / "models" / "mobileface.onnx").is_file():
            pytest.skip("../shared/models/mobileface.onnx is not available")
    files = sorted(shared_faces.glob("*/*.jpg"))[:8]  # faces HOG finds: the same boxes on both runs
    cpu = _embed(files, tmp_path / "cpu.npz", "cpu", "--encoder", encoder)
    gpu = _embed(files, tmp_path / "gpu.npz", "cuda", "--encoder", encoder)
    assert list(gpu["paths"]) == list(cpu["paths"]) and len(cpu["paths"]) == 8
    assert list(gpu["skipped"]) == list(cpu["skipped"])
    np.testing.assert_array_equal(gpu["bboxes"], cpu["bboxes"])
    np.testing.assert_allclose(gpu["embeddings"], cpu["embeddings"], atol=1e-4)


@needs_cuda
def test_cuda_batched_mtcnn_matches_cpu(shared_faces):
    """MTCNN on the GPU, batched, finds the faces per-image MTCNN finds on the CPU (GPU arithmetic: 0.5 px)."""
    from idbench.detectors import Mtcnn, DETECTORS
    from idbench.imageio import read_image

    images = [read_image(p) for p in _photos(shared_faces, 12)]
    spec = DETECTORS.spec("mtcnn")
    cpu = [Mtcnn(spec, device="cpu").detect(im) for im in images]
    gpu = Mtcnn(spec, device="cuda").detect_batch(images)
    for a, b in zip(gpu, cpu):
        assert len(a) == len(b)
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.box, fb.box, atol=0.5)
            np.testing.assert_allclose(fa.landmarks5, fb.landmarks5, atol=0.5)


@needs_cuda
def test_cuda_embed_auto_detector_runs_mtcnn_on_the_gpu(shared_faces, tmp_path):
    """The HOG misses get MTCNN on the GPU (batched): same paths and skips as on CPU, embeddings close."""
    files = _photos(shared_faces, 8)
    cpu = _embed(files, tmp_path / "cpu.npz", "cpu")
    gpu = _embed(files, tmp_path / "gpu.npz", "cuda")
    assert list(gpu["paths"]) == list(cpu["paths"]) and list(gpu["skipped"]) == list(cpu["skipped"])
    np.testing.assert_allclose(gpu["bboxes"], cpu["bboxes"], atol=0.5)
    assert float((gpu["embeddings"] * cpu["embeddings"]).sum(1).min()) > 0.99


# ------------------------------------------------------------------------------------------------
# the per-device speed table


def test_speed_devices_table(shared_faces):
    """One row per stage and device; without CUDA the GPU rows say so instead of a number."""
    pytest.importorskip("facenet_pytorch")
    files = _photos(shared_faces, 4)
    r = subprocess.run([sys.executable, "-m", "idbench.bench.speed", "--devices", "cpu,cuda", "--limit", "4",
                        "--detect-batch", "4", *map(str, files)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert rows and all(x[0] in ("detection", "embedding") for x in rows)
    cpu = [x for x in rows if "cpu" in x]
    gpu = [x for x in rows if "cuda" in x]
    assert len(cpu) == len(gpu) == 4  # dlib-hog, mtcnn per image, mtcnn batched, embedding
    assert all("faces/s" in x for x in cpu)
    assert int(cpu[3][cpu[3].index("faces/s") + 1].lstrip("(")) == 4  # every photo's face embedded
    if not _cuda():
        assert [" ".join(x).split("cuda ")[1] for x in gpu] == [
            "CPU only (dlib-bin has no CUDA)", "no CUDA here", "no CUDA here", "no CUDA here"]
