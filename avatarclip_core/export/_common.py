"""Checks and conversions shared by the glTF and BVH writers."""
from __future__ import annotations

import torch

from ..body.types import Motion, Skeleton


def check_single_root(skeleton: Skeleton) -> None:
    """glTF skins need one common root joint and BVH one ROOT; the body models all have one."""
    roots = [j for j, p in enumerate(skeleton.parents) if p < 0]
    if roots != [0]:
        names = [skeleton.names[j] for j in roots]
        raise ValueError(f"export needs exactly one root joint at index 0, got roots {names}")


def motion_in_skeleton_order(skeleton: Skeleton, motion: Motion) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, J, 3, 3) rotations and (T, 3) root translation, float64, in the skeleton's joint order.

    Motions carry their own joint names so a clip can be retargeted by name; exporters must agree
    with the skeleton exactly, so a missing or extra joint is an error rather than a silent identity.
    """
    if list(motion.joint_names) == list(skeleton.names):
        rotations = motion.rotations
    else:
        missing = sorted(set(skeleton.names) - set(motion.joint_names))
        extra = sorted(set(motion.joint_names) - set(skeleton.names))
        if missing or extra:
            raise ValueError(f"motion joints do not match the skeleton: missing {missing[:8]}, extra {extra[:8]}")
        order = [motion.joint_names.index(n) for n in skeleton.names]
        rotations = motion.rotations[:, order]
    if not (torch.isfinite(rotations).all() and torch.isfinite(motion.root_translation).all()):
        raise ValueError("motion contains NaN or inf")
    if not float(motion.fps) > 0:
        raise ValueError(f"motion fps must be positive, got {motion.fps}")
    return rotations.detach().cpu().double(), motion.root_translation.detach().cpu().double()
