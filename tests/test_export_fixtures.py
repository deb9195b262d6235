"""Synthetic rigged meshes and motions for the export tests (importable by the other test_export_* files).

A segmented cylinder along +Y skinned to a joint chain, with weights blended across 2-3 neighbouring
joints (or spread over 9 joints to exercise influence limiting), and a bending motion with root travel.
Joint rest frames are deliberately rotated (not world-aligned) so that exporters must handle local
rest frames correctly rather than pass by accident.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix, forward_kinematics
from avatarclip_core.body.types import Motion, RiggedMesh, Skeleton


def chain_skeleton(num_joints: int = 4, length: float = 1.2, twisted: bool = True) -> Skeleton:
    """A root at the origin and a chain going up +Y; each joint frame is rotated about its own axis."""
    J = num_joints
    rest = torch.eye(4, dtype=torch.float64).repeat(J, 1, 1)
    for j in range(J):
        rest[j, 1, 3] = 0.1 + length * j / max(J - 1, 1) if j else 0.0
        if twisted:
            axis = torch.tensor([0.3 * j, 1.0, -0.2 * j], dtype=torch.float64)
            rest[j, :3, :3] = axis_angle_to_matrix(axis / axis.norm() * (0.4 * j + 0.2))
    names = ["Root"] + [f"bone_{j:02d}" for j in range(1, J)]
    return Skeleton(names=names, parents=[-1] + list(range(J - 1)), rest_transforms=rest.float())


def cylinder_mesh(
    skeleton: Skeleton,
    rings: int = 12,
    segments: int = 10,
    radius: float = 0.15,
    influences: int = 3,
    colors: bool = False,
    textured: bool = False,
) -> RiggedMesh:
    """Closed-side cylinder along the chain; each vertex weighs the nearest joints by distance along Y.

    influences=3 blends over 2-3 joints; influences=9 gives every vertex 9 non-zero weights (the chain
    must have at least 9 joints), forcing the 8-influence limit.
    """
    J = skeleton.num_joints
    joint_y = skeleton.rest_positions[:, 1].double()
    height = float(joint_y.max()) + 0.1
    verts, uvs = [], []
    for r in range(rings + 1):
        y = height * r / rings
        for s in range(segments):
            a = 2 * math.pi * s / segments
            verts.append((radius * math.cos(a), y, radius * math.sin(a)))
            uvs.append((s / segments, r / rings))
    faces = []
    for r in range(rings):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            faces += [(a, c, b), (b, c, d)]
    vertices = torch.tensor(verts, dtype=torch.float32)
    dist = (vertices[:, 1:2].double() - joint_y[None, :]).abs()  # (V, J)
    k = min(influences, J)
    near = dist.topk(k, dim=1, largest=False)
    if influences >= 9:
        w = 1.0 / (near.values + 0.05)  # every influence non-zero
    else:
        w = (0.6 - near.values).clamp(min=0.0) ** 2 + 1e-12 * (near.values == near.values.min(1, keepdim=True).values)
        w[:, 2:] *= 0.5
    w = w / w.sum(1, keepdim=True)
    mesh = RiggedMesh(
        vertices=vertices,
        faces=torch.tensor(faces, dtype=torch.long),
        skeleton=skeleton,
        skin_indices=near.indices,
        skin_weights=w.float(),
        name="cylinder",
        extras={"source": "synthetic", "rings": rings},
    )
    if colors:
        mesh.vertex_colors = torch.stack([vertices[:, 1] / height, 0.5 + 0.5 * vertices[:, 0] / radius, torch.full_like(vertices[:, 0], 0.25)], 1)
    if textured:
        mesh.uvs = torch.tensor(uvs, dtype=torch.float32)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 32), indexing="ij")
        mesh.texture = torch.stack([xx, yy, (xx + yy) / 2], dim=-1)
    return mesh


def bending_motion(skeleton: Skeleton, frames: int = 24, fps: float = 30.0, still_joints: tuple[int, ...] = ()) -> Motion:
    """Each joint bends about a different axis with a different phase; the root travels and bobs.
    Joints listed in still_joints keep the identity (exercises skipped glTF channels)."""
    J = skeleton.num_joints
    t = torch.arange(frames, dtype=torch.float64) / fps
    aa = torch.zeros(frames, J, 3, dtype=torch.float64)
    for j in range(J):
        axis = torch.tensor([1.0, 0.3 * (j % 3), 0.5 * ((j + 1) % 2)], dtype=torch.float64)
        aa[:, j] = (axis / axis.norm())[None] * (0.9 * torch.sin(2 * math.pi * 0.7 * t + j))[:, None]
    for j in still_joints:
        aa[:, j] = 0.0
    root = torch.stack([0.5 * t, 0.05 * torch.sin(6 * t), -0.2 * t], dim=1)
    return Motion(
        fps=fps,
        joint_names=list(skeleton.names),
        rotations=axis_angle_to_matrix(aa).float(),
        root_translation=root.float(),
        name="bend",
    )


def world_joint_positions(skeleton: Skeleton, motion: Motion) -> torch.Tensor:
    """(T, J, 3) world joint positions via the project's one FK, in float64."""
    order = [motion.joint_names.index(n) for n in skeleton.names]
    world = forward_kinematics(
        skeleton.rest_transforms.double(),
        skeleton.parents,
        motion.rotations[:, order].double(),
        motion.root_translation.double(),
    )
    return world[..., :3, 3]


def test_fixture_weights_sum_to_one_and_blend():
    mesh = cylinder_mesh(chain_skeleton(4))
    assert torch.allclose(mesh.skin_weights.sum(1), torch.ones(len(mesh.vertices)), atol=1e-6)
    assert ((mesh.skin_weights > 1e-6).sum(1) >= 2).any(), "weights should blend across joints"
    mesh9 = cylinder_mesh(chain_skeleton(10), influences=9)
    assert ((mesh9.skin_weights > 0).sum(1) == 9).all()


def test_fixture_motion_moves_joints():
    skel = chain_skeleton(4)
    pos = world_joint_positions(skel, bending_motion(skel))
    assert (pos[:, -1] - pos[0, -1]).norm(dim=-1).max() > 0.1
