"""motion.npz: a motion clip with world joint positions, for tools and tests.

Keys: fps (), joint_names (J,), joint_positions (T, J, 3) metres Y-up world, root_translation (T, 3),
rotations (T, J, 3, 3) local rotations relative to each joint's rest frame, rest_transforms
(J, 4, 4), parents (J,), rotation_convention (str) and semantic_joints: a JSON string mapping
pelvis, head, left_wrist, right_wrist, left_ankle, right_ankle to joint indices.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, Skeleton

ROTATION_CONVENTION = "local rotation matrices relative to each joint's rest frame (identity = rest pose)"


def save_motion_npz(path: Path, skeleton: Skeleton, motion: Motion, semantic_joints: dict[str, int]) -> None:
    with torch.no_grad():
        world = lbs.forward_kinematics(
            skeleton.rest_transforms.float(), skeleton.parents, motion.rotations.float(), motion.root_translation.float()
        )
    with open(path, "wb") as handle:  # np.savez would append .npz to a name without it
        np.savez(
            handle,
            fps=np.float32(motion.fps),
            joint_names=np.array(motion.joint_names),
            joint_positions=world[..., :3, 3].numpy().astype(np.float32),
            root_translation=motion.root_translation.numpy().astype(np.float32),
            rotations=motion.rotations.numpy().astype(np.float32),
            rest_transforms=skeleton.rest_transforms.numpy().astype(np.float32),
            parents=np.array(skeleton.parents, dtype=np.int32),
            rotation_convention=np.array(ROTATION_CONVENTION),
            semantic_joints=np.array(json.dumps(semantic_joints)),
        )


def load_motion_npz(path: Path) -> tuple[Skeleton, Motion, dict[str, int]]:
    data = np.load(path)
    names = [str(n) for n in data["joint_names"]]
    skeleton = Skeleton(names, data["parents"].tolist(), torch.from_numpy(data["rest_transforms"]))
    motion = Motion(float(data["fps"]), names, torch.from_numpy(data["rotations"]),
                    torch.from_numpy(data["root_translation"]))
    return skeleton, motion, json.loads(str(data["semantic_joints"]))
