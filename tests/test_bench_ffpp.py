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
    named = tmp_path / "named"  # the same manipulated videos as a results folder, <target>__<source>.mp4
    named.mkdir()
    for v in (ffpp_root / "manipulated_sequences" / "FaceShifter" / "c23" / "videos").iterdir():
        os.symlink(v, named / v.name.replace("_", "__"))
    args = ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--frames", "3", "--encoders",
            "dlib,dlib.resnet_v1_torch", "--swappers", f"ffpp:FaceShifter,blend,results:ff_named={named}",
            "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--n-boot", "100", "--saliency-faces", "0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    ds = res["dataset"]
    assert ds["n_items"] == 12 + 3  # 4 good videos x 3 frames + the no-face video's 3 frames
    assert any("004.mp4" in n for n in ds["notes"])  # the corrupt video is reported
    assert "5 of 6 test videos found" in ds["description"]  # what was found, not what the split expects
    fs = res["swappers"]["ffpp:FaceShifter"]  # frames of one video pair are one resampling unit
    assert fs["interval_unit"] == "target video x source video" and fs["n_units"] == 4 and fs["n"] == 12
    assert all(ci is not None for ci in fs["intervals"].values())
    # by name: each frame scored against the original frame with the same index. The fixture's manipulated
    # videos have 3 frames (0, 1, 2), the originals' extracted frames are 0, middle, last: only frame 0 exists
    # in both; frames 1 and 2 are listed, never scored against a nearest frame
    ff = res["swappers"]["ff_named"]
    assert ff["summary"]["n_swaps"] == 4 and len(ff["failures"]) == 8
    assert all("no frame" in f["reason"] and "--frames" in f["reason"] for f in ff["failures"])
    (same,) = [r for r in res["swap_comparisons"]["pose_l2[pose.pnp]"] if {r["a"], r["b"]} == {"ffpp:FaceShifter",
                                                                                             "ff_named"}]
    assert same["n_shared"] == 4 and same["difference"] == 0 and same["p_value"] == 1.0  # the same 4 frames
    assert "dropped or unmatched:" in r.output
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


LEARNED = ("inswapper", "blendswap", "simswap")
BOTH_CONVENTIONS = ("id_retrieval_top1[dlib]", "pose_l2[pose.pnp]", "expression_l2[expression.landmarks]",  # FaceShifter
                    "id_distance[dlib]", "id_relative[dlib]", "pose_l1[pose.pnp]", "gaze_l1[gaze.iris]",  # BlendFace
                    "expression_l1[expression.landmarks]", "pose_relative[pose.pnp]", "gaze_relative[gaze.iris]",
                    "expression_relative[expression.landmarks]")


def test_ffpp_learned_swappers_end_to_end(ffpp_root, learned_home, tmp_path):
    """FaceShifter's pairing: every test.json pair (a, b) gives a_b and b_a (<target>_<source>); each evaluated
    target frame is swapped with the source video's nearest frame, pasted back, scored with both conventions
    next to blend. Weights: the official formats (tests/learned_weights.py), no real ones."""
    import hashlib

    out = tmp_path / "out"
    args = ["run", "--dataset", "ffpp", "--root", str(ffpp_root), "--frames", "3", "--encoders", "dlib",
            "--swappers", "blend," + ",".join(LEARNED), "--analyses", "retrieval", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), "--n-boot", "50", "--saliency-faces", "0"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    from idbench.bench.samples import load_results

    res = load_results(out)  # results.json with its samples.npz
    split = json.loads((ffpp_root / "splits" / "test.json").read_text())
    want = {f"{t}_{s}" for a, b in split[:2] for t, s in ((a, b), (b, a))}  # 004/005 have no face: listed
    for name in LEARNED:
        sw = res["swappers"][name]
        assert sw["n_planned"] == 12, name  # 4 directed pairs x 3 target frames
        plan_fails = sorted(f["item"] for f in sw["failures"] if f["stage"] == "swap-plan")
        assert plan_fails == ["004_005", "005_004"] and all("unmatched pair" in f["reason"]
                                                            for f in sw["failures"] if f["stage"] == "swap-plan")
        no_face = [f for f in sw["failures"] if f["stage"] == "swap-detect"]
        assert sw["summary"]["n_swaps"] + len(no_face) == 12 and sw["summary"]["n_swaps"] >= 9, (name, no_face)
        per = sw["per_sample"]
        pairs = [n.split("#")[0] for n in per["name"]]
        assert set(pairs) <= want and max(pairs.count(p) for p in want) == 3
        assert all(p.split("_")[1] == s for p, s in zip(pairs, per["source"]))  # scored against the source video
        assert set(BOTH_CONVENTIONS) <= set(sw["summary"]), (name, sorted(sw["summary"]))
        w = sw["provenance"]["weights"]
        for f, info in w.items():  # the files read, named with their sha256 (computed here independently)
            assert info["sha256"] == hashlib.sha256((learned_home / "weights" / f).read_bytes()).hexdigest()
    for name in ("inswapper", "blendswap"):  # test weights keep the target's face: the swap is still the target
        assert res["swappers"][name]["summary"]["id_relative[dlib]"] < 0.5  # (blend carries the source's face: 1)
    assert res["swappers"]["blend"]["summary"]["id_relative[dlib]"] > 0.5
    rows = {x["name"]: x for x in csv.DictReader(open(out / "leaderboard.csv"))}
    assert {"blend", *LEARNED} <= set(rows) and all(rows[n]["id_distance[dlib]"] for n in LEARNED)
    md = (out / "leaderboard.md").read_text()
    assert all(n in md for n in LEARNED)
    html = (out / "report.html").read_text()
    head = html[html.index("Swap evaluation, one column per swapper"):]
    head = head[:head.index("</thead>")]
    assert all(f"<th>{n}</th>" in head for n in ("blend", *LEARNED))  # one table, side by side
