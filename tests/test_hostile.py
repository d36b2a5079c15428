"""Hostile input (issue 14): EXIF orientation, dataset listing and symlinks, cache corruption,
permissions and storage errors, argument typos, face size and multi-face policy, the sample's faces."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-m", "idbench.bench.cli"]


def _jpeg(rgb: np.ndarray, orientation: int = 1, fmt: str = "JPEG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    kw = {"quality": 95} if fmt == "JPEG" else {}
    if orientation != 1:
        ex = Image.Exif()
        ex[0x0112] = orientation
        kw["exif"] = ex.tobytes()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()


# --- 1. EXIF orientation ----------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(orientation):
    """Every EXIF orientation decodes as Pillow's exif_transpose shows it (lossless PNG: exact)."""
    from PIL import Image, ImageOps

    from idbench.imageio import decode_image, exif_orientation

    stored = np.random.default_rng(orientation).integers(0, 256, (30, 50, 3), dtype=np.uint8)  # not square
    data = _jpeg(stored, orientation, fmt="PNG")
    assert exif_orientation(data) == orientation
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(decode_image(data), ref)


def test_sideways_phone_photo_embeds_like_the_upright_one(shared_faces, tmp_path):
    """Orientation 6 (stored turned 90 degrees counter-clockwise): the embedding equals the upright
    photo's within 1e-3 cosine, and the orientation applied is recorded on the image."""
    from PIL import Image

    from idbench.encoders import create_encoder
    from idbench.encoders.pipeline import detect_file, embed_detected

    rgb = np.asarray(Image.open(shared_faces / "ariel_sharon" / "01.jpg").convert("RGB"))
    (tmp_path / "upright.jpg").write_bytes(_jpeg(rgb))
    (tmp_path / "sideways.jpg").write_bytes(_jpeg(np.ascontiguousarray(np.rot90(rgb, 1)), 6))
    det = [detect_file(tmp_path / n, "auto") for n in ("upright.jpg", "sideways.jpg")]
    assert det[0].warnings == [] and "EXIF orientation 6" in det[1].warnings[0]
    t = embed_detected(det, {"dlib": create_encoder("dlib")}, progress=False)
    e = t.embeddings["dlib"]
    assert len(e) == 2 and 1 - float(e[0] @ e[1]) < 1e-3


def test_rotated_file_gets_its_own_cache_key():
    from idbench.cache import bytes_key
    from idbench.imageio import image_key

    rgb = np.zeros((8, 8, 3), np.uint8)
    upright, turned = _jpeg(rgb), _jpeg(rgb, 6)
    assert image_key(upright) == bytes_key(upright)  # existing caches stay valid
    assert image_key(turned) != bytes_key(turned)  # detections made before orientation was honoured: never read


# --- 6. every file under a dataset root used or listed; symlinks --------------------------------------

@pytest.fixture
def linked_root(tmp_path):
    r = tmp_path / "ds"
    for d in ("ann/sub", "bob", "empty"):
        (r / d).mkdir(parents=True)
    for f in ("ann/1.jpg", "ann/sub/2.PNG", "bob/3.jpg"):
        (r / f).write_bytes(b"img")
    (r / "ann/paper.pdf").write_bytes(b"%PDF")
    (r / "ann/clip.mp4").write_bytes(b"mp4")
    (r / "ann/.DS_Store").write_bytes(b"\0")
    (r / "MANIFEST.csv").write_text("path\n")
    (r / "ann/sub/up").symlink_to("../..")  # loop to the root from below
    (r / "ann/sub/back").symlink_to("..")  # loop to its parent
    (r / "ann/self").symlink_to("self")
    (r / "ann/gone.jpg").symlink_to("nowhere.jpg")
    (r / "ann/dup.jpg").symlink_to("../bob/3.jpg")
    (r / "all").symlink_to(".")
    (r / "bobby").symlink_to("bob")
    return r


def test_folder_dataset_lists_every_unused_entry_with_its_reason(linked_root):
    from idbench.bench.datasets import load_dataset

    r = linked_root
    d = load_dataset("folder", r)
    assert [(str(i.path.relative_to(r)), i.identity) for i in d.items] == [
        ("ann/1.jpg", "ann"), ("ann/sub/2.PNG", "ann"), ("bob/3.jpg", "bob")]  # the real file, not the link
    why = {str(Path(x["item"]).relative_to(r)): x["reason"] for x in d.ignored}
    assert {x["stage"] for x in d.ignored} == {"list"}
    assert why == {
        "MANIFEST.csv": "top-level file, not inside an identity folder",
        "ann/paper.pdf": "not an image file (.pdf extension)",
        "ann/clip.mp4": "unreadable video: cannot open video (corrupt or unsupported codec)",  # videos are read
        "ann/.DS_Store": "hidden file",
        "ann/sub/up": "symlink to the dataset root (not walked again)",
        "ann/sub/back": f"symlink loop: points to {r / 'ann'}, a folder above it",
        "ann/self": "broken or self-referencing symlink",
        "ann/gone.jpg": "broken or self-referencing symlink",
        "ann/dup.jpg": f"duplicate of {r / 'bob/3.jpg'} (same file through a symlink)",
        "all": "symlink to the dataset root (not walked again)",  # no phantom identity
        "bobby": f"same folder as {r / 'bob'} (symlink; listed once)",
        "empty": "identity folder holds no image",
    }


def test_scan_inputs_follows_links_once(linked_root):
    from idbench.imageio import scan_inputs

    listing = scan_inputs([linked_root / "ann", linked_root / "bob"])
    names = sorted(str(p.relative_to(linked_root)) for p in listing.files)
    assert names == ["ann/1.jpg", "ann/clip.mp4", "ann/dup.jpg", "ann/sub/2.PNG"]  # bob/3.jpg was reached first via the link; videos are inputs
    assert (str(linked_root / "bob/3.jpg"), f"duplicate of {linked_root / 'ann/dup.jpg'} (same file through a "
            f"symlink)") in listing.ignored


# --- 5 and 8. cache: corrupt entries, umask, storage errors --------------------------------------------

def test_corrupt_cache_entry_is_a_miss_and_is_rewritten(tmp_path):
    from idbench.cache import Cache

    c = Cache(tmp_path)
    c.put_json("faces", "ab" * 32, [1, 2])
    c.put_array("emb", "cd" * 32, np.arange(3.0))
    rng = np.random.default_rng(0)
    for kind, ext, key in (("faces", ".json", "ab" * 32), ("emb", ".npy", "cd" * 32)):
        (tmp_path / kind / key[:2] / f"{key}{ext}").write_bytes(b"\xff\xfe" + rng.bytes(200))
    assert c.get_json("faces", "ab" * 32) is None and c.get_array("emb", "cd" * 32) is None
    assert (c.misses, c.corrupt) == (2, 2)
    c.put_json("faces", "ab" * 32, [3])
    c.put_array("emb", "cd" * 32, np.ones(2))
    assert c.get_json("faces", "ab" * 32) == [3]
    np.testing.assert_array_equal(c.get_array("emb", "cd" * 32), np.ones(2))


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_cache_files_honour_the_umask(tmp_path, umask, mode):
    from idbench.cache import Cache

    old = os.umask(umask)
    try:
        Cache(tmp_path).put_json("faces", "ef" * 32, {})
    finally:
        os.umask(old)
    f = tmp_path / "faces" / "ef" / f"{'ef' * 32}.json"
    assert f.stat().st_mode & 0o777 == mode  # as `open()` would create it, not mkstemp's 0600


@pytest.mark.parametrize("code,cause", [(errno.ENOSPC, "disk full"), (errno.EROFS, "read-only file system"),
                                        (errno.EACCES, "permission denied")])
def test_storage_errors_are_one_line_naming_path_and_cause(tmp_path, monkeypatch, code, cause):
    from idbench.cache import Cache
    from idbench.errors import StorageError

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError) as e:
        Cache(tmp_path).put_json("faces", "01" * 32, [1])
    msg = str(e.value)
    assert "\n" not in msg and cause in msg and str(tmp_path / "faces") in msg
    assert not list((tmp_path / "faces").rglob(".tmp-*"))  # no temporary file left behind


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and mount; skipped elsewhere: the stub test above still runs)."""
    d = tmp_path / "tiny"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield d
    subprocess.run(["umount", str(d)], capture_output=True)


def test_full_disk_cache_is_one_line_error(full_disk, shared_faces, tmp_path):
    """`bench embed` with its cache on a full disk: exit 2, one line naming the path and 'disk full'."""
    (full_disk / "filler").write_bytes(b"\0" * 40_000)  # the probe still fits; the entries do not
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    res = CliRunner().invoke(app, ["embed", "--encoder", "dlib", "--detector", "dlib-hog", "--out",
                                   str(tmp_path / "x.npz"), "--cache-dir", str(full_disk),
                                   str(shared_faces / "ariel_sharon")])
    lines = [line for line in res.output.splitlines() if line.strip() and not line.startswith(("embed", "detect"))]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith(f"error: cannot write {full_disk}") and "disk full" in lines[0]


def test_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    from idbench.bench.validate import check_writable_dir
    from idbench.errors import StorageError

    import builtins

    real_open = builtins.open

    def ro_open(f, mode="r", *a, **k):
        if "w" in mode and str(f).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system", str(f))
        return real_open(f, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", ro_open)
    with pytest.raises(StorageError, match=r"^cannot write .*read-only file system \(errno 30\)$"):
        check_writable_dir(tmp_path / "out")


# --- 3 and 4. argument typos: non-zero exit, one line, before any work -----------------------------------

@pytest.mark.parametrize("args,needle", [
    (["run", "--detector", "hog"], "unknown detector 'hog'. Did you mean: dlib-hog?"),
    (["run", "--encoders", ""], "--encoders is empty"),
    (["run", "--swappers", "blnd"], "unknown swapper 'blnd'. Did you mean: blend"),
    (["run", "--swappers", "results:/no/such/folder"], "results folder /no/such/folder does not exist"),
    (["run", "--dataset", "foldr", "--root", "."], "unknown dataset 'foldr'. Did you mean: folder?"),
    (["run", "--multi-face", "biggest"], "unknown --multi-face policy 'biggest'"),
    (["embed", "--detector", "hog", "."], "unknown detector 'hog'"),
])
def test_typos_fail_fast_with_one_line(args, needle, tmp_path):
    out = tmp_path / ("o.npz" if args[0] == "embed" else "o")
    t0 = time.perf_counter()
    res = subprocess.run([*BENCH, *args, "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    took = time.perf_counter() - t0
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "o" / "results.json").exists()
    assert took < 60, took  # no torch import, no dataset read (about 1 s on an idle machine)


def test_weights_for_an_unknown_encoder_is_an_error(tmp_path):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    w = tmp_path / "w.dat"
    w.write_bytes(b"x")
    res = CliRunner().invoke(app, ["run", "--encoders", "dlib", "--weights", f"dlb={w}", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.strip() == "error: unknown encoder in --weights 'dlb'. Did you mean: dlib? Known: dlib"
    res = CliRunner().invoke(app, ["run", "--encoders", "dlib", "--weights", f"arcface.r100={w}", "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and "which this command does not use" in res.output


# --- 6. face size and multi-face policy -----------------------------------------------------------------

@pytest.fixture(scope="module")
def t1_faces(t1_image):
    from idbench.detectors import create_detector

    return create_detector("dlib-hog").detect(t1_image)


def test_multi_face_policies_on_a_six_face_photo(t1_faces, t1_image):
    from idbench.face_policy import FacePolicy, select_faces

    assert len(t1_faces) == 6
    areas = [f.area for f in t1_faces]
    s = select_faces(t1_faces, FacePolicy("largest"))
    assert s.faces[0].area == max(areas) and "6 faces: kept the largest" in s.warnings[0]
    assert len(select_faces(t1_faces, FacePolicy("all")).faces) == 6
    skip = select_faces(t1_faces, FacePolicy("skip"))
    assert skip.faces == [] and skip.error == "6 faces and --multi-face skip"
    h, w = t1_image.shape[:2]
    centre = select_faces(t1_faces, FacePolicy("center"), image_size=lambda: (h, w)).faces[0]
    by_hand = min(t1_faces, key=lambda f: np.hypot((f.box[0] + f.box[2]) / 2 - w / 2, (f.box[1] + f.box[3]) / 2 - h / 2))
    assert centre is by_hand and centre is not t1_faces[0]


def test_minimum_face_size(t1_faces):
    from idbench.face_policy import MIN_FACE_PX, FacePolicy, select_faces

    assert MIN_FACE_PX == 32
    small = [f.scaled(20 / f.width) for f in t1_faces[:1]]  # a 20 px face
    s = select_faces(small, FacePolicy())
    assert s.faces == [] and s.error.startswith("face too small: 20x") and "--min-face 32" in s.error
    mixed = select_faces([t1_faces[0], small[0]], FacePolicy())
    assert mixed.faces == [t1_faces[0]] and mixed.warnings == ["1 face(s) below --min-face 32 px ignored"]
    assert select_faces(small, FacePolicy(min_size=16)).faces == small


def test_detect_file_records_the_choice(t1_path):
    from idbench.encoders.pipeline import detect_file
    from idbench.face_policy import FacePolicy

    d = detect_file(t1_path, "dlib-hog")
    assert len(d.faces) == 1 and d.warnings and "kept the largest" in d.warnings[0]
    assert len(detect_file(t1_path, "dlib-hog", all_faces=True).faces) == 6
    assert detect_file(t1_path, "dlib-hog", policy=FacePolicy("skip")).error == "6 faces and --multi-face skip"


# --- 7. the embedded sample holds only real faces ----------------------------------------------------------

def test_sample_drops_the_astronauts_mission_patch():
    from idbench.bench.datasets import confirmed_faces
    from idbench.imageio import read_image
    from idbench.weights import package_dir

    base = package_dir("skimage")
    if base is None:
        pytest.skip("scikit-image is not installed")
    img = read_image(base / "data" / "astronaut.png")
    kept = confirmed_faces(img)
    assert [k for k, _ in kept] == [0]  # HOG's second box is the patch on the suit (below y = 300)
    assert kept[0][1].box[3] < 200
    from idbench.detectors import create_detector

    hog = create_detector("dlib-hog").detect(img)
    assert len(hog) == 2 and hog[1].box[1] > 300  # what v1 of the sample took for a face
