"""One rest for all clips of a rig whose zero pose does not stand (rest_pose.py), for a corpus folder.

A clip's own most standing frame is a fine rest for that clip alone, but how it holds its arms,
hands and head there differs from clip to clip (a relaxed bow, a musical's open arms), and the
twist the retarget reads off the rest goes with it: over the Bandai-Namco dataset the effective
forearm twist then spread 40-55 degrees (90th percentile) between clips, so one pose meant different
rotations in different clips. Clips of one rig therefore share the mean of their standing frames.
The files are read twice (here and at import): cheaper than holding every parsed clip, and only
files of such rigs are read twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.export.bvh import parse_bvh_hierarchy
from avatarclip_core.motion.corpus.bvh_import import map_roles, read_bvh_source
from avatarclip_core.motion.corpus.rest_pose import mean_orientations, rest_is_standing, standing_orientations

SAME_OFFSET = 0.01  # offsets closer than this fraction of the rig's size are one rig's


@dataclass
class _Rig:
    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3) OFFSETs; zero where position channels replace them (the root motion)
    paths: list[Path] = field(default_factory=list)

    def same_as(self, other: "_Rig") -> bool:
        if (self.names, self.parents) != (other.names, other.parents):
            return False
        size = max(float(np.linalg.norm(self.offsets, axis=1).sum()), 1e-9)
        return float(np.abs(self.offsets - other.offsets).max()) < SAME_OFFSET * size

    def positions(self) -> torch.Tensor:
        positions = np.zeros_like(self.offsets)
        for j, p in enumerate(self.parents):
            positions[j] = self.offsets[j] + (positions[p] if p >= 0 else 0.0)
        return torch.from_numpy(positions).float()


def _hierarchy_text(path: Path) -> str:
    """The file up to its MOTION line (a corpus may hold thousands of long clips; only the header is needed)."""
    lines = []
    with path.open() as f:
        for line in f:
            if line.lstrip().startswith("MOTION"):
                break
            lines.append(line)
    return "".join(lines)


def _read_rig(path: Path) -> _Rig | None:
    """The rig from the HIERARCHY alone; None for a file that does not parse (its import says why)."""
    try:
        joints = parse_bvh_hierarchy(_hierarchy_text(path))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    moving = [any(c.lower().endswith("position") for c in j.channels) for j in joints]
    offsets = np.stack([np.zeros(3) if m else j.offset for j, m in zip(joints, moving)])
    return _Rig([j.name for j in joints], [j.parent for j in joints], offsets, [path])


def shared_rest_orientations(paths: list[Path]) -> dict[Path, torch.Tensor]:
    """For each BVH file of a rig that does not stand at rest and has at least two clips here, the
    (J, 3, 3) rest orientations its clips share (files of other rigs are left out)."""
    rigs: list[_Rig] = []
    for path in paths:
        rig = _read_rig(path) if path.suffix.lower() == ".bvh" else None
        if rig is None:
            continue
        known = next((r for r in rigs if r.same_as(rig)), None)
        if known:
            known.paths.append(path)
        else:
            rigs.append(rig)
    shared: dict[Path, torch.Tensor] = {}
    for rig in rigs:
        try:
            _, roles, _ = map_roles(rig.names)
        except ValueError:  # an unknown skeleton: its import says so
            continue
        if len(rig.paths) < 2 or rest_is_standing(rig.positions(), roles):
            continue
        mean = mean_orientations(torch.stack([standing_orientations(read_bvh_source(p).world, roles)
                                              for p in rig.paths]))
        shared.update({p: mean for p in rig.paths})
    return shared
