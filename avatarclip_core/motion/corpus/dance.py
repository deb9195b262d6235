"""Dance steps: sway, twist, disco point, arms-up dance, step-touch."""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.corpus.builder import X_AXIS, Y_AXIS, Z_AXIS, ClipBuilder, generator, leg


@generator("dance_sway", "dance", ["dance", "sway to the music", "a person dances swaying side to side",
                                   "slow dance sway"], duration=4.0)
def dance_sway(b: ClipBuilder) -> None:
    sway = b.osc(2.0)
    b.rotate("pelvis", Z_AXIS, b.deg(5) * sway)
    b.rotate("spine2", Z_AXIS, -b.deg(7) * sway)
    b.rotate("head", Z_AXIS, b.deg(5) * sway)
    leg(b, "left", -b.deg(10) * torch.clamp(sway, min=0), b.deg(20) * torch.clamp(sway, min=0))
    leg(b, "right", -b.deg(10) * torch.clamp(-sway, min=0), b.deg(20) * torch.clamp(-sway, min=0))
    b.rotate_both("elbow", X_AXIS, -b.deg(60))
    b.rotate_both("shoulder", Z_AXIS, -math.radians(30) + b.deg(10) * b.osc(2.0, math.pi / 2))


@generator("dance_twist", "dance", ["the twist", "do the twist dance", "a person dances the twist",
                                    "twist the hips while dancing"], duration=3.2)
def dance_twist(b: ClipBuilder) -> None:
    twist = b.osc(0.8)
    b.rotate("pelvis", Y_AXIS, b.deg(25) * twist)
    b.rotate_both("hip", Y_AXIS, -b.deg(25) * twist, mirror=False)  # the legs stay facing forward
    b.rotate("spine2", Y_AXIS, -b.deg(35) * twist)  # the shoulders counter the hips
    for side in ("left", "right"):
        leg(b, side, -b.deg(20), b.deg(40))
    b.rotate_both("elbow", X_AXIS, -b.deg(90))
    b.rotate_both("shoulder", Z_AXIS, -math.radians(20))
    b.rotate_both("shoulder", X_AXIS, -b.deg(20))


@generator("disco_point", "dance", ["disco dance", "point up and down like in disco with the {side} hand",
                                    "a person does the disco point dance", "saturday night fever move"],
           duration=3.0, handed=True)
def disco_point(b: ClipBuilder) -> None:
    up = 0.5 + 0.5 * b.osc(1.0)  # 1: pointing up and out, 0: down across the body
    b.straighten_elbow("right")
    b.rotate("right_shoulder", Z_AXIS, -math.radians(150) * up + math.radians(30) * (1 - up))
    b.rotate("right_shoulder", Y_AXIS, math.radians(40) * (1 - up))
    b.rotate("left_shoulder", Z_AXIS, -b.deg(15))
    b.rotate("left_elbow", X_AXIS, -b.deg(80))
    b.rotate("pelvis", Z_AXIS, -b.deg(4) * (2 * up - 1))
    b.rotate("head", Y_AXIS, -b.deg(15) * up)


@generator("arms_up_dance", "dance", ["dance with arms up", "party dance with hands in the air",
                                      "a person dances with both arms raised", "rave dance"], duration=3.0)
def arms_up_dance(b: ClipBuilder) -> None:
    b.rotate_both("shoulder", Z_AXIS, math.radians(125) + b.deg(10) * b.osc(1.0))
    b.rotate_both("elbow", Z_AXIS, b.deg(20) * b.osc(1.0, math.pi / 2))
    bounce = 0.5 - 0.5 * torch.cos(2 * math.pi * b.s / 0.5)
    for side in ("left", "right"):
        leg(b, side, -b.deg(12) * bounce, b.deg(25) * bounce)
    b.rotate("spine2", Z_AXIS, b.deg(8) * b.osc(1.0))
    b.rotate("head", X_AXIS, b.deg(10) * bounce)


@generator("dance_step_touch", "dance", ["step touch dance", "step side to side to the beat", "a person dances "
                                         "stepping side to side", "side step touch"], duration=3.2)
def dance_step_touch(b: ClipBuilder) -> None:
    phase = 2 * math.pi * b.s / 1.6
    for side, offset, out in (("left", 0.0, 1.0), ("right", math.pi, -1.0)):
        lifted = torch.clamp(torch.sin(phase + offset), min=0.0)
        leg(b, side, -b.deg(20) * lifted, b.deg(40) * lifted)
        b.rotate(f"{side}_hip", Z_AXIS, out * b.deg(10) * lifted)  # the free foot taps out to the side
    b.rotate("pelvis", Z_AXIS, b.deg(4) * torch.sin(phase))
    b.rotate_both("elbow", X_AXIS, -b.deg(70))
    b.rotate_both("shoulder", Z_AXIS, -math.radians(30))
    b.rotate_both("shoulder", X_AXIS, -b.deg(20) * torch.sin(phase), mirror=False)
