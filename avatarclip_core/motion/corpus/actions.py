"""Everyday and game actions with (imagined) objects: sit idle, typing, pick up, carry, catch, an
underhand throw, jump over, drink, eat, phone call, hammering.

One-handed actions are authored right-handed; the library mirrors them.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import (
    EAR, X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, arms_forward, generator, hand_to_head, leg_ik, twist)
from avatarclip_core.motion.corpus.locomotion import _gait
from avatarclip_core.motion.corpus.whole_body import _crouch_and_jump, _seated, _squat_like


@generator("sit_idle", "seated", ["sit idle", "sit still on a chair", "a person sits and waits",
                                  "sitting relaxed"], duration=4.0)
def sit_idle(b: ClipBuilder) -> None:
    _seated(b, b.const(1.0), b.const(0.0))
    b.rotate_both("elbow", X_AXIS, -b.deg(45), mirror=False)  # hands resting on the thighs
    b.rotate("spine2", X_AXIS, -b.deg(2) * torch.sin(2 * math.pi * b.s / 4.0))  # breathing
    b.rotate("head", Y_AXIS, b.deg(20) * torch.sin(2 * math.pi * b.s / 4.0))  # glancing about


@generator("typing", "seated", ["typing", "type on a keyboard", "a person types on a computer",
                                "typing at a desk"], duration=3.0)
def typing(b: ClipBuilder) -> None:
    _seated(b, b.const(1.0), b.const(0.0))
    b.rotate_both("shoulder", X_AXIS, -b.deg(15), mirror=False)
    b.rotate_both("elbow", X_AXIS, -b.deg(70), mirror=False)  # forearms level over the keys
    for side, offset in (("left", 0.0), ("right", 1.7)):
        b.rotate(f"{side}_wrist", X_AXIS, b.deg(8) * torch.sin(2 * math.pi * b.s / 0.35 + offset))
    b.rotate("head", X_AXIS, b.deg(12))  # eyes on the screen


@generator("pick_up", "actions", ["pick up something from the floor", "pick up", "a person bends down and picks "
                                  "something up", "lift a box off the ground"], duration=3.0)
def pick_up(b: ClipBuilder) -> None:
    down = b.env(0.3, 1.1, 1.5, 2.4)
    hold = b.ramp(1.3, 2.4)
    _squat_like(b, 0.55 * b.amp, 50, down)
    b.arms_down(30, 10)
    for side in ("left", "right"):
        b.straighten_elbow(side, down)
    b.rotate_both("shoulder", X_AXIS, -math.radians(45) * down - math.radians(30) * hold, mirror=False)
    b.rotate_both("elbow", X_AXIS, -math.radians(70) * hold, mirror=False)  # the object held at the waist
    b.rotate("head", X_AXIS, b.deg(20) * down)


@generator("carry", "actions", ["carry a box", "carry something heavy", "a person walks carrying a box",
                                "walk holding a crate in both arms"], duration=2.2, stationary=False)
def carry(b: ClipBuilder) -> None:
    _gait(b, 1.2, 18, 45, 0, -4, arm_swing=0.0)  # short steps, leaning back under the load
    b.rotate_both("elbow", X_AXIS, -b.const(math.radians(85)), mirror=False)
    b.rotate_both("shoulder", X_AXIS, -b.const(math.radians(25)), mirror=False)
    b.rotate_both("shoulder", Y_AXIS, -b.const(math.radians(15)))  # hands under the box's sides


@generator("catch", "actions", ["catch a ball", "catch", "a person catches something thrown at them",
                                "receive a pass with both hands", "catch a thrown ball",
                                "catch it with both hands"], duration=2.2)
def catch(b: ClipBuilder) -> None:
    reach = b.env(0.2, 0.6, 0.7, 1.1)
    hug = b.env(0.8, 1.1, 1.6, 2.1)
    arms_forward(b, math.radians(95) * reach + math.radians(40) * hug, math.radians(10) * (reach + hug))
    b.rotate_both("elbow", X_AXIS, -b.deg(20) * reach - math.radians(95) * hug, mirror=False)
    for side in ("left", "right"):
        leg_ik(b, side, 0.0, 0.08 * b.dims.leg * (reach + hug))  # soft knees to absorb it
    b.rotate("spine1", X_AXIS, -b.deg(8) * hug)


@generator("throw_underhand", "actions", ["throw underhand", "toss a ball underhand with the {side} hand",
                                          "a person tosses something underarm", "bowl a ball"],
           duration=2.0, handed=True)
def throw_underhand(b: ClipBuilder) -> None:
    back = b.env(0.2, 0.7, 0.75, 1.0)
    swing = b.env(0.75, 1.05, 1.15, 1.8)
    b.arms_down(35, 10)
    for side in ("left", "right"):
        leg_ik(b, side, 0.0, 0.08 * b.dims.leg * back)
    b.rotate("right_shoulder", X_AXIS, math.radians(45) * back - math.radians(110) * swing)
    twist(b, -b.deg(25) * back + b.deg(20) * swing)
    b.rotate("spine1", X_AXIS, b.deg(15) * back)


@generator("jump_over", "actions", ["jump over an obstacle", "hurdle", "a person leaps over something",
                                    "vault over a fence"], duration=1.9, stationary=False)
def jump_over(b: ClipBuilder) -> None:
    _crouch_and_jump(b, 0.45, 1.2 * b.dims.leg)
    tuck = b.env(0.7, 0.85, 0.9, 1.05)  # knees pulled high to clear it
    for side in ("left", "right"):
        b.rotate(f"{side}_hip", X_AXIS, -b.deg(30) * tuck)


@generator("drink", "actions", ["drink", "drink from a cup with the {side} hand", "a person takes a sip from "
                                "a glass", "have a drink"], duration=2.6, handed=True)
def drink(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.8, 1.6, 2.2)
    sip = b.env(0.8, 1.1, 1.3, 1.6)
    b.arms_down(35, 10)
    hand_to_head(b, "right", up)
    b.rotate("right_wrist", X_AXIS, b.deg(25) * sip)  # tip the cup
    b.rotate("head", X_AXIS, -b.deg(20) * sip)


@generator("eat", "actions", ["eat", "eat a sandwich with the {side} hand", "a person brings food to the mouth",
                              "take a bite"], duration=3.0, handed=True)
def eat(b: ClipBuilder) -> None:
    bites = b.env(0.2, 0.6, 2.4, 2.9) * (0.6 + 0.4 * torch.cos(2 * math.pi * (b.s - 0.6) / 1.0))
    b.arms_down(35, 10)
    hand_to_head(b, "right", bites)
    b.rotate("head", X_AXIS, b.deg(10) * bites)  # lean in to the food


@generator("phone_call", "actions", ["talk on the phone", "phone call with the phone in the {side} hand",
                                     "a person holds a phone to the ear", "answer a call"], duration=3.2,
           handed=True)
def phone_call(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 2.6, 3.1)
    b.arms_down(35, 10)
    hand_to_head(b, "right", up, *EAR)
    b.rotate("head", Z_AXIS, -b.deg(8) * up)  # tilt toward the phone (the right)
    b.rotate("head", Y_AXIS, b.deg(10) * torch.sin(2 * math.pi * b.s / 3.2) * up)  # talking


@generator("hammer", "actions", ["hammer a nail", "hammering with the {side} hand", "a person pounds with a "
                                 "hammer", "strike down with a hammer"], duration=2.8, handed=True)
def hammer(b: ClipBuilder) -> None:
    ready = b.env(0.0, 0.4, 2.4, 2.8)
    strokes = 0.5 + 0.5 * torch.cos(2 * math.pi * b.s / 0.7)  # 1 raised, 0 struck
    b.arms_down(35, 10)
    b.rotate("right_shoulder", X_AXIS, -(math.radians(30) + math.radians(30) * strokes) * ready)
    b.rotate("right_elbow", X_AXIS, -(math.radians(40) + math.radians(70) * strokes) * ready)
    b.rotate("left_shoulder", X_AXIS, -b.deg(35) * ready)  # the other hand holds the nail
    b.rotate("left_elbow", X_AXIS, -b.deg(40) * ready)
    b.rotate("spine1", X_AXIS, b.deg(15) * ready)
