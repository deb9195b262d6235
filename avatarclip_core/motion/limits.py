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
    "left_ankle": JointLimit(_FWD, _X, (-45, 60), (-35, 35), (-35, 35)),  # plantarflexion is +X
    "left_collar": JointLimit(_X, _Z, (-25, 45), (-35, 35), (-40, 40)),  # elevation is +Z
    # Shoulder: +e1 raises the arm sideways, +e2 swings it forward (flexion up to overhead), -e2 back;
    # twist about the diagonal A-pose axis mixes with large swings, so it is left open.
    "left_shoulder": JointLimit(_LEFT_ARM, _Z, (-75, 175), (-80, 180), (-180, 180)),
    "left_elbow": JointLimit(_LEFT_ARM, _Z, (-155, 155), (-155, 155), (-100, 100)),
    "left_wrist": JointLimit(_LEFT_ARM, _Z, (-80, 80), (-80, 80), (-80, 80)),
}


def _mirrored(role: str) -> str:
    return "left_" + role[6:] if role.startswith("right_") else role


LIMITED_ROLES = [role for role in ROLES if _mirrored(role) in LIMITS]
_LIMITED_INDEX = [ROLE_INDEX[role] for role in LIMITED_ROLES]
_IS_RIGHT = torch.tensor([role.startswith("right_") for role in LIMITED_ROLES])


def _basis(limit: JointLimit) -> torch.Tensor:
    """(3, 3) rows d, e1, e2 (orthonormal)."""
    d = torch.tensor(limit.twist_axis)
    d = d / d.norm()
    e1 = torch.tensor(limit.swing_axis)
    e1 = e1 - (e1 @ d) * d
    e1 = e1 / e1.norm()
    return torch.stack([d, e1, torch.linalg.cross(d, e1)])


_BASES = torch.stack([_basis(LIMITS[_mirrored(r)]) for r in LIMITED_ROLES])  # (R, 3, 3)
_BOUNDS = torch.deg2rad(torch.tensor([[[*LIMITS[_mirrored(r)].swing1], [*LIMITS[_mirrored(r)].swing2],
                                       [*LIMITS[_mirrored(r)].twist]] for r in LIMITED_ROLES]))  # (R, 3, 2)


def swing_twist_angles(rotations: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(..., 3) (swing about e1, swing about e2, twist about d) in radians for (..., 3, 3)
    rotations and (..., 3, 3) bases with rows d, e1, e2."""
    d, e1, e2 = basis[..., 0, :], basis[..., 1, :], basis[..., 2, :]
    q = matrix_to_quaternion_xyzw(rotations)
    twist = 2 * torch.atan2((q[..., :3] * d).sum(-1), q[..., 3])
    twist = torch.remainder(twist + math.pi, 2 * math.pi) - math.pi
    swing = rotations @ axis_angle_to_matrix(twist[..., None] * d).transpose(-1, -2)
    s = matrix_to_axis_angle(swing)
    return torch.stack([(s * e1).sum(-1), (s * e2).sum(-1), twist], -1)


def _from_angles(angles: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    d, e1, e2 = basis[..., 0, :], basis[..., 1, :], basis[..., 2, :]
    swing = axis_angle_to_matrix(angles[..., :1] * e1 + angles[..., 1:2] * e2)
    return swing @ axis_angle_to_matrix(angles[..., 2:] * d)


def _mirror_right(rotations: torch.Tensor) -> torch.Tensor:
    """Right-side roles (of the limited ones, last-but-two axis) mirrored onto the left."""
    M = MIRROR.to(rotations)
    return torch.where(_IS_RIGHT.to(rotations.device)[:, None, None], M @ rotations @ M, rotations)


def _limited(canonical: CanonicalMotion) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    R = _mirror_right(canonical.rotations[:, _LIMITED_INDEX])  # (T, R, 3, 3)
    basis = _BASES.to(R)
    angles = swing_twist_angles(R, basis.expand(R.shape[0], -1, -1, -1))
    bounds = _BOUNDS.to(R)
    return R, angles, bounds[..., 0], bounds[..., 1]


def limit_violations(canonical: CanonicalMotion) -> dict[str, float]:
    """Largest excess over its limits per limited role, in degrees (0 where the role stays inside)."""
    _, angles, lo, hi = _limited(canonical)
    excess = (torch.clamp(lo - angles, min=0) + torch.clamp(angles - hi, min=0)).amax(-1)  # (T, R)
    worst = excess.amax(0) if excess.shape[0] else torch.zeros(len(LIMITED_ROLES))
    return {role: math.degrees(float(w)) for role, w in zip(LIMITED_ROLES, worst)}


def check_limits(canonical: CanonicalMotion, tolerance_deg: float = 0.5) -> list[str]:
    """One message per role that leaves its range by more than `tolerance_deg`; empty when valid."""
    return [f"{role} exceeds its joint limits by {deg:.1f} degrees"
            for role, deg in limit_violations(canonical).items() if deg > tolerance_deg]


def clamp_to_limits(canonical: CanonicalMotion) -> CanonicalMotion:
    """The clip with every limited role's swing and twist clamped into its range."""
    R, angles, lo, hi = _limited(canonical)
    clamped = torch.maximum(torch.minimum(angles, hi), lo)
    outside = (clamped != angles).any(-1)  # (T, R)
    rotations = canonical.rotations.clone()
    if bool(outside.any()):
        fixed = _mirror_right(_from_angles(clamped, _BASES.to(R).expand(R.shape[0], -1, -1, -1)))
        original = canonical.rotations[:, _LIMITED_INDEX]
        rotations[:, _LIMITED_INDEX] = torch.where(outside[..., None, None], fixed, original)
    return CanonicalMotion(canonical.fps, rotations, canonical.root_translation.clone())
