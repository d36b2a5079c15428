"""The O(N) analysis phases against the brute-force (N x N) versions they replace, on small inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from idbench.analysis import retrieval as R
from idbench.analysis.sampling import capped_indices, genuine_pairs, impostor_pairs, triangle_pair
from idbench.bench import encoder_analysis as EA

FACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "faces"


def _brute_verification_pairs(labels, max_negatives=20000, seed=0):
    """The original enumeration: every upper-triangle pair, then a seeded sample of the impostors."""
    labels = np.asarray(labels)
    iu, ju = np.triu_indices(len(labels), 1)
    same = labels[iu] == labels[ju]
    pos = np.stack([iu[same], ju[same]], 1)
    neg = np.stack([iu[~same], ju[~same]], 1)
    if len(neg) > max_negatives:
        neg = neg[np.random.default_rng(seed).choice(len(neg), max_negatives, replace=False)]
    return np.concatenate([np.c_[pos, np.ones(len(pos), np.int64)], np.c_[neg, np.zeros(len(neg), np.int64)]])


def _labels(seed, n, n_ids):
    rng = np.random.default_rng(seed)
    return np.array([f"id{x:03d}" for x in rng.integers(0, n_ids, n)])


@pytest.mark.parametrize("n,n_ids,max_neg", [(2, 1, 5), (2, 2, 5), (40, 3, 10), (150, 12, 300), (400, 30, 1000),
                                              (150, 2, 50), (120, 120, 100_000)])
def test_verification_pairs_equal_brute_force_below_the_caps(n, n_ids, max_neg):
    labels = _labels(n + n_ids, n, n_ids)
    for seed in (0, 7):
        info = {}
        got = EA.verification_pairs(labels, max_negatives=max_neg, seed=seed, info=info)
        np.testing.assert_array_equal(got, _brute_verification_pairs(labels, max_neg, seed))
        assert not info["genuine"]["capped"]
        assert info["genuine"]["n_all"] == int((got[:, 2] == 1).sum())


def test_triangle_pair_inverts_triu_indices():
    for n in (2, 3, 7, 50):
        a, b = triangle_pair(np.arange(n * (n - 1) // 2), n)
        iu, ju = np.triu_indices(n, 1)
        np.testing.assert_array_equal(a, iu)
        np.testing.assert_array_equal(b, ju)


def test_capped_genuine_pairs_are_a_uniform_subset_of_brute_force():
    labels = np.array(["a"] * 60 + ["b"] * 5 + ["c"] * 30 + ["d"])
    labels = labels[np.random.default_rng(0).permutation(len(labels))]
    brute = {tuple(p) for p in _brute_verification_pairs(labels)[:, :2][_brute_verification_pairs(labels)[:, 2] == 1]}
    s = genuine_pairs(labels, max_per_identity=100, max_total=10**6, seed=3)
    got = [tuple(p) for p in s.pairs]
    assert s.capped and s.n_all == len(brute) == 1770 + 10 + 435
    assert len(set(got)) == len(got) and set(got) <= brute  # distinct true genuine pairs
    per_id = {k: sum(labels[i] == k for i, _ in got) for k in "abcd"}
    assert per_id == {"a": 100, "b": 10, "c": 100, "d": 0}  # C(n, 2) below the cap, the cap above it
    assert got == sorted(got)  # triu order, as the brute-force enumeration
    # seeded: the same seed gives the same pairs, another seed others
    np.testing.assert_array_equal(genuine_pairs(labels, 100, 10**6, seed=3).pairs, s.pairs)
    assert not np.array_equal(genuine_pairs(labels, 100, 10**6, seed=4).pairs, s.pairs)
    # overall cap
    t = genuine_pairs(labels, 100, 150, seed=3)
    assert len(t.pairs) == 150 and {tuple(p) for p in t.pairs} <= set(got)
    # uniform within an identity: over many seeds every pair of "a" is drawn about 100/1770 of the time
    hits = np.zeros((60 * 59) // 2)
    rows_a = np.flatnonzero(labels == "a")
    pos = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(*[rows_a[x] for x in np.triu_indices(60, 1)]))}
    for seed in range(200):
        for i, j in genuine_pairs(labels, 100, 10**6, seed=seed).pairs:
            if (int(i), int(j)) in pos:
                hits[pos[(int(i), int(j))]] += 1
    assert abs(hits.mean() - 200 * 100 / 1770) < 1e-9 and hits.std() < 3 * np.sqrt(200 * 100 / 1770)


def test_impostor_pairs_capped_are_the_brute_force_sample():
    labels = _labels(5, 700, 40)
    brute = _brute_verification_pairs(labels, 500, 11)
    s = impostor_pairs(labels, 500, 11)
    assert s.capped and s.n_all == int((labels[:, None] != labels[None]).sum() // 2)
    np.testing.assert_array_equal(s.pairs, brute[brute[:, 2] == 0][:, :2])


def test_capped_indices():
    np.testing.assert_array_equal(capped_indices(5, 10), np.arange(5))
    c = capped_indices(1000, 10, seed=2)
    assert len(c) == 10 and len(set(c.tolist())) == 10 and (np.diff(c) > 0).all() and c.max() < 1000


@pytest.mark.skipif(not FACES.is_dir(), reason="../shared/data/faces absent")
def test_faces_set_pair_count_unchanged():
    """The shared-faces run of docs/results.md (746 faces, 75 identities): the caps do not bite, the pairs are the brute
    force's (3,600 genuine: sum over identities of C(n, 2); 20,000 of 274,285 impostors)."""
    from idbench.bench.datasets import load_dataset

    ds = load_dataset("folder", str(FACES))
    labels = np.array([it.identity for it in ds.items])
    info = {}
    got = EA.verification_pairs(labels, info=info)
    brute = _brute_verification_pairs(labels)
    np.testing.assert_array_equal(got, brute)
    _, counts = np.unique(labels, return_counts=True)
    assert len(labels) == 746 and info["genuine"]["n"] == int((counts * (counts - 1) // 2).sum()) == 3600
    assert not info["genuine"]["capped"] and info["impostor"]["n"] == 20000
    assert info["impostor"]["n_all"] == 746 * 745 // 2 - 3600


def _brute_rank(probe, gallery, k):
    """The original ranking: scores of the unique gallery rows, expanded, snapped, stable-sorted."""
    pn, gn = R.l2_normalize(probe), R.l2_normalize(gallery)
    gu, inv = np.unique(gn, axis=0, return_inverse=True)
    s = np.rint((pn @ gu.T)[:, inv.reshape(-1)] * R._SNAP)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("chunk", [1 << 22, 64, 7])
@pytest.mark.parametrize("dup", [False, True])
def test_blocked_rank_equals_brute_force(monkeypatch, chunk, dup):
    monkeypatch.setattr(R, "_CHUNK_ENTRIES", chunk)
    rng = np.random.default_rng(chunk + dup)
    gallery = rng.normal(size=(90, 6))
    if dup:  # exact copies and scaled copies (same direction), ties resolved by gallery order
        gallery[[5, 40, 77]] = gallery[60]
        gallery[[3, 88]] = 2.5 * gallery[10]
        gallery[20:30] = gallery[0]
    probe = np.r_[rng.normal(size=(25, 6)), gallery[[60, 0, 10]]]
    for k in (1, 2, 5, 13):
        np.testing.assert_array_equal(R._rank(probe, gallery, k), _brute_rank(probe, gallery, k))


def _brute_gallery_split(labels):
    labels = np.asarray(labels)
    gal, probe = [], []
    for ident in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == ident)
        if len(rows) >= 2:
            gal.append(rows[0])
            probe.extend(rows[1:])
    return np.array(gal, np.int64), np.array(probe, np.int64)


def _brute_plan_bias(labels, partner, seed=0):
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    anchors, pos, neg, swaps = [], [], [], []
    for ident in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == ident)
        if len(rows) < 2:
            continue
        a = int(rng.choice(rows))
        anchors.append(a)
        if partner[a] >= 0:
            neg.append((a, int(partner[a])))
        for r in rows:
            if r != a:
                pos.append((a, int(r)))
                if partner[r] >= 0:
                    swaps.append((a, int(r), int(partner[r])))
    return anchors, pos, neg, swaps


def test_gallery_split_and_plan_bias_equal_brute_force():
    labels = _labels(3, 300, 40)
    partner = np.random.default_rng(1).integers(-1, 300, 300)
    for got, want in zip(EA.gallery_split(labels), _brute_gallery_split(labels)):
        np.testing.assert_array_equal(got, want)
    p = EA.plan_bias(labels, partner, seed=5)
    a, pos, neg, swaps = _brute_plan_bias(labels, partner, seed=5)
    assert p.anchors.tolist() == a and p.positive == pos and p.negative == neg and p.swaps == swaps


def test_pair_scores_in_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 8)).astype(np.float32)
    pairs = rng.integers(0, 50, (333, 2))
    monkeypatch.setattr("idbench.analysis.protocol.PAIR_CHUNK", 10)  # where pair_scores lives now
    got = EA.pair_scores(emb, pairs)
    want = np.array([float(np.dot(emb[i].astype(np.float64), emb[j].astype(np.float64))) for i, j in pairs])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_random_partner_equals_brute_force():
    from idbench.swapper.base import random_other

    for n, n_ids, seed in [(1, 1, 0), (5, 1, 0), (30, 3, 1), (200, 17, 2)]:
        ids = _labels(seed, n, n_ids)
        rng = np.random.default_rng(seed)
        want = []
        for j in range(n):  # the original loop
            others = np.flatnonzero(ids != ids[j])
            want.append(int(rng.choice(others)) if len(others) else -1)
        np.testing.assert_array_equal(random_other(ids, seed), want)


def test_label_means_equal_a_loop():
    from idbench.bench.swap_eval import label_means

    rng = np.random.default_rng(0)
    E = rng.normal(size=(60, 5)).astype(np.float32)
    labels = _labels(1, 60, 7)
    wanted = labels[rng.integers(0, 60, 25)]
    want = np.stack([E[labels == w].mean(0) / np.linalg.norm(E[labels == w].mean(0)) for w in wanted])
    np.testing.assert_allclose(label_means(E, labels, wanted), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [1 << 22, 40])
def test_blocked_rank_ties_between_distinct_rows(monkeypatch, chunk):
    """Distinct gallery rows with equal cosines (axis vectors: many exact 0s and equal maxima) rank by row."""
    monkeypatch.setattr(R, "_CHUNK_ENTRIES", chunk)
    gallery = np.r_[np.eye(6), -np.eye(6), np.eye(6)[::-1] * 3, np.ones((2, 6)) * [[1], [-1]]]
    probe = np.r_[np.eye(6), np.ones((1, 6)), [[1, 1, 0, 0, 0, 0]]]
    for k in (1, 3, 8):
        np.testing.assert_array_equal(R._rank(probe, gallery, k), _brute_rank(probe, gallery, k))


def _results_with_samples(n):
    rng = np.random.default_rng(0)
    return {"encoders": {"e/1": {"bias": {"mean_gap": 0.1},
                                 "scores": {"positive": rng.random(n).tolist(), "swapped": rng.random(n).tolist(),
                                            "negative": []},
                                 "verification": {"auc": 0.9, "pair_scores": np.round(rng.random(n), 5).tolist(),
                                                  "pair_labels": rng.integers(0, 2, n).tolist()}}},
            "swappers": {"results:/x/y": {"summary": {"n_swaps": n}, "per_sample": {
                "name": [f"a/{i}->b/{i}" for i in range(n)], "target_row": list(range(n)),
                "id_distance[e/1]": rng.random(n).tolist(),
                "pose_target": [None if i % 3 == 0 else [0.5, 1.0, float(i)] for i in range(n)]}}},
            "failures": [{"stage": "detect", "item": "x.jpg", "reason": "no face"}]}


def test_samples_npz_round_trip(tmp_path):
    import json

    from idbench.bench.samples import load_results, write_samples

    res = _results_with_samples(1000)
    before = json.dumps(res, sort_keys=True)
    summary = write_samples(res, tmp_path)
    assert json.dumps(res, sort_keys=True) == before  # the run's own dict is left whole
    enc = summary["encoders"]["e/1"]
    assert "scores" not in enc or not enc["scores"]
    assert "pair_scores" not in enc["verification"] and enc["verification"]["auc"] == 0.9
    assert summary["swappers"]["results:/x/y"]["per_sample"] == {} and summary["failures"] == res["failures"]
    (tmp_path / "results.json").write_text(json.dumps(summary))
    back = load_results(tmp_path)
    assert back.pop("samples")["file"] == "samples.npz"
    assert json.dumps(back, sort_keys=True) == before


def test_results_json_size_does_not_grow_with_samples(tmp_path):
    from idbench.bench.samples import write_samples

    sizes = []
    for n in (100, 100_000):
        import json

        d = tmp_path / str(n)
        d.mkdir()
        sizes.append(len(json.dumps(write_samples(_results_with_samples(n), d))))
    assert sizes[1] - sizes[0] == 9 * 3  # only the 9 counts gain 3 digits each (8 arrays, n_swaps)


def test_each_rank_binds_its_cuda_device_before_the_first_collective(monkeypatch):
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    from idbench.bench import run as R

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", str(d))))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    cfg = R.RunConfig(device="cuda")
    assert R._distributed(cfg) == (1, 2)
    assert cfg.device == "cuda:1" and calls == [("set_device", "cuda:1"), ("init", "nccl")]
    calls.clear()
    assert R._distributed(R.RunConfig(device="cpu")) == (1, 2) and calls == [("init", "gloo")]


def test_packed_cache_round_trip_migration_and_workers(tmp_path, monkeypatch):
    import pickle

    from idbench.cache import Cache
    from idbench.packed_cache import PackedCache

    old = Cache(tmp_path)  # the per-file layout
    old.put_json("faces", "ab" * 32, [1, 2])
    old.put_array("emb", "cd" * 32, np.arange(3.0))
    monkeypatch.setenv("IDBENCH_CACHE_LAYOUT", "sqlite")
    c = Cache(tmp_path)
    assert isinstance(c, PackedCache)
    assert c.get_json("faces", "ab" * 32) == [1, 2]  # migrated from the old file ...
    (tmp_path / "faces" / "ab" / f"{'ab' * 32}.json").unlink()
    assert c.get_json("faces", "ab" * 32) == [1, 2]  # ... into the database
    np.testing.assert_array_equal(c.get_array("emb", "cd" * 32), np.arange(3.0))
    assert c.get_json("faces", "ef" * 32) is None and (c.hits, c.misses) == (3, 1)
    c.put_array("emb", "01" * 32, np.ones((2, 3), np.float32))
    monkeypatch.delenv("IDBENCH_CACHE_LAYOUT")
    again = Cache(tmp_path)  # the database is found without the variable
    assert isinstance(again, PackedCache) and again.get_array("emb", "01" * 32).dtype == np.float32
    clone = pickle.loads(pickle.dumps(again))  # as sent to a detection worker: its own connection
    assert isinstance(clone, PackedCache) and clone.get_json("faces", "ab" * 32) == [1, 2]
    plain = pickle.loads(pickle.dumps(Cache(tmp_path / "other")))
    assert type(plain) is Cache
    # an unparsable row is a miss, rewritten by the next put
    again._db().execute("UPDATE entries SET value=? WHERE key=?", (b"\xff\xfe junk", "01" * 32))
    assert again.get_array("emb", "01" * 32) is None and again.corrupt == 1
    again.put_array("emb", "01" * 32, np.zeros(2))
    np.testing.assert_array_equal(again.get_array("emb", "01" * 32), np.zeros(2))
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "sqlite" not in p.name]
    assert len(files) == 1  # only the old array file: new entries add no files


def _concurrent_writer(args):
    from idbench.packed_cache import PackedCache

    root, i = args
    c = PackedCache(root)
    for j in range(50):
        c.put_json("faces", f"{i:02d}{j:062d}", [i, j])
    return sum(c.get_json("faces", f"{i:02d}{j:062d}") == [i, j] for j in range(50))


def test_packed_cache_concurrent_processes(tmp_path):
    from idbench.packed_cache import PackedCache
    from idbench.parallel import ordered_map

    PackedCache(tmp_path).put_json("x", "00" * 32, 1)
    got = list(ordered_map(_concurrent_writer, [(tmp_path, i) for i in range(8)], workers=2, min_items=1))
    assert got == [50] * 8
    c = PackedCache(tmp_path)
    assert all(c.get_json("faces", f"{i:02d}{j:062d}") == [i, j] for i in range(8) for j in range(50))


def test_prebuild_builds_uncached_swaps_in_workers_in_order(tmp_path, monkeypatch):
    from functools import partial

    from idbench.cache import Cache
    from idbench.pipeline import _faces_key, lazy_item, prebuild

    monkeypatch.setenv("IDBENCH_WORKERS", "2")
    cache = Cache(tmp_path)
    loads = [partial(np.full, (4, 4, 3), i, dtype=np.uint8) for i in range(12)]
    loads[3] = partial(int, "not a number")  # a swap that fails: left to the caller's own build
    items = [lazy_item(f"s{i}", f"{i:064d}", f) for i, f in enumerate(loads)]
    cache.put_json("faces", _faces_key(items[5], "auto"), [])  # faces cached: never built
    counts = (cache.hits, cache.misses)
    out = list(prebuild(iter(items), "auto", cache))
    assert [it.path.name for it in out] == [f"s{i}" for i in range(12)] and (cache.hits, cache.misses) == counts
    for i, it in enumerate(out):
        if i in (3, 5):
            assert it._image is None
        else:
            np.testing.assert_array_equal(it._image, np.full((4, 4, 3), i, np.uint8))
    with pytest.raises(ValueError):
        out[3].image  # noqa: B018 - built here, the error where the detect stage lists it
    # builders that do not pickle (a closure) stay lazy: built by the detect stage as before
    lazy = [lazy_item(f"c{i}", f"{i + 50:064d}", lambda i=i: np.zeros((2, 2, 3), np.uint8)) for i in range(4)]
    assert all(it._image is None for it in prebuild(lazy, "auto", cache))


def test_pseudo_swap_builder_pickles():
    import pickle

    from idbench.swapper import create_swapper

    sw = create_swapper("blend", seed=0, k=100, device="cpu")
    clone = pickle.loads(pickle.dumps(sw))
    lm = np.array([[x, y] for x, y in zip(np.linspace(10, 90, 68), np.r_[np.linspace(20, 80, 34), np.linspace(80, 20, 34)])])
    img = np.zeros((100, 100, 3), np.uint8)
    np.testing.assert_array_equal(clone.mask_fn(img, lm), sw.mask_fn(img, lm))


def test_report_states_the_sampling():
    from idbench.bench.report.verification import sampling_note

    info = {}
    EA.verification_pairs(_labels(0, 400, 5), max_per_identity=100, info=info)
    note = sampling_note({"verification": {"pair_sampling": info},
                          "retrieval": {"n_probes": 20000, "n_probes_all": 31000}})
    n_all = info["genuine"]["n_all"]
    assert f"500 of {n_all:,} same-identity pairs (caps 100 per identity" in note
    assert "20,000 of 31,000 probes" in note
    assert sampling_note({"verification": {}, "retrieval": {"n_probes": 5, "n_probes_all": 5}}) == ""


def test_normalise_landmarks_in_blocks_equals_the_formula():
    from idbench.swapper.blend import normalise_landmarks

    p = np.random.default_rng(0).normal(50, 20, (70_000, 68, 2))
    before = p.copy()
    c = p - p.mean(axis=1, keepdims=True)
    want = c / np.maximum(np.sqrt((c ** 2).sum(axis=2).mean(axis=1)), 1e-12)[:, None, None]
    np.testing.assert_array_equal(normalise_landmarks(p), want)  # bit for bit: partners cannot change
    np.testing.assert_array_equal(p, before)  # the input is left alone


def test_a_tiny_run_gets_as_many_accuracy_folds_as_pairs():
    """Two identities of two faces: 6 verification pairs, so 6 folds (10 would be an error), stated."""
    from idbench.bench.encoder_analysis import analyse

    emb = np.eye(4, 8)  # orthogonal faces: every pair scores 0
    ver = analyse(emb, ["a", "a", "b", "b"], None, None)["verification"]
    assert ver["n_pairs"] == 6 and ver["accuracy_folds"] == 6
    assert 0 <= ver["accuracy_mean"] <= 1


# --- cold throughput (bench embed): identical results, less CPU ----------------------------------------

def test_bgr_to_rgb_swap_equals_numpy():
    """to_rgb_uint8's OpenCV channel swap gives numpy's reversed channels, for contiguous and strided input."""
    from idbench.imageio import to_rgb_uint8

    rng = np.random.default_rng(0)
    for a in (rng.integers(0, 256, (250, 250, 3), dtype=np.uint8), rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
              rng.integers(0, 256, (40, 90, 3), dtype=np.uint8)[:, ::3]):
        out = to_rgb_uint8(a)
        assert out.flags.c_contiguous and np.array_equal(out, a[:, :, ::-1])


def test_workers_send_back_the_decoded_pixels(tmp_path, monkeypatch):
    """Pooled detection returns each small image's pixels (identical to decoding the file again), and the same
    faces as one process; nothing extra is left in ``meta``; a large image's pixels stay in the worker."""
    import cv2

    from idbench import pipeline as P
    from idbench.imageio import decode_image, read_regular_file

    faces = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "faces").glob("*/*.jpg"))[:10]
    if len(faces) < 10:
        pytest.skip("../shared/data/faces not present")
    big = tmp_path / "big.jpg"
    img = cv2.imread(str(faces[0]))
    cv2.imwrite(str(big), cv2.resize(img, (600, 500)))  # 300,000 pixels: above PIXELS_BACK
    paths = faces + [big]
    monkeypatch.setenv("IDBENCH_WORKERS", "2")
    pooled = list(P.detect_paths(paths, "dlib-hog"))
    monkeypatch.setenv("IDBENCH_WORKERS", "1")
    alone = list(P.detect_paths(paths, "dlib-hog"))
    for a, b in zip(pooled, alone):
        assert [f.to_dict() for f in a.faces] == [f.to_dict() for f in b.faces] and "_pixels" not in a.meta
        if a.faces and a.path != big:
            assert a._image is not None and np.array_equal(a._image, decode_image(read_regular_file(a.path)))
    assert pooled[-1]._image is None and pooled[-1].faces  # re-read by the embed stage, as before
    assert np.array_equal(pooled[-1].image, decode_image(read_regular_file(big)))


def _python(code: str) -> str:
    """``code`` run by a fresh interpreter (pools and forkservers of its own); its standard output."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    return r.stdout


def test_torch_imported_while_a_pool_runs_gets_the_cpus_left(tmp_path):
    """A torch first imported by the caller while workers run (``bench embed``'s first batch) is limited to the
    CPUs the workers leave, and its setting is restored when the pool ends; workers come from a forkserver."""
    import json

    code = ("import json\nfrom idbench.parallel import available_cpus, ordered_map, _context\n"
            "during = []\n"
            "for i, x in enumerate(ordered_map(abs, list(range(-12, 0)), workers=2)):\n"
            "    if i == 2: import torch; before = torch.get_num_threads()\n"
            "    if i > 2: during.append(torch.get_num_threads())\n"
            "print(json.dumps([before, sorted(set(during)), torch.get_num_threads(), available_cpus(), "
            "_context().get_start_method()]))\n")
    out = _python(code)
    before, during, after, cpus, method = json.loads(out.strip().splitlines()[-1])
    assert during == [max(1, min(before, cpus - 2))] and after == before and method == "forkserver"


def test_layout_hint_above_100k_images_with_the_per_file_layout(tmp_path, monkeypatch):
    from idbench.cache import Cache
    from idbench.packed_cache import HINT_ABOVE_IMAGES, PackedCache, layout_hint

    monkeypatch.delenv("IDBENCH_CACHE_LAYOUT", raising=False)
    files = Cache(tmp_path / "files")
    assert layout_hint(files, HINT_ABOVE_IMAGES) is None
    hint = layout_hint(files, HINT_ABOVE_IMAGES + 1)
    assert hint.startswith("hint: ") and "IDBENCH_CACHE_LAYOUT=sqlite" in hint and "\n" not in hint
    assert layout_hint(Cache(enabled=False), 10**6) is None
    assert layout_hint(Cache(tmp_path / "ro", read_only=True), 10**6) is None
    monkeypatch.setenv("IDBENCH_CACHE_LAYOUT", "sqlite")
    packed = Cache(tmp_path / "db")
    assert isinstance(packed, PackedCache) and layout_hint(packed, 10**6) is None
    from idbench.packed_cache import PACK_ABOVE_IMAGES, for_images

    monkeypatch.delenv("IDBENCH_CACHE_LAYOUT")
    for kept in (Cache(enabled=False), Cache(tmp_path / "ro", read_only=True), packed):
        assert for_images(kept, PACK_ABOVE_IMAGES + 1) is kept  # nothing to switch
    assert for_images(files, PACK_ABOVE_IMAGES) is files
    switched = for_images(files, PACK_ABOVE_IMAGES + 1)
    assert isinstance(switched, PackedCache) and switched.root == files.root


def test_a_run_above_the_pack_threshold_keeps_its_cache_in_one_database(tmp_path, monkeypatch):
    """`bench embed` over more images than PACK_ABOVE_IMAGES (lowered here to 5) writes no per-file entry, says so
    in one line, and a rerun reads every entry back from the database: same embeddings, same bytes."""
    if not FACES.is_dir():
        pytest.skip("../shared/data/faces not present")
    from typer.testing import CliRunner

    from idbench.bench.cli import app
    from idbench import packed_cache

    photos = sorted(FACES.rglob("*.jpg"))[:8]
    monkeypatch.delenv("IDBENCH_CACHE_LAYOUT", raising=False)
    monkeypatch.setattr(packed_cache, "PACK_ABOVE_IMAGES", len(photos) - 1)
    cache = tmp_path / "cache"
    args = ["embed", "--encoder", "dlib", "--cache-dir", str(cache)] + [str(p) for p in photos]
    first = CliRunner().invoke(app, args + ["--out", str(tmp_path / "a.npz")])
    assert first.exit_code == 0, first.output
    assert f"cache: {len(photos)} images: entries kept in one SQLite database" in first.output
    held = sorted(p.name for p in cache.iterdir())
    assert "cache.sqlite" in held and all(n.startswith("cache.sqlite") for n in held), held  # + WAL, no entry folder
    n_rows = packed_cache.PackedCache(cache)._db().execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    assert n_rows >= 2 * len(photos)  # faces and embeddings of every photo
    monkeypatch.setattr(packed_cache, "PACK_ABOVE_IMAGES", 10**9)  # the database found in the folder is used
    again = CliRunner().invoke(app, args + ["--out", str(tmp_path / "b.npz")])
    assert again.exit_code == 0 and "SQLite" not in again.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["embeddings"], b["embeddings"])
    assert all(p.name.startswith("cache.sqlite") for p in cache.iterdir())
    monkeypatch.setattr(packed_cache, "PACK_ABOVE_IMAGES", 1)
    monkeypatch.setenv("IDBENCH_CACHE_LAYOUT", "files")  # the way out: the per-file layout
    args[args.index(str(cache))] = str(tmp_path / "files")
    files = CliRunner().invoke(app, args + ["--out", str(tmp_path / "c.npz")])
    assert files.exit_code == 0 and "SQLite" not in files.output and (tmp_path / "files" / "faces").is_dir()


def test_swap_shares_tile_the_plan():
    from idbench.bench.distributed import share_bounds

    for n in (0, 1, 5, 600, 601):
        for w in (1, 2, 3, 8):
            b = share_bounds(n, w)
            assert b[0][0] == 0 and b[-1][1] == n and all(b[i][1] == b[i + 1][0] for i in range(w - 1))
            assert max(hi - lo for lo, hi in b) - min(hi - lo for lo, hi in b) <= 1


def test_forkserver_workers_see_the_callers_current_environment(tmp_path):
    """Workers forked from the forkserver get the environment of the pool's caller at that pool, as spawned
    workers did (the server is restarted when it changed), e.g. another IDBENCH_HOME between two runs."""
    code = ("import os, torch\nfrom multiprocessing import forkserver\nfrom idbench.parallel import ordered_map\n"
            "os.environ['IDBENCH_T'] = 'a'\nprint(set(ordered_map(os.getenv, ['IDBENCH_T'] * 8, workers=2)))\n"
            "os.environ['IDBENCH_T'] = 'b'\nprint(set(ordered_map(os.getenv, ['IDBENCH_T'] * 8, workers=2)))\n"
            "server = forkserver._forkserver._forkserver_pid\n"
            "os.environ['OTHER_T'] = 'c'\nprint(set(ordered_map(os.getenv, ['OTHER_T'] * 8, workers=2)))\n"
            "del os.environ['OTHER_T']\nprint(set(ordered_map(os.getenv, ['OTHER_T'] * 8, workers=2)))\n"
            "print(forkserver._forkserver._forkserver_pid == server)\n")
    out = _python(code)
    # other variables reach the workers without a new server (imports set some: OpenCV's, torch's)
    assert out.split("\n")[:5] == ["{'a'}", "{'b'}", "{'c'}", "{None}", "True"]


def test_forkserver_workers_import_the_installed_idbench_from_a_folder_holding_idbench(tmp_path):
    """An IDBENCH_HOME named ``idbench/`` under the working folder must not become the workers' ``idbench``
    (the forkserver is a ``python -c`` process whose sys.path starts with its current folder)."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "work" / "idbench" / "cache").mkdir(parents=True)
    (tmp_path / "probe_mod.py").write_text(textwrap.dedent("""
        import os
        def probe(x):
            import idbench.cache
            return idbench.cache.__file__, os.getcwd()
    """))
    script = textwrap.dedent("""
        import os, sys
        sys.path.append(TMP)
        if __name__ == "__main__":
            import threading, time
            threading.Thread(target=time.sleep, args=(5,), daemon=True).start()  # not safe to fork: forkserver
            from idbench.parallel import ordered_map
            os.environ["IDBENCH_HOME"] = os.path.join(TMP, "work", "idbench")
            os.chdir(os.path.join(TMP, "work"))
            import probe_mod
            print(sorted(set(ordered_map(probe_mod.probe, list(range(4)), workers=2, min_items=1))))
    """).replace("TMP", repr(str(tmp_path)))
    (tmp_path / "run.py").write_text(script)
    r = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import idbench.cache

    (cache_file, cwd), = eval(r.stdout.strip().splitlines()[-1])
    assert cache_file == idbench.cache.__file__ and cwd == str(tmp_path / "work")
