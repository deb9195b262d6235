"""Apply an export profile (profiles.py) to a rigged avatar and its motion before writing files.

Order matters: influences are capped first, so the T-pose is baked with the weights the client will
blend with (and our own LBS of the exported avatar is what a 4-influence client computes); names
change last, so every step before works on the body's own rig.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..body.types import Motion, RiggedMesh, Skeleton
from ..motion.game_clip import in_place
from ..rig.rest_pose import bake_rest_pose, reexpress_motion, t_pose_rotations
from .profiles import ExportProfile, renamed_bones
from .weights import cap_influences


def capped_mesh(mesh: RiggedMesh, max_influences: int) -> RiggedMesh:
    """A copy with at most `max_influences` joints per vertex (`weights.cap_influences`)."""
    idx, w = cap_influences(mesh.skin_indices.detach().cpu().numpy(), mesh.skin_weights.detach().cpu().numpy(),
                            mesh.skeleton.num_joints, max_influences)
    return replace(mesh, skin_indices=torch.from_numpy(idx).long(),
                   skin_weights=torch.from_numpy(w).to(mesh.skin_weights.dtype))


def apply_profile(mesh: RiggedMesh, motion: Motion | None, profile: ExportProfile) -> tuple[RiggedMesh, Motion | None]:
    """The avatar and motion as the profile's clients expect them (the inputs are not changed)."""
    mesh = capped_mesh(mesh, profile.max_influences)
    if profile.rest_pose == "T":
        pose = t_pose_rotations(mesh.skeleton)
        if motion is not None:
            motion = reexpress_motion(motion, mesh.skeleton, pose)
        mesh = bake_rest_pose(mesh, pose)
    if motion is not None and profile.root_motion == "in_place":
        motion = in_place(motion)  # keep the vertical bob, drop the horizontal travel
    if profile.bone_names != "unreal":
        skel = mesh.skeleton
        names = renamed_bones(skel.names, profile.bone_names)
        mesh = replace(mesh, skeleton=Skeleton(names=names, parents=list(skel.parents),
                                               rest_transforms=skel.rest_transforms))
        if motion is not None:
            motion = replace(motion, joint_names=renamed_bones(list(motion.joint_names), profile.bone_names))
    return mesh, motion
