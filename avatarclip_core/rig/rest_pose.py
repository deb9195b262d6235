"""Changing a rigged avatar's rest pose (A-pose -> T-pose) without changing how its motions look.

Unity's Humanoid and VRM expect a T-pose rest; the body models give an A-pose. The change is a
pose P (one local rotation per joint): the mesh is skinned into it once (our LBS) and the posed joint
frames become the new rest frames, so the inverse bind matrices follow. A motion's local rotation
R_m (relative to the old rest frame) becomes P^-1 R_m: the old local rest L composed with R_m equals
the new local rest L P composed with P^-1 R_m, so every joint's animated world transform is exactly
the same and only linear blend skinning's blending of the baked vertices differs (measured by
`rest_change_error`).
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import MorphTargets, Motion, RiggedMesh, Skeleton

_X = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
_DOWN = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
_FORWARD = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def _t_pose_aims(side: str) -> list[tuple[str, str, torch.Tensor]]:
    """(joint, child, world direction of joint -> child) in parent-first order, Unreal names; the
    body's left is +X (it faces +Z)."""
    out = _X if side == "l" else -_X
    aims = [(f"upperarm_{side}", f"lowerarm_{side}", out), (f"lowerarm_{side}", f"hand_{side}", out),
            (f"hand_{side}", f"middle_01_{side}", out)]
    for finger in ("index", "middle", "ring", "pinky"):
        aims += [(f"{finger}_01_{side}", f"{finger}_02_{side}", out), (f"{finger}_02_{side}", f"{finger}_03_{side}", out)]
    aims += [(f"thigh_{side}", f"calf_{side}", _DOWN), (f"calf_{side}", f"foot_{side}", _DOWN)]
    return aims


def _rotation_between(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The smallest rotation taking direction u to direction v (3x3, float64)."""
    u = u / u.norm()
    v = v / v.norm()
    axis = torch.linalg.cross(u, v)
    s, c = axis.norm(), torch.dot(u, v)
    if s < 1e-12:
        if c > 0:
            return torch.eye(3, dtype=torch.float64)
        perp = torch.linalg.cross(u, _FORWARD if abs(float(u[2])) < 0.9 else _X)
        return lbs.axis_angle_to_matrix(perp / perp.norm() * math.pi)
    return lbs.axis_angle_to_matrix(axis / s * torch.atan2(s, c))


def t_pose_rotations(skeleton: Skeleton) -> torch.Tensor:
    """(J, 3, 3) float64 local rotations that put the body's A-pose into a T-pose: arms, hands and
    fingers (not thumbs) along +-X with the palms down, legs straight down. Needs the body's rig
    (Unreal-mannequin joint names)."""
    names = skeleton.names
    needed = [n for side in "lr" for joint, child, _ in _t_pose_aims(side) for n in (joint, child)]
    missing = sorted({n for n in needed if n not in names})
    if missing:
        raise ValueError(f"a T-pose rest needs the body's Unreal-named rig; this skeleton lacks {missing[:6]}")
    rest = skeleton.rest_transforms.detach().cpu().double()
    J = skeleton.num_joints
    pose = torch.eye(3, dtype=torch.float64).repeat(J, 1, 1)
    for side in "lr":
        for joint, child, target in _t_pose_aims(side):
            j, c = names.index(joint), names.index(child)
            world = lbs.forward_kinematics(rest, skeleton.parents, pose[None])[0]
            turn = _rotation_between(world[c, :3, 3] - world[j, :3, 3], target)
            if joint.startswith("hand_") and f"index_01_{side}" in names and f"pinky_01_{side}" in names:
                turn = _palm_down(world, turn, names.index(f"index_01_{side}"), names.index(f"pinky_01_{side}"), target) @ turn
            frame = world[j, :3, :3]
            pose[j] = pose[j] @ (frame.T @ turn @ frame)  # the world turn, expressed in the joint's frame
    return pose


def _palm_down(world: torch.Tensor, turn: torch.Tensor, index: int, pinky: int, axis: torch.Tensor) -> torch.Tensor:
    """The twist about the (already aimed) hand axis that turns the knuckle line (pinky -> index)
    to point forward (+Z), i.e. the palm down."""
    across = turn @ (world[index, :3, 3] - world[pinky, :3, 3])
    across = across - torch.dot(across, axis) * axis
    angle = torch.atan2(torch.dot(axis, torch.linalg.cross(across, _FORWARD)), torch.dot(across, _FORWARD))
    return lbs.axis_angle_to_matrix(axis * angle)


def bake_rest_pose(mesh: RiggedMesh, pose: torch.Tensor) -> RiggedMesh:
    """A copy of `mesh` whose rest pose is `pose` ((J, 3, 3) local rotations): vertices skinned into
    it with our LBS, the posed joint frames as the new rest frames (inverse binds follow). Morph
    target deltas (rest-pose offsets) turn with their vertices' blended transforms."""
    skel = mesh.skeleton
    rest = skel.rest_transforms.detach().cpu().double()
    world = lbs.forward_kinematics(rest, skel.parents, pose.double()[None])
    dense = lbs.dense_skin_weights(mesh.skin_indices.cpu().long(), mesh.skin_weights.cpu().double(), skel.num_joints)
    blended = lbs.blend_transforms(dense, lbs.skinning_transforms(world, rest))[0]  # (V, 4, 4)
    verts = mesh.vertices.detach().cpu().double()
    new_verts = (blended[:, :3, :3] @ verts.unsqueeze(-1)).squeeze(-1) + blended[:, :3, 3]
    targets = mesh.morph_targets
    if targets is not None:
        turned = torch.einsum("vij,nvj->nvi", blended[:, :3, :3], targets.deltas.detach().cpu().double())
        targets = MorphTargets(names=list(targets.names), deltas=turned.to(targets.deltas.dtype))
    new_skeleton = Skeleton(names=list(skel.names), parents=list(skel.parents),
                            rest_transforms=world[0].to(skel.rest_transforms.dtype))
    return replace(mesh, vertices=new_verts.to(mesh.vertices.dtype), skeleton=new_skeleton,
                   morph_targets=targets)


def reexpress_motion(motion: Motion, skeleton: Skeleton, pose: torch.Tensor) -> Motion:
    """The motion relative to the rest pose `pose` (see the module docstring): P^-1 R_m per joint."""
    order = [skeleton.names.index(n) for n in motion.joint_names]
    inverse = pose.double().transpose(-1, -2)[order]  # rotations: inverse = transpose
    rotations = (inverse.unsqueeze(0) @ motion.rotations.double()).to(motion.rotations.dtype)
    return replace(motion, rotations=rotations)


def rest_change_error(mesh: RiggedMesh, baked: RiggedMesh, motion: Motion, pose: torch.Tensor) -> float:
    """Largest vertex distance (metres) over the motion's frames between the original avatar playing
    `motion` and the re-rested one playing the re-expressed motion: what linear blend skinning of
    the baked rest vertices changes (joint transforms are identical by construction)."""
    moved = reexpress_motion(motion, mesh.skeleton, pose)
    order = [motion.joint_names.index(n) for n in mesh.skeleton.names]

    def play(m: RiggedMesh, rotations: torch.Tensor) -> torch.Tensor:
        dense = lbs.dense_skin_weights(m.skin_indices.long(), m.skin_weights.double(), m.skeleton.num_joints)
        verts, _ = lbs.pose_body(m.vertices.double(), m.skeleton.rest_transforms.double(), m.skeleton.parents, dense,
                                 rotations[:, order].double(), motion.root_translation.double())
        return verts

    return float((play(mesh, motion.rotations) - play(baked, moved.rotations)).norm(dim=-1).max())
