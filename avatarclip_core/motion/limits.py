"""Anatomical joint limits on canonical (world-axis) rotations, as swing-twist ranges.

Each limited role has a nominal bone direction d in the A-pose rest (the twist axis) and two
swing axes e1, e2 perpendicular to it, all world axes. A rotation W is split as W = swing @ twist
(twist about d first, then a swing whose rotation vector lies in the e1-e2 plane); the limit is a
box on (swing about e1, swing about e2, twist), in degrees. Signs follow the world-axis authoring:
about +X a positive angle tips a downward bone backward (knee flexion) and an upward bone forward
(spine flexion). Right-side roles use the left limits on the mirrored rotation (M W M, x -> -x),
so the two sides are symmetric by construction. The pelvis (global orientation) is unlimited.
Ranges are generous population ranges (Kapandji-style), a guard against impossible poses rather
than a model of one person's flexibility.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quaternion_xyzw
from avatarclip_core.motion.canonical import MIRROR, ROLE_INDEX, ROLES, CanonicalMotion

Range = tuple[float, float]


@dataclass(frozen=True)
class JointLimit:
    twist_axis: tuple[float, float, float]  # nominal bone direction at rest
    swing_axis: tuple[float, float, float]  # e1 (made perpendicular to the twist axis); e2 = d x e1
    swing1: Range  # degrees about e1
    swing2: Range  # degrees about e2
    twist: Range  # degrees about d


_UP, _DOWN, _FWD = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)
_X, _Z = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
_LEFT_ARM = (0.7, -0.7, 0.0)  # A-pose upper arm / forearm, avatar's left

# e2 = d x e1: for an upward bone with e1 = X, e2 = Z (positive: leans to the avatar's right);
# for a downward bone with e1 = X, e2 = -Z.
LIMITS: dict[str, JointLimit] = {
    "spine1": JointLimit(_UP, _X, (-30, 60), (-35, 35), (-40, 40)),
    "spine2": JointLimit(_UP, _X, (-30, 60), (-35, 35), (-40, 40)),
    "spine3": JointLimit(_UP, _X, (-30, 60), (-35, 35), (-40, 40)),
    "neck": JointLimit(_UP, _X, (-50, 60), (-45, 45), (-70, 70)),
    "head": JointLimit(_UP, _X, (-50, 60), (-45, 45), (-70, 70)),
    "left_hip": JointLimit(_DOWN, _X, (-130, 40), (-55, 35), (-50, 50)),  # flexion is -X; abduction is -e2
    "left_knee": JointLimit(_DOWN, _X, (-5, 155), (-15, 15), (-40, 40)),  # flexion is +X only
    "left_ankle": JointLimit(_FWD, _X, (-35, 60), (-35, 35), (-35, 35)),  # plantarflexion is +X
    "left_collar": JointLimit(_X, _Z, (-25, 45), (-35, 35), (-40, 40)),  # elevation is +Z
    "left_shoulder": JointLimit(_LEFT_ARM, _Z, (-60, 175), (-180, 70), (-100, 100)),  # raise sideways +Z
    "left_elbow": JointLimit(_LEFT_ARM, _Z, (-155, 155), (-155, 155), (-100, 100)),
    "left_wrist": JointLimit(_LEFT_ARM, _Z, (-80, 80), (-80, 80), (-80, 80)),
}


def _mirrored(role: str) -> str:
    return "left_" + role[6:] if role.startswith("right_") else role


def _basis(limit: JointLimit, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    d = torch.tensor(limit.twist_axis, dtype=like.dtype, device=like.device)
    d = d / d.norm()
    e1 = torch.tensor(limit.swing_axis, dtype=like.dtype, device=like.device)
    e1 = e1 - (e1 @ d) * d
    e1 = e1 / e1.norm()
    return d, e1, torch.linalg.cross(d, e1)


def swing_twist_angles(rotations: torch.Tensor, limit: JointLimit) -> torch.Tensor:
    """(..., 3) (swing about e1, swing about e2, twist about d) in radians for (..., 3, 3) rotations."""
    d, e1, e2 = _basis(limit, rotations)
    q = matrix_to_quaternion_xyzw(rotations)
    twist = 2 * torch.atan2(q[..., :3] @ d, q[..., 3])
    twist = torch.remainder(twist + math.pi, 2 * math.pi) - math.pi
    swing = rotations @ axis_angle_to_matrix(twist[..., None] * d).transpose(-1, -2)
    s = matrix_to_axis_angle(swing)
    return torch.stack([s @ e1, s @ e2, twist], -1)


def _from_angles(angles: torch.Tensor, limit: JointLimit) -> torch.Tensor:
    d, e1, e2 = _basis(limit, angles)
    swing = axis_angle_to_matrix(angles[..., :1] * e1 + angles[..., 1:2] * e2)
    return swing @ axis_angle_to_matrix(angles[..., 2:] * d)


def _bounds(limit: JointLimit, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lo = torch.tensor([limit.swing1[0], limit.swing2[0], limit.twist[0]], dtype=like.dtype, device=like.device)
    hi = torch.tensor([limit.swing1[1], limit.swing2[1], limit.twist[1]], dtype=like.dtype, device=like.device)
    return torch.deg2rad(lo), torch.deg2rad(hi)


def _role_rotations(canonical: CanonicalMotion, role: str) -> torch.Tensor:
    R = canonical.rotations[:, ROLE_INDEX[role]]
    if role.startswith("right_"):
        M = MIRROR.to(R)
        R = M @ R @ M
    return R


def limit_violations(canonical: CanonicalMotion) -> dict[str, float]:
    """Largest excess over its limits per role, in degrees (0 where the role stays inside)."""
    out = {}
    for role in ROLES:
        limit = LIMITS.get(_mirrored(role))
        if limit is None:
            continue
        angles = swing_twist_angles(_role_rotations(canonical, role), limit)
        lo, hi = _bounds(limit, angles)
        excess = torch.clamp(lo - angles, min=0) + torch.clamp(angles - hi, min=0)
        out[role] = math.degrees(float(excess.max())) if excess.numel() else 0.0
    return out


def check_limits(canonical: CanonicalMotion, tolerance_deg: float = 0.5) -> list[str]:
    """One message per role that leaves its range by more than `tolerance_deg`; empty when valid."""
    return [f"{role} exceeds its joint limits by {deg:.1f} degrees"
            for role, deg in limit_violations(canonical).items() if deg > tolerance_deg]


def clamp_to_limits(canonical: CanonicalMotion) -> CanonicalMotion:
    """The clip with every limited role's swing and twist clamped into its range."""
    rotations = canonical.rotations.clone()
    for role in ROLES:
        limit = LIMITS.get(_mirrored(role))
        if limit is None:
            continue
        angles = swing_twist_angles(_role_rotations(canonical, role), limit)
        lo, hi = _bounds(limit, angles)
        clamped = torch.maximum(torch.minimum(angles, hi), lo)
        outside = (clamped != angles).any(-1)
        if not bool(outside.any()):
            continue
        R = _from_angles(clamped, limit)
        if role.startswith("right_"):
            M = MIRROR.to(R)
            R = M @ R @ M
        j = ROLE_INDEX[role]
        rotations[:, j] = torch.where(outside[:, None, None], R, rotations[:, j])
    return CanonicalMotion(canonical.fps, rotations, canonical.root_translation.clone())
