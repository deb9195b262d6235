"""Foot contact for procedural clips: planted feet do not slide, the lowest foot is on the ground.

Feet positions are affine in the root translation, so both fixes are exact and need one FK pass:
- whenever a foot touches the ground, the root's horizontal travel cancels the horizontal motion of
  the supporting feet (those within 1 cm of the lowest), so planted feet never slide and a gait
  advances exactly as far as its feet push it; in flight the authored travel is used;
- every clip: the root height puts the lowest foot contact point (ankle or toe) on the ground,
  plus the authored height above the ground (a jump's flight).
"""
from __future__ import annotations

import torch

from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, canonical_joint_positions, foot_clearance, foot_points

CONTACT_HEIGHT = 0.02  # metres: a foot this close to the ground counts as in contact
SUPPORT_BAND = 0.01  # metres: feet this close to the lowest one share the weight


def settle_feet(canonical: CanonicalMotion, skeleton: Skeleton, support: str | None = None) -> CanonicalMotion:
    """Root travel from the feet in contact, root height from the lowest foot (see the module doc).

    canonical.root_translation as authored: x/z travel (used only while both feet are off the
    ground), y the height above the ground (a jump's flight)."""
    authored = canonical.root_translation
    lift = authored[:, 1]
    flat = CanonicalMotion(canonical.fps, canonical.rotations, torch.zeros_like(authored))
    points, rest_heights = foot_points(flat, skeleton)  # (T, 2 feet, P, 3), root not moved
    clearance = (points[..., 1] - rest_heights).amin(-1)  # (T, 2)
    lowest = clearance.amin(1, keepdim=True)
    # Feet within SUPPORT_BAND of the lowest one carry the weight; the root moves so that they stay put.
    support_mask = (clearance <= lowest + SUPPORT_BAND).float()
    if support is not None:
        support_mask = torch.zeros_like(support_mask)
        support_mask[:, 0 if support == "left" else 1] = 1.0
    support = support_mask
    both = support[1:] * support[:-1]
    both = torch.where(both.sum(1, keepdim=True) > 0, both, support[1:])
    ankle_xz = points[:, :, 0][..., [0, 2]]  # (T, 2, 2)
    foot_step = ((ankle_xz[1:] - ankle_xz[:-1]) * both[..., None]).sum(1) / both.sum(1, keepdim=True)
    in_contact = (lift[1:] < CONTACT_HEIGHT) & (lift[:-1] < CONTACT_HEIGHT)
    authored_step = authored[1:, [0, 2]] - authored[:-1, [0, 2]]
    step = torch.where(in_contact[:, None], -foot_step, authored_step)
    trans = torch.zeros_like(authored)
    trans[:, [0, 2]] = authored[:1, [0, 2]] + torch.cat([torch.zeros_like(step[:1]), torch.cumsum(step, 0)])
    trans[:, 1] = lift - lowest[:, 0]
    return CanonicalMotion(canonical.fps, canonical.rotations, trans)


# Metres from a role joint to the skin on the side that rests on the floor (lying, kneeling, hands
# down): the body's lowest point is the lowest joint minus its half-thickness.
BODY_RADII = {"pelvis": 0.11, "spine1": 0.11, "spine2": 0.11, "spine3": 0.11, "neck": 0.06, "head": 0.1,
              "hip": 0.09, "knee": 0.05, "collar": 0.07, "shoulder": 0.05, "elbow": 0.04, "wrist": 0.03}


def body_clearance(canonical: CanonicalMotion, skeleton: Skeleton) -> torch.Tensor:
    """(T,) height of the body's lowest point above the ground: feet contact points and every
    other role joint less its half-thickness (BODY_RADII)."""
    positions = canonical_joint_positions(canonical, skeleton)  # (T, 20, 3)
    roles = [(k, BODY_RADII[role.split("_", 1)[-1]]) for role, k in ROLE_INDEX.items() if not role.endswith("ankle")]
    index = torch.tensor([k for k, _ in roles])
    radii = torch.tensor([r for _, r in roles], dtype=positions.dtype)
    others = (positions[:, index, 1] - radii).amin(1)  # the feet: their contact points below
    return torch.minimum(others, foot_clearance(canonical, skeleton).amin(1))


def settle_body(canonical: CanonicalMotion, skeleton: Skeleton) -> CanonicalMotion:
    """Floor work: the root height puts the body's lowest point (`body_clearance`) on the ground,
    plus the authored height above it; horizontal travel as authored (hands, knees and the back
    carry the weight, so no foot is locked)."""
    authored = canonical.root_translation
    flat = CanonicalMotion(canonical.fps, canonical.rotations, torch.zeros_like(authored))
    trans = authored.clone()
    trans[:, 1] = authored[:, 1] - body_clearance(flat, skeleton)
    return CanonicalMotion(canonical.fps, canonical.rotations, trans)


def foot_skating(canonical: CanonicalMotion, skeleton: Skeleton, contact_height: float = CONTACT_HEIGHT) -> float:
    """Mean horizontal speed (m/s) of the lower foot over the frames where it is within
    `contact_height` of the ground: 0 for perfectly planted feet."""
    points, rest_heights = foot_points(canonical, skeleton)
    clearance = (points[..., 1] - rest_heights).amin(-1)
    ankle_xz = points[:, :, 0][..., [0, 2]]
    lower = clearance.argmin(1)[1:]
    frames = torch.arange(lower.shape[0], device=lower.device)
    step = (ankle_xz[1:] - ankle_xz[:-1])[frames, lower]
    speed = torch.linalg.norm(step, dim=-1) * canonical.fps
    contact = clearance[1:][frames, lower] < contact_height
    return float(speed[contact].mean()) if bool(contact.any()) else 0.0


def lowest_foot_height(canonical: CanonicalMotion, skeleton: Skeleton) -> torch.Tensor:
    """(T,) height of the lowest foot contact point above the ground."""
    return foot_clearance(canonical, skeleton).amin(1)
