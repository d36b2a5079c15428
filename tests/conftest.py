"""Shared fixtures. Tests that need ../shared skip cleanly when it is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FACES = SHARED / "faces"


def _insightface_image(name: str) -> Path:
    from idbench.weights import package_dir

    d = package_dir("insightface")
    return d / "data" / "images" / name if d else Path("/nonexistent")


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not (FACES / "MANIFEST.csv").is_file():
        pytest.skip("../shared/data/faces is not available")
    return FACES


@pytest.fixture(scope="session")
def faces_manifest(shared_faces):
    with open(shared_faces / "MANIFEST.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def t1_image() -> np.ndarray:
    """insightface's bundled group photo (6 faces); shipped inside the insightface wheel."""
    from idbench.imageio import read_image

    p = _insightface_image("t1.jpg")
    if not p.is_file():
        pytest.skip("insightface's t1.jpg is not installed")
    return read_image(p)


@pytest.fixture(scope="session")
def t1_path() -> Path:
    p = _insightface_image("t1.jpg")
    if not p.is_file():
        pytest.skip("insightface's t1.jpg is not installed")
    return p


@pytest.fixture(scope="session", autouse=True)
def isolated_idbench_home(tmp_path_factory):
    """Caches, extracted frames and the sample live in a per-session folder, never in the user's home."""
    import os

    old = os.environ.get("IDBENCH_HOME")
    os.environ["IDBENCH_HOME"] = str(tmp_path_factory.mktemp("idbench_home"))
    yield
    if old is None:
        os.environ.pop("IDBENCH_HOME", None)
    else:
        os.environ["IDBENCH_HOME"] = old


@pytest.fixture(scope="session")
def learned_weights_dir(tmp_path_factory) -> Path:
    """Every learned swapper's files in the official formats (test weights whose swaps keep a face)."""
    pytest.importorskip("torch")
    from learned_weights import place_weights

    home = tmp_path_factory.mktemp("learned_home")
    place_weights(home, tmp_path_factory.mktemp("learned_tmp"), scoreable=True)
    return home


@pytest.fixture
def learned_home(learned_weights_dir, monkeypatch) -> Path:
    """``$IDBENCH_HOME`` holding the learned swappers' weights (``weights/``), for this test only."""
    monkeypatch.setenv("IDBENCH_HOME", str(learned_weights_dir))
    return learned_weights_dir



def hog_faces(paths, n: int = 4, at_least: int = 3):
    """(image, first dlib-HOG face) of the first ``n`` of ``paths`` (real photos for model-parity tests)."""
    from idbench.detectors import create_detector
    from idbench.imageio import read_image

    det = create_detector("dlib-hog")
    out = []
    for p in list(paths)[:n]:
        img = read_image(p)
        faces = det.detect(img)
        if faces:
            out.append((img, faces[0]))
    assert len(out) >= at_least
    return out


# Test tiers: `unit` (one function or module, seconds), `e2e` (a command or a whole pipeline on real photos),
# `slow` (marked in the file). `make test` runs all; `make test-quick` only `unit` and not `slow`.
E2E_MODULES = {"test_bench_run", "test_bench_ffpp", "test_decomposition", "test_embed_cli", "test_finetune",
               "test_every_registered", "test_fuzz", "test_hostile", "test_learned_cli", "test_mission_command", "test_packaging",
               "test_results_readme", "test_speed_paths", "test_train", "test_gpu_path"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        item.add_marker(pytest.mark.e2e if module in E2E_MODULES else pytest.mark.unit)
