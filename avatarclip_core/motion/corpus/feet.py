"""Foot contact for procedural clips: planted feet do not slide, the lowest foot is on the ground.

A foot touches the ground at its planted point (`planted_steps`): the heel (ankle) while the foot is
flat or lands on its heel, the toe once the heel has rolled up off it (pushing off, landing on the
ball of the foot). Feet positions are affine in the root translation, so both fixes are exact and
need one FK pass:
- whenever a foot touches the ground, the root's horizontal travel cancels the horizontal motion of
  the planted points of the supporting feet (those within 1 cm of the lowest and nearly still
  against the authored travel), so planted feet never slide and a gait advances exactly as far as
  its feet push it, a walk rolling over its toes included; in flight the authored travel is used;
- every clip: the root height puts the lowest foot contact point (ankle or toe) on the ground,
  plus the authored height above the ground (a jump's flight).
`foot_skating` measures the same planted point of the lower foot.
"""
from __future__ import annotations

import torch

from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, canonical_joint_positions, foot_clearance, foot_points

CONTACT_HEIGHT = 0.02  # metres: a foot this close to the ground counts as in contact
SUPPORT_BAND = 0.01  # metres: feet this close to the lowest one share the weight
ROLL_HEIGHT = 0.003  # metres: a heel (ankle) this much higher above its rest than the toe has rolled onto the toe
STILL_SPEED = 0.3  # m/s: a supporting foot's planted point moves at most this much faster than the stillest one


def planted_steps(canonical: CanonicalMotion, skeleton: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """Each foot's planted point and how it moves: ((T-1, 2, 2) horizontal (x, z) step of each foot's
    planted point from frame t to t+1, (T, 2) clearance of each foot's lowest contact point; [left,
    right]). The planted point is the toe over a step where, at either end, the heel (ankle) stands
    ROLL_HEIGHT higher above its rest than the toe (the foot rolls over it: pushing off, landing on
    the ball of the foot), else the ankle (flat, heel strike, a rig without toes); one point for
    both ends, so a change of point is no jump."""
    points, rest_heights = foot_points(canonical, skeleton)  # (T, 2, P, 3), (2, P)
    height = points[..., 1] - rest_heights  # (T, 2, P)
    xz = points[..., [0, 2]]
    step = xz[1:, :, 0] - xz[:-1, :, 0]  # the ankles'
    if points.shape[2] > 1:
        rolled = height[..., 0] - height[..., 1] > ROLL_HEIGHT  # (T, 2)
        toe = (rolled[1:] | rolled[:-1])[..., None]
        step = torch.where(toe, xz[1:, :, 1] - xz[:-1, :, 1], step)
    return step, height.amin(-1)


def carrying_feet(step: torch.Tensor, clearance: torch.Tensor, fps: float) -> torch.Tensor:
    """(T-1, 2) bool: the feet that carry the body over each step, from `planted_steps` (step: the
    planted points' horizontal steps as they move in the world, (T-1, 2, 2); clearance (T, 2)): the
    feet within SUPPORT_BAND of the lowest one at both ends of the step (else at its end), less
    those whose planted point moves STILL_SPEED faster than the stillest one's (a foot sliding in or
    swinging past while the other stands)."""
    near = clearance <= clearance.amin(1, keepdim=True) + SUPPORT_BAND
    carry = near[1:] & near[:-1]
    carry = torch.where(carry.any(1, keepdim=True), carry, near[1:])
    speed = torch.linalg.norm(step, dim=-1) * fps  # (T-1, 2)
    stillest = torch.where(carry, speed, torch.full_like(speed, float("inf"))).amin(1, keepdim=True)
    return carry & (speed <= stillest + STILL_SPEED)


def settle_feet(canonical: CanonicalMotion, skeleton: Skeleton, support: str | None = None) -> CanonicalMotion:
    """Root travel from the feet in contact, root height from the lowest foot (see the module doc).

    canonical.root_translation as authored: x/z travel (used only while both feet are off the
    ground), y the height above the ground (a jump's flight)."""
    authored = canonical.root_translation
    lift = authored[:, 1]
    flat = CanonicalMotion(canonical.fps, canonical.rotations, torch.zeros_like(authored))
    foot_step, clearance = planted_steps(flat, skeleton)  # root not moved
    lowest = clearance.amin(1, keepdim=True)
    authored_step = authored[1:, [0, 2]] - authored[:-1, [0, 2]]
    if support is None:  # the planted feet, still against the authored travel
        carry = carrying_feet(foot_step + authored_step[:, None], clearance, canonical.fps)
    else:
        carry = torch.zeros_like(clearance[1:], dtype=torch.bool)
        carry[:, 0 if support == "left" else 1] = True
    weight = carry.float()
    # the root moves so that the planted points stay put
    planted_step = (foot_step * weight[..., None]).sum(1) / weight.sum(1, keepdim=True)
    in_contact = (lift[1:] < CONTACT_HEIGHT) & (lift[:-1] < CONTACT_HEIGHT)
    step = torch.where(in_contact[:, None], -planted_step, authored_step)
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
    """Mean horizontal speed (m/s) of the planted points of the feet carrying the body
    (`planted_steps`: the heel/ankle, the toe once the foot rolls over it; `carrying_feet`: the
    feet settle_feet keeps still) over the steps where the lowest foot is within `contact_height`
    of the ground: 0 for perfectly planted feet."""
    step, clearance = planted_steps(canonical, skeleton)
    carry = carrying_feet(step, clearance, canonical.fps).float()
    speed = (torch.linalg.norm(step, dim=-1) * carry).sum(1) / carry.sum(1) * canonical.fps
    contact = clearance[1:].amin(1) < contact_height
    return float(speed[contact].mean()) if bool(contact.any()) else 0.0


def lowest_foot_height(canonical: CanonicalMotion, skeleton: Skeleton) -> torch.Tensor:
    """(T,) height of the lowest foot contact point above the ground."""
    return foot_clearance(canonical, skeleton).amin(1)
