"""The fast paths give the results of the slow ones: process-pool detection, the fused dlib port, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from idbench.parallel import ordered_map


def _slow_square(x: int) -> int:
    time.sleep(0.05 * ((x * 7) % 3))  # finish out of order
    return x * x


def _mark_and_square(arg) -> int:
    folder, x = arg
    Path(folder, f"{x}.done").touch()
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_ordered_map_keeps_input_order_across_processes():
    items = list(range(20))
    got = list(ordered_map(_slow_square, items, workers=2, min_items=1))
    assert got == [x * x for x in items]  # the order of map(), whatever finished first


def test_ordered_map_in_flight_window_is_bounded(tmp_path):
    items = [(str(tmp_path), i) for i in range(40)]
    it = ordered_map(_mark_and_square, items, workers=2, window=4, min_items=1)
    assert next(it) == 0
    time.sleep(0.5)  # workers idle once the window is full
    started = len(list(tmp_path.glob("*.done")))
    assert started <= 4 + 1, started  # the window, plus the one refilled after the first result
    assert list(it) == [i * i for i in range(1, 40)]


def test_ordered_map_propagates_errors_in_turn():
    it = ordered_map(_fail_on_three, range(10), workers=2, min_items=1)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(it)


def test_workers_env(monkeypatch):
    from idbench.parallel import default_workers

    monkeypatch.setenv("IDBENCH_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("IDBENCH_WORKERS", "x")
    with pytest.raises(ValueError, match="IDBENCH_WORKERS"):
        default_workers()


# ------------------------------------------------------------------------------------------------
# pool detection == in-process detection, bad files reported the same way


def _inputs(shared_faces: Path, tmp_path: Path, n: int):
    files = sorted(shared_faces.glob("*/*.jpg"))[:n]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((120, 120, 3), 128, np.uint8))
    return files[:3] + [bad] + files[3:] + [blank]


def test_pool_detection_matches_in_process(shared_faces, tmp_path, monkeypatch):
    from idbench.cache import Cache
    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import embed_files

    inputs = _inputs(shared_faces, tmp_path, 12)
    enc = {"dlib": create_encoder("dlib.native")}
    runs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("IDBENCH_WORKERS", workers)
        runs[workers] = embed_files(inputs, enc, detector="dlib-hog", cache=Cache(enabled=False), progress=False)
    serial, pooled = runs["1"], runs["2"]
    assert pooled.paths == serial.paths and len(serial.paths) == 12
    np.testing.assert_array_equal(pooled.embeddings["dlib"], serial.embeddings["dlib"])
    np.testing.assert_array_equal(pooled.bboxes, serial.bboxes)
    assert pooled.skipped == serial.skipped
    assert [Path(p).name for p, _ in serial.skipped] == ["broken.jpg", "blank.png"]
    assert [d.path for d in pooled.images] == [Path(p) for p in inputs]  # every input, in input order


def _same_faces(a, b, atol: float = 1e-3) -> None:
    """The same faces: detector and geometry, to ``atol`` px (torch's thread count while the pool runs may change
    MTCNN's float sums in the last bits)."""
    assert [f.detector for f in a] == [f.detector for f in b]
    for fa, fb in zip(a, b):
        da, db = fa.to_dict(), fb.to_dict()
        assert da.keys() == db.keys()
        for k in da:
            if isinstance(da[k], (list, float)):
                np.testing.assert_allclose(np.asarray(da[k], float), np.asarray(db[k], float), atol=atol, err_msg=k)
            else:
                assert da[k] == db[k], k


def test_pool_defers_the_fallback_detector_to_the_caller(shared_faces, tmp_path, monkeypatch):
    """``auto`` in workers runs HOG only; the images HOG misses get MTCNN in the calling process, same faces."""
    from idbench.cache import Cache
    from idbench.pipeline import detect_paths, detect_stream, file_item

    hog_misses = [shared_faces / "ben_affleck" / "02.jpg", shared_faces / "halle_berry" / "03.jpg"]
    if not all(p.exists() for p in hog_misses):
        pytest.skip("the shared faces changed")
    inputs = sorted(shared_faces.glob("*/*.jpg"))[:8] + hog_misses
    monkeypatch.setenv("IDBENCH_WORKERS", "2")
    pooled = list(detect_paths(inputs, "auto", Cache(tmp_path / "c"), "cpu"))
    serial = list(detect_stream((file_item(p) for p in inputs), "auto", Cache(enabled=False), "cpu"))
    assert [d.path for d in pooled] == [Path(p) for p in inputs]
    assert [f.detector for d in pooled for f in d.faces][-2:] == ["mtcnn", "mtcnn"]
    for a, b in zip(pooled, serial):
        assert not a.error and "deferred" not in a.meta
        _same_faces(a.faces, b.faces)
    # the cache holds the cascade's answer: a rerun (no detector call needed) gives the same faces
    again = list(detect_paths(inputs, "auto", Cache(tmp_path / "c"), "cpu"))
    assert [[f.to_dict() for f in d.faces] for d in again] == [[f.to_dict() for f in d.faces] for d in pooled]


# ------------------------------------------------------------------------------------------------
# lazy imports


def test_hog_only_embed_run_imports_no_torch(shared_faces, tmp_path):
    """``bench embed --encoder dlib`` on images that all get a HOG face never loads torch or MTCNN."""
    files = [str(p) for p in sorted(shared_faces.glob("*/*.jpg"))[:10]]  # 10 files: the pool is used
    code = ("import sys; from idbench.bench.cli import app\n"
            "try:\n app(sys.argv[1:])\nexcept SystemExit as e:\n assert not e.code, e.code\n"
            "print('HEAVY', sorted(m for m in ('torch', 'facenet_pytorch', 'onnxruntime', 'tensorflow', "
            "'mediapipe', 'insightface') if m in sys.modules))")
    out = tmp_path / "e.npz"
    r = subprocess.run([sys.executable, "-c", code, "embed", "--encoder", "dlib", "--no-cache", "--out", str(out),
                        *files], capture_output=True, text=True, env={**os.environ, "IDBENCH_WORKERS": "2"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "HEAVY []" in r.stdout, r.stdout
    with np.load(out) as z:
        assert len(z["paths"]) == 10 and len(z["skipped"]) == 0


# ------------------------------------------------------------------------------------------------
# the fused dlib ResNet == the eager port


def _random_dlib_resnet(seed: int):
    torch = pytest.importorskip("torch")
    from idbench.encoders.dlib_resnet import Affine, DlibResNet

    torch.manual_seed(seed)
    m = DlibResNet().eval()
    with torch.no_grad():
        for a in m.modules():
            if isinstance(a, Affine):
                a.gamma.uniform_(0.5, 1.5)
                a.beta.uniform_(-0.2, 0.2)
    return m


@pytest.mark.parametrize("fused_ops", [True, False])
def test_inference_module_matches_eager(fused_ops, monkeypatch):
    torch = pytest.importorskip("torch")
    import idbench.encoders.dlib_resnet as R

    monkeypatch.setattr(R, "_FUSED_CPU", fused_ops and R._mkldnn_fusion_available())
    m = _random_dlib_resnet(0)
    fast = R.DlibResNetInference(m).to(memory_format=torch.channels_last)
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 3, 150, 150)).astype(np.float32))
    with torch.inference_mode():
        ref = m(m.normalise(pixels))
        got = fast(pixels.contiguous(memory_format=torch.channels_last))
        plain = fast(pixels)  # NCHW input works too
    scale = ref.abs().max().item()
    assert (got - ref).abs().max().item() < 1e-5 * max(scale, 1.0)
    assert (plain - ref).abs().max().item() < 1e-5 * max(scale, 1.0)


def test_torch_encoder_follows_weight_updates(tmp_path):
    """embed() uses the folded copy; after an in-place weight change (a training step) it is rebuilt."""
    torch = pytest.importorskip("torch")
    from idbench.encoders.dlib_torch import SPEC
    from idbench.encoders.base import TorchEncoder
    from idbench.encoders.dlib_torch import DlibTorchEncoder

    enc = DlibTorchEncoder.__new__(DlibTorchEncoder)
    TorchEncoder.__init__(enc, SPEC, _random_dlib_resnet(1))
    enc._fast = None
    faces = np.random.default_rng(2).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)

    def eager():
        with torch.inference_mode():
            return enc.forward_tensor(enc.to_tensor(faces)).numpy()

    np.testing.assert_allclose(enc.embed(faces, normalise=False), eager(), atol=1e-4)
    with torch.no_grad():
        enc.module.blocks[0].conv1.weight.mul_(1.5)
    np.testing.assert_allclose(enc.embed(faces, normalise=False), eager(), atol=1e-4)


# ------------------------------------------------------------------------------------------------
# GPU path (skips without CUDA)


def test_cuda_embedding_matches_cpu(shared_faces):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from idbench.cache import Cache
    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import embed_files

    files = sorted(shared_faces.glob("*/*.jpg"))[:20]
    cpu = embed_files(files, {"dlib": create_encoder("dlib")}, cache=Cache(enabled=False), progress=False)
    gpu = embed_files(files, {"dlib": create_encoder("dlib", device="cuda")}, cache=Cache(enabled=False),
                      progress=False, device="cuda")
    assert gpu.paths == cpu.paths
    np.testing.assert_allclose(gpu.embeddings["dlib"], cpu.embeddings["dlib"], atol=1e-4)


@pytest.mark.parametrize("runtime", ["", "onnxruntime", "mediapipe", "torch"])
def test_workers_are_spawned_once_a_threaded_runtime_is_loaded(runtime):
    """Forking after torch/onnxruntime/mediapipe ran can hang the child on a lock of a thread fork did not copy."""
    code = (f"import {runtime}\n" if runtime else "") + (
        "from idbench.parallel import _context, ordered_map\n"
        "print(_context().get_start_method(), list(ordered_map(abs, list(range(-10, 0)), workers=2)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    method = "fork" if not runtime else "forkserver"
    assert r.stdout.split()[0] == method and list(range(10, 0, -1)) == eval(r.stdout.split(" ", 1)[1])
