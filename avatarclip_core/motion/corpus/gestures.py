"""Gestures: thumbs up, beckon, facepalm, cheer, hands on hips, head scratch, thinking, stop sign.

World-axis signs as in arms.py (left arm: +Z raises it sideways, -X swings it forward; the right
arm mirrors Y and Z). One-handed gestures are authored right-handed.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import (
    FACE, TOP_OF_HEAD, X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, hand_to_head)


@generator("thumbs_up", "gestures", ["thumbs up", "give a thumbs up with the {side} hand", "a person gives a "
                                     "thumbs up", "approve with a raised thumb"], duration=2.2, handed=True)
def thumbs_up(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.6, 1.6, 2.1)
    b.arms_down(35, 10)
    b.rotate("right_shoulder", X_AXIS, -b.deg(35) * up)
    b.rotate("right_elbow", X_AXIS, -math.radians(85) * up)  # forearm forward, fist up
    b.rotate("head", X_AXIS, -b.deg(5) * up)


@generator("beckon", "gestures", ["come here gesture", "beckon with the {side} hand", "a person waves someone "
                                  "over", "call someone closer"], duration=2.4, handed=True)
def beckon(b: ClipBuilder) -> None:
    up = b.env(0.1, 0.5, 1.9, 2.3)
    curl = 0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 0.6)
    b.arms_down(35, 10)
    b.rotate("right_shoulder", X_AXIS, -math.radians(55) * up)
    b.rotate("right_elbow", X_AXIS, -(math.radians(20) + math.radians(70) * curl) * up)


@generator("facepalm", "gestures", ["facepalm", "put the {side} hand over the face", "a person covers the face "
                                    "in embarrassment", "face palm"], duration=2.4, handed=True)
def facepalm(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 1.7, 2.3)
    b.arms_down(35, 10)
    hand_to_head(b, "right", up, *FACE)
    b.rotate("head", X_AXIS, b.deg(25) * up)  # the head drops into the hand
    b.rotate("spine2", X_AXIS, b.deg(8) * up)


@generator("cheer", "gestures", ["cheer", "celebrate with a fist pump of the {side} arm", "a person pumps the "
                                 "fist in victory", "victory celebration"], duration=2.4, handed=True)
def cheer(b: ClipBuilder) -> None:
    up = b.env(0.1, 0.4, 2.0, 2.4)
    pump = 0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 0.5)
    b.arms_down(35, 10)
    b.flex_elbow("right", math.radians(50) * up * pump)  # the fist drops toward the head and back
    b.rotate("right_shoulder", Z_AXIS, -math.radians(150) * up)
    b.rotate("head", X_AXIS, -b.deg(15) * up)


@generator("hands_on_hips", "gestures", ["hands on hips", "stand with hands on the hips", "a person stands "
                                         "akimbo", "arms akimbo"], duration=2.6)
def hands_on_hips(b: ClipBuilder) -> None:
    on = b.env(0.2, 0.8, 1.9, 2.5)
    b.rotate_both("elbow", Z_AXIS, -math.radians(80) * on)  # forearms in toward the hips
    b.rotate_both("shoulder", X_AXIS, b.deg(15) * on, mirror=False)  # elbows a little back
    b.rotate_both("shoulder", Z_AXIS, -b.deg(5) * on)


@generator("scratch_head", "gestures", ["scratch the head", "scratch the head with the {side} hand", "a person "
                                        "scratches the head, puzzled", "confused head scratch"], duration=2.6,
           handed=True)
def scratch_head(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.7, 1.9, 2.4)
    b.arms_down(35, 10)
    hand_to_head(b, "right", up, *TOP_OF_HEAD)
    b.rotate("right_wrist", Z_AXIS, b.deg(15) * torch.sin(2 * math.pi * b.s / 0.3) * up)
    b.rotate("head", Z_AXIS, -b.deg(10) * up)


@generator("think", "gestures", ["think", "rest the chin on the {side} hand", "a person ponders with a hand on "
                                 "the chin", "thinking pose"], duration=3.0, handed=True)
def think(b: ClipBuilder) -> None:
    on = b.env(0.2, 0.8, 2.3, 2.9)
    b.arms_down(35, 10)
    hand_to_head(b, "right", on)
    b.rotate("left_elbow", X_AXIS, -math.radians(90) * on)  # the other forearm across the waist
    b.rotate("left_shoulder", Y_AXIS, -b.deg(25) * on)
    b.rotate("head", X_AXIS, b.deg(10) * on)
    b.rotate("head", Y_AXIS, b.deg(10) * torch.sin(2 * math.pi * b.s / 3.0) * on)


@generator("stop_gesture", "gestures", ["stop gesture", "hold up the {side} hand to say stop", "a person signals "
                                        "halt with an open palm", "halt"], duration=2.2, handed=True)
def stop_gesture(b: ClipBuilder) -> None:
    up = b.env(0.2, 0.5, 1.6, 2.1)
    b.straighten_elbow("right", up)
    b.rotate("right_shoulder", Z_AXIS, math.radians(40) * up)  # down to the side, then forward
    b.rotate("right_shoulder", X_AXIS, -math.radians(85) * up)
    b.rotate("right_wrist", X_AXIS, -math.radians(60) * up)  # palm out
    b.rotate("left_shoulder", Z_AXIS, -b.deg(35))
