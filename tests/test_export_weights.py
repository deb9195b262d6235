"""Skin-weight packing into glTF's 4-influence sets."""
from __future__ import annotations

import numpy as np
import pytest

from avatarclip_core.export import pack_skin_weights


def test_duplicates_merge_and_rows_sum_to_one_in_float32():
    idx = np.array([[3, 1, 3, 0], [2, 2, 2, 2]])
    w = np.array([[0.2, 0.3, 0.4, 0.1], [0.25, 0.25, 0.25, 0.25]])
    j, wt = pack_skin_weights(idx, w, num_joints=4)
    assert j.shape == (2, 4) and wt.dtype == np.float32
    assert {int(a): float(b) for a, b in zip(j[0], wt[0]) if b > 0} == pytest.approx({3: 0.6, 1: 0.3, 0: 0.1})
    assert j[1].tolist() == [2, 0, 0, 0] and wt[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert np.abs(wt.astype(np.float64).sum(1) - 1).max() < 1e-7


def test_more_than_eight_keeps_the_largest_renormalised():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.01, 1.0, size=(50, 11))
    idx = np.tile(np.arange(11), (50, 1))
    j, wt = pack_skin_weights(idx, w, num_joints=11)
    assert j.shape == (50, 8)
    for v in range(50):
        top = np.argsort(-w[v])[:8]
        assert sorted(j[v]) == sorted(top)
        assert np.allclose(wt[v], w[v, j[v]] / w[v, top].sum(), atol=1e-6)
    assert np.abs(wt.astype(np.float64).sum(1) - 1).max() < 1e-7


def test_unused_slots_point_at_joint_zero_and_errors_are_loud():
    j, wt = pack_skin_weights(np.array([[5, 7]]), np.array([[1.0, 0.0]]), num_joints=8)
    assert j.tolist() == [[5, 0, 0, 0]] and wt.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="no skin weight"):
        pack_skin_weights(np.array([[1, 2]]), np.zeros((1, 2)), num_joints=3)
    with pytest.raises(ValueError, match="out of range"):
        pack_skin_weights(np.array([[9]]), np.ones((1, 1)), num_joints=3)
    with pytest.raises(ValueError, match="non-negative"):
        pack_skin_weights(np.array([[0, 1]]), np.array([[1.5, -0.5]]), num_joints=3)
