"""Idles for games (besides idle_breathing and idle_weight_shift in whole_body.py): yawn, bored
foot tapping, tired (hands on knees), checking a watch, standing at ease. Idles start and end in
the same pose, so they loop."""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, hand_to_head, leg


@generator("yawn", "idle", ["yawn", "a person yawns sleepily", "sleepy yawn with a hand over the mouth",
                            "yawning"], duration=3.0)
def yawn(b: ClipBuilder) -> None:
    up = b.env(0.3, 1.0, 1.8, 2.6)
    b.arms_down(35, 10)
    hand_to_head(b, "right", up)
    b.rotate("head", X_AXIS, -b.deg(20) * up)  # the head tips back
    b.rotate_both("collar", Z_AXIS, b.deg(8) * up)
    b.rotate("spine2", X_AXIS, -b.deg(6) * up)


@generator("idle_bored", "idle", ["bored idle", "tap the foot impatiently", "a person waits, bored, tapping a "
                                  "foot", "impatient waiting"], duration=3.0)
def idle_bored(b: ClipBuilder) -> None:
    tap = torch.clamp(torch.sin(2 * math.pi * b.s / 0.5), min=0.0) * b.env(0.0, 0.3, 2.6, 3.0)
    b.arms_down(35, 10)
    b.rotate("right_ankle", X_AXIS, -b.deg(20) * tap)  # toes up, heel down
    b.rotate("head", Z_AXIS, b.deg(8) * b.env(0.5, 1.2, 1.8, 2.6))
    b.rotate("spine2", X_AXIS, -b.deg(3) * b.env(1.0, 1.5, 1.8, 2.5))  # a sigh


@generator("idle_tired", "idle", ["tired idle", "catch your breath with hands on the knees", "a person is "
                                  "exhausted and bends over panting", "out of breath"], duration=3.0)
def idle_tired(b: ClipBuilder) -> None:
    on = b.env(0.0, 0.6, 2.4, 3.0)
    pant = 0.5 + 0.5 * torch.sin(2 * math.pi * b.s / 0.8)
    for side in ("left", "right"):
        leg(b, side, -b.deg(30) * on, b.deg(35) * on)
    b.rotate("spine1", X_AXIS, (b.deg(35) + b.deg(3) * pant) * on)
    b.rotate("spine2", X_AXIS, b.deg(15) * on)
    b.rotate("head", X_AXIS, -b.deg(25) * on)  # looking ahead, not at the floor
    b.arms_down(45, 5)
    b.rotate_both("shoulder", X_AXIS, -math.radians(25) * on, mirror=False)  # hands down on the knees


@generator("check_watch", "idle", ["check the time on a wristwatch", "look at the watch", "a person raises the "
                                   "wrist and checks the time", "glance at a wristwatch"], duration=2.6)
def check_watch(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 1.7, 2.3)
    b.arms_down(35, 10)
    b.rotate("left_elbow", X_AXIS, -math.radians(95) * up)  # forearm level in front of the chest
    b.rotate("left_shoulder", X_AXIS, -b.deg(20) * up)
    b.rotate("left_shoulder", Y_AXIS, -b.deg(30) * up)
    b.rotate("head", X_AXIS, b.deg(25) * up)
    b.rotate("head", Y_AXIS, b.deg(10) * up)  # toward the left wrist


@generator("stand_at_ease", "idle", ["stand at ease", "hands clasped behind the back", "a person stands with "
                                     "hands behind the back", "parade rest",
                                     "hold your hands together behind you"], duration=3.0)
def stand_at_ease(b: ClipBuilder) -> None:
    on = b.env(0.0, 0.6, 2.4, 3.0)
    b.arms_down(40, 0)
    b.rotate_both("shoulder", X_AXIS, math.radians(25) * on, mirror=False)  # arms back
    b.rotate_both("elbow", X_AXIS, math.radians(50) * on, mirror=False)  # forearms behind the back
    b.rotate_both("shoulder", Y_AXIS, b.deg(25) * on)  # hands meet behind
    b.rotate_both("hip", Z_AXIS, b.deg(5) * on)  # feet apart
    b.rotate("spine2", X_AXIS, -b.deg(2) * torch.sin(2 * math.pi * b.s / 3.0))
