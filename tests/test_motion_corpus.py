"""The motion corpus: canonical form, joint limits, foot contact and the labelled generators."""
from __future__ import annotations

import math
import time

import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import (
    NUM_ROLES, ROLE_INDEX, CanonicalMotion, canonical_joint_positions, foot_clearance, mirror, to_canonical, to_motion)
from avatarclip_core.motion.corpus import LabelledClip, generator_names, iter_corpus, make_clip
from avatarclip_core.motion.corpus.builder import REGISTRY
from avatarclip_core.motion.corpus.feet import foot_skating
from avatarclip_core.motion.limits import check_limits, clamp_to_limits

SKATING_LIMIT = 0.1  # m/s: mean horizontal speed of the lower foot while within 2 cm of the ground
SINK_LIMIT = 0.01  # m: no foot below the ground by more than this


def _random_canonical(T: int = 6, seed: int = 0) -> CanonicalMotion:
    g = torch.Generator().manual_seed(seed)
    rot = lbs.axis_angle_to_matrix(0.6 * torch.randn(T, NUM_ROLES, 3, generator=g))
    return CanonicalMotion(30.0, rot, 0.1 * torch.randn(T, 3, generator=g))


def test_canonical_round_trip_is_exact(anny_mesh):
    skeleton = anny_mesh.skeleton
    canonical = _random_canonical()
    motion = to_motion(canonical, skeleton, "x")
    back = to_canonical(motion, skeleton)
    assert torch.allclose(back.rotations, canonical.rotations, atol=1e-5)
    assert torch.allclose(back.root_translation, canonical.root_translation, atol=1e-5)
    # the role positions from the full 53-joint FK equal the cheap role-skeleton FK
    world = lbs.forward_kinematics(skeleton.rest_transforms, skeleton.parents, motion.rotations,
                                   motion.root_translation)[..., :3, 3]
    from avatarclip_core.motion.canonical import role_joint_indices
    assert torch.allclose(world[:, role_joint_indices(skeleton)], canonical_joint_positions(canonical, skeleton),
                          atol=1e-5)


def test_at_least_40_generators_with_3_labels_each(anny_mesh):
    names = generator_names()
    assert len(names) >= 40, names
    for name in names:
        clip = make_clip(name, anny_mesh.skeleton, seed=3)
        assert isinstance(clip, LabelledClip) and clip.generator == name
        assert len(clip.labels) >= 3 and len(set(clip.labels)) == len(clip.labels)
        assert clip.motion.num_frames >= 20 and torch.isfinite(clip.motion.rotations).all()
