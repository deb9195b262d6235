"""Authoring tools for procedural clips: a vectorised world-axis rotation builder and the registry.

A generator is a function `fn(b: ClipBuilder) -> None` that composes rotations about world axes
per role for all frames at once (one tensor op per call, no per-frame loops), and sets `b.trans`:
x/z are the root's horizontal travel, y is the height ABOVE THE GROUND to add on top of standing
(0 except in flight); the library derives the standing height from the legs afterwards.
Generators author one side (normally the right hand / leg); the other is the mirror image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import NUM_ROLES, ROLE_INDEX, CanonicalMotion, role_joint_indices

X_AXIS, Y_AXIS, Z_AXIS = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class BodyDims:
    """Lengths a generator scales its root travel with (metres, from the skeleton's rest pose)."""

    leg: float  # hip to ankle
    thigh: float
    shin: float
    pelvis_height: float
    arm: float  # shoulder to wrist
    # Rotation vector that lines the left forearm up with the upper arm (the rest pose may bend the
    # elbow, as Anny's A-pose does by about 45 degrees); the right one is its mirror image.
    elbow_straighten: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Left thigh and shin in the sagittal plane as (forward z, up y) vectors, for leg_ik.
    thigh_zy: tuple[float, float] = (0.0, -0.45)
    shin_zy: tuple[float, float] = (0.0, -0.45)

    @staticmethod
    def from_skeleton(skeleton: Skeleton) -> "BodyDims":
        idx = dict(zip(ROLE_INDEX, role_joint_indices(skeleton)))
        p = skeleton.rest_positions.float()

        def dist(a: str, b: str) -> float:
            return float(torch.linalg.norm(p[idx[a]] - p[idx[b]]))

        def zy(a: str, b: str) -> tuple[float, float]:
            d = p[idx[b]] - p[idx[a]]
            return float(d[2]), float(d[1])

        upper = torch.nn.functional.normalize(p[idx["left_elbow"]] - p[idx["left_shoulder"]], dim=0)
        fore = torch.nn.functional.normalize(p[idx["left_wrist"]] - p[idx["left_elbow"]], dim=0)
        axis = torch.linalg.cross(fore, upper)
        angle = torch.atan2(axis.norm(), fore @ upper)
        straighten = axis / axis.norm().clamp(min=1e-9) * angle
        return BodyDims(leg=dist("left_hip", "left_ankle"), thigh=dist("left_hip", "left_knee"),
                        shin=dist("left_knee", "left_ankle"), pelvis_height=float(p[idx["pelvis"], 1]),
                        arm=dist("left_shoulder", "left_elbow") + dist("left_elbow", "left_wrist"),
                        elbow_straighten=tuple(float(x) for x in straighten),
                        thigh_zy=zy("left_hip", "left_knee"), shin_zy=zy("left_knee", "left_ankle"))


class ClipBuilder:
    """World-axis rotations (T, 20, 3, 3) per role, composed left to right in authoring order.

    `s` is authoring time in seconds at speed 1 (a faster variation covers the same script in fewer
    frames); `amp` scales the angles authored with `deg`.
    """

    def __init__(self, duration: float, fps: float, speed: float = 1.0, amplitude: float = 1.0,
                 dims: BodyDims | None = None) -> None:
        self.fps, self.speed, self.amp = fps, speed, amplitude
        self.frames = max(2, int(round(duration / speed * fps)) + 1)
        self.t = torch.arange(self.frames, dtype=torch.float32) / fps
        self.s = self.t * speed
        self.duration = duration
        self.dims = dims or BodyDims(leg=0.9, thigh=0.45, shin=0.45, pelvis_height=0.98, arm=0.55)
        self.rotations = torch.eye(3).repeat(self.frames, NUM_ROLES, 1, 1)
        self.trans = torch.zeros(self.frames, 3)

    # --- angles and envelopes (all (T,) tensors over authoring time) ---
    def deg(self, degrees: float) -> float:
        return math.radians(degrees) * self.amp

    def const(self, value: float) -> torch.Tensor:
        return torch.full_like(self.s, value)

    def osc(self, period: float, phase: float = 0.0) -> torch.Tensor:
        return torch.sin(2 * math.pi * self.s / period + phase)

    def ramp(self, start: float, end: float) -> torch.Tensor:
        """Smoothstep from 0 (before `start`) to 1 (after `end`)."""
        x = torch.clamp((self.s - start) / max(end - start, 1e-6), 0.0, 1.0)
        return x * x * (3 - 2 * x)

    def env(self, rise: float, top: float, fall: float, end: float) -> torch.Tensor:
        """0 -> 1 between rise and top, 1 until fall, back to 0 at end."""
        return self.ramp(rise, top) * (1 - self.ramp(fall, end))

    # --- composition ---
    def rotate(self, role: str, axis: tuple[float, float, float], angle: torch.Tensor | float) -> None:
        """Compose a rotation about a world axis (radians, per frame) after the existing ones."""
        angle = angle if torch.is_tensor(angle) else self.const(float(angle))
        rotvec = torch.tensor(axis).expand(self.frames, 3) * angle.reshape(-1, 1)
        j = ROLE_INDEX[role]
        self.rotations[:, j] = axis_angle_to_matrix(rotvec) @ self.rotations[:, j]

    def rotate_both(self, part: str, axis: tuple[float, float, float], angle: torch.Tensor | float,
                    mirror: bool = True) -> None:
        """The same movement on both sides; `mirror` flips the angle for the right side about the
        Y and Z axes (a symmetric movement), not about X (forward/back is the same on both sides)."""
        angle = angle if torch.is_tensor(angle) else self.const(float(angle))
        self.rotate(f"left_{part}", axis, angle)
        flip = -1.0 if mirror and axis != X_AXIS else 1.0
        self.rotate(f"right_{part}", axis, flip * angle)

    def arms_down(self, degrees: float = 35.0, bend: float = 10.0, weight: torch.Tensor | float = 1.0) -> None:
        """Lower both arms from the A-pose to a relaxed stance (the start of most clips)."""
        w = weight if torch.is_tensor(weight) else self.const(float(weight))
        self.rotate_both("shoulder", Z_AXIS, -math.radians(degrees) * w)
        self.rotate_both("elbow", X_AXIS, -math.radians(bend) * w)

    def straighten_elbow(self, side: str, weight: torch.Tensor | float = 1.0) -> None:
        """Straighten the rest pose's elbow bend (call before other elbow rotations)."""
        w = weight if torch.is_tensor(weight) else self.const(float(weight))
        rotvec = torch.tensor(self.dims.elbow_straighten)
        if side == "right":
            rotvec = rotvec * torch.tensor([1.0, -1.0, -1.0])  # mirrored pseudo-vector
        j = ROLE_INDEX[f"{side}_elbow"]
        self.rotations[:, j] = axis_angle_to_matrix(rotvec * w.reshape(-1, 1)) @ self.rotations[:, j]

    def flex_elbow(self, side: str, angle: torch.Tensor | float) -> None:
        """Bend one elbow by `angle` radians about its anatomical hinge (the rest pose's elbow axis),
        so the forearm folds toward the front of the upper arm whatever the shoulder does."""
        angle = angle if torch.is_tensor(angle) else self.const(float(angle))
        axis = torch.nn.functional.normalize(torch.tensor(self.dims.elbow_straighten), dim=0)
        if not bool(torch.isfinite(axis).all()) or float(axis.norm()) < 0.5:
            axis = torch.tensor([1.0, 0.0, 0.0])  # a straight rest elbow: the A-pose hinge is close to X
        if side == "right":
            axis = axis * torch.tensor([1.0, -1.0, -1.0])  # mirrored pseudo-vector
        j = ROLE_INDEX[f"{side}_elbow"]
        self.rotations[:, j] = axis_angle_to_matrix(-axis * angle.reshape(-1, 1)) @ self.rotations[:, j]

    def canonical(self) -> CanonicalMotion:
        return CanonicalMotion(self.fps, self.rotations, self.trans)


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    category: str
    fn: Callable[[ClipBuilder], None]
    labels: tuple[str, ...]  # "{side}" / "{other}" are filled with the handedness
    duration: float  # seconds at speed 1
    handed: bool = False  # a left and a right version (mirror images)
    authored_side: str = "right"  # which side `fn` authors
    stationary: bool = True  # the body stays in place (no travelling); a foot in contact never slides
    support: str | None = None  # the standing foot of a one-legged move, for the authored side
    speed_range: tuple[float, float] = (0.8, 1.25)
    amplitude_range: tuple[float, float] = (0.85, 1.15)
    side_words: tuple[str, str] = ("left", "right")  # words for {side} when handed is "left" / "right"
    # "feet": planted feet drive the root (feet.settle_feet); "body": floor work (lying, crawling,
    # rolling, cartwheels): the lowest body part rests on the ground, travel as authored (feet.settle_body)
    ground: str = "feet"
    extra: dict = field(default_factory=dict)


REGISTRY: dict[str, GeneratorSpec] = {}


def generator(name: str, category: str, labels: list[str], duration: float, **options) -> Callable:
    """Register `fn` as a labelled procedural generator."""

    def register(fn: Callable[[ClipBuilder], None]) -> Callable[[ClipBuilder], None]:
        if name in REGISTRY:
            raise ValueError(f"generator '{name}' registered twice")
        if len(labels) < 3:
            raise ValueError(f"generator '{name}' needs at least 3 labels")
        REGISTRY[name] = GeneratorSpec(name, category, fn, tuple(labels), duration, **options)
        return fn

    return register


def leg(b: ClipBuilder, side: str, hip: torch.Tensor | float, knee: torch.Tensor | float,
        ankle: torch.Tensor | float | None = None) -> None:
    """Flex one leg in the sagittal plane (radians about X: hip < 0 lifts the thigh forward, knee > 0
    bends); with `ankle` None the foot stays parallel to the ground (ankle = -(hip + knee))."""
    hip = hip if torch.is_tensor(hip) else b.const(float(hip))
    knee = knee if torch.is_tensor(knee) else b.const(float(knee))
    ankle = -(hip + knee) if ankle is None else ankle
    b.rotate(f"{side}_hip", X_AXIS, hip)
    b.rotate(f"{side}_knee", X_AXIS, knee)
    b.rotate(f"{side}_ankle", X_AXIS, ankle)


def leg_ik(b: ClipBuilder, side: str, forward: torch.Tensor | float, drop: torch.Tensor | float,
           ankle: torch.Tensor | float = 0.0) -> None:
    """Place one ankle by two-link IK in the sagittal plane: `forward` metres ahead of its rest
    position relative to the hip and the hip `drop` metres closer to it (knee bending forward);
    the foot stays parallel to the ground, plus `ankle` radians of plantarflexion."""
    forward = forward if torch.is_tensor(forward) else b.const(float(forward))
    drop = drop if torch.is_tensor(drop) else b.const(float(drop))
    (tz, ty), (sz, sy) = b.dims.thigh_zy, b.dims.shin_zy
    l1, l2 = math.hypot(tz, ty), math.hypot(sz, sy)
    z, y = tz + sz + forward, ty + sy + drop  # target ankle relative to the hip (y < 0)
    r = torch.clamp(torch.sqrt(z * z + y * y), min=abs(l1 - l2) + 1e-4, max=(l1 + l2) * (1 - 1e-6))
    toward = torch.atan2(z, -y)  # forward angle of the hip-to-ankle line from straight down
    thigh = toward + torch.acos(torch.clamp((l1 * l1 + r * r - l2 * l2) / (2 * l1 * r), -1.0, 1.0))
    shin = toward - torch.acos(torch.clamp((l2 * l2 + r * r - l1 * l1) / (2 * l2 * r), -1.0, 1.0))
    # A rotation theta about +X turns a segment's forward angle a into a - theta.
    hip = math.atan2(tz, -ty) - thigh
    knee = math.atan2(sz, -sy) - shin - hip
    leg(b, side, hip, knee, -(hip + knee) + (ankle if torch.is_tensor(ankle) else b.const(float(ankle))))


def twist(b: ClipBuilder, angle: torch.Tensor) -> None:
    """Turn the torso about Y (positive: toward the avatar's left), spread over the spine."""
    for spine, share in (("spine1", 0.3), ("spine2", 0.35), ("spine3", 0.35)):
        b.rotate(spine, Y_AXIS, share * angle)


def arms_forward(b: ClipBuilder, forward: torch.Tensor, inward: torch.Tensor | float = 0.0) -> None:
    """Both arms lowered to the sides, then swung forward, then toward the midline."""
    b.rotate_both("shoulder", Z_AXIS, -math.radians(40))
    b.rotate_both("shoulder", X_AXIS, -forward)
    b.rotate_both("shoulder", Y_AXIS, -inward if torch.is_tensor(inward) else b.const(-inward))


# hand_to_head angles (forward, bend, inward, lower) found by a grid search for the wrist's target
# on the default body, joint limits applied: within 3 cm (face, ear) and 6 cm (top of the head)
FACE = (75.0, 60.0, 45.0, 15.0)
EAR = (105.0, 90.0, 15.0, 45.0)
TOP_OF_HEAD = (120.0, 45.0, 30.0, 30.0)


def hand_to_head(b: ClipBuilder, side: str, weight: torch.Tensor, forward_deg: float = 45.0,
                 bend_deg: float = 75.0, inward_deg: float = 60.0, lower_deg: float = -15.0) -> None:
    """Bring one hand up to the head (drink, eat, phone, yawn, facepalm): the arm lowered from the
    A-pose by `lower_deg`, swung forward and turned toward the midline, the elbow flexed about its
    hinge so the forearm rises (after `arms_down(35, 10)`). The defaults put the wrist just under and
    in front of the mouth; FACE (in front of the eyes), EAR and TOP_OF_HEAD are the other targets."""
    sign = 1.0 if side == "left" else -1.0  # Y and Z mirror for the right arm
    b.flex_elbow(side, math.radians(bend_deg) * weight)
    b.rotate(f"{side}_shoulder", Z_AXIS, -sign * math.radians(lower_deg) * weight)
    b.rotate(f"{side}_shoulder", X_AXIS, -math.radians(forward_deg) * weight)
    b.rotate(f"{side}_shoulder", Y_AXIS, -sign * math.radians(inward_deg) * weight)
