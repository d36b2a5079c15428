"""Pose, gaze, expression, shape and relative errors against loops and hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idbench.analysis import (MetricInputError, expression_error, gaze_error, gaze_vectors, pose_error,
                              relative_error, shape_error)

FAST = settings(max_examples=50, deadline=None)


def _rows(seed, n, k, scale=30.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-scale, scale, (n, k)), rng.uniform(-scale, scale, (n, k))


def test_pose_error_hand_example():
    t = [[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    s = [[13.0, 4.0, 0.0], [0.0, 0.0, -2.0]]
    r = pose_error(t, s)
    np.testing.assert_allclose(r.l2, [5.0, 2.0])
    np.testing.assert_allclose(r.l1, [7.0, 2.0])
    assert r.mean_l2 == 3.5 and r.mean_l1 == 4.5
    assert r.mae == (1.5, 2.0, 1.0) and (r.mae_yaw, r.mae_pitch, r.mae_roll) == (1.5, 2.0, 1.0)
    assert r.n == 2 and r.to_dict()["mae_pitch"] == 2.0


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 70))
def test_vector_errors_match_loops(seed, n, k):
    a, b = _rows(seed, n, k)
    l1 = [sum(abs(x - y) for x, y in zip(ra, rb)) for ra, rb in zip(a.tolist(), b.tolist())]
    l2 = [math.sqrt(sum((x - y) ** 2 for x, y in zip(ra, rb))) for ra, rb in zip(a.tolist(), b.tolist())]
    for fn in (expression_error, shape_error):
        r = fn(a, b)
        np.testing.assert_allclose(r.l1, l1, rtol=1e-12)
        np.testing.assert_allclose(r.l2, l2, rtol=1e-12)
        assert r.mean_l1 == pytest.approx(np.mean(l1)) and r.mean_l2 == pytest.approx(np.mean(l2))
        # symmetric, zero on identical inputs, L2 <= L1 <= sqrt(k) L2
        r2 = fn(b, a)
        np.testing.assert_allclose(r2.l1, r.l1)
        assert fn(a, a).mean_l1 == 0.0
        assert np.all(r.l2 <= r.l1 + 1e-9) and np.all(r.l1 <= math.sqrt(k) * r.l2 + 1e-9)
    if k == 3:
        p = pose_error(a, b)
        np.testing.assert_allclose(p.l2, l2, rtol=1e-12)
        np.testing.assert_allclose(p.mae, np.abs(a - b).mean(0), rtol=1e-12)


def test_gaze_vector_convention():
    g = gaze_vectors([[0.0, 0.0], [30.0, 0.0], [0.0, 90.0], [-45.0, 180.0]])
    np.testing.assert_allclose(g[0], [0, 0, -1], atol=1e-15)  # straight at the camera
    np.testing.assert_allclose(g[1], [0, -0.5, -math.sqrt(3) / 2], atol=1e-15)  # pitch 30: y = -sin(p)
    np.testing.assert_allclose(g[2], [-1, 0, 0], atol=1e-15)  # yaw 90: x = -cos(p) sin(y)
    np.testing.assert_allclose(g[3], [0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(gaze_vectors(_rows(0, 50, 2, 89)[0]), axis=1), 1.0)


def test_gaze_error_hand_examples():
    r = gaze_error([[0.0, 10.0], [20.0, 0.0], [5.0, 5.0]], [[0.0, -15.0], [-10.0, 0.0], [5.0, 5.0]])
    np.testing.assert_allclose(r.angles, [25.0, 30.0, 0.0], atol=1e-12)  # pure yaw / pure pitch offsets
    assert r.mean_angle == pytest.approx(55 / 3)
    np.testing.assert_allclose(r.l1, [25.0, 30.0, 0.0])
    assert r.angles[2] == 0.0


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_gaze_error_matches_arccos_and_is_a_metric(seed, n):
    a, b = _rows(seed, n, 2, 60)
    c, _ = _rows(seed + 1, n, 2, 60)
    r = gaze_error(a, b)
    ref = []
    for (p1, y1), (p2, y2) in zip(a.tolist(), b.tolist()):
        v1 = [-math.cos(math.radians(p1)) * math.sin(math.radians(y1)), -math.sin(math.radians(p1)),
              -math.cos(math.radians(p1)) * math.cos(math.radians(y1))]
        v2 = [-math.cos(math.radians(p2)) * math.sin(math.radians(y2)), -math.sin(math.radians(p2)),
              -math.cos(math.radians(p2)) * math.cos(math.radians(y2))]
        ref.append(math.degrees(math.acos(max(-1.0, min(1.0, sum(x * y for x, y in zip(v1, v2)))))))
    np.testing.assert_allclose(r.angles, ref, atol=1e-6)
    np.testing.assert_allclose(gaze_error(b, a).angles, r.angles, atol=1e-12)
    assert np.all(gaze_error(a, c).angles <= r.angles + gaze_error(b, c).angles + 1e-9)  # triangle inequality
    assert np.all((r.angles >= 0) & (r.angles <= 180))


def test_relative_error():
    assert relative_error([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 3.0, 5.0]) == 0.625  # 1 + 0 + 1/2 + 1
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 30).astype(float), rng.integers(0, 4, 30).astype(float)
    loop = sum(1.0 if x < y else 0.5 if x == y else 0.0 for x, y in zip(a, b)) / 30
    assert relative_error(a, b) == pytest.approx(loop)
    assert relative_error(a, b) + relative_error(b, a) == pytest.approx(1.0)
    assert relative_error(a, a) == 0.5


def test_attribute_input_errors():
    t3 = np.zeros((4, 3))
    cases = [
        (lambda: pose_error(np.zeros((4, 2)), np.zeros((4, 2))), "3 column"),
        (lambda: pose_error(t3, np.zeros((5, 3))), "same shape"),
        (lambda: pose_error(t3, np.full((4, 3), np.nan)), "swapped: .*NaN"),
        (lambda: pose_error(np.zeros(3), np.zeros(3)), "2-D"),
        (lambda: gaze_error(t3, t3), "2 column"),
        (lambda: expression_error(np.zeros((0, 5)), np.zeros((0, 5))), "at least 1 row"),
        (lambda: expression_error(np.zeros((2, 5)), np.zeros((2, 4))), "same shape"),
        (lambda: shape_error([[1.0, np.inf]], [[1.0, 2.0]]), "source: .*NaN"),
        (lambda: relative_error([1.0, 2.0], [1.0]), "same shape"),
        (lambda: relative_error([], []), "at least 1"),
    ]
    for fn, match in cases:
        with pytest.raises(MetricInputError, match=match):
            fn()
