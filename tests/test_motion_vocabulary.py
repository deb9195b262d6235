"""The game vocabulary of the procedural library: >= 90 labelled generators, each new one with a
semantic signature (what the motion must do to deserve its name), no limb through the torso."""
from __future__ import annotations

import math

import pytest
import torch

from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, canonical_joint_positions
from avatarclip_core.motion.corpus import generator_names, make_clip
from avatarclip_core.motion.corpus.builder import REGISTRY
from avatarclip_core.motion.corpus.feet import foot_clearance
from avatarclip_core.motion.penetration import TorsoCore

STILL = {"speed": 1.0, "amplitude": 1.0, "style": 0.0}
# The list (motion vocabulary for games), by generator name.
GAME_ACTIONS = (
    "sit_down", "stand_up", "sit_idle", "lie_down", "get_up", "crawl", "climb_in_place", "roll", "cartwheel",
    "jump_over", "throw", "catch", "push", "pull", "pick_up", "carry", "drink", "phone_call", "typing", "clap",
    "point_forward", "salute", "shrug", "look_around", "stretch_arms_up", "yawn", "idle_breathing",
    "idle_weight_shift", "idle_bored", "idle_tired", "check_watch", "stand_at_ease", "fighting_stance", "dodge",
    "die", "fall_backward")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def test_at_least_90_generators_with_3_paraphrases_cover_the_game_actions():
    names = generator_names()
    assert len(names) >= 90, len(names)
    assert set(GAME_ACTIONS) <= set(names), sorted(set(GAME_ACTIONS) - set(names))
    for name in names:
        labels = REGISTRY[name].labels
        assert len(labels) >= 3 and len(set(labels)) == len(labels), name


class Clip:
    """Joint positions (T, 20, 3) of a still, right-handed clip, by role name."""

    def __init__(self, name: str, skeleton) -> None:
        variation = dict(STILL, **({"handedness": "right"} if REGISTRY[name].handed else {}))
        self.motion = make_clip(name, skeleton, variation).motion
        self.skeleton = skeleton
        self.p = canonical_joint_positions(self.motion, skeleton)
        self.T = self.p.shape[0]

    def __call__(self, role: str) -> torch.Tensor:
        return self.p[:, ROLE_INDEX[role]]

    def y(self, role: str) -> torch.Tensor:
        return self(role)[:, 1]

    def at(self, fraction: float) -> int:
        return int(round(fraction * (self.T - 1)))

    def near(self, a: str, b: str) -> torch.Tensor:
        return torch.linalg.norm(self(a) - self(b), dim=-1)

    def facing(self, axis=(0.0, 0.0, 1.0)) -> torch.Tensor:
        """(T, 3) where the pelvis turns the given body axis (world +Z: the front)."""
        return self.motion.rotations[:, ROLE_INDEX["pelvis"]] @ torch.tensor(axis)


def _standing(c: Clip, frame: int) -> bool:
    return float(c.y("pelvis")[frame]) > 0.8 and float(c.y("head")[frame]) > float(c.y("pelvis")[frame]) + 0.4


def _lying(c: Clip, frame: int) -> bool:
    return float(c.y("pelvis")[frame]) < 0.3 and abs(float(c.y("head")[frame] - c.y("pelvis")[frame])) < 0.25


def _upside_down(c: Clip) -> float:
    """Largest height of the pelvis over the head (> 0: inverted)."""
    return float((c.y("pelvis") - c.y("head")).max())


def _hand_at_head(c: Clip, side: str = "right") -> float:
    """Closest wrist-to-head-joint distance (at rest about 0.7 m; the wrist of a hand at the mouth
    is about 0.2 m from the head joint, which sits at the base of the skull)."""
    return float(c.near(f"{side}_wrist", "head").min())


def _ahead(c: Clip, role: str, of: str = "spine3") -> torch.Tensor:
    return c(role)[:, 2] - c(of)[:, 2]


SIGNATURES = {
    # floor work
    "lie_down": lambda c: _standing(c, 0) and _lying(c, -1),
    "get_up": lambda c: _lying(c, 0) and _standing(c, -1),
    "crawl": lambda c: float(c.y("pelvis")[c.at(0.5)]) < 0.75 and float(c.y("right_wrist").min()) < 0.1
    and float(c.y("right_wrist").max()) < 0.3
    and float(c.motion.root_translation[-1, 2] - c.motion.root_translation[0, 2]) > 0.4,
    "push_up": lambda c: float(c.y("left_wrist").max()) < 0.15 and float(c.y("spine3").max() - c.y("spine3").min()) > 0.08,
    "roll": lambda c: _upside_down(c) > 0.2 and _standing(c, -1)
    and float(c.motion.root_translation[-1, 2] - c.motion.root_translation[0, 2]) > 0.5,
    "cartwheel": lambda c: _upside_down(c) > 0.4 and _standing(c, -1)
    and abs(float(c.motion.root_translation[-1, 0] - c.motion.root_translation[0, 0])) > 1.0,
    "die": lambda c: _standing(c, 0) and _lying(c, -1) and float(c.facing()[-1, 1]) < -0.7,  # face down
    "fall_backward": lambda c: _standing(c, 0) and _lying(c, -1) and float(c.facing()[-1, 1]) > 0.7,  # face up
    # seated
    "sit_idle": lambda c: float(c.motion.root_translation[:, 1].max()) < -0.25
    and bool((_ahead(c, "left_knee", "pelvis") > 0.25).all()),
    "typing": lambda c: float(c.motion.root_translation[:, 1].max()) < -0.25
    and bool((_ahead(c, "right_wrist") > 0.2).all()) and bool((c.y("right_wrist") > c.y("pelvis")).all()),
    # actions
    "pick_up": lambda c: float(c.y("right_wrist").min()) < 0.4 and _standing(c, -1),
    "carry": lambda c: float(c.motion.root_translation[-1, 2] - c.motion.root_translation[0, 2]) > 0.5
    and bool((_ahead(c, "left_wrist") > 0.15).all()) and bool((_ahead(c, "right_wrist") > 0.15).all()),
    "catch": lambda c: float(_ahead(c, "right_wrist")[c.at(0.3)]) > 0.35
    and float(c.near("left_wrist", "right_wrist")[c.at(0.3)]) < 0.45,
    "throw_underhand": lambda c: float(_ahead(c, "right_wrist", "pelvis").min()) < -0.1
    and float(_ahead(c, "right_wrist", "pelvis").max()) > 0.4,
    "jump_over": lambda c: float(foot_clearance(c.motion, c.skeleton).amin(1).max()) > 0.3
    and float(c.motion.root_translation[-1, 2] - c.motion.root_translation[0, 2]) > 0.8,
    "drink": lambda c: _hand_at_head(c) < 0.25 and float(_ahead(c, "right_wrist", "head").max()) > 0.08,
    "eat": lambda c: _hand_at_head(c) < 0.25 and float(_ahead(c, "right_wrist", "head").max()) > 0.08,
    "phone_call": lambda c: _hand_at_head(c) < 0.2
    and float(c("right_wrist")[c.at(0.5), 0] - c("head")[c.at(0.5), 0]) < -0.05,  # at the right ear
    "hammer": lambda c: float(c.y("right_wrist")[c.at(0.2):c.at(0.8)].max() - c.y("right_wrist")[c.at(0.2):c.at(0.8)].min()) > 0.15,
    # gestures
    "thumbs_up": lambda c: float(_ahead(c, "right_wrist", "right_shoulder")[c.at(0.5)]) > 0.2,
    "beckon": lambda c: float(_ahead(c, "right_wrist")[c.at(0.3):c.at(0.7)].max() - _ahead(c, "right_wrist")[c.at(0.3):c.at(0.7)].min()) > 0.1,
    "facepalm": lambda c: _hand_at_head(c) < 0.2,
    "cheer": lambda c: float((c.y("right_wrist") - c.y("head")).max()) > 0.2,
    "hands_on_hips": lambda c: float((c.y("left_wrist") - c.y("pelvis")).abs()[c.at(0.5)]) < 0.2
    and float(c("left_wrist")[c.at(0.5), 0] - c("left_hip")[c.at(0.5), 0]) > 0.0,
    "scratch_head": lambda c: _hand_at_head(c) < 0.25 and float((c.y("right_wrist") - c.y("head")).max()) > 0.0,
    "think": lambda c: _hand_at_head(c) < 0.25 and float(_ahead(c, "right_wrist", "head").max()) > 0.08,
    "stop_gesture": lambda c: float(_ahead(c, "right_wrist", "right_shoulder")[c.at(0.5)]) > 0.4
    and abs(float(c.y("right_wrist")[c.at(0.5)] - c.y("right_shoulder")[c.at(0.5)])) < 0.2,
    # idles: they also loop (first pose = last)
    "yawn": lambda c: _hand_at_head(c) < 0.25 and float(_ahead(c, "right_wrist", "head").max()) > 0.08,
    "idle_bored": lambda c: float(c.y("right_ankle").max() - c.y("right_ankle").min()) < 0.02
    and float(_rotation_range(c.motion, "right_ankle")) > 10,
    "idle_tired": lambda c: float(c.near("left_wrist", "left_knee")[c.at(0.5)]) < 0.25,
    "check_watch": lambda c: float(_ahead(c, "left_wrist")[c.at(0.5)]) > 0.2
    and abs(float(c.y("left_wrist")[c.at(0.5)] - c.y("spine3")[c.at(0.5)])) < 0.3,
    "stand_at_ease": lambda c: float(_ahead(c, "left_wrist", "pelvis")[c.at(0.5)]) < -0.05
    and float(_ahead(c, "right_wrist", "pelvis")[c.at(0.5)]) < -0.05,
    # combat
    "fighting_stance": lambda c: float((c.y("right_wrist") - c.y("right_shoulder"))[c.at(0.5)]) > -0.15
    and float(c("left_ankle")[c.at(0.5), 2] - c("right_ankle")[c.at(0.5), 2]) > 0.15,
    "dodge": lambda c: float((c("head")[:, 0] - c("head")[0, 0]).min()) < -0.15,  # to the right (-X)
    "block": lambda c: float(c.near("right_wrist", "head")[c.at(0.4)]) < 0.35 and float(_ahead(c, "right_wrist", "head")[c.at(0.4)]) > 0.05,
    "hit_reaction": lambda c: float((c("head")[:, 2] - c("head")[0, 2]).min()) < -0.08,
    "uppercut": lambda c: float((c.y("right_wrist") - c.y("right_shoulder")).max()) > 0.05
    and float(_ahead(c, "right_wrist").max()) > 0.25,
    "sword_slash": lambda c: float((c.y("right_wrist") - c.y("head")).max()) > 0.1
    and float(c("right_wrist")[:, 0].max()) > 0.0,  # across to the left
    "aim_gun": lambda c: float(_ahead(c, "right_wrist", "right_shoulder")[c.at(0.5)]) > 0.4
    and float(c.near("left_wrist", "right_wrist")[c.at(0.5)]) < 0.25,
}
LOOPING_IDLES = ("yawn", "idle_bored", "idle_tired", "check_watch", "stand_at_ease", "sit_idle")


def _rotation_range(motion: CanonicalMotion, role: str) -> float:
    R = motion.rotations[:, ROLE_INDEX[role]]
    cos = ((R[0].T @ R).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return math.degrees(float(torch.acos(cos.clamp(-1, 1)).max()))


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_new_generator_does_what_its_name_says(name, anny_mesh):
    clip = Clip(name, anny_mesh.skeleton)
    assert SIGNATURES[name](clip), name
    if name in LOOPING_IDLES:
        assert torch.allclose(clip.motion.rotations[0], clip.motion.rotations[-1], atol=0.02), name


def test_signature_tests_cover_every_generator_added_for_games():
    added = {n for n in generator_names() if REGISTRY[n].fn.__module__.rsplit(".", 1)[-1]
             in ("floor", "actions", "gestures", "idles", "combat")}
    assert len(added) >= 35 and added <= set(SIGNATURES), sorted(added - set(SIGNATURES))


@pytest.fixture(scope="module")
def torso_core(anny_mesh):
    return TorsoCore(anny_mesh)


def test_the_penetration_check_catches_a_forearm_driven_through_the_torso(anny_mesh, torso_core):
    """Positive control: the right arm swung across the chest with the elbow folded back into it."""
    from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, BodyDims, ClipBuilder

    b = ClipBuilder(1.0, 30.0, dims=BodyDims.from_skeleton(anny_mesh.skeleton))
    w = b.ramp(0.0, 0.5)
    b.flex_elbow("right", math.radians(140) * w)
    b.rotate("right_shoulder", Z_AXIS, math.radians(40) * w)
    b.rotate("right_shoulder", X_AXIS, -math.radians(60) * w)
    b.rotate("right_shoulder", Y_AXIS, math.radians(90) * w)
    through = torso_core.check(b.canonical())
    assert through.depth > 0.05 and through.frames_inside > 10, through
    assert torso_core.check(make_clip("idle_breathing", anny_mesh.skeleton, STILL).motion).depth < 0.0


CLOSE_TO_THE_TORSO = ("hands_on_hips", "think", "typing", "carry")  # every generator: the slow test below


@pytest.mark.parametrize("name", CLOSE_TO_THE_TORSO)
def test_moves_close_to_the_torso_keep_limbs_outside_it(name, anny_mesh, torso_core):
    clip = make_clip(name, anny_mesh.skeleton, seed=5)
    assert torso_core.check(clip.motion).depth < 0.02, name


@pytest.mark.slow
def test_no_generator_drives_a_limb_through_the_torso(anny_mesh, torso_core):
    worst = {}
    for name in generator_names():
        for seed in (1, 2):  # both hands of handed generators (iter_corpus alternates), sampled variations
            variation = {"handedness": ("right", "left")[seed % 2]} if REGISTRY[name].handed else None
            depth = torso_core.check(make_clip(name, anny_mesh.skeleton, variation, seed=seed).motion).depth
            worst[name] = max(worst.get(name, -1.0), depth)
    print(f"deepest limb vertex inside the torso core: {max(worst.values()):.3f} m ({max(worst, key=worst.get)})")
    assert max(worst.values()) < 0.02, {k: round(v, 3) for k, v in worst.items() if v >= 0.02}
