"""Floor work: lie down, get up, crawl, push-ups, forward roll, cartwheel, dying and falling.

These clips use the library's body grounding (`ground="body"`, feet.settle_body): the lowest body
part rests on the ground, so lying, kneeling and hands-down poses need no authored height. A
pelvis rotation turns the whole body: +X tips it face down, -X onto its back, +Z over its right side.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Z_AXIS, ClipBuilder, generator, leg, leg_ik

FLOOR = {"ground": "body", "stationary": False}


def _lie_on_back(b: ClipBuilder, lying: torch.Tensor, crouch: torch.Tensor) -> None:
    """Standing (lying 0) to flat on the back (lying 1) through a crouch, hands reaching back."""
    b.rotate("pelvis", X_AXIS, -math.radians(90) * lying)
    for side in ("left", "right"):
        drop = 0.45 * b.dims.leg * crouch
        leg_ik(b, side, 0.3 * drop, drop)
    b.rotate("spine1", X_AXIS, b.deg(25) * crouch)  # lean over the knees while low
    b.arms_down(35, 10)
    b.rotate_both("shoulder", X_AXIS, b.deg(35) * crouch)  # hands back toward the floor


@generator("lie_down", "floor", ["lie down", "lie down on the floor", "a person lies down on their back",
                                 "get down and lie flat"], duration=2.4, **FLOOR)
def lie_down(b: ClipBuilder) -> None:
    _lie_on_back(b, b.ramp(0.7, 1.8), b.env(0.2, 0.8, 1.1, 1.9))


@generator("get_up", "floor", ["get up from the floor", "stand up from lying down", "a person gets up off the "
                               "ground", "rise from the floor", "get back on your feet",
                               "get up off the floor"], duration=2.4, **FLOOR)
def get_up(b: ClipBuilder) -> None:
    _lie_on_back(b, 1 - b.ramp(0.3, 1.4), b.env(0.5, 1.2, 1.5, 2.2))


def _hands_and_knees(b: ClipBuilder) -> None:
    """Torso horizontal face down over vertical thighs and arms, shins on the floor."""
    b.rotate("pelvis", X_AXIS, b.const(math.radians(90)))
    b.rotate_both("hip", X_AXIS, b.const(-math.radians(90)), mirror=False)
    b.rotate_both("knee", X_AXIS, b.const(math.radians(90)), mirror=False)
    b.arms_down(45, 5)
    b.rotate_both("shoulder", X_AXIS, b.const(-math.radians(85)), mirror=False)
    b.rotate("head", X_AXIS, -b.deg(30))  # look ahead, not at the floor


@generator("crawl", "floor", ["crawl", "crawl on hands and knees", "a person crawls forward",
                              "crawling like a baby"], duration=2.4, **FLOOR)
def crawl(b: ClipBuilder) -> None:
    period = 1.2
    _hands_and_knees(b)
    for side, offset in (("left", 0.0), ("right", math.pi)):
        phase = 2 * math.pi * b.s / period + offset
        b.rotate(f"{side}_hip", X_AXIS, -b.deg(15) * torch.sin(phase))  # knee forward, then back
        other = "right" if side == "left" else "left"  # the opposite hand moves with this knee
        b.rotate(f"{other}_shoulder", X_AXIS, -b.deg(15) * torch.sin(phase))
    b.trans[:, 2] = 0.35 * b.amp * b.s  # metres per second on all fours


@generator("push_up", "floor", ["push-ups", "do push ups", "a person does push-ups on the floor", "press-ups"],
           duration=2.8, **FLOOR)
def push_up(b: ClipBuilder) -> None:
    down = 0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 1.4)
    b.rotate("pelvis", X_AXIS, b.const(math.radians(80)))  # a plank, head end higher
    b.arms_down(45, 5)
    b.rotate_both("shoulder", X_AXIS, -math.radians(80) + math.radians(35) * down * b.amp, mirror=False)
    b.rotate_both("elbow", X_AXIS, -math.radians(75) * down * b.amp, mirror=False)
    for side in ("left", "right"):
        leg(b, side, b.const(0.0), b.const(0.0), b.deg(40))  # on the toes


@generator("roll", "floor", ["forward roll", "roll", "a person does a somersault", "tumble forward"],
           duration=2.4, **FLOOR)
def roll(b: ClipBuilder) -> None:
    tuck = b.env(0.2, 0.6, 1.5, 2.0)
    b.rotate("pelvis", X_AXIS, 2 * math.pi * b.ramp(0.55, 1.6))
    b.rotate_both("hip", X_AXIS, -math.radians(110) * tuck, mirror=False)
    b.rotate_both("knee", X_AXIS, math.radians(130) * tuck, mirror=False)
    b.rotate_both("ankle", X_AXIS, -math.radians(20) * tuck, mirror=False)
    for spine in ("spine1", "spine2", "spine3"):
        b.rotate(spine, X_AXIS, math.radians(15) * tuck)
    b.rotate("head", X_AXIS, b.deg(35) * tuck)  # chin to the chest
    b.arms_down(35, 10)
    b.rotate_both("shoulder", X_AXIS, -math.radians(70) * tuck, mirror=False)
    b.trans[:, 2] = 1.1 * b.dims.leg * b.ramp(0.5, 1.7)


@generator("cartwheel", "floor", ["cartwheel", "do a cartwheel", "a person does a cartwheel",
                                  "turn a cartwheel sideways"], duration=2.4, **FLOOR)
def cartwheel(b: ClipBuilder) -> None:
    """Arms overhead and legs apart, the body turns a full circle over its right side (+Z)
    while travelling to its right (-X)."""
    spread = b.env(0.1, 0.5, 1.8, 2.2)
    over = b.ramp(0.5, 1.8)
    for side in ("left", "right"):
        b.straighten_elbow(side, spread)
    b.rotate_both("shoulder", Z_AXIS, math.radians(140) * spread)
    b.rotate_both("hip", Z_AXIS, math.radians(35) * spread)
    b.rotate("pelvis", Z_AXIS, 2 * math.pi * over)
    b.trans[:, 0] = -2.0 * b.dims.leg * over


@generator("die", "floor", ["die", "fall down dead", "a person collapses to the ground", "death animation"],
           duration=2.6, **FLOOR)
def die(b: ClipBuilder) -> None:
    """The knees buckle, then the body falls forward and lies face down, arms loose."""
    buckle = b.env(0.1, 0.6, 0.9, 1.5)
    fall = b.ramp(0.7, 1.5)
    thigh = math.hypot(*b.dims.thigh_zy)
    for side in ("left", "right"):
        leg_ik(b, side, -0.3 * thigh * buckle, 0.9 * thigh * buckle, math.radians(40) * buckle)
    b.rotate("pelvis", X_AXIS, math.radians(90) * fall)
    b.rotate("spine2", X_AXIS, b.deg(20) * buckle)
    b.rotate("head", X_AXIS, b.deg(30) * buckle - b.deg(20) * fall)  # the head sags, then rests turned up
    b.arms_down(30, 15)
    b.rotate_both("shoulder", Z_AXIS, math.radians(50) * fall)  # arms splay as it lands
    b.trans[:, 2] = 0.4 * b.dims.leg * fall


@generator("fall_backward", "floor", ["fall backward", "get knocked down", "a person is knocked over and falls "
                                      "on their back", "trip and fall backwards"], duration=2.2, **FLOOR)
def fall_backward(b: ClipBuilder) -> None:
    fall = b.ramp(0.2, 0.9)
    flail = b.env(0.1, 0.4, 0.7, 1.1)
    b.rotate("pelvis", X_AXIS, -math.radians(90) * fall)
    for side in ("left", "right"):
        leg(b, side, -b.deg(30) * flail, b.deg(40) * flail)
    b.arms_down(35, 10)
    b.rotate_both("shoulder", Z_AXIS, math.radians(70) * flail + math.radians(30) * fall)
    b.rotate("head", X_AXIS, b.deg(25) * flail)  # chin tucked while falling
    b.trans[:, 2] = -0.5 * b.dims.leg * fall
