"""`bench run` on a miniature FF++ tree: shared videos as originals, pseudo-swaps as the manipulation."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from idbench.bench.cli import app

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
ORIGINALS = {"000": "hdtf_alexandria_ocasio_cortez.mp4", "001": "hdtf_katie_hill.mp4",
             "002": "liveportrait_d20.mp4", "003": "liveportrait_d19.mp4"}


def _write_video(path: Path, frames) -> None:
    import cv2

    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for f in frames:
        vw.write(np.ascontiguousarray(f[:, :, ::-1]))
    vw.release()


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory):
    if not VIDEOS.is_dir():
        pytest.skip("../shared/data/videos is not available")
    from idbench.detectors import create_detector
    from idbench.swapper.blend import swap_frames
    from idbench.swapper.ffpp import iter_video_frames

    root = tmp_path_factory.mktemp("ffpp")
    vdir = root / "original_sequences" / "youtube" / "c23" / "videos"
    vdir.mkdir(parents=True)
    for vid, name in ORIGINALS.items():
        os.symlink(VIDEOS / name, vdir / f"{vid}.mp4")
    (vdir / "004.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))  # corrupt
    _write_video(vdir / "005.mp4", [np.full((240, 320, 3), 120, np.uint8)] * 12)  # no face
    (root / "splits").mkdir()
    (root / "splits" / "test.json").write_text(json.dumps([["000", "001"], ["002", "003"], ["004", "005"]]))
    mdir = root / "manipulated_sequences" / "FaceShifter" / "c23" / "videos"
    mdir.mkdir(parents=True)
    det = create_detector("dlib-hog")
    for t, s in (("000", "001"), ("001", "000"), ("002", "003"), ("003", "002")):
        src = [f for _, f in iter_video_frames(vdir / f"{s}.mp4", 3)]
        out = []
        for i, tgt in iter_video_frames(vdir / f"{t}.mp4", 3):
            k = min(len(src) - 1, len(out))
            r = swap_frames(src[k], det.detect(src[k])[0], tgt, det.detect(tgt)[0], seed=0)
            out.append(r.image)
        _write_video(mdir / f"{t}_{s}.mp4", out)
    return root


def test_ffpp_end_to_end(ffpp_root, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--frames", "3", "--encoders",
            "dlib,dlib.resnet_v1_torch", "--swappers", "ffpp:FaceShifter,blend", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--n-boot", "100", "--saliency-faces", "0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    ds = res["dataset"]
    assert ds["n_items"] == 12 + 3  # 4 good videos x 3 frames + the no-face video's 3 frames
    assert any("004.mp4" in n for n in ds["notes"])  # the corrupt video is reported
    assert sum("no face" in s[1] for s in ds["skipped"]) == 3
    fs = res["swappers"]["ffpp:FaceShifter"]
    assert fs["summary"]["n_swaps"] == 12
    assert 0 <= fs["summary"]["id_retrieval_top1[dlib]"] <= 1
    # pseudo-swaps carry the source's inner face: closer to the source than to the target, mostly
    assert fs["summary"]["id_relative[dlib]"] > 0.5
    rows = list(csv.DictReader(open(out / "leaderboard.csv")))
    names = [x["name"] for x in rows]
    assert {"dlib", "dlib.resnet_v1_torch", "ffpp:FaceShifter", "blend"} <= set(names)
    assert rows[0]["id_distance[dlib]"] == "lower"
    # both dlib backends give the same numbers
    e = res["encoders"]
    assert e["dlib"]["retrieval"]["top1"] == pytest.approx(e["dlib.resnet_v1_torch"]["retrieval"]["top1"])
    # rerun: everything from the cache
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0
    res2 = json.loads((out / "results.json").read_text())
    assert res2["cache"]["misses"] == 0


def test_ffpp_missing_pieces_are_clear(ffpp_root, tmp_path):
    r = CliRunner().invoke(app, ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--compression", "c40",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "c40" in r.output
    r = CliRunner().invoke(app, ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--split", "val",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "val.json" in r.output
