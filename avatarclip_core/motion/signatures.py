"""Semantic signatures of the procedural generators: what a motion must do to deserve a generator's
name ("sit_down": standing at the start, seated at the end; "throw": cocked above the shoulder, then
released forward), measured on joint positions of the clip on a skeleton.

Signatures are written for the right-handed version of a handed generator at its default variation
(speed, amplitude 1, no style noise); `does_what_it_says` mirrors a left-handed clip first. Used by the
tests (every generator passes its own; held-out paraphrases select a motion that passes) and by the text
job's quality check (motion.select: a generated motion that fails its matched generator's signature is
replaced by that generator's procedural clip, and the job says so).
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, canonical_joint_positions, mirror
from avatarclip_core.motion.corpus.feet import foot_clearance

DEFAULT_VARIATION = {"speed": 1.0, "amplitude": 1.0, "style": 0.0}  # what the signatures are written for


class JointTrack:
    """Joint positions (T, 20, 3) of a canonical clip on a skeleton, by role name."""

    def __init__(self, motion: CanonicalMotion, skeleton: Skeleton) -> None:
        self.motion = motion
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


def _standing(c: JointTrack, frame: int) -> bool:
    return float(c.y("pelvis")[frame]) > 0.8 and float(c.y("head")[frame]) > float(c.y("pelvis")[frame]) + 0.4


def _lying(c: JointTrack, frame: int) -> bool:
    return float(c.y("pelvis")[frame]) < 0.3 and abs(float(c.y("head")[frame] - c.y("pelvis")[frame])) < 0.25


def _upside_down(c: JointTrack) -> float:
    """Largest height of the pelvis over the head (> 0: inverted)."""
    return float((c.y("pelvis") - c.y("head")).max())


def _hand_at_head(c: JointTrack, side: str = "right") -> float:
    """Closest wrist-to-head-joint distance (at rest about 0.7 m; the wrist of a hand at the mouth
    is about 0.2 m from the head joint, which sits at the base of the skull)."""
    return float(c.near(f"{side}_wrist", "head").min())


def _ahead(c: JointTrack, role: str, of: str = "spine3") -> torch.Tensor:
    return c(role)[:, 2] - c(of)[:, 2]


def _travel(c: JointTrack) -> torch.Tensor:
    """Root displacement (3,) from the first frame to the last."""
    return c.motion.root_translation[-1] - c.motion.root_translation[0]


def _speed(c: JointTrack) -> float:
    """Forward (+Z) travel per second."""
    return float(_travel(c)[2]) / c.motion.duration


def _in_place(c: JointTrack, tolerance: float = 0.1) -> bool:
    horizontal = c.motion.root_translation[:, [0, 2]] - c.motion.root_translation[0, [0, 2]]
    return float(torch.linalg.norm(horizontal, dim=-1).max()) < tolerance


def _upright(c: JointTrack) -> bool:
    return bool((c.y("head") > c.y("pelvis") + 0.3).all())


def _alternating_feet(c: JointTrack, lead: float = 0.2) -> bool:
    """Each foot in turn ahead of the other by `lead` metres (along the travel, +Z or -Z)."""
    d = c("left_ankle")[:, 2] - c("right_ankle")[:, 2]
    return float(d.max()) > lead and float(d.min()) < -lead


def _flight(c: JointTrack) -> float:
    """Highest clearance of the lower foot (> 0: both feet off the ground)."""
    return float(foot_clearance(c.motion, c.skeleton).amin(1).max())


def _foot_lift(c: JointTrack, side: str) -> torch.Tensor:
    return foot_clearance(c.motion, c.skeleton)[:, 0 if side == "left" else 1]


def _swings(x: torch.Tensor, size: float) -> int:
    """How many times `x` moves by at least `size` before turning (there and back is 2)."""
    values = x.tolist()
    count, direction, low, high, extreme = 0, 0, values[0], values[0], values[0]
    for v in values[1:]:
        if direction == 0:
            low, high = min(low, v), max(high, v)
            if high - v >= size or v - low >= size:
                direction, extreme, count = (-1 if high - v >= size else 1), v, 1
        elif (v - extreme) * direction > 0:
            extreme = v
        elif abs(v - extreme) >= size:
            direction, extreme, count = -direction, v, count + 1
    return count


def _above_head(c: JointTrack, role: str) -> torch.Tensor:
    return c.y(role) - c.y("head")


HEAD_CHAIN = ("pelvis", "spine1", "spine2", "spine3", "neck", "head")


def _head_facing(c: JointTrack) -> torch.Tensor:
    """(T, 3) where the head's front points (world rotations compose along the chain)."""
    g = c.motion.rotations[:, ROLE_INDEX["pelvis"]]
    for role in HEAD_CHAIN[1:]:
        g = g @ c.motion.rotations[:, ROLE_INDEX[role]]
    return g @ torch.tensor([0.0, 0.0, 1.0])


def _overhand(c: JointTrack, top: int) -> bool:
    """Cocked above the shoulder by the head (not a follow-through far in front), then released
    forward; never swung back low behind the hips (that is underhand)."""
    return (float(c.y("right_wrist")[top] - c.y("right_shoulder")[top]) > 0.15
            and float(_ahead(c, "right_wrist")[top]) < 0.3 and float(_ahead(c, "right_wrist")[top:].max()) > 0.4
            and float(_ahead(c, "right_wrist", "pelvis").min()) > -0.05)


def _seated(c: JointTrack, frame: int) -> bool:
    """Pelvis lowered by a thigh length, knees ahead of it (thighs about horizontal), torso up."""
    return (float(c.motion.root_translation[frame, 1]) < -0.3 and float(c.y("head")[frame] - c.y("pelvis")[frame]) > 0.4
            and float(_ahead(c, "left_knee", "pelvis")[frame]) > 0.25
            and float(_ahead(c, "right_knee", "pelvis")[frame]) > 0.25)


SIGNATURES = {
    # locomotion (speeds at speed 1, measured on Anny: walk 1.3, jog 2.2, run 3.0, sprint 4.3 m/s)
    "walk": lambda c: 0.4 < _speed(c) < 1.8 and _alternating_feet(c) and _upright(c) and _flight(c) < 0.01,
    "walk_backwards": lambda c: -1.8 < _speed(c) < -0.5 and _alternating_feet(c) and _upright(c),
    "jog": lambda c: 1.6 < _speed(c) < 3.6 and _alternating_feet(c) and _flight(c) > 0.01,
    "run": lambda c: _speed(c) > 2.5 and _alternating_feet(c) and _flight(c) > 0.02,
    "sprint": lambda c: _speed(c) > 3.6 and _alternating_feet(c) and _flight(c) > 0.03,
    "side_step": lambda c: float(_travel(c)[0]) < -0.4 and abs(float(_travel(c)[2])) < 0.1 and _upright(c),  # right
    "turn": lambda c: float(c.facing()[-1, 0]) < -0.9 and _in_place(c),  # to the right (-X)
    "turn_around": lambda c: float(c.facing()[-1, 2]) < -0.9 and _in_place(c),
    "march_in_place": lambda c: _in_place(c, 0.02)
    and _swings(c.y("left_knee") - c.y("right_knee"), 0.3) >= 3,  # knees up in turn
    "climb_in_place": lambda c: _in_place(c, 0.02) and float(_above_head(c, "right_wrist").max()) > 0.1
    and _swings(c.y("left_wrist") - c.y("right_wrist"), 0.2) >= 3 and _swings(c.y("left_knee") - c.y("right_knee"), 0.3) >= 3,
    # whole body
    "jump": lambda c: _flight(c) > 0.15 and _in_place(c, 0.2) and _standing(c, -1),
    "jump_forward": lambda c: _flight(c) > 0.1 and float(_travel(c)[2]) > 0.4 and _standing(c, -1),
    "hop": lambda c: bool((_foot_lift(c, "left")[c.at(0.2):] > 0.05).all()) and _flight(c) > 0.05,  # on the right foot
    "squat": lambda c: float(c.y("pelvis")[0] - c.y("pelvis").min()) > 0.3
    and abs(float(c.y("pelvis")[-1] - c.y("pelvis")[0])) < 0.02 and _flight(c) < 0.01,
    "crouch": lambda c: float(c.y("pelvis")[0] - c.y("pelvis")[-1]) > 0.3 and _upright(c),
    "lunge": lambda c: float((c("right_ankle")[:, 2] - c("left_ankle")[:, 2]).max()) > 0.4
    and float(c.y("pelvis")[0] - c.y("pelvis").min()) > 0.15,  # the right leg in front
    "sit_down": lambda c: _standing(c, 0) and _seated(c, -1),
    "stand_up": lambda c: _seated(c, 0) and _standing(c, -1),
    "kneel": lambda c: float(c.y("right_knee")[c.at(0.55)]) < 0.1 and float(c.y("left_knee")[c.at(0.55)]) > 0.4
    and float(_foot_lift(c, "left")[c.at(0.55)]) < 0.02,  # on the right knee, the left foot down
    "bow": lambda c: float(_ahead(c, "head", "pelvis")[c.at(0.45)]) > 0.2
    and float(c.y("head")[0] - c.y("head")[c.at(0.45)]) > 0.1 and _standing(c, -1),
    "jumping_jacks": lambda c: _flight(c) > 0.05 and float(_above_head(c, "left_wrist").max()) > 0.1
    and _swings(c("left_ankle")[:, 0] - c("right_ankle")[:, 0], 0.1) >= 4,  # legs open and close
    "stretch_arms_up": lambda c: float(_above_head(c, "left_wrist")[c.at(0.5)]) > 0.15
    and float(_above_head(c, "right_wrist")[c.at(0.5)]) > 0.15,
    "side_stretch": lambda c: float(_above_head(c, "left_wrist")[c.at(0.55)]) > 0.15  # leans right (-X)
    and float((c("head")[:, 0] - c("pelvis")[:, 0])[c.at(0.55)]) < -0.1,
    "idle_breathing": lambda c: _in_place(c, 0.01) and _upright(c)
    and 0.005 < float((c.p - c.p[0]).norm(dim=-1).max()) < 0.1,  # barely moves
    "idle_weight_shift": lambda c: _in_place(c, 0.05) and _upright(c)
    and _swings(c("pelvis")[:, 0], 0.02) >= 2 and float((c.p - c.p[0]).norm(dim=-1).max()) < 0.2,
    # arms and head
    "wave": lambda c: bool((c.y("right_wrist")[c.at(0.3):] > c.y("right_shoulder")[c.at(0.3):]).all())
    and _swings(c("right_wrist")[:, 0], 0.05) >= 3 and float(_above_head(c, "left_wrist").max()) < -0.3,
    "wave_both_hands": lambda c: float(_above_head(c, "left_wrist")[c.at(0.5)]) > 0.1
    and float(_above_head(c, "right_wrist")[c.at(0.5)]) > 0.1
    and _swings(c("left_wrist")[:, 0], 0.05) >= 3 and _swings(c("right_wrist")[:, 0], 0.05) >= 3,
    "raise_both_arms": lambda c: float(_above_head(c, "left_wrist")[c.at(0.5)]) > 0.1
    and float(_above_head(c, "right_wrist")[c.at(0.5)]) > 0.1 and float(_above_head(c, "left_wrist")[0]) < 0,
    "raise_one_arm": lambda c: float(_above_head(c, "right_wrist")[c.at(0.5)]) > 0.1
    and float(_above_head(c, "right_wrist")[0]) < 0 and float(_above_head(c, "left_wrist").max()) < -0.3,
    "clap": lambda c: float(c.near("left_wrist", "right_wrist").min()) < 0.15
    and _swings(c.near("left_wrist", "right_wrist"), 0.1) >= 6 and float(_ahead(c, "right_wrist")[c.at(0.5)]) > 0.2,
    "shrug": lambda c: float((c.y("right_shoulder") - c.y("right_shoulder")[0]).max()) > 0.03
    and float((c.y("left_shoulder") - c.y("left_shoulder")[0]).max()) > 0.03,
    "salute": lambda c: float(c.near("right_wrist", "head")[c.at(0.5)]) < 0.3
    and float(c.y("right_wrist")[c.at(0.5)] - c.y("right_shoulder")[c.at(0.5)]) > 0.1,
    "point_forward": lambda c: float(_ahead(c, "right_wrist", "right_shoulder")[c.at(0.5)]) > 0.45
    and abs(float(c.y("right_wrist")[c.at(0.5)] - c.y("right_shoulder")[c.at(0.5)])) < 0.2,
    "push": lambda c: all(float(_ahead(c, w).max() - _ahead(c, w)[c.at(0.18)]) > 0.15 for w in ("left_wrist", "right_wrist"))
    and float(_ahead(c, "head", "pelvis").max() - _ahead(c, "head", "pelvis")[0]) > 0.05,  # hands out, leaning in
    "pull": lambda c: all(float(_ahead(c, w)[c.at(0.15)] - _ahead(c, w)[c.at(0.15):].min()) > 0.15
                          for w in ("left_wrist", "right_wrist"))
    and float(_ahead(c, "head", "pelvis").min() - _ahead(c, "head", "pelvis")[0]) < -0.03,  # hands in, leaning back
    "bicep_curl": lambda c: _swings(c.y("right_wrist") - c.y("right_elbow"), 0.15) >= 4
    and bool((c.y("right_elbow") < c.y("right_shoulder") - 0.15).all()),
    "look_around": lambda c: float(_head_facing(c)[:, 0].max()) > 0.5 and float(_head_facing(c)[:, 0].min()) < -0.5
    and _in_place(c, 0.01),
    "nod": lambda c: _swings(_head_facing(c)[:, 1], 0.15) >= 4 and float(_head_facing(c)[:, 0].abs().max()) < 0.15,
    "shake_head": lambda c: _swings(_head_facing(c)[:, 0], 0.3) >= 4 and float(_head_facing(c)[:, 1].abs().max()) < 0.2,
    "cross_arms": lambda c: float(c("right_wrist")[c.at(0.5), 0] - c("left_wrist")[c.at(0.5), 0]) > 0.05
    and float(_ahead(c, "right_wrist")[c.at(0.5)]) > 0.1,  # the right wrist on the left side
    "arm_circles": lambda c: all(float(c(w)[c.at(0.5):, 0].abs().min()) > 0.5 and _swings(c.y(w), 0.1) >= 4
                                 and _swings(c(w)[:, 2], 0.1) >= 4 for w in ("left_wrist", "right_wrist")),
    # sports
    "kick": lambda c: float(c.y("right_ankle").max()) > 0.3 and float(_ahead(c, "right_ankle", "pelvis").max()) > 0.3
    and float(_foot_lift(c, "left").max()) < 0.02,  # on the left foot
    "punch": lambda c: _swings(_ahead(c, "right_wrist", "right_shoulder"), 0.2) >= 3
    and float(_ahead(c, "right_wrist", "right_shoulder").max()) > 0.4,
    "throw": lambda c: _overhand(c, int((c.y("right_wrist") - c.y("right_shoulder")).argmax())),
    "golf_swing": lambda c: float(c.near("left_wrist", "right_wrist")[c.at(0.15):c.at(0.85)].max()) < 0.25
    and float(c("right_wrist")[:, 0].max() - c("right_wrist")[:, 0].min()) > 0.4,  # hands together, swept across
    "tennis_swing": lambda c: float(c("right_wrist")[:, 2].max() - c("right_wrist")[:, 2].min()) > 0.8
    and float(_above_head(c, "right_wrist").max()) < 0,
    "swim_strokes": lambda c: _swings(c.y("left_wrist") - c.y("right_wrist"), 0.4) >= 3
    and float(_above_head(c, "left_wrist").max()) > 0.1 and float(_above_head(c, "right_wrist").max()) > 0.1,
    "basketball_dribble": lambda c: _swings(c.y("right_wrist"), 0.05) >= 6  # a hand pumping below the chest
    and bool((c.y("right_wrist") < c.y("spine3") - 0.05).all()) and float(_ahead(c, "right_wrist", "pelvis").min()) > 0.1,
    # dance
    "dance_sway": lambda c: _in_place(c, 0.15) and _swings(c("head")[:, 0], 0.04) >= 2,
    "dance_twist": lambda c: _in_place(c, 0.15) and _swings(c.facing()[:, 0], 0.3) >= 4,
    "disco_point": lambda c: _swings(c.y("right_wrist"), 0.5) >= 3 and float(_above_head(c, "right_wrist").max()) > 0.2,
    "arms_up_dance": lambda c: bool((_above_head(c, "left_wrist")[c.at(0.1):] > 0.1).all())
    and bool((_above_head(c, "right_wrist")[c.at(0.1):] > 0.1).all()) and _swings(c.y("pelvis"), 0.02) >= 4,
    "dance_step_touch": lambda c: _in_place(c, 0.15) and _swings(_foot_lift(c, "left") - _foot_lift(c, "right"), 0.1) >= 3,
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
def _rotation_range(motion: CanonicalMotion, role: str) -> float:
    R = motion.rotations[:, ROLE_INDEX[role]]
    cos = ((R[0].T @ R).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return math.degrees(float(torch.acos(cos.clamp(-1, 1)).max()))


def has_signature(generator: str) -> bool:
    return generator in SIGNATURES


def does_what_it_says(generator: str, motion: CanonicalMotion, skeleton: Skeleton, handedness: str = "right") -> bool:
    """Whether `motion` passes `generator`'s signature. handedness: "right", "left" (mirrored first, as
    signatures are written for the right hand) or "either" (a handed motion of unknown side)."""
    check = SIGNATURES[generator]
    if handedness in ("right", "either") and check(JointTrack(motion, skeleton)):
        return True
    return handedness in ("left", "either") and bool(check(JointTrack(mirror(motion), skeleton)))
