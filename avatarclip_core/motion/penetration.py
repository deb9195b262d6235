"""Mesh self-penetration check: forearms, hands, shins and feet driven through the torso.

The torso is modelled by its core: per spine segment (pelvis -> spine1 -> spine2 -> spine3 ->
neck) a capsule whose radius is a low percentile of the distances of the segment's own skin
vertices to it, so the capsule lies inside the torso surface everywhere (the torso is wider than
deep; the capsule takes the depth). Distal limb vertices (skinned mostly to joints at or below the
elbows and knees) are posed by LBS; a vertex inside a capsule by more than `tolerance` has gone
through the skin into the body. Touching the torso (hands on the hips, crossed arms, a hand on the
chest) stays outside the core and passes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.motion.canonical import ROLE_INDEX, CanonicalMotion, role_joint_indices, to_motion

TORSO_CHAIN = ("pelvis", "spine1", "spine2", "spine3", "neck")
LIMB_ROOTS = ("left_elbow", "right_elbow", "left_knee", "right_knee")
CORE_PERCENTILE = 0.1  # of a segment's skin-vertex distances: the capsule radius
LIMB_VERTEX_STRIDE = 4  # every n-th limb vertex (about 2 cm apart: a limb through the core is caught)


@dataclass(frozen=True)
class Penetration:
    depth: float  # metres: deepest limb vertex inside the torso core over the clip
    frame: int  # where
    frames_inside: int  # frames with any limb vertex deeper than the tolerance


class TorsoCore:
    """Torso capsules and the distal limb vertices of one rigged mesh (build once, check many clips)."""

    def __init__(self, mesh: RiggedMesh) -> None:
        skeleton = mesh.skeleton
        self.mesh = mesh
        roles = dict(zip(ROLE_INDEX, role_joint_indices(skeleton)))
        dominant = mesh.skin_indices.gather(1, mesh.skin_weights.argmax(1, keepdim=True))[:, 0]
        rest = skeleton.rest_positions.float()
        self.chain = [roles[r] for r in TORSO_CHAIN]
        verts = mesh.vertices.float()
        radii = []
        for a, b in zip(self.chain[:-1], self.chain[1:]):
            own = verts[dominant == a]
            radii.append(float(torch.quantile(_segment_distance(own, rest[a], rest[b]), CORE_PERCENTILE)))
        self.radii = torch.tensor(radii)
        limb_joints = set()
        for role in LIMB_ROOTS:
            limb_joints |= _descendants(skeleton.parents, roles[role])
        limb = torch.tensor([int(j) in limb_joints for j in dominant.tolist()])
        self.limb_vertices = torch.nonzero(limb)[:, 0][::LIMB_VERTEX_STRIDE]

    def depths(self, canonical: CanonicalMotion) -> torch.Tensor:
        """(T,) deepest limb vertex inside a torso capsule per frame (<= 0: none inside)."""
        skeleton = self.mesh.skeleton
        motion = to_motion(canonical, skeleton)
        world = lbs.forward_kinematics(skeleton.rest_transforms.float(), skeleton.parents, motion.rotations.float(),
                                       motion.root_translation.float())
        skin = lbs.skinning_transforms(world, skeleton.rest_transforms.float())  # (T, J, 4, 4)
        idx = self.mesh.skin_indices[self.limb_vertices]  # (V, K)
        w = self.mesh.skin_weights[self.limb_vertices].float()
        v = self.mesh.vertices[self.limb_vertices].float()
        blended = (skin[:, idx] * w[None, :, :, None, None]).sum(2)  # (T, V, 4, 4)
        posed = blended[..., :3, :3] @ v[None, :, :, None] + blended[..., :3, 3:]
        posed = posed[..., 0]  # (T, V, 3)
        joints = world[:, self.chain, :3, 3]  # (T, S+1, 3)
        deepest = []
        for s in range(len(self.chain) - 1):
            d = _segment_distance(posed, joints[:, s, None], joints[:, s + 1, None])
            deepest.append((self.radii[s] - d).amax(1))
        return torch.stack(deepest, 1).amax(1)

    def check(self, canonical: CanonicalMotion, tolerance: float = 0.02) -> Penetration:
        depth = self.depths(canonical)
        frame = int(depth.argmax())
        return Penetration(float(depth[frame]), frame, int((depth > tolerance).sum()))


def _segment_distance(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ab = b - a
    t = (((points - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    return torch.linalg.norm(points - (a + t[..., None] * ab), dim=-1)


def _descendants(parents: list[int], root: int) -> set[int]:
    found = {root}
    for j, p in enumerate(parents):  # parents precede children
        if p in found:
            found.add(j)
    return found
