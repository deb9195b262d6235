import json

import numpy as np
import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.motion.canonical import to_canonical
from avatarclip_core.motion.corpus.feet import foot_skating, lowest_foot_height
from avatarclip_core.motion.npz import load_motion_npz, save_motion_npz
from avatarclip_core.motion.procedural import MotionConfig, UnknownMotionError, make_motion


def _world(mesh, motion):
    return lbs.forward_kinematics(mesh.skeleton.rest_transforms, mesh.skeleton.parents, motion.rotations,
                                  motion.root_translation)[..., :3, 3]


def test_walk_moves_forward_with_alternating_feet(anny_body, anny_mesh):
    motion = make_motion(anny_mesh.skeleton, MotionConfig(name="walk"))
    assert motion.num_frames >= 30
    pos = _world(anny_mesh, motion)
    assert float(motion.root_translation[-1, 2] - motion.root_translation[0, 2]) > 0.3
    left = pos[:, anny_body.semantic_joints["left_ankle"], 2] - pos[:, 0, 2]
    right = pos[:, anny_body.semantic_joints["right_ankle"], 2] - pos[:, 0, 2]
    # feet alternate: when one is ahead of the root, the other is behind
    lead = (left - right)
    assert float(lead.max()) > 0.2 and float(lead.min()) < -0.2
    # the body stays upright: head above pelvis in every frame
    head, pelvis = anny_body.semantic_joints["head"], anny_body.semantic_joints["pelvis"]
    assert bool((pos[:, head, 1] > pos[:, pelvis, 1] + 0.3).all())


@pytest.mark.parametrize("name,speed", [("walk", (1.0, 1.6)), ("wave", (0.0, 0.01)), ("idle", (0.0, 0.01))])
def test_builtin_feet_are_planted_on_the_floor(anny_mesh, name, speed):
    """Settled like the corpus clips (measured on Anny: walk 0.000 m/s of skating, 1.28 m/s of travel,
    lowest foot at 0.0 cm in every frame; before settling the walk slid 0.53 m/s and sank 3.1 cm)."""
    skeleton = anny_mesh.skeleton
    for config in (MotionConfig(name=name), MotionConfig(name=name, speed=0.5, amplitude=0.6)):
        canonical = to_canonical(make_motion(skeleton, config), skeleton)
        assert foot_skating(canonical, skeleton) < 0.03, config  # m/s of the planted feet
        lowest = lowest_foot_height(canonical, skeleton)
        assert float(lowest.abs().max()) < 0.01, config  # a foot on the floor in every frame, none below it
        travel = canonical.root_translation[-1, [0, 2]] - canonical.root_translation[0, [0, 2]]
        if config.speed == 1.0:
            assert speed[0] <= float(torch.linalg.norm(travel)) / canonical.duration < speed[1], config


def test_builtin_walk_is_steady(anny_mesh):
    """The walk's settled body advances evenly within each stride (measured on Anny: per-frame root
    speed 1.18-1.51 m/s at speed 1, 0.35-0.57 m/s at speed 0.5 and amplitude 0.6; the earlier
    sine-shaped stance lurched 0.13-2.08 and 0.02-0.62 m/s)."""
    skeleton = anny_mesh.skeleton
    for config, (low, high) in ((MotionConfig(name="walk"), (1.0, 1.7)),
                                (MotionConfig(name="walk", speed=0.5, amplitude=0.6), (0.25, 0.7))):
        canonical = to_canonical(make_motion(skeleton, config), skeleton)
        step = canonical.root_translation[1:, [0, 2]] - canonical.root_translation[:-1, [0, 2]]
        speed = torch.linalg.norm(step, dim=-1) * canonical.fps  # m/s, per frame
        assert low < float(speed.min()) and float(speed.max()) < high, (config, speed.min(), speed.max())
        assert bool((step[:, 1] > 0).all()), config  # forward (+Z) in every frame


def test_wave_raises_the_right_hand_above_the_head(anny_body, anny_mesh):
    motion = make_motion(anny_mesh.skeleton, MotionConfig(name="wave"))
    pos = _world(anny_mesh, motion)
    j = anny_body.semantic_joints
    assert float(pos[0, j["right_wrist"], 1]) < float(pos[0, j["head"], 1])
    assert bool((pos[-10:, j["right_wrist"], 1] > pos[-10:, j["head"], 1]).all())
    assert bool((pos[:, j["left_wrist"], 1] < pos[:, j["head"], 1]).all())
    # the forearm oscillates: the wrist moves sideways over time
    assert float(pos[15:, j["right_wrist"], 0].std()) > 0.02


def test_idle_stays_in_place(anny_mesh):
    motion = make_motion(anny_mesh.skeleton, MotionConfig(name="idle"))
    assert float(motion.root_translation.abs().max()) < 0.05
    assert motion.num_frames > 30


def test_motion_knobs_and_errors(anny_mesh):
    slow = make_motion(anny_mesh.skeleton, MotionConfig(name="walk", speed=0.5))
    fast = make_motion(anny_mesh.skeleton, MotionConfig(name="walk", speed=1.0))
    assert slow.num_frames > fast.num_frames
    with pytest.raises(UnknownMotionError, match="unknown motion 'moonwalk'"):
        make_motion(anny_mesh.skeleton, MotionConfig(name="moonwalk"))
    with pytest.raises(UnknownMotionError):
        make_motion(anny_mesh.skeleton, MotionConfig(name="walk", fps=0))


def test_motion_npz_has_the_documented_keys(tmp_path, anny_body, anny_mesh):
    motion = make_motion(anny_mesh.skeleton, MotionConfig(name="walk"))
    path = tmp_path / "motion.npz"
    save_motion_npz(path, anny_mesh.skeleton, motion, anny_body.semantic_joints)
    data = np.load(path)
    T, J = motion.num_frames, anny_mesh.skeleton.num_joints
    assert data["joint_positions"].shape == (T, J, 3)
    assert data["root_translation"].shape == (T, 3)
    assert data["rotations"].shape == (T, J, 3, 3)
    assert float(data["fps"]) == 30.0
    assert list(data["joint_names"]) == anny_mesh.skeleton.names
    semantic = json.loads(str(data["semantic_joints"]))
    assert set(semantic) == {"pelvis", "head", "left_wrist", "right_wrist", "left_ankle", "right_ankle"}
    assert np.allclose(data["joint_positions"][:, 0], data["root_translation"], atol=1e-5)  # root at origin at rest
    skeleton, loaded, sem = load_motion_npz(path)
    assert torch.allclose(loaded.rotations, motion.rotations) and sem == semantic
