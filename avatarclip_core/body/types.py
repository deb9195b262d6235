"""Plain data shared by every module: a skeleton, a rigged mesh and a motion clip.

Conventions (the whole product uses them; adapters convert at the boundary):
- metres, right-handed, **Y up**, the avatar faces +Z (glTF's convention);
- rotations are local to each joint's rest (bind) frame: the identity is the rest pose;
- skin weights are (V, K) indices + weights whose rows sum to 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Skeleton:
    """Joint hierarchy in its rest (bind) pose.

    names: J joint names; parents: J parent indices (-1 for the root, parents come before children);
    rest_transforms: (J, 4, 4) world transform of each joint frame in the rest pose.
    """

    names: list[str]
    parents: list[int]
    rest_transforms: torch.Tensor

    def __post_init__(self) -> None:
        J = len(self.names)
        if len(self.parents) != J or tuple(self.rest_transforms.shape) != (J, 4, 4):
            raise ValueError("Skeleton: names, parents and rest_transforms disagree on the joint count")
        for j, p in enumerate(self.parents):
            if p >= j:
                raise ValueError(f"Skeleton: parent of joint {j} ({p}) must come before it")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def rest_positions(self) -> torch.Tensor:
        return self.rest_transforms[:, :3, 3]


@dataclass
class MorphTargets:
    """Named vertex displacements added to the rest pose before skinning (glTF morph targets, e.g.
    ARKit's face blend shapes): deltas (M, V, 3) in metres, one row of V per name."""

    names: list[str]
    deltas: torch.Tensor

    def __post_init__(self) -> None:
        if self.deltas.dim() != 3 or self.deltas.shape[0] != len(self.names) or self.deltas.shape[2] != 3:
            raise ValueError(f"MorphTargets: deltas {tuple(self.deltas.shape)} must be (len(names)={len(self.names)}, V, 3)")
        if len(set(self.names)) != len(self.names):
            raise ValueError("MorphTargets: names must be unique")

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class RiggedMesh:
    """A skinned triangle mesh in its rest pose, ready for export or animation."""

    vertices: torch.Tensor  # (V, 3) float, rest pose
    faces: torch.Tensor  # (F, 3) long
    skeleton: Skeleton
    skin_indices: torch.Tensor  # (V, K) long joint indices
    skin_weights: torch.Tensor  # (V, K) float, rows sum to 1
    vertex_colors: torch.Tensor | None = None  # (V, 3) or (V, 4) in [0, 1]
    uvs: torch.Tensor | None = None  # (V, 2) texture coordinates, v up (OpenGL)
    texture: torch.Tensor | None = None  # (H, W, 3) in [0, 1], row 0 = top of the image
    name: str = "avatar"
    extras: dict = field(default_factory=dict)
    morph_targets: MorphTargets | None = None  # deltas (M, V, 3) on these vertices, in the rest pose


@dataclass
class Motion:
    """A clip of local joint rotations plus a root translation.

    rotations: (T, J, 3, 3) local rotations relative to each joint's rest frame;
    root_translation: (T, 3) world offset added to the root joint's rest position.
    """

    fps: float
    joint_names: list[str]
    rotations: torch.Tensor
    root_translation: torch.Tensor
    name: str = "motion"

    def __post_init__(self) -> None:
        T, J = self.rotations.shape[:2]
        if tuple(self.rotations.shape[2:]) != (3, 3) or J != len(self.joint_names):
            raise ValueError("Motion: rotations must be (T, J, 3, 3) with J = len(joint_names)")
        if tuple(self.root_translation.shape) != (T, 3):
            raise ValueError("Motion: root_translation must be (T, 3)")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps
