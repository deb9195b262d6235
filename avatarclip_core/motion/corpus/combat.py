"""Combat for games: fighting stance, dodge, block, hit reaction, uppercut, sword slash, aiming a
gun (punch and kick are in sports.py). One-handed moves are authored right-handed."""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import (
    FACE, X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, arms_forward, generator, hand_to_head, leg, leg_ik, twist)


def _guard(b: ClipBuilder, on: torch.Tensor) -> None:
    """Fists up in front of the chin, elbows in."""
    b.rotate_both("elbow", X_AXIS, -math.radians(120) * on, mirror=False)
    b.rotate_both("shoulder", Z_AXIS, -math.radians(40) * on)
    b.rotate_both("shoulder", X_AXIS, -math.radians(35) * on, mirror=False)
    b.rotate_both("shoulder", Y_AXIS, -b.deg(10) * on)


def _stance(b: ClipBuilder, on: torch.Tensor, bounce: torch.Tensor | float = 0.0) -> None:
    """Left foot forward, right back, knees soft."""
    drop = (0.06 * b.dims.leg + 0.02 * bounce) * on
    leg_ik(b, "left", 0.12 * b.dims.leg * on, drop)
    leg_ik(b, "right", -0.12 * b.dims.leg * on, drop, math.radians(15) * on)


@generator("fighting_stance", "combat", ["fighting stance", "guard up", "a person bounces in a boxing stance",
                                         "ready to fight"], duration=2.4)
def fighting_stance(b: ClipBuilder) -> None:
    on = b.ramp(0.0, 0.4)
    _stance(b, on, torch.sin(2 * math.pi * b.s / 0.6))
    _guard(b, on)
    twist(b, b.deg(15) * on)
    b.rotate("head", X_AXIS, b.deg(8) * on)


@generator("dodge", "combat", ["dodge", "dodge to the {side}", "a person ducks and weaves to the {side}",
                               "evade an attack", "dodge a punch", "duck to avoid a blow",
                               "move out of the way"], duration=1.8, handed=True)
def dodge(b: ClipBuilder) -> None:
    evade = b.env(0.2, 0.45, 0.8, 1.3)
    for side in ("left", "right"):
        leg_ik(b, side, 0.0, 0.15 * b.dims.leg * evade)  # duck
    for spine in ("spine1", "spine2"):
        b.rotate(spine, Z_AXIS, b.deg(18) * evade)  # lean to the avatar's right
    b.rotate("spine1", X_AXIS, b.deg(15) * evade)
    _guard(b, b.ramp(0.0, 0.3) * (1 - b.ramp(1.4, 1.8)))


@generator("block", "combat", ["block", "block a punch with the forearms", "a person raises the arms to defend",
                               "defensive block", "defend against punches", "block an attack"], duration=2.0)
def block(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.4, 1.2, 1.7)
    b.arms_down(35, 10)
    for side in ("left", "right"):
        hand_to_head(b, side, up, *FACE)  # forearms crossed up in front of the face
    b.rotate("spine1", X_AXIS, b.deg(10) * up)
    b.rotate("head", X_AXIS, b.deg(15) * up)


@generator("hit_reaction", "combat", ["get hit", "take a hit", "a person staggers back after being punched",
                                      "hit reaction", "get punched in the face", "react to a hit"], duration=1.8)
def hit_reaction(b: ClipBuilder) -> None:
    hit = b.env(0.2, 0.35, 0.5, 1.3)
    b.rotate("spine1", X_AXIS, -b.deg(15) * hit)
    b.rotate("spine2", X_AXIS, -b.deg(12) * hit)
    b.rotate("head", X_AXIS, -b.deg(25) * hit)  # the head snaps back
    b.arms_down(35, 10)
    b.rotate_both("shoulder", Z_AXIS, b.deg(30) * hit)  # arms fly out
    b.rotate_both("shoulder", X_AXIS, -b.deg(20) * hit, mirror=False)
    for side in ("left", "right"):
        leg(b, side, -b.deg(10) * hit, b.deg(20) * hit)


@generator("uppercut", "combat", ["uppercut", "an uppercut with the {side} fist", "a person punches upward",
                                  "rising punch to the chin"], duration=2.0, handed=True)
def uppercut(b: ClipBuilder) -> None:
    guard = b.env(0.0, 0.3, 1.7, 2.0)
    load = b.env(0.3, 0.6, 0.65, 0.8)
    hit = b.env(0.7, 0.9, 1.0, 1.4)
    _stance(b, guard)
    _guard(b, guard)
    b.rotate("right_shoulder", X_AXIS, math.radians(30) * load - math.radians(55) * hit)  # from low to high
    b.rotate("right_elbow", X_AXIS, math.radians(30) * hit)
    twist(b, -b.deg(15) * load + b.deg(30) * hit)
    for side in ("left", "right"):
        leg_ik(b, side, 0.0, 0.08 * b.dims.leg * load)  # dip, then drive up


@generator("sword_slash", "combat", ["sword slash", "swing a sword with the {side} hand", "a person slashes "
                                     "with a sword", "strike with a blade"], duration=2.2, handed=True)
def sword_slash(b: ClipBuilder) -> None:
    raise_ = b.env(0.2, 0.7, 0.8, 1.1)
    slash = b.env(0.8, 1.05, 1.3, 1.9)
    b.arms_down(35, 10)
    b.rotate("right_elbow", X_AXIS, -math.radians(60) * raise_ - math.radians(20) * slash)
    b.rotate("right_shoulder", Z_AXIS, -math.radians(130) * raise_)  # up over the right shoulder
    b.rotate("right_shoulder", X_AXIS, -math.radians(70) * slash)  # then down and across
    b.rotate("right_shoulder", Y_AXIS, math.radians(40) * slash)
    twist(b, -b.deg(20) * raise_ + b.deg(35) * slash)
    _stance(b, b.ramp(0.0, 0.4) * (1 - b.ramp(1.8, 2.2)))


@generator("aim_gun", "combat", ["aim a gun", "shoot a pistol", "a person aims a handgun with both hands",
                                 "point a weapon and fire"], duration=2.4)
def aim_gun(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.6, 1.9, 2.3)
    recoil = b.env(1.0, 1.05, 1.05, 1.25) + b.env(1.4, 1.45, 1.45, 1.65)
    for side in ("left", "right"):
        b.straighten_elbow(side, up)
    arms_forward(b, math.radians(88) * up + b.deg(10) * recoil, math.radians(22) * up)
    b.rotate("left_elbow", X_AXIS, -b.deg(25) * up)  # the support hand's arm a little bent
    b.rotate("head", X_AXIS, b.deg(5) * up)
    _stance(b, up)
