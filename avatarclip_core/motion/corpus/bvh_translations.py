"""Per-frame joint translations of a BVH file whose non-root joints carry position channels.

`read_bvh` (export/bvh.py) keeps only the root's position channels, which is right for the files
we write and for CMU's. Some exporters (MotionBuilder-style rigs such as Bandai-Namco's) give
every joint six channels and put the root motion on the second joint (an unanimated `Root` on the
floor, then `Hips` moving): read that way the body would walk on the spot. Here a joint's position
channels replace its OFFSET as its translation from the parent (how such files are written: their
values equal the OFFSET on every joint but the moving one).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.export.bvh import parse_bvh_hierarchy

AXES = "XYZ"


def joint_translations(path: str | os.PathLike) -> torch.Tensor | None:
    """(T, J, 3) translation of each joint from its parent (root: absolute), file units, or None when
    no joint but the root has position channels (then read_bvh's root translation is the whole story)."""
    head, _, frames_text = Path(path).read_text().partition("MOTION")
    joints = parse_bvh_hierarchy(head)
    if not any(_position_columns(j.channels) for j in joints[1:]):
        return None
    time_m = re.search(r"Frame\s+Time:\s*[0-9.eE+-]+", frames_text)
    n_channels = sum(len(j.channels) for j in joints)
    values = np.array(frames_text[time_m.end():].split(), dtype=np.float64).reshape(-1, n_channels)
    offsets = np.stack([j.offset for j in joints])
    translations = np.repeat(offsets[None], values.shape[0], 0)
    col = 0
    for k, joint in enumerate(joints):
        for c, axis in _position_columns(joint.channels):
            translations[:, k, axis] = values[:, col + c]
        col += len(joint.channels)
    return torch.from_numpy(translations).float()


def _position_columns(channels: list[str]) -> list[tuple[int, int]]:
    return [(c, AXES.index(name[0].upper())) for c, name in enumerate(channels) if name.lower().endswith("position")]


def world_transforms(translations: torch.Tensor, parents: list[int], rotations: torch.Tensor) -> torch.Tensor:
    """(T, J, 4, 4) world joint transforms from per-frame translations (T, J, 3) and the file's local
    rotations (T, J, 3, 3). BVH rest frames are world-aligned, so this is FK with the translation
    read per frame: G_j = G_parent R_j, p_j = p_parent + G_parent t_j (parents come first in a file)."""
    t = translations.to(rotations)
    G, P = [], []
    for j, p in enumerate(parents):
        G.append(rotations[:, j] if p < 0 else G[p] @ rotations[:, j])
        P.append(t[:, j] if p < 0 else P[p] + (G[p] @ t[:, j, :, None])[..., 0])
    world = torch.zeros(*rotations.shape[:2], 4, 4, dtype=rotations.dtype)
    world[..., :3, :3], world[..., :3, 3], world[..., 3, 3] = torch.stack(G, 1), torch.stack(P, 1), 1.0
    return world
