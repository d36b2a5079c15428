"""Fuzz suite: seeded hostile datasets through `bench embed` and `bench run`.

Each seed builds, in a temporary folder, a dataset mixing real photos of ../shared/data/faces
(copied at test time, some under unicode or spaced names, one stored sideways with an EXIF
orientation tag, one group photo) with corrupt, truncated, empty, text-as-image, tiny-face and
non-image files (.pdf, .mp4, .DS_Store) and symlinks (a loop, a self-reference, a duplicate file, a
duplicate folder, a top-level link to the root). The oracle is the construction itself: which
files must give a face is known, and the numbers must equal those of a run on exactly that subset,
built as plain files in another folder with another cache (computed independently, not read back).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from idbench.bench.samples import load_results

SEEDS = [0]  # more: IDBENCH_FUZZ_SEEDS=0,1,2
if os.environ.get("IDBENCH_FUZZ_SEEDS"):
    SEEDS = [int(s) for s in os.environ["IDBENCH_FUZZ_SEEDS"].split(",")]

ODD_NAMES = ["José Ñúñez", "name with spaces", "北京 李", "o'brien-x"]


def _jpeg(rgb: np.ndarray, exif_orientation: int = 1) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    kw = {}
    if exif_orientation != 1:
        ex = Image.Exif()
        ex[0x0112] = exif_orientation
        kw["exif"] = ex.tobytes()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def build_hostile(root: Path, clean: Path, faces: Path, t1: Path, seed: int) -> Dict[str, List[str]]:
    """Write the hostile dataset under ``root`` and its valid subset, as plain files, under ``clean``.

    Returns {"valid": relative paths that must give exactly one face each, "other": relative paths
    of every other entry (files and symlinks) that must be listed with a reason}.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    people = sorted(p.name for p in faces.iterdir() if p.is_dir())
    picks = [people[i] for i in rng.choice(len(people), 3, replace=False)]
    idents = [ODD_NAMES[int(rng.integers(len(ODD_NAMES)))], *picks[1:]]  # one identity with an odd name
    valid: List[str] = []
    other: List[str] = []

    def put(rel: str, data: bytes, ok: bool) -> None:
        for base in (root, clean) if ok else (root,):
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(data)
        (valid if ok else other).append(rel)

    for k, person in enumerate(picks):
        ident = idents[k]
        photos = sorted((faces / person).glob("*.jpg"))[:3]
        for j, ph in enumerate(photos):
            name = f"{ph.stem} ü {j}.JPG" if (k, j) == (1, 0) else ph.name
            data = ph.read_bytes()
            if (k, j) == (2, 1):  # a phone photo stored sideways: pixels turned, EXIF tag 6 turns them back
                rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                data = _jpeg(np.ascontiguousarray(np.rot90(rgb, 1)), exif_orientation=6)
            put(f"{ident}/{name}", data, True)
    first = f"{idents[1]}/{sorted((faces / picks[1]).glob('*.jpg'))[1].name}"
    put(f"{idents[1]}/group.jpg", t1.read_bytes(), True)  # 6 faces: the largest is kept, with a warning
    real = (faces / picks[2] / sorted(p.name for p in (faces / picks[2]).glob("*.jpg"))[0]).read_bytes()
    bad = {
        "corrupt.jpg": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "truncated.jpg": real[: len(real) // 12],
        "empty.png": b"",
        "text.png": b"this is not an image\n" * 20,
        "tiny.jpg": _jpeg(np.asarray(Image.open(io.BytesIO(real)).convert("RGB").resize((24, 24)))),
        "paper.pdf": b"%PDF-1.4\n" + rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
        "clip.mp4": rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        ".DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(100),
    }
    order = list(bad)
    rng.shuffle(order)
    for i, name in enumerate(order):
        put(f"{idents[i % 3]}/{name}", bad[name], False)
    put("README.txt", b"a top-level file\n", False)
    (root / idents[2] / "loop").symlink_to("..")  # a loop inside an identity
    (root / idents[2] / "self").symlink_to("self")  # a self-reference
    (root / "all").symlink_to(".")  # a top-level link to the root: no phantom identity
    (root / "alias").symlink_to(idents[1])  # the same folder twice
    (root / idents[2] / "dup.jpg").symlink_to(root / first)  # the same file twice
    other += [f"{idents[2]}/loop", f"{idents[2]}/self", "all", "alias", f"{idents[2]}/dup.jpg"]
    return {"valid": sorted(valid), "other": sorted(other)}


def _invoke(args: List[str]):
    from typer.testing import CliRunner

    from idbench.bench.cli import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def _rel(paths, base: Path) -> List[str]:
    return [str(Path(p).relative_to(base)) for p in paths]


@pytest.fixture(scope="module")
def hostile_sets(shared_faces, t1_path, tmp_path_factory):
    out = {}
    for seed in SEEDS:
        d = tmp_path_factory.mktemp(f"fuzz{seed}")
        root, clean = d / "mixed", d / "clean"
        root.mkdir()
        clean.mkdir()
        out[seed] = (d, root, clean, build_hostile(root, clean, shared_faces, t1_path, seed))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_embed_uses_every_valid_face_once_and_lists_the_rest(hostile_sets, seed):
    d, root, clean, truth = hostile_sets[seed]
    _invoke(["embed", "--encoder", "dlib", "--out", str(d / "mixed.npz"), "--cache-dir", str(d / "cache-a"),
             str(root)])
    z = np.load(d / "mixed.npz")
    got = _rel(z["paths"], root)
    assert sorted(got) == truth["valid"]  # every valid face exactly once (the group photo: its largest)
    listed = {str(Path(s.split("\t")[0]).relative_to(root)): s.split("\t")[1] for s in z["skipped"]}
    assert sorted(listed) == truth["other"], listed
    assert all(r.strip() for r in listed.values())
    warn = {str(Path(s.split("\t")[0]).relative_to(root)): s.split("\t")[1] for s in z["warnings"]}
    group = next(p for p in truth["valid"] if p.endswith("group.jpg"))
    assert "faces: kept the largest" in warn[group]
    assert any("EXIF orientation 6" in w for w in warn.values())
    # the valid subset alone, as plain files, another cache: identical embeddings (computed, not read back)
    _invoke(["embed", "--encoder", "dlib", "--out", str(d / "clean.npz"), "--cache-dir", str(d / "cache-b"),
             str(clean)])
    c = np.load(d / "clean.npz")
    assert _rel(c["paths"], clean) == got and len(c["skipped"]) == 0
    np.testing.assert_allclose(c["embeddings"], z["embeddings"], atol=1e-6)


def _numbers(res: dict) -> dict:
    enc = res["encoders"]["dlib"]
    return {k: enc[k] for k in ("bias", "verification", "retrieval", "n_faces", "n_identities") if k in enc}


@pytest.mark.parametrize("seed", SEEDS)
def test_run_on_hostile_dataset_equals_run_on_valid_subset(hostile_sets, seed):
    d, root, clean, truth = hostile_sets[seed]
    common = ["--encoders", "dlib", "--dataset", "folder", "--n-boot", "50", "--saliency-faces", "0",
              "--k-partners", "5", "--seed", str(seed)]
    _invoke(["run", *common, "--root", str(root), "--out", str(d / "run-mixed"), "--cache-dir", str(d / "cache-a")])
    _invoke(["run", *common, "--root", str(clean), "--out", str(d / "run-clean"), "--cache-dir", str(d / "cache-c")])
    mixed = load_results(d / "run-mixed")
    alone = load_results(d / "run-clean")
    assert _numbers(mixed) == _numbers(alone)
    ds = mixed["dataset"]
    listed = {str(Path(r["item"]).relative_to(root)) for r in ds["ignored"]} | {
        str(Path(p).relative_to(root)) for p, _ in ds["skipped"]}
    assert sorted(listed) == truth["other"]
    assert ds["n_faces"] == len(truth["valid"]) and ds["n_ignored"] == len(ds["ignored"])
    assert {r["stage"] for r in ds["warnings"]} == {"decode", "face-policy"}
    assert mixed["encoders"]["dlib"]["n_identities"] == 3  # no phantom identity from the links
