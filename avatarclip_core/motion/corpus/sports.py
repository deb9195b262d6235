"""Sports: kick, punch, throw, golf and tennis swings, swimming strokes, basketball dribble.

Handed moves are authored right-handed (right leg / right arm); the library mirrors them.
Torso turns go through the spine (not the pelvis), so the feet stay planted.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, leg, twist


@generator("kick", "sports", ["kick", "kick a soccer ball", "a person kicks with the {side} leg",
                              "a {side}-footed kick"], duration=1.8, handed=True,
           support="left")
def kick(b: ClipBuilder) -> None:
    knee_back = b.env(0.1, 0.35, 0.5, 0.7)  # the knee bends first so the toe never scrapes the floor
    back = b.env(0.2, 0.5, 0.5, 0.7)
    strike = b.env(0.5, 0.75, 0.85, 1.5)
    point = b.env(0.5, 0.7, 0.85, 1.05)  # toes pointed through the strike
    recover = b.env(0.85, 1.1, 1.25, 1.6)  # bend the knee on the way back so the foot lands, not drags
    hip = b.deg(25) * back - b.deg(70) * strike
    knee = b.deg(80) * knee_back + b.deg(10) * strike + b.deg(50) * recover
    flat = torch.clamp(-(hip + knee), min=-math.radians(40))  # as flat as the ankle allows
    leg(b, "right", hip, knee, flat * (1 - strike) + b.deg(30) * point)
    b.arms_down(30, 15)
    b.rotate("left_shoulder", Z_AXIS, b.deg(45) * strike)  # the opposite arm out for balance
    b.rotate("right_shoulder", X_AXIS, b.deg(30) * strike)
    b.rotate("spine1", X_AXIS, -b.deg(10) * strike)


@generator("punch", "sports", ["punch", "throw a punch with the {side} fist", "a person punches forward",
                               "boxing jab"], duration=2.2, handed=True)
def punch(b: ClipBuilder) -> None:
    guard = b.env(0.0, 0.3, 1.9, 2.2)
    hit = b.env(0.5, 0.65, 0.7, 0.95) + b.env(1.2, 1.35, 1.4, 1.65)
    b.rotate_both("elbow", X_AXIS, -math.radians(115) * guard)
    b.rotate("right_elbow", X_AXIS, math.radians(115) * hit)  # the punching arm straightens
    b.rotate_both("shoulder", Z_AXIS, -math.radians(40) * guard)
    b.rotate_both("shoulder", X_AXIS, -math.radians(40) * guard)
    b.rotate("right_shoulder", X_AXIS, -math.radians(45) * hit)
    twist(b, b.deg(20) * hit)
    for side in ("left", "right"):
        leg(b, side, -b.deg(10) * guard, b.deg(20) * guard)


@generator("throw", "sports", ["throw", "throw a ball with the {side} hand", "a person throws overhand",
                               "pitch a baseball", "an overarm throw",
                               "throw a ball overhand with the {side} hand"], duration=2.0, handed=True)
def throw(b: ClipBuilder) -> None:
    wind = b.env(0.2, 0.7, 0.75, 0.95)
    release = b.env(0.8, 1.0, 1.1, 1.7)
    b.rotate("right_elbow", X_AXIS, -math.radians(90) * wind)
    b.rotate("right_shoulder", Z_AXIS, -math.radians(110) * wind)
    b.rotate("right_shoulder", X_AXIS, b.deg(30) * wind - math.radians(90) * release)
    b.rotate("left_shoulder", Z_AXIS, -b.deg(20))
    b.rotate("left_shoulder", X_AXIS, -b.deg(60) * wind)
    twist(b, -b.deg(35) * wind + b.deg(30) * release)
    b.rotate("spine1", X_AXIS, b.deg(15) * release)


@generator("golf_swing", "sports", ["golf swing", "swing a golf club", "a person swings a golf club",
                                    "tee off"], duration=2.6)
def golf_swing(b: ClipBuilder) -> None:
    address = b.env(0.0, 0.3, 2.2, 2.6)
    back = b.env(0.3, 1.2, 1.2, 1.45)
    through = b.env(1.3, 1.6, 1.9, 2.4)
    for side in ("left", "right"):
        b.straighten_elbow(side, address)
        leg(b, side, -b.deg(15) * address, b.deg(20) * address)
    b.rotate("spine1", X_AXIS, b.deg(25) * address)
    b.rotate_both("shoulder", Z_AXIS, -math.radians(40) * address)
    b.rotate_both("shoulder", X_AXIS, -b.deg(30) * address - b.deg(70) * (back + through))
    b.rotate_both("shoulder", Y_AXIS, -b.deg(20) * address)  # the hands together on the grip
    twist(b, -b.deg(70) * back + b.deg(70) * through)


@generator("tennis_swing", "sports", ["tennis swing", "a {side}-handed forehand", "a person swings a tennis "
                                      "racket", "hit a tennis ball"], duration=2.2, handed=True)
def tennis_swing(b: ClipBuilder) -> None:
    ready = b.env(0.0, 0.3, 1.9, 2.2)
    back = b.env(0.3, 0.9, 0.9, 1.1)
    through = b.env(1.0, 1.3, 1.5, 2.0)
    b.straighten_elbow("right", ready)
    b.rotate("right_shoulder", Z_AXIS, -math.radians(35) * ready)  # the racket arm out to the side
    b.rotate("right_shoulder", Y_AXIS, -math.radians(45) * back + math.radians(80) * through)
    b.rotate("left_shoulder", Z_AXIS, -b.deg(20))
    b.rotate("left_shoulder", X_AXIS, -b.deg(40) * ready)
    twist(b, -b.deg(40) * back + b.deg(40) * through)
    for side in ("left", "right"):
        leg(b, side, -b.deg(12) * ready, b.deg(20) * ready)


@generator("swim_strokes", "sports", ["swim", "freestyle swimming strokes", "a person makes swimming arm "
                                      "strokes", "front crawl arms"], duration=3.2)
def swim_strokes(b: ClipBuilder) -> None:
    phase = 2 * math.pi * b.s / 1.6
    for side, offset in (("left", 0.0), ("right", math.pi)):
        b.straighten_elbow(side)
        b.rotate(f"{side}_shoulder", Z_AXIS, b.const(math.radians(40) if side == "right" else -math.radians(40)))
        b.rotate(f"{side}_shoulder", X_AXIS, -math.radians(90) - b.deg(75) * torch.sin(phase + offset))
    b.rotate("spine2", Y_AXIS, b.deg(12) * torch.sin(phase))
    b.rotate("head", Y_AXIS, b.deg(25) * torch.clamp(torch.sin(phase), min=0.0))
    b.rotate("spine1", X_AXIS, b.const(b.deg(15)))


@generator("basketball_dribble", "sports", ["dribble a basketball", "bounce a ball with the {side} hand",
                                            "a person dribbles a basketball", "dribbling"], duration=2.4, handed=True)
def basketball_dribble(b: ClipBuilder) -> None:
    bounce = 0.5 + 0.5 * torch.sin(2 * math.pi * b.s / 0.5)
    for side in ("left", "right"):
        leg(b, side, -b.deg(20), b.deg(35))
    b.rotate("spine1", X_AXIS, b.const(b.deg(15)))
    b.rotate_both("shoulder", Z_AXIS, -math.radians(35))
    b.rotate("right_elbow", X_AXIS, -b.deg(5) - b.deg(35) * bounce)  # the hand pumps at the waist
    b.rotate("right_shoulder", X_AXIS, -b.deg(15) - b.deg(10) * bounce)
    b.rotate("right_wrist", X_AXIS, b.deg(25) * bounce)
