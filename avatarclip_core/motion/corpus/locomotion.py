"""Locomotion: walk, run, jog, sprint, backwards, side steps, turns, marching and climbing in place.

Gaits (the built-in procedural.walk is this walk's): the thigh swings +-swing about X, two steps per
cycle of length 2 L sin(swing) (L = hip-to-ankle length of the skeleton), so the root travels what the
feet cover.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, leg


def _gait(b: ClipBuilder, period: float, swing_deg: float, knee_deg: float, elbow_deg: float,
          lean_deg: float, direction: float = 1.0, flight: float = 0.0, arm_swing: float = 0.8) -> None:
    """Half a cycle of stance (the thigh sweeps back at constant speed, so the body advances
    evenly) and half of swing (the bent leg is brought forward, clear of the ground)."""
    swing = b.deg(swing_deg)
    for side, offset in (("left", 0.0), ("right", 0.5)):
        u = (b.s / period + offset) % 1.0
        stance = u < 0.5
        v = torch.where(stance, u / 0.5, (u - 0.5) / 0.5)
        smooth = v * v * (3 - 2 * v)
        thigh = torch.where(stance, -swing + 2 * swing * v, swing - 2 * swing * smooth)  # < 0: foot ahead
        lift = torch.where(stance, torch.zeros_like(v), torch.sin(math.pi * v))
        knee = b.deg(5) + b.deg(knee_deg) * lift
        thigh = direction * thigh
        leg(b, side, thigh - 0.35 * swing * lift, knee, -0.3 * thigh - 0.2 * b.deg(knee_deg) * lift)
        sign = -1.0 if side == "left" else 1.0
        b.rotate(f"{side}_shoulder", Z_AXIS, b.const(sign * math.radians(35)))
        b.rotate(f"{side}_shoulder", X_AXIS, -arm_swing * thigh)  # arms swing against the legs
        b.rotate(f"{side}_elbow", X_AXIS, b.const(-b.deg(elbow_deg)))
    phase = 2 * math.pi * b.s / period
    b.rotate("spine1", X_AXIS, b.const(math.radians(lean_deg)))
    b.rotate("spine2", Y_AXIS, b.deg(4) * torch.sin(phase))
    step = 2 * b.dims.leg * math.sin(swing)
    b.trans[:, 2] = direction * 2 * step / period * b.s  # used in flight only: the feet drive the rest
    if flight > 0:  # both feet leave the ground around each push-off
        b.trans[:, 1] = flight * b.amp * torch.clamp(torch.cos(2 * phase), min=0.0) ** 4


@generator("walk", "locomotion", ["walk", "walk forward", "a person walks forward", "walking straight ahead",
                                  "stroll"], duration=2.2, stationary=False)
def walk(b: ClipBuilder) -> None:
    _gait(b, 1.1, 22, 55, 15, 2)


@generator("walk_backwards", "locomotion", ["walk backwards", "walk backward", "a person walks backwards",
                                            "step back", "move backwards", "reverse away from something",
                                            "slowly walk backwards away"], duration=2.4, stationary=False)
def walk_backwards(b: ClipBuilder) -> None:
    _gait(b, 1.2, 18, 45, 15, -2, direction=-1.0)


@generator("jog", "locomotion", ["jog", "jogging", "a person jogs forward", "jog slowly"],
           duration=1.6, stationary=False)
def jog(b: ClipBuilder) -> None:
    _gait(b, 0.8, 28, 85, 70, 6, flight=0.03)


@generator("run", "locomotion", ["run", "run forward", "a person runs", "running"], duration=1.4, stationary=False)
def run(b: ClipBuilder) -> None:
    _gait(b, 0.7, 34, 100, 85, 10, flight=0.05)


@generator("sprint", "locomotion", ["sprint", "sprint as fast as possible", "a person sprints forward",
                                    "dash"], duration=1.2, stationary=False)
def sprint(b: ClipBuilder) -> None:
    _gait(b, 0.6, 42, 115, 95, 16, flight=0.07)


@generator("side_step", "locomotion", ["side step to the {side}", "sidestep", "a person steps sideways to the {side}",
                                       "shuffle to the {side}"], duration=2.0, handed=True, stationary=False)
def side_step(b: ClipBuilder) -> None:
    """A frontal-plane gait: each leg swings its foot toward -X (the right) while lifted and sweeps
    back under the body while planted, so the body travels to the right."""
    period, a = 1.0, b.deg(7)
    for side, offset in (("right", 0.0), ("left", 0.5)):
        u = (b.s / period + offset) % 1.0
        swing = u < 0.5
        v = torch.where(swing, u / 0.5, (u - 0.5) / 0.5)
        smooth = v * v * (3 - 2 * v)
        toward_right = torch.where(swing, 2 * a * smooth, 2 * a * (1 - v))
        lift = torch.where(swing, torch.sin(math.pi * v), torch.zeros_like(v))
        b.rotate(f"{side}_hip", Z_AXIS, -toward_right)  # negative about Z moves the foot to -X
        leg(b, side, -b.deg(15) * lift, b.deg(30) * lift)
    b.arms_down(30, 20)
    b.trans[:, 0] = -2 * b.dims.leg * math.sin(2 * a) * b.s / period  # flight only (none here)


def _stepping(b: ClipBuilder, period: float, lift_deg: float, weight: torch.Tensor) -> None:
    """Small alternating steps in place (for turns)."""
    phase = 2 * math.pi * b.s / period
    for side, offset in (("left", 0.0), ("right", math.pi)):
        up = torch.clamp(torch.sin(phase + offset), min=0.0) * weight
        leg(b, side, -b.deg(lift_deg) * up, b.deg(2 * lift_deg) * up)


@generator("turn_around", "locomotion", ["turn around", "turn back", "a person turns around 180 degrees",
                                         "spin around to face the other way"], duration=2.0, stationary=False)
def turn_around(b: ClipBuilder) -> None:
    turning = b.ramp(0.2, 1.7)
    b.rotate("pelvis", Y_AXIS, math.pi * turning)
    _stepping(b, 0.5, 20, b.env(0.1, 0.3, 1.6, 1.8))
    b.arms_down(32, 15)
    b.rotate("head", Y_AXIS, b.deg(15) * b.env(0.1, 0.4, 1.4, 1.8))


@generator("turn", "locomotion", ["turn {side}", "turn to the {side}", "a person turns 90 degrees to the {side}",
                                  "face {side}"], duration=1.4, handed=True, authored_side="left", stationary=False)
def turn(b: ClipBuilder) -> None:
    b.rotate("pelvis", Y_AXIS, 0.5 * math.pi * b.ramp(0.15, 1.15))
    _stepping(b, 0.5, 18, b.env(0.05, 0.25, 1.05, 1.25))
    b.arms_down(32, 15)
    b.rotate("head", Y_AXIS, b.deg(12) * b.env(0.0, 0.3, 0.9, 1.3))


@generator("march_in_place", "locomotion", ["march in place", "marching", "a person marches on the spot",
                                            "high knees in place"], duration=2.4)
def march_in_place(b: ClipBuilder) -> None:
    phase = 2 * math.pi * b.s / 1.2
    for side, offset in (("left", 0.0), ("right", math.pi)):
        up = torch.clamp(torch.sin(phase + offset), min=0.0)
        leg(b, side, -b.deg(60) * up, b.deg(80) * up)
        sign = -1.0 if side == "left" else 1.0
        b.rotate(f"{side}_shoulder", Z_AXIS, b.const(sign * math.radians(35)))
        b.rotate(f"{side}_shoulder", X_AXIS, b.deg(30) * torch.sin(phase + offset))
        b.rotate(f"{side}_elbow", X_AXIS, b.const(-b.deg(60)))


@generator("climb_in_place", "locomotion", ["climb a ladder", "climb", "a person climbs up in place",
                                            "climbing motion with arms and legs"], duration=2.4)
def climb_in_place(b: ClipBuilder) -> None:
    phase = 2 * math.pi * b.s / 1.2
    for side, offset in (("left", 0.0), ("right", math.pi)):
        up = torch.clamp(torch.sin(phase + offset), min=0.0)
        leg(b, side, -b.deg(70) * up, b.deg(95) * up)
        reach = 0.5 + 0.5 * torch.sin(phase + offset + math.pi)  # the opposite hand reaches up
        b.rotate(f"{side}_shoulder", X_AXIS, -math.radians(100) - b.deg(50) * reach)
        b.rotate(f"{side}_elbow", X_AXIS, -b.deg(70) * (1 - reach))
    b.rotate("spine1", X_AXIS, b.const(math.radians(8)))
    b.rotate("head", X_AXIS, b.const(-b.deg(20)))
