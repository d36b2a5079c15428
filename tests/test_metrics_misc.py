"""Cosine similarity, saliency ratio, the METRICS table and the import contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

import idbench.analysis as M
from idbench.analysis import MetricInputError, cosine_similarity, paired_cosine, saliency_inner_ratio

FAST = settings(max_examples=50, deadline=None)


def test_import_pulls_neither_torch_nor_cv2():
    code = ("import sys, idbench.analysis; "
            "bad = [m for m in ('torch', 'cv2', 'torchvision', 'sklearn') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


# --- cosine -----------------------------------------------------------------------------------

@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 12), st.integers(1, 40))
def test_cosine_similarity_matches_sklearn_and_scale(seed, na, nb, d):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(na, d)), rng.normal(size=(nb, d))
    s = cosine_similarity(a, b)
    assert s.shape == (na, nb)
    np.testing.assert_allclose(s, sk_cosine(a, b), atol=1e-12)
    scaled = cosine_similarity(a * rng.uniform(1e-3, 1e3, (na, 1)), b * rng.uniform(1e-3, 1e3, (nb, 1)))
    np.testing.assert_allclose(scaled, s, atol=1e-12)
    assert np.all(np.abs(s) <= 1.0)
    if na == nb:
        np.testing.assert_allclose(paired_cosine(a, b), np.diag(s), atol=1e-12)


def test_cosine_hand_values_and_errors():
    s = cosine_similarity([[1.0, 0.0], [3.0, 3.0]], [[2.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(s, [[1.0, 0.0], [np.sqrt(0.5), -np.sqrt(0.5)]], atol=1e-15)
    # extreme magnitudes neither overflow nor underflow
    np.testing.assert_allclose(cosine_similarity([[1e-200, 1e-200], [1e300, 0.0]], [[1e250, 1e250]]),
                               [[1.0], [np.sqrt(0.5)]], atol=1e-15)
    with pytest.raises(MetricInputError, match="a: row 1 is a zero vector"):
        cosine_similarity([[1.0, 2.0], [0.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises(MetricInputError, match="b: .*NaN"):
        cosine_similarity([[1.0, 2.0]], [[np.nan, 1.0]])
    with pytest.raises(MetricInputError, match="same dimension"):
        cosine_similarity([[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(MetricInputError, match="reshape"):
        cosine_similarity([1.0, 2.0], [[1.0, 2.0]])
    with pytest.raises(MetricInputError, match="same shape"):
        paired_cosine([[1.0, 2.0]], [[1.0, 2.0], [2.0, 1.0]])


# --- saliency ---------------------------------------------------------------------------------

def test_saliency_inner_ratio_hand_example():
    sal = np.array([[1.0, -1.0], [2.0, 0.0]])
    assert saliency_inner_ratio(sal, np.array([[1, 0], [0, 0]])) == 0.25  # |.| mass: 1 of 4
    assert saliency_inner_ratio(sal, np.array([[True, True], [False, False]])) == 0.5
    assert saliency_inner_ratio(sal, np.full((2, 2), 0.5)) == 0.5  # soft mask
    stack = np.stack([sal, np.array([[0.0, 0.0], [0.0, 3.0]])])
    np.testing.assert_allclose(saliency_inner_ratio(stack, np.array([[1, 0], [0, 0]])), [0.25, 0.0])
    per_map = np.stack([np.array([[1, 0], [0, 0]]), np.array([[0, 0], [0, 1]])])
    np.testing.assert_allclose(saliency_inner_ratio(stack, per_map), [0.25, 1.0])


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 16), st.integers(1, 16))
def test_saliency_inner_ratio_properties(seed, n, h, w):
    rng = np.random.default_rng(seed)
    sal = rng.normal(size=(n, h, w))
    mask = rng.uniform(size=(h, w))
    r = saliency_inner_ratio(sal, mask)
    loop = [sum(abs(sal[i, y, x]) * mask[y, x] for y in range(h) for x in range(w)) / np.abs(sal[i]).sum()
            for i in range(n)]
    np.testing.assert_allclose(r, loop, rtol=1e-10)
    np.testing.assert_allclose(r + saliency_inner_ratio(sal, 1 - mask), 1.0, atol=1e-12)
    np.testing.assert_allclose(saliency_inner_ratio(7.5 * sal, mask), r, rtol=1e-12)  # scale-free
    assert saliency_inner_ratio(sal[0], mask) == pytest.approx(r[0])


def test_saliency_inner_ratio_errors():
    m = np.ones((3, 3))
    cases = [
        ((np.zeros((3, 3)), m), "all-zero"),
        ((np.stack([np.ones((3, 3)), np.zeros((3, 3))]), m), "map 1"),
        ((np.ones((3, 4)), m), "shape"),
        ((np.ones((2, 3, 3)), np.ones((3, 3, 3))), "shape"),
        ((np.ones(9), np.ones(9)), "H x W"),
        ((np.ones((3, 3)), 2 * m), r"\[0, 1\]"),
        ((np.full((3, 3), np.nan), m), "NaN"),
    ]
    for args, match in cases:
        with pytest.raises(MetricInputError, match=match):
            saliency_inner_ratio(*args)


# --- METRICS table ----------------------------------------------------------------------------

def test_metrics_table_is_consistent():
    names = [m.name for m in M.METRICS]
    assert len(names) == len(set(names))
    for m in M.METRICS:
        assert m.direction in ("higher", "lower") or (m.direction == "" and m.group == "count"), m
        assert m.formula and m.reference and m.unit and m.group and m.kind in ("encoder", "swap"), m
        assert m.group == "count" or callable(getattr(M, m.function)), m
    # agrees with the leaderboard's encoder columns
    from idbench.bench.report import ENCODER_COLUMNS

    for col, _ in ENCODER_COLUMNS:  # every leaderboard column is catalogued
        assert M.column_metric(col).kind == "encoder", col
    assert M.metric_direction("pose_l2[pose.pnp]") == "lower"
    assert M.metric_direction("id_relative[arcface]") == "higher"
    assert M.metric_direction("tar_at_far_1e-2") == "higher"
    with pytest.raises(KeyError, match="pose_l2"):
        M.metric_direction("pose_l3")
    assert M.column_metric("tar_at_far_1e-3").name == "tar_at_far"
    assert M.column_metric("decomp_auc[skin]").group == "decomposition"
    assert not M.column_metric("positive_mean").comparable and M.column_metric("bias_relative_gap").comparable


def test_docs_table_lists_every_metric():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    for m in M.METRICS:
        name = "tar_at_far_<f>" if m.name == "tar_at_far" else m.name
        assert f"`{name}`" in doc, m.name


def test_public_api_exported_and_documented():
    for name in M.__all__:
        obj = getattr(M, name)
        if callable(obj) and not isinstance(obj, type):
            doc = obj.__doc__ or ""
            assert len(doc) > 80, name  # formula + convention
            assert obj.__annotations__.get("return") is not None, name


def test_uncatalogued_column_is_an_error_not_a_silent_drop():
    from idbench.bench.report.tables import leaderboard_rows

    ok = {"swappers": {"s": {"summary": {"pose_l2[pose.pnp]": 3.0, "n_swaps": 2}}}}
    cols, rows = leaderboard_rows(ok)
    assert "pose_l2[pose.pnp]" in cols and rows[0]["pose_l2[pose.pnp]"] == "lower"
    bad = {"swappers": {"s": {"summary": {"sharpness_l2[x]": 3.0}}}}
    with pytest.raises(KeyError, match="add it to idbench.analysis.catalogue"):
        leaderboard_rows(bad)
