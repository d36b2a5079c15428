"""ID retrieval against a brute-force loop, tie rules, invariances and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idbench.analysis import MetricInputError, RetrievalResult, id_retrieval, id_retrieval_ffpp

FAST = settings(max_examples=50, deadline=None)


def _loops(probe, probe_labels, gallery, gallery_labels, k):
    """Cosine per pair in plain python; rank by (-score, gallery index)."""
    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))

    hits, pred = [], []
    for p, pl in zip(probe.tolist(), list(probe_labels)):
        scored = sorted(((-cos(p, g), j) for j, g in enumerate(gallery.tolist())))
        top = [j for _, j in scored[:k]]
        hits.append(any(gallery_labels[j] == pl for j in top))
        pred.append(gallery_labels[top[0]])
    return np.array(hits), np.array(pred)


def _case(seed, n_probe, n_ids, per_id, d, noise=0.8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, d))
    g_lab = np.repeat(np.arange(n_ids), per_id)
    gallery = centres[g_lab] + noise * rng.normal(size=(len(g_lab), d))
    p_lab = rng.integers(0, n_ids, n_probe)
    probe = centres[p_lab] + noise * rng.normal(size=(n_probe, d))
    return probe, p_lab, gallery, g_lab


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 25), st.integers(2, 8), st.integers(1, 3), st.integers(1, 12),
       st.integers(1, 4))
def test_id_retrieval_matches_loops(seed, n_probe, n_ids, per_id, d, k):
    probe, pl, gallery, gl = _case(seed, n_probe, n_ids, per_id, d)
    k = min(k, len(gl))
    r = id_retrieval(probe, pl, gallery, gl, k=k)
    hits, pred = _loops(probe, pl, gallery, gl, k)
    np.testing.assert_array_equal(r.hits, hits)
    np.testing.assert_array_equal(r.predicted, pred)
    assert r.accuracy == pytest.approx(hits.mean()) and r.k == k and r.topk_indices.shape == (n_probe, k)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(2, 20), st.integers(2, 6))
def test_id_retrieval_invariances(seed, n_probe, n_ids):
    probe, pl, gallery, gl = _case(seed, n_probe, n_ids, 2, 16)
    r = id_retrieval(probe, pl, gallery, gl, k=2)
    rng = np.random.default_rng(seed + 1)
    # positive scaling of every embedding (one factor per row) changes nothing
    sp = rng.uniform(0.01, 100, (n_probe, 1))
    sg = rng.uniform(0.01, 100, (len(gl), 1))
    r2 = id_retrieval(probe * sp, pl, gallery * sg, gl, k=2)
    np.testing.assert_array_equal(r2.hits, r.hits)
    np.testing.assert_array_equal(r2.topk_indices, r.topk_indices)
    # permuting the probes permutes the per-probe results
    pp = rng.permutation(n_probe)
    r3 = id_retrieval(probe[pp], pl[pp], gallery, gl, k=2)
    np.testing.assert_array_equal(r3.hits, r.hits[pp])
    np.testing.assert_array_equal(r3.predicted, r.predicted[pp])
    # permuting the gallery (no ties in continuous data) keeps every hit and prediction
    gp = rng.permutation(len(gl))
    r4 = id_retrieval(probe, pl, gallery[gp], gl[gp], k=2)
    np.testing.assert_array_equal(r4.hits, r.hits)
    np.testing.assert_array_equal(r4.predicted, r.predicted)
    np.testing.assert_array_equal(gp[r4.topk_indices], r.topk_indices)


def test_id_retrieval_ties_follow_gallery_order():
    v = np.array([[0.3, -1.2, 2.0, 0.7]])
    gallery = np.vstack([np.eye(4)[0], v, 3.7 * v, v, np.eye(4)[1]])  # rows 1-3 point the same way
    labels = np.array(["far", "A", "B", "C", "other"])
    for probe in (v, 0.01 * v, v + 1e-3 * np.eye(4)[3]):
        r = id_retrieval(probe, ["A"], gallery, labels)
        assert r.predicted[0] == "A" and r.hits[0]
        r = id_retrieval(probe, ["B"], gallery, labels, k=1)
        assert not r.hits[0]  # B ties with A but comes later
        r = id_retrieval(probe, ["B"], gallery, labels, k=2)
        assert r.hits[0] and r.topk_indices[0].tolist() == [1, 2]
        r = id_retrieval(probe, ["C"], gallery, labels, k=2)
        assert not r.hits[0]
    # reversing the gallery reverses the winner among the tied rows
    r = id_retrieval(v, ["C"], gallery[::-1], labels[::-1])
    assert r.predicted[0] == "C"


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.integers(1, 5))
def test_id_retrieval_exact_duplicates_tie(seed, n_ids, copies):
    """Many identical gallery rows under different labels: the first one always wins."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_ids, 24))
    gallery = np.repeat(base, copies, axis=0)
    gl = np.arange(len(gallery))  # every copy its own label
    probe = base + 0.05 * rng.normal(size=base.shape)
    pl = np.arange(n_ids) * copies  # the first copy's label
    r = id_retrieval(probe, pl, gallery, gl)
    hits, pred = _loops(probe, pl, gallery, gl, 1)
    assert r.hits.all() and hits.all()
    np.testing.assert_array_equal(r.predicted, pl)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(6, 12), st.integers(2, 4), st.integers(2, 6))
def test_id_retrieval_topk_ties_in_large_galleries(seed, n_ids, copies, k):
    """Top-k over a gallery full of exact duplicates (shuffled): ties ordered by gallery index."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_ids, 8))
    rows = rng.permutation(np.repeat(np.arange(n_ids), copies))
    gallery = base[rows]
    gl = rng.integers(0, 3, len(rows))
    gl[:3] = [0, 1, 2]
    probe = base + 0.3 * rng.normal(size=base.shape)
    pl = rng.integers(0, 3, n_ids)
    r = id_retrieval(probe, pl, gallery, gl, k=k)
    hits, pred = _loops(probe, pl, gallery, gl, k)
    np.testing.assert_array_equal(r.hits, hits)
    np.testing.assert_array_equal(r.predicted, pred)
    for i in range(n_ids):  # the k nearest, nearest first, equal scores in gallery order
        expect = sorted(range(len(rows)), key=lambda j: (-float(base[rows[j]] @ probe[i] /
                                                                np.linalg.norm(base[rows[j]])), j))[:k]
        assert r.topk_indices[i].tolist() == expect


def test_id_retrieval_k_monotone_and_full_gallery():
    probe, pl, gallery, gl = _case(5, 60, 12, 2, 8, noise=2.0)
    accs = [id_retrieval(probe, pl, gallery, gl, k=k).accuracy for k in range(1, len(gl) + 1)]
    assert accs == sorted(accs) and accs[-1] == 1.0 and accs[0] < 1.0


def test_id_retrieval_string_labels_and_result_dict():
    probe, pl, gallery, gl = _case(2, 10, 4, 2, 6)
    names = np.array(["id%d" % i for i in range(4)])
    r = id_retrieval(probe, names[pl].tolist(), gallery, names[gl].tolist())
    r0 = id_retrieval(probe, pl, gallery, gl)
    assert isinstance(r, RetrievalResult) and r.accuracy == r0.accuracy
    np.testing.assert_array_equal(r.predicted, names[r0.predicted])
    d = r.to_dict()
    assert d["n_probes"] == 10 and len(d["hits"]) == 10


def test_id_retrieval_ffpp_convention():
    """Gallery: 10 frames per source video; a swap is a hit when its nearest frame is from its source."""
    rng = np.random.default_rng(3)
    n_videos, frames, d = 20, 10, 32
    centres = rng.normal(size=(n_videos, d))
    vids = np.array(["%03d" % i for i in range(n_videos)])
    g_vid = np.repeat(vids, frames)
    gallery = np.repeat(centres, frames, axis=0) + 0.3 * rng.normal(size=(n_videos * frames, d))
    src = rng.integers(0, n_videos, 50)
    tgt = rng.integers(0, n_videos, 50)
    # a swap carries 70% of the source identity, 30% of the target's
    swapped = 0.7 * centres[src] + 0.3 * centres[tgt] + 0.3 * rng.normal(size=(50, d))
    r = id_retrieval_ffpp(swapped, vids[src], gallery, g_vid)
    hits, pred = _loops(swapped, vids[src], gallery, g_vid, 1)
    np.testing.assert_array_equal(r.hits, hits)
    np.testing.assert_array_equal(r.predicted, pred)
    assert 0.5 < r.accuracy <= 1.0
    # same numbers as the generic function with video ids as labels
    assert r.accuracy == id_retrieval(swapped, vids[src], gallery, g_vid).accuracy
    with pytest.raises(MetricInputError, match="source_ids"):
        id_retrieval_ffpp(swapped, vids[src][:-1], gallery, g_vid)
    with pytest.raises(MetricInputError, match="gallery_video_ids"):
        id_retrieval_ffpp(swapped, vids[src], gallery, np.zeros(len(gallery)))


def test_id_retrieval_input_errors():
    probe, pl, gallery, gl = _case(0, 5, 3, 2, 4)
    cases = [
        (dict(k=0), "k"),
        (dict(k=7), "k"),
        (dict(k=1.5), "k"),
        (dict(probe=probe[:, :3]), "same dimension"),
        (dict(probe=probe[0]), "2-D"),
        (dict(gallery=gallery[:0]), "empty"),
        (dict(probe_labels=pl[:-1]), "probe_labels"),
        (dict(gallery_labels=gl[:-1]), "gallery_labels"),
        (dict(gallery_labels=np.zeros(len(gl), int)), "single label"),
        (dict(probe_labels=np.full(5, 99)), "absent from the gallery"),
        (dict(probe=np.where(np.arange(4) == 1, np.nan, probe)), "probe: .*NaN"),
        (dict(gallery=np.vstack([gallery[:-1], np.zeros(4)])), "gallery: row 5 is a zero vector"),
        (dict(probe=np.array([["a"] * 4] * 5)), "numbers"),
    ]
    for change, match in cases:
        args = dict(probe=probe, probe_labels=pl, gallery=gallery, gallery_labels=gl, k=1)
        args.update(change)
        with pytest.raises(MetricInputError, match=match):
            id_retrieval(**args)
