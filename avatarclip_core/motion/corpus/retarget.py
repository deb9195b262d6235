"""Retarget a source skeleton's motion (BVH, AMASS) to canonical clips for our skeleton.

Source rotations are taken in the world-axis convention (as if the parents were at rest; BVH and
SMPL rest frames are world-aligned, so their local rotations already are). Roles are picked by a
joint-name map and joints between roles are folded in (canonical.fold_into_roles).

Rest-pose alignment: the source rest may be a T-pose, ours is an A-pose. For each role bone j
(toward its child role) a fixed offset O_j turns our rest bone direction into the source's; posed
world orientations G'_j = G_j O_j then point every bone of ours where the source's points, which
in the canonical chain is W'_j = O_parent^T W_j O_j. Leaf roles (wrists, ankles without toes)
take their parent's offset, so hands follow the forearm; the head takes none (identity): both rests
hold it level, looking ahead, whatever their necks lean (ours 19 degrees forward, a T-pose's none),
and following the neck tilted our head back by the difference (a CMU T-pose looked 19 degrees up).
The ankles take none either (identity): both rests stand on flat feet, so a foot flat on the floor
in the source is flat in ours, whatever the ankle-to-toe lines slope. Aligning that line instead
pitched our foot by the difference (Bandai-Namco's slopes 43 degrees, ours 27): a planted foot stood
on its toe with the heel 4 cm up, and the toe of the foot pushing off, lower, counted as the
contact while its ankle swung forward (foot skating 0.2-0.4 m/s on walks whose source foot stays put).
The pelvis displacement is scaled by the ratio of the leg lengths (hip to ankle) and starts at
x = z = 0. Its height is set frame by frame so that our lowest foot is as high above the ground as
the source's (its clearance, scaled by the same ratio): a foot planted in the source is planted in
ours, whatever the two feet's shapes (a constant offset putting the clip's lowest foot on the ground
left Bandai-Namco's planted feet 2 cm up, as high as our toe dips pushing off). A source whose
ankles are not mapped keeps the constant offset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import (
    NUM_ROLES, ROLE_INDEX, ROLES, CanonicalMotion, fold_into_roles, foot_clearance, role_skeleton)

# The canonical hierarchy (parent role) and the child role a role's bone points to.
ROLE_PARENT: dict[str, str | None] = {
    "pelvis": None, "spine1": "pelvis", "spine2": "spine1", "spine3": "spine2", "neck": "spine3", "head": "neck",
    **{f"{s}_{j}": f"{s}_{p}" for s in ("left", "right") for j, p in (
        ("knee", "hip"), ("ankle", "knee"), ("shoulder", "collar"), ("elbow", "shoulder"), ("wrist", "elbow"))},
    **{f"{s}_hip": "pelvis" for s in ("left", "right")},
    **{f"{s}_collar": "spine3" for s in ("left", "right")},
}
ROLE_CHILD: dict[str, str | None] = {
    "pelvis": None, "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head", "head": None,
    **{f"{s}_{j}": c for s in ("left", "right") for j, c in (
        ("hip", f"{s}_knee"), ("knee", f"{s}_ankle"), ("ankle", f"{s}_toe"), ("collar", f"{s}_shoulder"),
        ("shoulder", f"{s}_elbow"), ("elbow", f"{s}_wrist"), ("wrist", None))},
}


@dataclass
class SourceRig:
    """What an importer knows about the source skeleton: hierarchy, rest joint positions (any
    unit), the joint of each role (-1 where the rig has none) and the toe joints if any."""

    parents: list[int]
    rest_positions: torch.Tensor  # (J, 3)
    roles: list[int]
    toes: tuple[int, int] | None = None


def _rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The smallest rotation taking direction a to direction b."""
    a, b = a / a.norm(), b / b.norm()
    axis = torch.linalg.cross(a, b)
    angle = torch.atan2(axis.norm(), a @ b)
    if float(axis.norm()) < 1e-8:
        if float(a @ b) > 0:
            return torch.eye(3)
        other = torch.tensor([1.0, 0.0, 0.0]) if abs(float(a[0])) < 0.9 else torch.tensor([0.0, 1.0, 0.0])
        axis = torch.linalg.cross(a, other)
        angle = torch.tensor(math.pi)
    return axis_angle_to_matrix(axis / axis.norm() * angle)


def _positions_by_role(rest: torch.Tensor, roles: list[int], toes) -> dict[str, torch.Tensor]:
    out = {role: rest[j] for role, j in zip(ROLES, roles) if j >= 0}
    if toes is not None:
        out["left_toe"], out["right_toe"] = rest[toes[0]], rest[toes[1]]
    return out


def _bone_direction(positions: dict[str, torch.Tensor], role: str) -> torch.Tensor | None:
    child = ROLE_CHILD[role]
    while child is not None and child not in positions:  # a rig with fewer spine joints: aim at the next one
        child = ROLE_CHILD.get(child)
    if child is None or role not in positions:
        return None
    d = positions[child] - positions[role]
    return d if float(d.norm()) > 1e-6 else None


def rest_offsets(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    """(20, 3, 3) O_j taking our rest bone direction to the source's (parents first)."""
    offsets: dict[str, torch.Tensor] = {}
    for role in ROLES:
        src, dst = _bone_direction(source, role), _bone_direction(target, role)
        parent = ROLE_PARENT[role]
        if role.endswith("ankle"):  # flat feet in both rests: the foot turns as the source's from its rest
            offsets[role] = torch.eye(3)
        elif src is not None and dst is not None:
            offsets[role] = _rotation_between(dst.float(), src.float())
        else:
            offsets[role] = offsets[parent] if parent and role != "head" else torch.eye(3)
    return torch.stack([offsets[r] for r in ROLES])


def _leg_length(positions: dict[str, torch.Tensor]) -> float | None:
    lengths = [float((positions[f"{s}_hip"] - positions[f"{s}_ankle"]).norm()) for s in ("left", "right")
               if f"{s}_hip" in positions and f"{s}_ankle" in positions]
    return sum(lengths) / len(lengths) if lengths else None


def _source_feet(world_axis: torch.Tensor, displacement: torch.Tensor, source: SourceRig,
                 world_to_y_up: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Heights (T, 2 feet, P) of the source's foot contact points ([ankle, toe], left then right; up
    to a constant, source units) and their heights over the foot's lowest point in the standing rest
    (2, P). None without both ankles."""
    ankles = [source.roles[ROLE_INDEX[f"{s}_ankle"]] for s in ("left", "right")]
    if min(ankles) < 0:
        return None
    points = torch.tensor([[a] + ([source.toes[k]] if source.toes is not None else []) for k, a in enumerate(ankles)])
    rest = source.rest_positions.float()
    G: list[torch.Tensor] = []
    P: list[torch.Tensor] = []
    for j, p in enumerate(source.parents):  # parents first: FK from the world-axis local rotations
        R = world_axis[:, j].float()
        G.append(R if p < 0 else G[p] @ R)
        P.append(torch.zeros(R.shape[0], 3) if p < 0 else P[p] + G[p] @ (rest[j] - rest[p]))
    positions = torch.stack(P, 1) - P[source.roles[ROLE_INDEX["pelvis"]]][:, None]
    if world_to_y_up is not None:
        positions = positions @ world_to_y_up.float().T
    heights = positions[:, points, 1] + displacement[:, None, None, 1]
    rest_heights = rest[points, 1] - rest[points, 1].amin(-1, keepdim=True)
    return heights, rest_heights


def _match_toe_heights(W: torch.Tensor, target: Skeleton, source_drop: torch.Tensor) -> torch.Tensor:
    """W with each ankle pitched (about the horizontal, its heading kept) so that our toe sits as far
    below (or above) the ankle, relative to the rest, as the source's toe does (T, 2; our units).
    Feet of other shapes turned by the same angle dip their toes to other heights: Bandai-Namco's
    toe joint is 9 cm ahead of its ankle, ours 14 cm, so pushing off on its toe ours dug 2 cm lower,
    and the foot pushing off counted as the one on the ground while the other landed."""
    small = role_skeleton(target)
    names = small.names
    W = W.clone()
    for k, side in enumerate(("left", "right")):
        if f"{side}_toe" not in names:
            return W
        rest_foot = small.rest_positions[names.index(f"{side}_toe")] - small.rest_positions[names.index(f"{side}_ankle")]
        chain, role = [], ROLE_PARENT[f"{side}_ankle"]
        while role:
            chain.append(ROLE_INDEX[role])
            role = ROLE_PARENT[role]
        G_parent = torch.eye(3).expand(W.shape[0], 3, 3)
        for j in reversed(chain):
            G_parent = G_parent @ W[:, j]
        ankle = ROLE_INDEX[f"{side}_ankle"]
        foot = (G_parent @ W[:, ankle] @ rest_foot)  # (T, 3) the foot's line now
        length = float(rest_foot.norm())
        y = (rest_foot[1] + source_drop[:, k]).clamp(-0.95 * length, 0.95 * length)
        flat = foot[:, [0, 2]]
        flat = flat / flat.norm(dim=-1, keepdim=True).clamp_min(1e-9) * (length ** 2 - y ** 2).sqrt()[:, None]
        wanted = torch.stack([flat[:, 0], y, flat[:, 1]], -1)
        axis = torch.linalg.cross(foot, wanted)
        angle = torch.atan2(axis.norm(dim=-1), (foot * wanted).sum(-1))
        turn = axis_angle_to_matrix(axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12) * angle[:, None])
        W[:, ankle] = G_parent.transpose(-1, -2) @ turn @ G_parent @ W[:, ankle]
    return W


def retarget(world_axis: torch.Tensor, pelvis_displacement: torch.Tensor, fps: float, source: SourceRig,
             target: Skeleton, world_to_y_up: torch.Tensor | None = None, face_forward: bool = True) -> CanonicalMotion:
    """Canonical clip for `target` from per-joint world-axis rotations (T, J, 3, 3) of the source and
    its pelvis displacement (T, 3, source units)."""
    W = fold_into_roles(world_axis.float(), source.parents, source.roles)
    displacement = pelvis_displacement.float().clone()
    if world_to_y_up is not None:  # the body's rest is already Y-up: only the global placement turns
        C = world_to_y_up.float()
        W[:, ROLE_INDEX["pelvis"]] = C @ W[:, ROLE_INDEX["pelvis"]]
        displacement = displacement @ C.T
    if face_forward:  # start facing +Z, like the procedural clips
        facing = W[0, ROLE_INDEX["pelvis"]] @ torch.tensor([0.0, 0.0, 1.0])
        yaw = math.atan2(float(facing[0]), float(facing[2]))
        turn = axis_angle_to_matrix(torch.tensor([0.0, -yaw, 0.0]))
        W[:, ROLE_INDEX["pelvis"]] = turn @ W[:, ROLE_INDEX["pelvis"]]
        displacement = displacement @ turn.T
    small = role_skeleton(target)
    target_positions = {name: small.rest_positions[k] for k, name in enumerate(small.names)}
    source_positions = _positions_by_role(source.rest_positions.float(), source.roles, source.toes)
    O = rest_offsets(source_positions, target_positions)
    parent_offsets = torch.stack([O[ROLE_INDEX[p]] if p else torch.eye(3) for p in map(ROLE_PARENT.get, ROLES)])
    W = parent_offsets.transpose(-1, -2) @ W @ O
    source_leg, target_leg = _leg_length(source_positions), _leg_length(target_positions)
    ratio = target_leg / source_leg if source_leg and target_leg else 1.0
    translation = displacement * ratio
    translation[:, [0, 2]] -= translation[:1, [0, 2]].clone()
    feet = _source_feet(world_axis, displacement, source, world_to_y_up)
    if feet is not None and feet[0].shape[-1] > 1:  # toes: ours as far off the ground as the source's
        heights, rest_heights = feet
        drop = (heights[..., 1] - heights[..., 0]) - (rest_heights[:, 1] - rest_heights[:, 0])
        W = _match_toe_heights(W, target, drop * ratio)
    lowest = foot_clearance(CanonicalMotion(float(fps), W, translation), target).amin(1)
    if feet is None:
        translation[:, 1] -= lowest.min()
    else:  # our lowest foot as high above the ground as the source's
        source_lowest = (feet[0] - feet[1]).amin(-1).amin(-1)
        translation[:, 1] += (source_lowest - source_lowest.min()) * ratio - lowest
    return CanonicalMotion(float(fps), W, translation)


def resample(clip: CanonicalMotion, fps: float) -> CanonicalMotion:
    """The clip at another frame rate (rotations interpolated along the geodesic, translation linearly)."""
    if abs(clip.fps - fps) < 1e-6 or clip.num_frames < 2:
        return CanonicalMotion(float(fps), clip.rotations, clip.root_translation)
    from avatarclip_core.body.lbs import matrix_to_axis_angle

    frames = int(math.floor(clip.duration * fps + 1e-6)) + 1
    t = torch.arange(frames, dtype=torch.float32) * (clip.fps / fps)
    i0 = torch.clamp(t.floor().long(), max=clip.num_frames - 2)
    frac = (t - i0).reshape(-1, 1)
    R0, R1 = clip.rotations[i0], clip.rotations[i0 + 1]
    delta = matrix_to_axis_angle(R0.transpose(-1, -2) @ R1)
    rotations = R0 @ axis_angle_to_matrix(delta * frac[:, :, None].expand(-1, NUM_ROLES, 1))
    translation = clip.root_translation[i0] * (1 - frac) + clip.root_translation[i0 + 1] * frac
    return CanonicalMotion(float(fps), rotations, translation)
