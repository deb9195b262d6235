"""Arm and head gestures: waves, raises, claps, shrugs, salutes, pointing, pushing, pulling, curls,
looking around, nods, head shakes, crossed arms, arm circles.

World-axis signs for the left arm (the right one mirrors Y and Z): +Z raises it sideways, -X swings
a hanging arm forward, -Y brings a forward arm toward the midline; -X on the elbow bends it.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, arms_forward, generator

UP = math.radians(140)  # from the A-pose (arm about 48 degrees below horizontal) to overhead


@generator("wave", "arms", ["wave", "wave with the {side} hand", "a person waves hello with the {side} hand",
                            "say hi by waving"], duration=2.5, handed=True)
def wave(b: ClipBuilder) -> None:
    raised = b.ramp(0.0, 0.4)
    b.rotate("left_shoulder", Z_AXIS, -b.deg(35))
    b.rotate("right_shoulder", Z_AXIS, -math.radians(110) * raised)
    b.rotate("right_elbow", Z_AXIS, (-b.deg(30) + b.deg(25) * b.osc(0.8)) * raised)
    b.rotate("head", Y_AXIS, -b.deg(8) * raised)


@generator("wave_both_hands", "arms", ["wave both hands", "wave with both arms", "a person waves both hands "
                                       "over the head", "greet with both hands"], duration=2.5)
def wave_both_hands(b: ClipBuilder) -> None:
    raised = b.ramp(0.0, 0.4)
    b.rotate_both("shoulder", Z_AXIS, math.radians(115) * raised)
    b.rotate_both("elbow", Z_AXIS, (b.deg(30) - b.deg(25) * b.osc(0.8)) * raised)


@generator("raise_both_arms", "arms", ["raise both arms", "put your hands up", "a person raises both arms above "
                                       "the head", "hands in the air"], duration=2.4)
def raise_both_arms(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.9, 1.7, 2.4)
    for side in ("left", "right"):
        b.straighten_elbow(side, up)
    b.rotate_both("shoulder", Z_AXIS, UP * up)


@generator("raise_one_arm", "arms", ["raise one arm", "raise the {side} hand", "a person raises the {side} arm "
                                     "above the head", "put one hand up"], duration=2.4, handed=True)
def raise_one_arm(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.9, 1.7, 2.4)
    b.straighten_elbow("right", up)
    b.rotate("right_shoulder", Z_AXIS, -UP * up)
    b.rotate("left_shoulder", Z_AXIS, -b.deg(35))


@generator("clap", "arms", ["clap", "clap your hands", "a person claps hands in front of the chest",
                            "applaud"], duration=2.4)
def clap(b: ClipBuilder) -> None:
    up = b.env(0.0, 0.4, 2.0, 2.4)
    beat = 0.5 + 0.5 * torch.cos(2 * math.pi * b.s / 0.45)
    arms_forward(b, math.radians(65) * up, (b.deg(12) + b.deg(22) * beat) * up)
    b.rotate_both("elbow", X_AXIS, -b.deg(45) * up)


@generator("shrug", "arms", ["shrug", "shrug the shoulders", "a person shrugs as if saying I don't know",
                             "shoulder shrug"], duration=2.0)
def shrug(b: ClipBuilder) -> None:
    up = b.env(0.3, 0.7, 1.1, 1.6)
    b.rotate_both("collar", Z_AXIS, b.deg(22) * up)
    b.rotate_both("shoulder", Z_AXIS, -b.deg(30) + b.deg(15) * up)
    b.rotate_both("elbow", X_AXIS, -b.deg(70) * up)
    b.rotate("head", Z_AXIS, b.deg(8) * up)


@generator("salute", "arms", ["salute", "a military salute with the {side} hand", "a person salutes",
                              "hand to the forehead in salute"], duration=2.4, handed=True)
def salute(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 1.7, 2.3)
    b.rotate("left_shoulder", Z_AXIS, -b.deg(35))
    b.rotate("right_elbow", X_AXIS, -math.radians(115) * up)  # forearm up toward the face
    b.rotate("right_shoulder", Z_AXIS, -math.radians(75) * up)  # upper arm out, near horizontal
    b.rotate("right_shoulder", Y_AXIS, math.radians(35) * up)  # and a little forward


@generator("point_forward", "arms", ["point forward", "point ahead with the {side} hand", "a person points at "
                                     "something in front", "point the finger forward"], duration=2.4, handed=True)
def point_forward(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 1.7, 2.3)
    b.straighten_elbow("right", up)
    b.rotate("right_shoulder", Z_AXIS, math.radians(40) * up)  # lower the arm to the side first
    b.rotate("right_shoulder", X_AXIS, -math.radians(85) * up)  # then swing it forward
    b.rotate("left_shoulder", Z_AXIS, -b.deg(35))
    b.rotate("head", Y_AXIS, -b.deg(5) * up)


@generator("push", "arms", ["push", "push something away", "a person pushes forward with both hands",
                            "shove"], duration=2.4)
def push(b: ClipBuilder) -> None:
    ready = b.env(0.0, 0.3, 2.1, 2.4)
    extend = b.env(0.5, 0.8, 0.9, 1.2) + b.env(1.3, 1.6, 1.7, 2.0)
    for side in ("left", "right"):
        b.straighten_elbow(side, ready)
    b.rotate_both("elbow", X_AXIS, -math.radians(90) * ready * (1 - extend))  # hands at the chest
    arms_forward(b, (math.radians(35) + math.radians(45) * extend) * ready)  # then pushed out at shoulder height
    b.rotate("spine1", X_AXIS, b.deg(12) * extend)


@generator("pull", "arms", ["pull", "pull a rope toward you", "a person pulls something with both hands",
                            "tug"], duration=2.4)
def pull(b: ClipBuilder) -> None:
    ready = b.env(0.0, 0.3, 2.1, 2.4)
    pulled = b.env(0.4, 0.8, 0.9, 1.2) + b.env(1.3, 1.7, 1.8, 2.1)
    for side in ("left", "right"):
        b.straighten_elbow(side, ready)
    b.rotate_both("elbow", X_AXIS, -math.radians(100) * pulled)
    arms_forward(b, (math.radians(85) - math.radians(35) * pulled) * ready)
    b.rotate("spine1", X_AXIS, -b.deg(12) * pulled)


@generator("bicep_curl", "arms", ["bicep curl", "curl a dumbbell with the {side} arm", "a person lifts a weight "
                                  "with the {side} arm", "arm curl"], duration=3.6, handed=True)
def bicep_curl(b: ClipBuilder) -> None:
    curl = 0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 1.2)
    b.rotate_both("shoulder", Z_AXIS, -math.radians(40))
    b.rotate("right_elbow", X_AXIS, -b.deg(105) * curl)


@generator("look_around", "head", ["look around", "look left and right", "a person looks around curiously",
                                   "scan the surroundings"], duration=4.0)
def look_around(b: ClipBuilder) -> None:
    b.arms_down(35, 10)
    yaw = torch.sin(2 * math.pi * b.s / 4.0)
    b.rotate("neck", Y_AXIS, b.deg(25) * yaw)
    b.rotate("head", Y_AXIS, b.deg(30) * yaw)
    b.rotate("spine3", Y_AXIS, b.deg(8) * yaw)
    b.rotate("head", X_AXIS, -b.deg(8) * torch.sin(2 * math.pi * b.s / 2.0))


@generator("nod", "head", ["nod", "nod yes", "a person nods the head in agreement", "nodding"], duration=2.0)
def nod(b: ClipBuilder) -> None:
    b.arms_down(35, 10)
    nodding = b.env(0.1, 0.3, 1.6, 1.9) * (0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 0.6))
    b.rotate("head", X_AXIS, b.deg(22) * nodding)
    b.rotate("neck", X_AXIS, b.deg(6) * nodding)


@generator("shake_head", "head", ["shake head", "shake the head no", "a person shakes the head to say no",
                                  "head shake"], duration=2.0)
def shake_head(b: ClipBuilder) -> None:
    b.arms_down(35, 10)
    shaking = b.env(0.1, 0.3, 1.6, 1.9) * b.osc(0.6)
    b.rotate("head", Y_AXIS, b.deg(30) * shaking)
    b.rotate("neck", Y_AXIS, b.deg(10) * shaking)


@generator("cross_arms", "arms", ["cross arms", "fold the arms", "a person stands with arms crossed",
                                  "arms folded across the chest", "stand with folded arms"], duration=2.6)
def cross_arms(b: ClipBuilder) -> None:
    """Forearms level across the chest, each wrist past the midline near the other elbow (a grid search
    on the default body: the wrists 6 cm past the midline, 20 cm in front of the chest, no forearm in it)."""
    fold = b.env(0.2, 0.9, 1.9, 2.5)
    b.rotate_both("elbow", X_AXIS, -math.radians(80) * fold)
    arms_forward(b, math.radians(10) * fold, math.radians(100) * fold)


@generator("arm_circles", "arms", ["arm circles", "circle the arms", "a person rotates outstretched arms in "
                                   "circles", "windmill the arms"], duration=3.0)
def arm_circles(b: ClipBuilder) -> None:
    out = b.env(0.0, 0.4, 2.6, 3.0)
    for side in ("left", "right"):
        b.straighten_elbow(side, out)
    phase = 2 * math.pi * b.s / 0.8
    b.rotate_both("shoulder", Z_AXIS, (math.radians(45) + b.deg(18) * torch.sin(phase)) * out)
    b.rotate_both("shoulder", Y_AXIS, b.deg(18) * torch.cos(phase) * out)
