"""Whole-body motions: jumps, hops, squats, lunges, sitting, kneeling, bowing, stretches, idles.

Legs bend in the sagittal plane with flat feet (see builder.leg); the library lowers the pelvis
so the feet stay on the ground, so "sit" or "squat" only bend the joints.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, leg, leg_ik


def _crouch_and_jump(b: ClipBuilder, height: float, forward: float) -> None:
    dip = b.env(0.1, 0.5, 0.5, 0.7) + b.env(1.05, 1.2, 1.2, 1.6)  # before take-off and on landing
    tuck = b.env(0.7, 0.85, 0.85, 1.05)  # knees pulled up in flight
    for side in ("left", "right"):
        leg(b, side, -b.deg(45) * dip - b.deg(35) * tuck, b.deg(85) * dip + b.deg(60) * tuck)
    b.rotate("spine1", X_AXIS, b.deg(25) * dip)
    swing = b.env(0.1, 0.5, 0.5, 0.8)  # arms back, then thrown up through the flight
    up = b.env(0.55, 0.8, 0.9, 1.4)
    b.arms_down(30, 15)
    b.rotate_both("shoulder", X_AXIS, b.deg(40) * swing - b.deg(110) * up)
    flight = torch.clamp((b.s - 0.7) / 0.35, 0.0, 1.0)
    b.trans[:, 1] = height * b.amp * 4 * flight * (1 - flight)  # a parabola from take-off to landing
    b.trans[:, 2] = forward * b.ramp(0.7, 1.05)


@generator("jump", "whole_body", ["jump", "jump up with both feet", "a person jumps in place", "hop up and down"],
           duration=1.9)
def jump(b: ClipBuilder) -> None:
    _crouch_and_jump(b, 0.25, 0.0)


@generator("jump_forward", "whole_body", ["jump forward", "long jump", "a person jumps forward with both feet",
                                          "leap ahead", "a standing broad jump",
                                          "jump forward with both feet"], duration=1.9, stationary=False)
def jump_forward(b: ClipBuilder) -> None:
    _crouch_and_jump(b, 0.2, 0.8 * b.dims.leg)


@generator("hop", "whole_body", ["hop on one leg", "hop on the {side} foot", "a person hops on the {side} leg",
                                 "one-legged hops"], duration=2.0, handed=True,
           support="right")
def hop(b: ClipBuilder) -> None:
    period = 0.5
    raised = b.ramp(0.0, 0.3)
    leg(b, "left", -b.deg(35) * raised, b.deg(75) * raised, b.deg(10) * raised)
    cyc = torch.clamp(b.s - 0.3, min=0.0) % period / period
    air = torch.clamp((cyc - 0.4) / 0.6, 0.0, 1.0)
    dip = torch.clamp(1 - cyc / 0.4, 0.0, 1.0) * (b.s > 0.3)
    leg(b, "right", -b.deg(25) * dip, b.deg(45) * dip)
    b.trans[:, 1] = 0.1 * b.amp * 4 * air * (1 - air) * (b.s > 0.3)
    b.arms_down(20, 30)
    b.rotate("left_shoulder", Z_AXIS, b.deg(25) * raised)  # the free arm out for balance


def _squat_like(b: ClipBuilder, depth: float, spine: float, down: torch.Tensor) -> None:
    """Both feet stay flat where they are while the hips drop by `depth` leg lengths (IK)
    and move back by half as much, which keeps the shins within the ankle's dorsiflexion."""
    for side in ("left", "right"):
        drop = depth * b.dims.leg * down
        leg_ik(b, side, 0.5 * drop, drop)  # the hips go back as they go down
    b.rotate("spine1", X_AXIS, b.deg(spine) * down)


@generator("squat", "whole_body", ["squat", "do a squat", "a person squats down and stands back up",
                                   "deep knee bend"], duration=2.6)
def squat(b: ClipBuilder) -> None:
    down = b.env(0.3, 1.1, 1.5, 2.3)
    _squat_like(b, 0.5 * b.amp, 25, down)
    b.arms_down(30, 10)
    b.rotate_both("shoulder", X_AXIS, -b.deg(75) * down)  # arms forward for balance


@generator("crouch", "whole_body", ["crouch", "crouch down low", "a person crouches and stays low",
                                    "duck down"], duration=2.4)
def crouch(b: ClipBuilder) -> None:
    down = b.ramp(0.3, 1.0)
    _squat_like(b, 0.62, 35, down)
    b.arms_down(30, 10)
    b.rotate_both("shoulder", X_AXIS, -b.deg(50) * down)
    b.rotate("head", X_AXIS, -b.deg(20) * down)


@generator("lunge", "whole_body", ["lunge", "a forward lunge on the {side} leg", "a person lunges forward",
                                   "split squat with the {side} leg in front"], duration=2.4, handed=True)
def lunge(b: ClipBuilder) -> None:
    """A split stance (feet apart in the first 0.3 s), then the hips sink and rise."""
    stance = b.ramp(0.0, 0.3)
    down = b.env(0.4, 1.1, 1.4, 2.1)
    spread = 0.4 * b.dims.leg * stance
    drop = (0.1 * stance + 0.3 * b.amp * down) * b.dims.leg
    leg_ik(b, "right", spread, drop)
    leg_ik(b, "left", -spread, drop, math.radians(35) * stance)  # the back heel lifts
    b.arms_down(30, 10)
    b.rotate("spine1", X_AXIS, -b.deg(5) * down)


def _seated(b: ClipBuilder, seat: torch.Tensor, transition: torch.Tensor) -> None:
    """Thighs horizontal and shins vertical when seated: the ankle ends a thigh length ahead of
    the hip and a thigh length closer to it."""
    thigh = math.hypot(*b.dims.thigh_zy)
    for side in ("left", "right"):
        leg_ik(b, side, thigh * seat, thigh * seat)
    b.rotate("spine1", X_AXIS, b.deg(30) * transition)  # lean forward while lowering / rising
    b.arms_down(30, 15)
    b.rotate_both("shoulder", X_AXIS, -b.deg(40) * transition - b.deg(20) * seat)


@generator("sit_down", "whole_body", ["sit down", "sit down on a chair", "a person sits down",
                                      "take a seat", "have a seat"], duration=2.2)
def sit_down(b: ClipBuilder) -> None:
    _seated(b, b.ramp(0.3, 1.5), b.env(0.3, 0.9, 1.0, 1.8))


@generator("stand_up", "whole_body", ["stand up", "get up from a chair", "a person stands up from sitting",
                                      "rise to standing", "rise from a seat",
                                      "get up out of an armchair"], duration=2.2)
def stand_up(b: ClipBuilder) -> None:
    _seated(b, 1 - b.ramp(0.5, 1.7), b.env(0.3, 0.8, 1.1, 1.8))


@generator("kneel", "whole_body", ["kneel", "kneel on the {side} knee", "a person kneels down on one knee",
                                   "go down on one knee"], duration=2.6, handed=True,
           support="left")
def kneel(b: ClipBuilder) -> None:
    """Front (left) thigh about horizontal over a vertical shin, the foot flat; the right knee on the
    ground with the shin behind (hip drops 1.1 and 1.3 thigh lengths, the right ankle 0.8 behind: a grid
    search on the default body, right knee joint 5 cm above the ground and both feet down; with equal
    drops the knee hovered 16 cm up and the front foot 8 cm)."""
    down = b.env(0.3, 1.2, 1.8, 2.5)
    thigh = math.hypot(*b.dims.thigh_zy)
    leg_ik(b, "left", thigh * down, 1.1 * thigh * down)
    leg_ik(b, "right", -0.8 * thigh * down, 1.3 * thigh * down, math.radians(50) * down)
    b.arms_down(30, 20)
    b.rotate("left_shoulder", X_AXIS, -b.deg(30) * down)
    b.rotate("spine1", X_AXIS, b.deg(10) * down)


@generator("bow", "whole_body", ["bow", "take a bow", "a person bows politely", "bend forward in a bow"],
           duration=2.4)
def bow(b: ClipBuilder) -> None:
    down = b.env(0.3, 0.9, 1.4, 2.0)
    for spine, angle in (("spine1", 18), ("spine2", 15), ("spine3", 10)):
        b.rotate(spine, X_AXIS, b.deg(angle) * down)
    b.rotate("head", X_AXIS, b.deg(15) * down)
    for side in ("left", "right"):
        leg(b, side, -b.deg(10) * down, b.const(0.0))
    b.arms_down(40, 5)


@generator("jumping_jacks", "whole_body", ["jumping jacks", "do jumping jacks", "a person does star jumps",
                                           "jumping jack exercise"], duration=2.7)
def jumping_jacks(b: ClipBuilder) -> None:
    """Two hops per cycle; the legs open and close only in the air, so the feet never slide."""
    u = (b.s / 0.9) % 1.0
    first = u < 0.5
    hop = torch.where(first, u, u - 0.5) / 0.5  # 0..1 within each hop
    x = torch.clamp((hop - 0.2) / 0.6, 0.0, 1.0)
    move = x * x * (3 - 2 * x)
    open_ = torch.where(first, move, 1 - move)
    b.rotate_both("hip", Z_AXIS, b.deg(15) * open_)
    b.rotate_both("shoulder", Z_AXIS, -math.radians(35) + math.radians(170) * open_)
    b.trans[:, 1] = 0.1 * b.amp * torch.sin(math.pi * hop)


@generator("stretch_arms_up", "whole_body", ["stretch", "stretch both arms up", "a person stretches upward",
                                             "reach for the sky"], duration=2.6)
def stretch_arms_up(b: ClipBuilder) -> None:
    up = b.env(0.3, 1.0, 1.8, 2.5)
    b.rotate_both("shoulder", Z_AXIS, math.radians(150) * up)
    b.rotate("spine2", X_AXIS, -b.deg(8) * up)
    b.rotate("head", X_AXIS, -b.deg(15) * up)
    for side in ("left", "right"):
        leg(b, side, b.const(0.0), b.const(0.0), b.deg(20) * up)  # up on the toes


@generator("side_stretch", "whole_body", ["side stretch", "stretch to the {side} side", "a person leans to the {side} "
                                          "with the {other} arm overhead", "lateral bend"], duration=2.6, handed=True)
def side_stretch(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.8, 1.8, 2.4)
    lean = b.env(0.6, 1.2, 1.6, 2.3)
    b.rotate("left_shoulder", Z_AXIS, math.radians(150) * up)
    b.rotate("right_shoulder", Z_AXIS, math.radians(20) * up)
    for spine in ("spine1", "spine2", "spine3"):
        b.rotate(spine, Z_AXIS, b.deg(12) * lean)  # positive about Z leans to the avatar's right


@generator("idle_breathing", "idle", ["stand still", "idle", "a person stands and breathes calmly",
                                      "standing relaxed", "stand calmly", "stand around"], duration=3.0)
def idle_breathing(b: ClipBuilder) -> None:
    breath = torch.sin(2 * math.pi * b.s / 3.0)
    b.arms_down(35, 10)
    b.rotate("spine2", X_AXIS, -b.deg(2) * breath)
    b.rotate_both("collar", Z_AXIS, b.deg(2) * breath)
    b.rotate("head", Y_AXIS, b.deg(5) * torch.sin(2 * math.pi * b.s / 6.0))


@generator("idle_weight_shift", "idle", ["shift weight from foot to foot", "idle standing", "a person waits "
                                         "shifting their weight", "standing and swaying"], duration=4.0)
def idle_weight_shift(b: ClipBuilder) -> None:
    shift = torch.sin(2 * math.pi * b.s / 4.0)
    b.arms_down(35, 10)
    b.rotate("pelvis", Z_AXIS, b.deg(3) * shift)
    leg(b, "left", -b.deg(8) * torch.clamp(shift, min=0), b.deg(16) * torch.clamp(shift, min=0))
    leg(b, "right", -b.deg(8) * torch.clamp(-shift, min=0), b.deg(16) * torch.clamp(-shift, min=0))
    b.rotate("spine2", Z_AXIS, -b.deg(3) * shift)
