"""Video files given to bench embed / estimate or found in a folder dataset: --frames evenly spaced frames,
each a row with its frame index, embedded exactly like the same frame decoded independently (OpenCV seek)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.bench.cli import app

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "hdtf_katie_hill.mp4"


@pytest.fixture(scope="module")
def clip() -> Path:
    if not CLIP.is_file():
        pytest.skip("../shared/data/videos is not available")
    return CLIP


def _frame(path: Path, index: int) -> np.ndarray:
    """One frame decoded by seeking (independent of the sequential reader under test), RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return bgr[:, :, ::-1].copy()


def test_video_is_embedded_frame_by_frame(clip, tmp_path):
    import cv2

    out = tmp_path / "e.npz"
    r = CliRunner().invoke(app, ["embed", "--encoder", "dlib", "--detector", "dlib-hog", "--frames", "3",
                                 "--cache-dir", str(tmp_path / "c"), "--out", str(out), str(clip)])
    assert r.exit_code == 0, r.output
    assert "corrupt" not in r.output
    z = np.load(out)
    n = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert list(z["frame"]) == [0, round((n - 1) / 2), n - 1]  # evenly spaced over the whole clip
    assert set(z["paths"]) == {str(clip)} and len(z["embeddings"]) == 3
    # the middle frame, decoded independently and embedded as a photo: the same descriptor
    png = tmp_path / "mid.png"
    cv2.imwrite(str(png), _frame(clip, int(z["frame"][1]))[:, :, ::-1])
    r = CliRunner().invoke(app, ["embed", "--encoder", "dlib", "--detector", "dlib-hog", "--cache-dir",
                                 str(tmp_path / "c"), "--out", str(tmp_path / "p.npz"), str(png)])
    assert r.exit_code == 0, r.output
    ref = np.load(tmp_path / "p.npz")["embeddings"][0]
    assert np.abs(z["embeddings"][1] - ref).max() < 1e-5


def test_estimate_reads_video_frames_and_a_broken_video_is_not_called_corrupt(clip, tmp_path):
    import csv

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 20)
    out = tmp_path / "pose.csv"
    r = CliRunner().invoke(app, ["estimate", "--estimator", "pose", "--detector", "dlib-hog", "--frames", "2",
                                 "--out", str(out), str(clip), str(bad)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out)))
    assert [(x["path"], x["frame"], x["status"]) for x in rows if x["path"] == str(clip)] == \
        [(str(clip), "0", "ok"), (str(clip), str(int(rows[1]["frame"])), "ok")] and int(rows[1]["frame"]) > 0
    assert "2 of 2 faces" in r.output
    assert "unreadable video" in r.output and "not a readable image" not in r.output


def test_folder_dataset_reads_videos_as_frames(clip, tmp_path):
    from idbench.bench.datasets import load_dataset

    root = tmp_path / "ds"
    (root / "katie").mkdir(parents=True)
    (root / "katie" / "talk.mp4").symlink_to(clip)
    ds = load_dataset("folder", root, frames=4)
    first = [(it.identity, it.video, it.frame) for it in ds.items][:1]
    assert first == [("katie", str(root / "katie" / "talk.mp4"), 0)]
    assert len(ds.items) == 4 and len({it.frame for it in ds.items}) == 4 and not ds.ignored


def test_bench_swap_on_videos_round_trips_through_results(clip, tmp_path, monkeypatch):
    """bench swap reads video inputs as frames too; its manifest names the frames the folder dataset reads."""
    import idbench.bench.swap_eval as SE
    from idbench.bench.run import RunConfig, run

    monkeypatch.setattr(SE, "ESTIMATOR_DEFAULTS", {"pose": "pose.pnp"})
    other = clip.parent / "hdtf_alexandria_ocasio_cortez.mp4"
    if not other.is_file():
        pytest.skip("second clip missing")
    root = tmp_path / "ds"
    for ident, v in (("katie", clip), ("aoc", other)):
        (root / ident).mkdir(parents=True)
        (root / ident / "talk.mp4").symlink_to(v)
    d, cache = tmp_path / "swaps", tmp_path / "cache"
    r = CliRunner().invoke(app, ["swap", "--swapper", "blend", "--frames", "5", "--k", "20", "--detector", "dlib-hog",
                                 "--cache-dir", str(cache), "--out", str(d), str(root)])
    assert r.exit_code == 0, r.output
    res = run(RunConfig(dataset="folder", root=str(root), encoders=["dlib"], out=str(tmp_path / "o"),
                        cache_dir=str(cache), detector="dlib-hog", n_boot=50, saliency_faces=0, progress=False,
                        k_partners=20, frames=5, analyses=["verification"], swappers=["blend", f"results:v={d}"]))
    direct, named = res["swappers"]["blend"], res["swappers"]["v"]
    assert named["failures"] == [] and direct["summary"]["n_swaps"] >= 8
    assert named["summary"] == pytest.approx(direct["summary"], abs=1e-6)
    assert direct["interval_unit"] == "target video x source video" and direct["n_units"] == 2


def test_workers_are_spawned_while_other_threads_run():
    """A process with a live native thread (here a Python one, sleeping) never forks its workers."""
    import subprocess
    import sys

    code = ("import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "from idbench.parallel import _context, ordered_map\n"
            "print(_context().get_start_method(), list(ordered_map(abs, [-1, -2], workers=2)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stdout.split()[0] == "forkserver" and "[1, 2]" in r.stdout
