"""Training data sources (insightface RecordIO, aligned-crop folders), the .bin verification sets, the landmarks cache.

The RecordIO and .bin files are written here by small writers that follow the published formats (dmlc-core
``include/dmlc/recordio.h``: magic, lrecord with a 3-bit continuation flag, 4-byte padding, records split where
the magic number occurs in the payload; MXNet ``recordio.py``: ``IRHeader`` packed as ``'IfQQ'`` with a float32
label array when ``flag > 0``; insightface: record 0 holds the image / identity record ranges, each identity
record the image range ``[start, end)``; ``.bin`` = ``pickle.dump((bins, issame))``), independent of the reader.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from idbench.bench.binset import bin_folds, load_bin  # noqa: E402
from idbench.bench.training.recordio import IndexedRecordIO, read_record, unpack  # noqa: E402
from idbench.bench.training.sources import (AlignedFolderSource, RecordIOSource, open_source,  # noqa: E402
                                            source_kind)
from idbench.errors import InputError  # noqa: E402

MAGIC = 0xCED7230A


# --- writers of the official formats (test side) --------------------------------------------------

def _record_bytes(payload: bytes) -> bytes:
    """dmlc WriteRecord: split at every 4-byte aligned occurrence of the magic number (dropped from the data)."""
    out, start = b"", 0
    magic = struct.pack("<I", MAGIC)
    for i in range(0, len(payload) - len(payload) % 4, 4):
        if payload[i:i + 4] == magic:
            out += magic + struct.pack("<I", ((1 if start == 0 else 2) << 29) | (i - start)) + payload[start:i]
            start = i + 4
    tail = payload[start:]
    out += magic + struct.pack("<I", ((3 if start else 0) << 29) | len(tail)) + tail
    return out + b"\0" * ((4 - len(tail) % 4) % 4)


def _pack(label, data: bytes, id1: int = 0) -> bytes:
    """MXNet recordio.pack: IRHeader(flag, label, id, id2) as 'IfQQ', float32 labels when there are several."""
    if np.ndim(label) == 0:
        return struct.pack("IfQQ", 0, float(label), id1, 0) + data
    lab = np.asarray(label, np.float32)
    return struct.pack("IfQQ", len(lab), 0.0, id1, 0) + lab.tobytes() + data


def _write_rec(folder: Path, payloads: dict) -> None:
    """train.rec + train.idx from {key: payload}, keys in order."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.rec", "wb") as rec, open(folder / "train.idx", "w") as idx:
        for k, p in payloads.items():
            idx.write(f"{k}\t{rec.tell()}\n")
            rec.write(_record_bytes(p))


def _faces(n_ids=3, per_id=4, seed=0):
    """(identity, RGB crop) pairs: a smooth random prototype per identity, noise per image."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_ids):
        proto = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (112, 112))
        for _ in range(per_id):
            out.append((k, np.clip(proto + rng.integers(-20, 21, proto.shape), 0, 255).astype(np.uint8)))
    return out


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()


def write_insightface_rec(folder: Path, faces) -> None:
    """insightface layout: 0 = header (first identity record, end), 1..N images, then one record per identity."""
    n = len(faces)
    ids = sorted({k for k, _ in faces})
    recs = {0: _pack([n + 1, n + 1 + len(ids)], b"")}
    for i, (k, img) in enumerate(faces, 1):
        recs[i] = _pack(float(k), _png(img), i)
    for j, k in enumerate(ids):
        rows = [i for i, (kk, _) in enumerate(faces, 1) if kk == k]
        recs[n + 1 + j] = _pack([rows[0], rows[-1] + 1], b"")
    _write_rec(folder, recs)


# --- RecordIO ---------------------------------------------------------------------------------------

def test_recordio_insightface_layout_reads_every_image_and_label(tmp_path):
    faces = _faces()
    write_insightface_rec(tmp_path / "ms1m", faces)
    src = open_source(str(tmp_path / "ms1m"), "arcface112")
    assert isinstance(src, RecordIOSource) and len(src) == len(faces)
    assert src.identities == [str(k) for k, _ in faces]
    for i, (_, img) in enumerate(faces):
        np.testing.assert_array_equal(src.image(i), img)  # PNG: lossless
    assert src.read(0)[1] is None


def test_recordio_without_identity_header_uses_each_records_label(tmp_path):
    faces = _faces(2, 3, seed=1)
    _write_rec(tmp_path / "flat", {i: _pack(float(k), _png(img)) for i, (k, img) in enumerate(faces)})
    src = RecordIOSource(tmp_path / "flat" / "train.rec")
    assert src.identities == [str(k) for k, _ in faces]
    np.testing.assert_array_equal(src.image(4), faces[4][1])


def test_recordio_joins_records_split_at_the_magic_number(tmp_path):
    magic = struct.pack("<I", MAGIC)
    payload = b"abcd" + magic + b"efgh" + magic + magic + b"xyz"  # two splits, an empty middle part, odd tail
    raw = _record_bytes(payload)
    assert (struct.unpack("<I", raw[4:8])[0] >> 29) == 1  # the writer really split it
    p = tmp_path / "r.rec"
    p.write_bytes(b"\0" * 8 + raw)
    with open(p, "rb") as f:
        assert read_record(f, 8) == payload


def test_recordio_header_with_label_array():
    flag, label, id1, _, body = unpack(_pack([3.0, 7.5], b"JPEG", id1=42))
    assert flag == 2 and list(label) == [3.0, 7.5] and id1 == 42 and body == b"JPEG"


def test_recordio_wrong_offset_is_one_clear_error(tmp_path):
    write_insightface_rec(tmp_path / "d", _faces(2, 2))
    (tmp_path / "d" / "train.idx").write_text("0\t3\n")
    with pytest.raises(InputError, match="no RecordIO record at byte 3"):
        RecordIOSource(tmp_path / "d" / "train.rec")


def _read_many(args):
    reader, keys = args
    return [len(reader.read(k)) for k in keys]


def test_recordio_reader_is_safe_across_processes(tmp_path):
    """One reader pickled into workers (spawned and forked): each opens its own file handle."""
    import multiprocessing as mp

    faces = _faces()
    write_insightface_rec(tmp_path / "d", faces)
    reader = IndexedRecordIO(tmp_path / "d" / "train.rec", tmp_path / "d" / "train.idx")
    want = [len(reader.read(k)) for k in range(1, 13)]  # the parent opened the file first
    for method in ("fork", "spawn"):
        with mp.get_context(method).Pool(2) as pool:
            got = pool.map(_read_many, [(reader, list(range(1, 7))), (reader, list(range(7, 13)))])
        assert got[0] + got[1] == want


def test_recordio_in_a_dataloader_with_workers(tmp_path):
    torch = pytest.importorskip("torch")
    faces = _faces()
    write_insightface_rec(tmp_path / "d", faces)
    src = open_source(str(tmp_path / "d"), "arcface112")

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(src)

        def __getitem__(self, i):
            return torch.from_numpy(src.image(i))

    got = torch.cat(list(torch.utils.data.DataLoader(DS(), batch_size=5, num_workers=2)))
    np.testing.assert_array_equal(got.numpy(), np.stack([img for _, img in faces]))


# --- aligned folders, source kinds --------------------------------------------------------------------

def test_aligned_folder_source_and_subset(tmp_path):
    faces = _faces(3, 2)
    for i, (k, img) in enumerate(faces):
        d = tmp_path / "crops" / f"id{k}"
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), img[:, :, ::-1])
    src = open_source(str(tmp_path / "crops"), "arcface112")
    assert isinstance(src, AlignedFolderSource) and src.identities == ["id0", "id0", "id1", "id1", "id2", "id2"]
    np.testing.assert_array_equal(src.image(3), faces[3][1])
    sub = src.subset(["id2"])
    assert len(sub) == 2 and sub.identities == ["id2", "id2"]
    np.testing.assert_array_equal(sub.image(1), faces[5][1])


def test_source_kind_prefixes_and_detection(tmp_path):
    write_insightface_rec(tmp_path / "r", _faces(1, 1))
    assert source_kind(str(tmp_path / "r"))[0] == "rec"
    assert source_kind(f"aligned:{tmp_path / 'r'}")[0] == "aligned"
    with pytest.raises(InputError, match="not found"):
        source_kind(str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="112x112 ArcFace crops"):
        open_source(str(tmp_path / "r"), "dlib150")


# --- .bin verification sets ---------------------------------------------------------------------------

def _write_bin(path: Path, faces, issame, protocol=pickle.HIGHEST_PROTOCOL) -> None:
    with open(path, "wb") as f:
        pickle.dump(([_png(img) for _, img in faces], issame), f, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_bin_set_round_trip(tmp_path, protocol):
    faces = _faces(2, 2)
    _write_bin(tmp_path / "lfw.bin", faces, [True, False], protocol)
    b = load_bin(tmp_path / "lfw.bin")
    assert b.issame.tolist() == [True, False] and b.pairs.tolist() == [[0, 1], [2, 3]]
    np.testing.assert_array_equal(b.decode(2), faces[2][1])


def test_bin_set_accepts_numpy_bools(tmp_path):
    faces = _faces(2, 2)
    _write_bin(tmp_path / "cfp.bin", faces, [np.bool_(True), np.bool_(False)])
    assert load_bin(tmp_path / "cfp.bin").issame.tolist() == [True, False]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_bin_set_refuses_any_other_global_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("evil.bin", "wb") as f:
        pickle.dump(([b"x", b"y"], [_Evil()]), f)
    with pytest.raises(InputError, match=r"refused: the pickle holds global (posix|os)\.system"):
        load_bin("evil.bin")
    assert not (tmp_path / "pwned").exists()
    with open("arr.bin", "wb") as f:  # a numpy array is not accepted either (only bool scalars)
        pickle.dump(([b"x", b"y"], np.array([True])), f)
    with pytest.raises(InputError, match="refused"):
        load_bin("arr.bin")


def test_bin_set_shape_errors(tmp_path):
    with open(tmp_path / "odd.bin", "wb") as f:
        pickle.dump(([b"x"], [True]), f)
    with pytest.raises(InputError, match="1 images for 1 pairs"):
        load_bin(tmp_path / "odd.bin")


def test_bin_folds_are_sklearn_kfold_without_shuffle():
    sk = pytest.importorskip("sklearn.model_selection")
    for n in (6000, 7001, 23):
        want = np.empty(n, int)
        for k, (_, test) in enumerate(sk.KFold(10, shuffle=False).split(np.arange(n))):
            want[test] = k
        np.testing.assert_array_equal(bin_folds(n), want)


def test_colour_transfer_equals_the_reinhard_formula():
    """The OpenCV-statistics colour transfer against the formula written out in numpy (float64 Lab statistics)."""
    from idbench.swapper.blend import color_transfer

    rng = np.random.default_rng(5)
    a, b = (rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(2))
    ma, mb = np.zeros((112, 112), np.float32), np.zeros((112, 112), np.float32)
    ma[20:100, 20:90], mb[10:80, 30:100] = 1, 0.5
    lab = lambda im: cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).astype(np.float64)
    s, t = lab(a), lab(b)
    ref = (s - s[ma > 0].mean(0)) / s[ma > 0].std(0) * t[mb > 0].std(0) + t[mb > 0].mean(0)
    ref = np.clip(np.rint(cv2.cvtColor(ref.astype(np.float32), cv2.COLOR_Lab2RGB) * 255), 0, 255)
    d = np.abs(color_transfer(a, b, ma, mb).astype(int) - ref)
    assert d.max() <= 1 and (d > 0).mean() < 1e-3


# --- landmarks and partners of aligned-crop sources ------------------------------------------------------------

def test_landmarks_cache_is_resumable_and_matches_dlib_in_the_template_box(tmp_path, monkeypatch):
    from idbench.align import arcface_template
    from idbench.bench.training import landmarks as L
    from idbench.detectors import dlib_box_from_landmarks5
    from idbench.landmarks import landmarks68

    faces = _faces(2, 3)
    write_insightface_rec(tmp_path / "d", faces)
    src = RecordIOSource(tmp_path / "d" / "train.rec")
    monkeypatch.setattr(L, "CHUNK", 2)
    L.precompute_landmarks(src, workers=1, stop_after=1)  # interrupted after one chunk of 2 rows
    done = np.load(tmp_path / "d" / "train.idbench" / "landmarks68.done.npy")
    assert done.tolist() == [True, False, False]
    lm = L.load_landmarks(src)  # completes the other chunks
    box = dlib_box_from_landmarks5(arcface_template(112))
    want = np.stack([landmarks68(img, box) for _, img in faces])
    np.testing.assert_allclose(np.asarray(lm), want, atol=1e-4)
    assert isinstance(lm, np.memmap)
    meta = __import__("json").loads((tmp_path / "d" / "train.idbench" / "landmarks68.json").read_text())
    assert meta["fingerprint"] == src.fingerprint() and meta["rows"] == 6
    # partner table: cached, memory-mapped, the same as computing it directly, another identity every time
    from idbench.bench.training.data import nearest_partners

    p = L.partner_table(src, 3, 7)
    assert isinstance(p, np.memmap)
    np.testing.assert_array_equal(p, nearest_partners(want, src.identities, 3, 7))
    assert all(src.identities[i] != src.identities[j] for i, j in enumerate(p))
    # another source content (one crop changed) does not reuse the cache
    before = src.fingerprint()
    faces[0] = (0, np.full_like(faces[0][1], 128))
    write_insightface_rec(tmp_path / "d", faces)
    src2 = RecordIOSource(tmp_path / "d" / "train.rec")
    assert src2.fingerprint() != before
