"""BVH export: world-aligned joint frames, ZXY Euler channels, exact world-position round trip."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.export import read_bvh, write_bvh

from test_export_fixtures import bending_motion, chain_skeleton, world_joint_positions


def branching_skeleton() -> Skeleton:
    """Root -> hips -> (spine -> head, leg_l -> foot_l, leg_r); joint order is NOT depth-first, and
    every rest frame is rotated, so naive (unconverted) rotations would give wrong positions."""
    names = ["Root", "hips", "leg_l", "spine", "leg_r", "foot_l", "head"]
    parents = [-1, 0, 1, 1, 1, 2, 3]
    pos = [(0, 0, 0), (0, 1, 0), (0.1, 0.95, 0), (0, 1.3, 0.02), (-0.1, 0.95, 0), (0.1, 0.1, 0.05), (0, 1.7, 0)]
    rest = torch.eye(4, dtype=torch.float64).repeat(7, 1, 1)
    for j, p in enumerate(pos):
        axis = torch.tensor([math.sin(j), 1.0, math.cos(2 * j)], dtype=torch.float64)
        rest[j, :3, :3] = axis_angle_to_matrix(axis / axis.norm() * (0.3 + 0.5 * j))
        rest[j, :3, 3] = torch.tensor(p, dtype=torch.float64)
    return Skeleton(names=names, parents=parents, rest_transforms=rest.float())


def positions_by_name(skeleton: Skeleton, motion: Motion, names: list[str]) -> torch.Tensor:
    pos = world_joint_positions(skeleton, motion)
    return pos[:, [skeleton.names.index(n) for n in names]]


@pytest.mark.parametrize("make_skeleton", [lambda: chain_skeleton(6), branching_skeleton], ids=["chain", "branching"])
@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_bvh_round_trip_world_positions(tmp_path, make_skeleton, scale):
    skel = make_skeleton()
    motion = bending_motion(skel, frames=30, fps=24)
    path = write_bvh(skel, motion, tmp_path / "clip.bvh", scale=scale)
    skel2, motion2 = read_bvh(path, scale=scale)
    assert sorted(skel2.names) == sorted(skel.names)
    assert motion2.num_frames == motion.num_frames and motion2.fps == 24.0
    err = (positions_by_name(skel2, motion2, skel.names) - positions_by_name(skel, motion, skel.names)).abs().max()
    assert err < 1e-4
    # The rest skeleton round-trips too (positions; BVH frames are world-aligned by definition).
    assert torch.allclose(
        skel2.rest_positions[[skel2.names.index(n) for n in skel.names]], skel.rest_positions, atol=1e-5
    )


def test_rest_pose_frames_are_zero_rotations(tmp_path):
    skel = branching_skeleton()
    T = 3
    motion = Motion(
        fps=30, joint_names=skel.names, rotations=torch.eye(3).repeat(T, skel.num_joints, 1, 1),
        root_translation=torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [1.0, 0.1, 0]]),
    )
    text = write_bvh(skel, motion, tmp_path / "rest.bvh").read_text()
    frames = [np.array(line.split(), dtype=float) for line in text.split("Frame Time:")[1].strip().splitlines()[1:]]
    assert len(frames) == T
    for t, row in enumerate(frames):
        assert np.allclose(row[3:], 0.0), "identity local rotations must be written as zero angles"
        assert np.allclose(row[:3], skel.rest_positions[0].numpy() + motion.root_translation[t].numpy(), atol=1e-6)
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert text.count("CHANNELS 3 Zrotation Xrotation Yrotation") == skel.num_joints - 1
    assert text.count("End Site") == 3  # head, foot_l, leg_r


def test_bvh_rotation_is_rest_frame_conjugated(tmp_path):
    """A local rotation about the joint's own (rotated) rest X axis appears in BVH as the same
    rotation about that axis in world coordinates: R_bvh = W R W^T."""
    skel = branching_skeleton()
    j = skel.index("spine")
    rot = torch.eye(3).repeat(1, skel.num_joints, 1, 1)
    local = axis_angle_to_matrix(torch.tensor([0.7, 0.0, 0.0], dtype=torch.float64))
    rot[0, j] = local.float()
    motion = Motion(fps=30, joint_names=skel.names, rotations=rot, root_translation=torch.zeros(1, 3))
    _, back = read_bvh(write_bvh(skel, motion, tmp_path / "one.bvh"))
    W = skel.rest_transforms[j, :3, :3].double()
    assert torch.allclose(back.rotations[0, back.joint_names.index("spine")].double(), W @ local @ W.T, atol=1e-5)


def test_reader_follows_bvh_semantics_on_a_hand_written_file(tmp_path):
    """Independent of our writer: XYZ channel order, offsets in parent axes, absolute root position."""
    text = """HIERARCHY
ROOT hip
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT knee
  {
    OFFSET 0 -40 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -40 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 90 0 0 0 0 0 0 0
10 90 0 0 0 90 90 0 0
"""
    path = tmp_path / "hand.bvh"
    path.write_text(text)
    skel, motion = read_bvh(path, scale=100.0)
    assert skel.names == ["hip", "knee"] and skel.parents == [-1, 0] and motion.fps == 25.0
    pos = world_joint_positions(skel, motion)
    assert torch.allclose(pos[0], torch.tensor([[0.0, 0.9, 0.0], [0.0, 0.5, 0.0]], dtype=torch.float64), atol=1e-6)
    # Frame 1: root at x=0.1, turned 90 deg about Z: the knee offset (0,-0.4,0) becomes (+0.4, 0, 0).
    assert torch.allclose(pos[1], torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.9, 0.0]], dtype=torch.float64), atol=1e-6)


def test_non_ascii_safe_names_and_mismatched_motion(tmp_path):
    skel = chain_skeleton(3)
    skel.names[1] = "upper arm"
    motion = bending_motion(skel, frames=4)
    skel2, _ = read_bvh(write_bvh(skel, motion, tmp_path / "n.bvh"))
    assert skel2.names[1] == "upper_arm"
    bad = Motion(fps=30, joint_names=["a", "b", "c"], rotations=motion.rotations, root_translation=motion.root_translation)
    with pytest.raises(ValueError, match="do not match"):
        write_bvh(skel, bad, tmp_path / "bad.bvh")


@pytest.mark.slow
def test_blender_plays_our_bvh_like_our_fk(tmp_path):
    """Blender's BVH importer (the reference consumer) must pose the joints exactly where our FK does,
    including a root whose rest position is off the origin (absolute root position channels)."""
    from conftest import require_blender

    require_blender()
    from avatarclip_core.export import inspect_in_blender

    skel = branching_skeleton()
    skel.rest_transforms[:, 1, 3] += 0.2  # lift everything, root included
    motion = bending_motion(skel, frames=12, fps=30)
    info = inspect_in_blender(write_bvh(skel, motion, tmp_path / "clip.bvh"), sample_frames=[0, 6, 11])
    assert info["bones"] == skel.num_joints and info["frames"] == 12
    expected = world_joint_positions(skel, motion)[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    for t in (0, 6, 11):
        got = torch.tensor([info["joint_positions"][str(t)][n] for n in skel.names], dtype=torch.float64)
        assert (got - expected[t]).abs().max() < 1e-4, f"frame {t}"
