"""Make a sculpted mesh animatable with the template's skeleton.

AvatarCLIP (Sec. 3.3.3): copy each new vertex's blend weights from its nearest template vertex,
then bring the mesh from the pose it was sculpted in back to the rig's rest pose with inverse LBS.
Beyond the paper, the copied weights are smoothed over the new mesh's edges: nearest-vertex copies
are piecewise constant and tear where neighbouring vertices pick template vertices on different
bones (armpits, between the legs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from avatarclip_core.body import lbs
from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.config.ranges import Fraction, Influences, NonNegativeInt


@dataclass
class RigConfig:
    smoothing_iterations: NonNegativeInt = 3  # Laplacian passes over the transferred weights
    smoothing_strength: Fraction = 0.5  # 0 = none, 1 = replace by the neighbour average
    max_influences: Influences = 8  # what the GLB writer stores (JOINTS_0/1)


def transfer_skin_weights(vertices: torch.Tensor, template: RiggedMesh) -> torch.Tensor:
    """(V, J) dense weights: each vertex copies its nearest template vertex's weights."""
    tree = cKDTree(template.vertices.detach().cpu().numpy())
    _, nearest = tree.query(vertices.detach().cpu().numpy(), k=1)
    dense = lbs.dense_skin_weights(template.skin_indices, template.skin_weights.float(), template.skeleton.num_joints)
    return dense[torch.from_numpy(np.asarray(nearest, dtype=np.int64))]


def smooth_skin_weights(dense: torch.Tensor, faces: torch.Tensor, iterations: int, strength: float) -> torch.Tensor:
    """Laplacian smoothing of (V, J) weights over mesh edges; rows stay normalised."""
    if iterations <= 0 or strength <= 0:
        return dense
    V = dense.shape[0]
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).long()
    edges = torch.cat([edges, edges.flip(1)])
    adjacency = torch.sparse_coo_tensor(edges.T, torch.ones(edges.shape[0]), (V, V), check_invariants=False).coalesce()
    degree = torch.sparse.sum(adjacency, dim=1).to_dense().clamp_min(1.0).unsqueeze(1)
    weights = dense
    for _ in range(iterations):
        average = torch.sparse.mm(adjacency, weights) / degree
        weights = (1 - strength) * weights + strength * average
    return weights / weights.sum(1, keepdim=True).clamp_min(1e-8)


def _sparse_top_k(dense: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, dense.shape[1])
    top = dense.topk(k, dim=1)
    weights = top.values.clamp_min(0)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-8)
    return top.indices, weights


def rig_like_template(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    template: RiggedMesh,
    config: RigConfig | None = None,
    sculpt_pose: torch.Tensor | None = None,
    sculpt_root_translation: torch.Tensor | None = None,
    vertex_colors: torch.Tensor | None = None,
    uvs: torch.Tensor | None = None,
    texture: torch.Tensor | None = None,
) -> RiggedMesh:
    """A RiggedMesh for a sculpted surface.

    vertices/faces: the sculpted mesh, in the pose it was sculpted in: the template's rest pose
    unless `sculpt_pose` (J, 3, 3) local rotations (and a root translation) say otherwise, in
    which case the template is posed the same way for the nearest-vertex search and the result is
    brought back to rest by inverse LBS.
    """
    config = config or RigConfig()
    skeleton = template.skeleton
    posed_template = template
    transforms = None
    if sculpt_pose is not None:
        rotations = sculpt_pose.reshape(1, skeleton.num_joints, 3, 3).float()
        root = None if sculpt_root_translation is None else sculpt_root_translation.reshape(1, 3).float()
        world = lbs.forward_kinematics(skeleton.rest_transforms.float(), skeleton.parents, rotations, root)
        transforms = lbs.skinning_transforms(world, skeleton.rest_transforms.float())
        dense_t = lbs.dense_skin_weights(template.skin_indices, template.skin_weights.float(), skeleton.num_joints)
        posed_vertices = lbs.linear_blend_skinning(template.vertices.float(), dense_t, transforms)[0]
        posed_template = RiggedMesh(posed_vertices, template.faces, skeleton, template.skin_indices, template.skin_weights)
    dense = transfer_skin_weights(vertices, posed_template)
    dense = smooth_skin_weights(dense, faces, config.smoothing_iterations, config.smoothing_strength)
    rest_vertices = vertices.float()
    if transforms is not None:
        rest_vertices = lbs.inverse_linear_blend_skinning(rest_vertices.unsqueeze(0), dense, transforms)[0]
    indices, weights = _sparse_top_k(dense, config.max_influences)
    return RiggedMesh(
        vertices=rest_vertices.detach(),
        faces=faces.long(),
        skeleton=skeleton,
        skin_indices=indices,
        skin_weights=weights,
        vertex_colors=vertex_colors,
        uvs=uvs,
        texture=texture,
        name=template.name,
    )
