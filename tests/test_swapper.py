"""The ``blend`` pseudo-swapper, the swapper registry, ``ffpp:<Method>`` and ``bench swap``.

Synthetic faces (a parametric 68-point shape on smooth random textures) test the recipe exactly;
the shared photos (../shared/data/faces, skipped when absent) test it end to end with dlib.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from idbench.errors import IdbenchError, InputError, UnknownNameError, WeightsNotFoundError
from idbench.faces import Face, landmarks68_to_5
from idbench.swapper import SWAPPERS, BlendSwapper, SwapError, SwapFailure, SwapResult, create_swapper, list_swappers
from idbench.swapper import blend as B


# --- synthetic faces --------------------------------------------------------------------------------

def _shape68() -> np.ndarray:
    """A plausible iBUG-68 layout in a unit face frame (x right, y down, face width ~1)."""
    p = []
    for t in np.linspace(np.pi, 0, 17):  # jaw: left ear, chin, right ear
        p.append((0.5 * np.cos(t), -0.1 + 0.65 * np.sin(t)))
    for x0 in (-0.4, 0.1):  # brows
        for u in np.linspace(0, 1, 5):
            p.append((x0 + 0.3 * u, -0.3 - 0.05 * np.sin(np.pi * u)))
    for v in np.linspace(-0.2, 0.1, 4):  # nose bridge 27-30
        p.append((0.0, v))
    for u in np.linspace(-0.1, 0.1, 5):  # nose base 31-35
        p.append((u, 0.17))
    for cx in (-0.22, 0.22):  # eyes 36-47
        for t in np.linspace(np.pi, -np.pi, 7)[:-1]:
            p.append((cx + 0.09 * np.cos(t), -0.15 - 0.04 * np.sin(t)))
    for t in np.linspace(np.pi, -np.pi, 13)[:-1]:  # outer lips 48-59
        p.append((0.2 * np.cos(t), 0.32 - 0.07 * np.sin(t)))
    for t in np.linspace(np.pi, -np.pi, 9)[:-1]:  # inner lips 60-67
        p.append((0.12 * np.cos(t), 0.32 - 0.03 * np.sin(t)))
    a = np.array(p, np.float64)
    assert a.shape == (68, 2)
    return a


SHAPE = _shape68()


def synth_face(cx=100.0, cy=95.0, scale=110.0, sx=1.0, sy=1.0, angle=0.0, jitter=0.0, rng=None) -> Face:
    p = SHAPE * [sx, sy]
    if jitter:
        p = p + (rng or np.random.default_rng(0)).normal(0, jitter, p.shape)
    c, s = np.cos(angle), np.sin(angle)
    p = p @ np.array([[c, s], [-s, c]]) * scale + [cx, cy]
    lm = p.astype(np.float32)
    box = np.r_[lm.min(0), lm.max(0)].astype(np.float32)
    return Face(box, 1.0, landmarks68_to_5(lm), lm, None, "synthetic")


def synth_image(seed: int, h=200, w=200, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.uniform(40, 215, (12, 12, 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * np.array(tint, np.float32)
    return np.clip(img + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)


# --- the blending recipe ----------------------------------------------------------------------------

def test_mask_zero_is_target_and_one_is_recoloured_source():
    src, tgt = synth_image(1, tint=(1.2, 0.9, 0.8)), synth_image(2, tint=(0.8, 1.0, 1.2))
    fs, ft = synth_face(angle=0.1), synth_face(cx=105, cy=98, scale=100, angle=-0.05)
    res = B.swap_crops(src, fs, tgt, ft, seed=0)
    assert isinstance(res, SwapResult) and res.image.shape == (112, 112, 3) and res.image.dtype == np.uint8
    assert res.mask.dtype == np.float32 and res.mask.shape == (112, 112)
    assert 0.0 <= res.mask.min() and res.mask.max() == 1.0
    # recompute the pieces of the recipe independently
    sc, slm, sv, _ = B.align_crop(src, fs, fs.landmarks68.astype(np.float64))
    tc, tlm, tv, _ = B.align_crop(tgt, ft, ft.landmarks68.astype(np.float64))
    ms, mt = B.landmark_mask(slm, (112, 112)) * sv, B.landmark_mask(tlm, (112, 112)) * tv
    recol = B.color_transfer(sc, tc, ms, mt)
    zero, one = res.mask == 0, res.mask == 1
    assert zero.sum() > 1000 and one.sum() > 1000 and ((res.mask > 0) & (res.mask < 1)).sum() > 100
    assert np.array_equal(res.image[zero], tc[zero])
    assert np.array_equal(res.image[one], recol[one])
    # the mask is the blurred, eroded intersection: it lies inside the intersection dilated by the kernel
    assert (res.mask[(ms * mt) == 0] == 1).sum() == 0
    # colour transfer: the recoloured source's face statistics move onto the target's (in Lab; the
    # clip back into the RGB gamut leaves a small residual)
    import cv2

    lab = lambda im: cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    mu_s, mu_r, mu_t = lab(sc)[ms > 0].mean(0), lab(recol)[ms > 0].mean(0), lab(tc)[mt > 0].mean(0)
    assert np.linalg.norm(mu_r - mu_t) < 0.25 * np.linalg.norm(mu_s - mu_t) and abs(mu_r[0] - mu_t[0]) < 1.5
    # the result's face record is the target face moved into the crop
    assert res.face is not None and np.allclose(res.face.landmarks68, tlm, atol=1e-3)


def test_frame_mode_keeps_target_outside_mask():
    src, tgt = synth_image(3, 220, 240), synth_image(4, 260, 300)
    fs, ft = synth_face(cx=120, cy=100, scale=120), synth_face(cx=160, cy=120, scale=90, angle=0.2)
    res = B.swap_frames(src, fs, tgt, ft, seed=0)
    assert res.image.shape == tgt.shape and res.mask.shape == tgt.shape[:2]
    zero = res.mask == 0
    assert np.array_equal(res.image[zero], tgt[zero])
    assert (res.mask == 1).sum() > 500
    assert not np.array_equal(res.image[res.mask == 1], tgt[res.mask == 1])
    assert res.face is ft


def _normalised(lm):
    c = lm - lm.mean(1, keepdims=True)
    return c / np.sqrt((c ** 2).sum(2).mean(1))[:, None, None]


def test_partner_is_nearest_candidate_of_another_identity():
    rng = np.random.default_rng(5)
    n = 60
    lm = np.stack([synth_face(rng.uniform(80, 120), rng.uniform(80, 120), rng.uniform(60, 120),
                              rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), rng.uniform(-0.3, 0.3), 0.02,
                              rng).landmarks68 for _ in range(n)]).astype(np.float64)
    ids = np.array([f"id{i % 12}" for i in range(n)])
    flat = _normalised(lm).reshape(n, -1)
    d = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    for k in (7, 1000):
        partner, dist, cands = B.choose_partners(lm, ids, k=k, seed=3, return_candidates=True)
        for i in range(n):
            c = cands[i]
            assert len(set(c.tolist())) == len(c) == min(k, int((ids != ids[i]).sum()))
            assert (ids[c] != ids[i]).all()
            assert ids[partner[i]] != ids[i] and partner[i] in c
            assert dist[i] == pytest.approx(d[i, c].min()) and d[i, partner[i]] == pytest.approx(d[i, c].min())
        if k >= n:  # every other-identity image is a candidate: the global nearest other identity
            other = np.where(ids[None] != ids[:, None], d, np.inf)
            assert np.array_equal(partner, other.argmin(1))
    # an identity alone in the set has no partner
    p, dd = B.choose_partners(lm[:3], ["a", "a", "a"], k=5)
    assert (p == -1).all() and np.isinf(dd).all()


def test_same_seed_same_output_different_seed_different_partners():
    rng = np.random.default_rng(11)
    faces = [synth_face(rng.uniform(90, 110), rng.uniform(85, 105), rng.uniform(80, 115), rng.uniform(0.85, 1.15),
                        rng.uniform(0.85, 1.15), rng.uniform(-0.2, 0.2), 0.02, rng) for _ in range(24)]
    images = [synth_image(100 + i) for i in range(24)]
    ids = [f"p{i % 8}" for i in range(24)]
    lm = np.stack([f.landmarks68 for f in faces])
    p0, _ = B.choose_partners(lm, ids, k=5, seed=0)
    p0b, _ = B.choose_partners(lm, ids, k=5, seed=0)
    p1, _ = B.choose_partners(lm, ids, k=5, seed=1)
    assert np.array_equal(p0, p0b) and not np.array_equal(p0, p1)
    a = BlendSwapper(k=5, seed=0).swap_batch(images, faces, ids, anchors=[0, 1, 2, 3])
    b = BlendSwapper(k=5, seed=0).swap_batch(images, faces, ids, anchors=[0, 1, 2, 3])
    c = BlendSwapper(k=5, seed=1).swap_batch(images, faces, ids, anchors=[0, 1, 2, 3])
    assert all(r.ok for r in a + b + c)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask) for x, y in zip(a, b))
    assert [r.provenance["target_index"] for r in a] != [r.provenance["target_index"] for r in c]
    r = a[0]
    assert r.provenance["identity"] == r.provenance["source_id"] == "p0" and r.provenance["seed"] == 0
    assert r.provenance["target_id"] != "p0" and "landmark_distance" in r.provenance


def test_bad_input_gives_a_clear_per_item_error():
    ok_img, ok_face = synth_image(7), synth_face()
    gray = synth_image(8)[:, :, 0]  # 2-D: converted to RGB and used
    far = synth_face(cx=100 + 400)  # landmarks far outside the 200 x 200 image
    tiny = synth_face(scale=20)  # landmark extent < 32 px
    images = [ok_img, synth_image(9), gray, synth_image(10), synth_image(11), synth_image(12),
              synth_image(13).astype(np.float32)]
    faces = [ok_face, synth_face(cx=98), synth_face(cx=102), None, far, tiny, synth_face()]
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    out = BlendSwapper(mode="crop", k=10, seed=0).swap_batch(images, faces, ids)
    assert [r.ok for r in out] == [True, True, True, False, False, False, False]
    assert all(isinstance(r, SwapFailure) for r in out[3:])
    assert "no face" in out[3].reason
    assert "landmarks outside the image" in out[4].reason
    assert "face too small" in out[5].reason
    assert "uint8" in out[6].reason
    assert out[2].image.shape == (112, 112, 3)
    assert {r.provenance["target_id"] for r in out[:3]} <= {"a", "b", "c"}  # bad rows are never partners
    for img, face in ((ok_img, None), (ok_img, far), (ok_img, tiny), (ok_img.astype(np.float64), ok_face)):
        with pytest.raises(SwapError) as e:
            B.swap_crops(img, face, ok_img, ok_face)
        assert isinstance(e.value, IdbenchError) and e.value.reason and str(e.value).startswith(e.value.reason)


def test_overlap_too_small_is_reported():
    wide, tall = synth_face(cx=150, cy=130, scale=60, sx=3.0), synth_face(cx=150, cy=150, scale=60, sy=3.0)
    img1, img2 = synth_image(20, 300, 300), synth_image(21, 300, 300)
    with pytest.raises(SwapError, match="overlap too small"):
        B.swap_frames(img1, wide, img2, tall)
    for mode in ("crop", "frame"):
        out = BlendSwapper(mode=mode, k=5).swap_batch([img1, img2], [wide, tall], ["x", "y"])
        assert [r.ok for r in out] == [False, False]
        assert all("overlap too small" in r.reason for r in out)
        assert out[0].provenance["target_id"] == "y"  # the pair is named in the report


def test_mask_backends():
    with pytest.raises(WeightsNotFoundError, match="weights not found"):
        B.resolve_mask_fn("parsing:/nonexistent/79999_iter.pth")
    with pytest.raises(WeightsNotFoundError):
        BlendSwapper(mask="parsing:/nonexistent/79999_iter.pth")
    with pytest.raises(InputError):
        B.resolve_mask_fn("segformer")
    # a callable backend is used as given
    calls = []

    def square(image, lm):
        calls.append(image.shape)
        m = np.zeros(image.shape[:2], np.float32)
        m[30:90, 25:90] = 1
        return m

    res = B.swap_crops(synth_image(30), synth_face(), synth_image(31), synth_face(cx=96), mask_fn=square)
    assert len(calls) == 2 and res.mask[:20].max() == 0 and res.mask[60, 57] == 1


def test_registry():
    names = list_swappers()
    assert "blend" in names and {f"ffpp:{m}" for m in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures",
                                                        "FaceShifter", "DeepFakeDetection")} <= set(names)
    assert SWAPPERS.spec("blend").kind == "pseudo" and SWAPPERS.spec("ffpp:FaceShifter").kind == "dataset"
    sw = create_swapper("blend", seed=3, k=7, mode="frame")
    assert isinstance(sw, BlendSwapper) and (sw.seed, sw.k, sw.mode) == (3, 7, "frame")
    with pytest.raises(UnknownNameError, match="ffpp:FaceShifter"):
        create_swapper("ffpp:FaceShiftr", root="/x")
    with pytest.raises(InputError, match="needs root"):
        create_swapper("ffpp:FaceShifter")
    with pytest.raises(Exception):
        SWAPPERS.spec("blend").name = "x"  # frozen


# --- ffpp:<Method> ----------------------------------------------------------------------------------

def _photo() -> np.ndarray:
    import cv2

    p = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "abdullah_gul" / "01.jpg"
    if p.is_file():
        from idbench.imageio import read_image

        return cv2.resize(read_image(p), (128, 128), interpolation=cv2.INTER_AREA)
    return synth_image(40, 128, 128)


def _write_video(path: Path, frames) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    assert vw.isOpened(), "OpenCV cannot write mp4v videos here"
    for f in frames:
        vw.write(np.ascontiguousarray(f[:, :, ::-1]))
    vw.release()


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ffpp")
    photo = _photo()
    vids = root / "manipulated_sequences" / "FaceShifter" / "c23" / "videos"
    _write_video(vids / "000_001.mp4", [photo] * 12)
    _write_video(vids / "001_000.mp4", [np.ascontiguousarray(photo[:, ::-1])] * 12)
    (vids / "002_003.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    (root / "original_sequences" / "youtube" / "c23" / "videos").mkdir(parents=True)
    (root / "manipulated_sequences" / "Deepfakes").mkdir()
    return root


def test_ffpp_reads_frames_with_ids(ffpp_root):
    from idbench.swapper.ffpp import VideoReadError, iter_video_frames

    sw = create_swapper("ffpp:FaceShifter", root=ffpp_root, frames=4)
    got = list(sw)
    assert [(f.target_id, f.source_id) for f in got] == [("000", "001")] * 4 + [("001", "000")] * 4
    assert [f.frame for f in got[:4]] == [0, 4, 7, 11]
    photo = _photo()
    for f in got:
        assert f.image.shape == (128, 128, 3) and f.image.dtype == np.uint8
    ref = lambda f: photo if f.target_id == "000" else photo[:, ::-1]
    assert all(np.abs(f.image.astype(int) - ref(f)).mean() < 12 for f in got)  # RGB order, right video
    assert len(sw.errors) == 1 and "002_003.mp4" in sw.errors[0].reason
    assert sw.errors[0].provenance["target_id"] == "002"
    with pytest.raises(VideoReadError):
        list(create_swapper("ffpp:FaceShifter", root=ffpp_root, frames=4, strict=True))
    with pytest.raises(VideoReadError, match="no such video"):
        list(iter_video_frames(ffpp_root / "missing.mp4"))
    sub = create_swapper("ffpp:FaceShifter", root=ffpp_root, frames=2, pairs=[["001", "000"]])
    assert {(f.target_id, f.source_id) for f in sub} == {("000", "001"), ("001", "000")}


def test_ffpp_missing_folders_raise_clear_errors(ffpp_root, tmp_path):
    cases = [(dict(root=tmp_path / "nope"), "FF++ root not found"),
             (dict(root=tmp_path), "not an FF++ root"),
             (dict(root=ffpp_root, compression="c40"), "compression folder missing"),
             (dict(root=ffpp_root, method="Face2Face"), "method folder missing"),
             (dict(root=ffpp_root, method="Deepfakes"), "compression folder missing")]
    for kw, msg in cases:
        method = kw.pop("method", "FaceShifter")
        with pytest.raises(InputError, match=re.escape(msg)):
            list(create_swapper(f"ffpp:{method}", **kw))


# --- real photos (../shared) ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_subset(faces_manifest, shared_faces, tmp_path_factory):
    """~30 images of 10 identities (3 each), detected once (cache shared with the CLI test)."""
    from idbench.cache import Cache
    from idbench.encoders.pipeline import detect_file

    by_id = {}
    for r in faces_manifest:
        by_id.setdefault(r["identity"], []).append(shared_faces / r["path"])
    picked = [(i, p) for i in sorted(by_id) if len(by_id[i]) >= 3 for p in by_id[i][:3]][:30]
    cache_dir = tmp_path_factory.mktemp("swapcache")
    cache = Cache(cache_dir)
    det = [detect_file(p, "dlib-hog", cache=cache) for _, p in picked]  # HOG only: no MTCNN start-up
    return {"ids": [i for i, _ in picked], "paths": [p for _, p in picked], "images": [d.image for d in det],
            "faces": [d.faces[0] if d.faces else None for d in det], "cache_dir": cache_dir}


def test_swapped_is_closer_to_anchor_than_partner_dlib(real_subset):
    from idbench.align import align_face
    from idbench.encoders import create_encoder

    enc = create_encoder("dlib")
    ids, images, faces = real_subset["ids"], real_subset["images"], real_subset["faces"]
    sw = BlendSwapper(mode="crop", k=100, seed=0)
    out = sw.swap_batch(images, faces, ids, paths=real_subset["paths"])
    ok = [r for r in out if r.ok]
    assert len(ok) >= 0.8 * len(out)
    for r in ok:
        assert r.provenance["identity"] == ids[r.provenance["source_index"]] != r.provenance["target_id"]
    # anchor = first usable image of each identity; swaps of the *other* images of that identity
    anchor = {}
    for i, (ident, f) in enumerate(zip(ids, faces)):
        if f is not None:
            anchor.setdefault(ident, i)
    pairs = [(anchor[ids[r.provenance["source_index"]]], r) for r in ok
             if anchor.get(ids[r.provenance["source_index"]]) not in (None, r.provenance["source_index"])]
    assert len(pairs) >= 12
    keys = sorted(set(anchor.values()))
    e = dict(zip(keys, enc.embed(np.stack([align_face(images[i], faces[i], "dlib150") for i in keys]))))
    es = enc.embed(np.stack([align_face(r.image, r.face, "dlib150") for _, r in pairs]))
    # the same geometry for the partner (its own 112 crop), so both sides see the same crop borders
    partner_crops = []
    for _, r in pairs:
        t = r.provenance["target_index"]
        crop, _, _, m = B.align_crop(images[t], faces[t], faces[t].landmarks68.astype(np.float64))
        partner_crops.append(align_face(crop, B.transform_face(faces[t], m), "dlib150"))
    ep = enc.embed(np.stack(partner_crops))
    s_swap = np.array([e[a] @ s for (a, _), s in zip(pairs, es)])
    s_neg = np.array([e[a] @ p for (a, _), p in zip(pairs, ep)])
    assert (s_swap > s_neg).mean() >= 0.75, (s_swap, s_neg)


def test_bench_swap_cli(real_subset, tmp_path):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    out = tmp_path / "swaps"
    files = [str(p) for p in real_subset["paths"][:12]]
    args = ["swap", "--swapper", "blend", "--out", str(out), "--seed", "1", "--k", "50", "--limit", "5",
            "--detector", "dlib-hog", "--cache-dir", str(real_subset["cache_dir"]), *files]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == 5 and set(rows[0]) >= {"source_path", "target_path", "source_identity", "target_identity",
                                               "identity_label", "output_path", "mask_path", "landmark_distance",
                                               "status", "reason"}
    for row in rows:
        assert row["identity_label"] == row["source_identity"] == Path(row["source_path"]).parent.name
        if row["status"] == "ok":
            assert row["target_identity"] != row["source_identity"]
            assert (out / row["output_path"]).is_file() and (out / row["mask_path"]).is_file()
        else:
            assert row["reason"]
    import cv2

    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] >= 4 * 112
    r = CliRunner().invoke(app, ["swap", "--swapper", "blend", "--out", str(out), "--mode", "bogus", *files])
    assert r.exit_code != 0 and "crop or frame" in r.output
