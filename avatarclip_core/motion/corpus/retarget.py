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
The pelvis displacement is scaled by the ratio of the leg lengths (hip to ankle), starts at
x = z = 0, and a constant height offset puts the lowest foot of the clip on the ground.
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
        if src is not None and dst is not None:
            offsets[role] = _rotation_between(dst.float(), src.float())
        else:
            offsets[role] = offsets[parent] if parent and role != "head" else torch.eye(3)
    return torch.stack([offsets[r] for r in ROLES])


def _leg_length(positions: dict[str, torch.Tensor]) -> float | None:
    lengths = [float((positions[f"{s}_hip"] - positions[f"{s}_ankle"]).norm()) for s in ("left", "right")
               if f"{s}_hip" in positions and f"{s}_ankle" in positions]
    return sum(lengths) / len(lengths) if lengths else None


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
    clip = CanonicalMotion(float(fps), W, translation)
    lowest = float(foot_clearance(clip, target).amin())
    translation[:, 1] -= lowest
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
