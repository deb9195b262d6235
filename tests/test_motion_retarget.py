"""Retarget rules that hold for any source rig (motion/corpus/retarget.py); the test writes its own BVH."""
from __future__ import annotations

import math

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.export.bvh import write_bvh
from avatarclip_core.motion.canonical import ROLE_INDEX
from avatarclip_core.motion.corpus import import_bvh
from avatarclip_core.motion.corpus.retarget import ROLE_PARENT

# CMU names, T-pose in metres (Y up, facing +Z), the neck straight up as in CMU's files
TPOSE = {
    "Hips": (None, (0, 1.0, 0)), "LowerBack": ("Hips", (0, 1.1, 0)), "Spine": ("LowerBack", (0, 1.25, 0)),
    "Spine1": ("Spine", (0, 1.4, 0)), "Neck": ("Spine1", (0, 1.55, 0)), "Head": ("Neck", (0, 1.7, 0)),
    **{f"{s}Shoulder": ("Spine1", (k * 0.05, 1.5, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}Arm": (f"{s}Shoulder", (k * 0.2, 1.5, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}ForeArm": (f"{s}Arm", (k * 0.5, 1.5, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}Hand": (f"{s}ForeArm", (k * 0.75, 1.5, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}UpLeg": ("Hips", (k * 0.1, 0.95, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}Leg": (f"{s}UpLeg", (k * 0.1, 0.5, 0)) for s, k in (("Left", 1), ("Right", -1))},
    **{f"{s}Foot": (f"{s}Leg", (k * 0.1, 0.08, 0)) for s, k in (("Left", 1), ("Right", -1))},
}


def _world_rotation(rotations: torch.Tensor, role: str) -> torch.Tensor:
    chain = []
    while role:
        chain.append(role)
        role = ROLE_PARENT[role]
    G = torch.eye(3).expand(rotations.shape[0], 3, 3)
    for r in reversed(chain):
        G = G @ rotations[:, ROLE_INDEX[r]]
    return G


def test_head_keeps_the_source_head_orientation_whatever_the_necks_lean(tmp_path, anny_mesh):
    # Our neck leans forward at rest, a T-pose's does not: the head must still look ahead at the
    # source's rest (it once followed the neck's alignment and looked 19 degrees up), and nod with it.
    names = list(TPOSE)
    rest = torch.eye(4).repeat(len(names), 1, 1)
    rest[:, :3, 3] = torch.tensor([pos for _, pos in TPOSE.values()], dtype=torch.float32)
    source = Skeleton(names=names, parents=[names.index(p) if p else -1 for p, _ in TPOSE.values()],
                      rest_transforms=rest)
    rotations = torch.eye(3).repeat(2, len(names), 1, 1)
    rotations[1, names.index("Head")] = lbs.axis_angle_to_matrix(torch.tensor([math.radians(30.0), 0.0, 0.0]))  # nod
    path = write_bvh(source, Motion(30.0, names, rotations, torch.zeros(2, 3)), tmp_path / "nod.bvh")
    clip = import_bvh(path, anny_mesh.skeleton)
    ahead = _world_rotation(clip.rotations, "head") @ torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(ahead[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-3), ahead[0]
    pitch = math.degrees(math.asin(float(ahead[1, 1])))
    assert abs(pitch + 30.0) < 0.5, pitch  # about +X: the face turns down 30 degrees
