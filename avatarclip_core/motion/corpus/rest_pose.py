"""A standing rest pose for a source rig whose zero pose is not one (rigs with baked joint orients).

retarget.py aligns our rest to the source's rest bone by bone with the smallest rotation, which is
right when the source rest is a T-pose (CMU, Mixamo, SMPL) but not when a BVH's zero-rotation pose is
an artefact of its exporter: Bandai-Namco's rig has every bone along its joint's local X, so its
"rest" has the spine, one leg and one arm along +X and the others along -X; the real joint frames
live in the animation (each rotation carries its joint's orient). Bone directions still come out
right, but the twists (pelvis, chest, head, hands) and so the hip and collar placement would not.

The fix: take the rest from the motion itself. The most standing frame t0 (trunk up, legs and arms
down) becomes the rest, turned so its pelvis faces +Z with the hips level along X: a joint's new
rest orientation is S_j = C G_j(t0) (C: the turn), the pelvis's S = F^T G_pelvis(t0) (F: its frame
from the hip line and the spine), and a pose re-expressed over it is G'_j(t) = G_j(t) S_j^T. A
relaxed standing frame has natural twists, so the bone-by-bone alignment to our A-pose then is too.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.motion.canonical import ROLE_INDEX

STANDING_COS = math.cos(math.radians(30.0))  # a rest counts as standing within this of upright
UP = torch.tensor([0.0, 1.0, 0.0])
# (from role, to role, direction when standing relaxed): what picks the most standing frame.
STANDING_BONES = [("pelvis", "neck", 1.0)] + [
    (f"{side}_{a}", f"{side}_{b}", -1.0) for side in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]


def _vertical_cosines(positions: torch.Tensor, roles: list[int]) -> torch.Tensor:
    """(..., bones) cosine of each standing bone with its standing direction (missing roles: 1)."""
    cos = []
    for a, b, sign in STANDING_BONES:
        ja, jb = roles[ROLE_INDEX[a]], roles[ROLE_INDEX[b]]
        if ja < 0 or jb < 0:
            cos.append(torch.ones(positions.shape[:-2], dtype=positions.dtype))
            continue
        d = positions[..., jb, :] - positions[..., ja, :]
        cos.append(sign * d[..., 1] / d.norm(dim=-1).clamp_min(1e-9))
    return torch.stack(cos, -1)


def rest_is_standing(rest_positions: torch.Tensor, roles: list[int]) -> bool:
    """Trunk up and legs down in the rest pose (arms are free: T-, A- or I-pose)."""
    cos = _vertical_cosines(rest_positions, roles)
    trunk_and_legs = [k for k, (a, _, _) in enumerate(STANDING_BONES) if "shoulder" not in a and "elbow" not in a]
    return bool((cos[trunk_and_legs] > STANDING_COS).all())


def _pelvis_frame(positions: torch.Tensor, roles: list[int]) -> torch.Tensor:
    """(3, 3) columns: the hip line (right to left hip), up along the spine, forward."""
    joint = {role: positions[roles[ROLE_INDEX[role]]] for role in ("pelvis", "left_hip", "right_hip", "spine1", "neck")
             if roles[ROLE_INDEX[role]] >= 0}
    x = joint["left_hip"] - joint["right_hip"]
    x = x / x.norm()
    up = joint.get("spine1", joint.get("neck")) - joint["pelvis"]
    y = up - (up @ x) * x
    y = y / y.norm()
    return torch.stack([x, y, torch.linalg.cross(x, y)], 1)


def _facing_turn(frame: torch.Tensor) -> torch.Tensor:
    """The turn about Y taking the frame's horizontal hip line to +X (so it faces +Z)."""
    yaw = math.atan2(-float(frame[2, 0]), float(frame[0, 0]))  # angle of the hip line about +Y
    c, s = math.cos(yaw), math.sin(yaw)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]).T


def rest_from_standing_frame(world: torch.Tensor, parents: list[int], roles: list[int]
                             ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """From world joint transforms (T, J, 4, 4): the new rest joint positions (J, 3), the world-axis
    local rotations over it (T, J, 3, 3) and the frame used as the rest."""
    G, P = world[..., :3, :3].float(), world[..., :3, 3].float()
    t0 = int(_vertical_cosines(P, roles).mean(-1).argmax())
    frame = _pelvis_frame(P[t0], roles)
    S = _facing_turn(frame) @ G[t0]
    pelvis = roles[ROLE_INDEX["pelvis"]]
    S[pelvis] = frame.T @ G[t0, pelvis]
    rest = torch.zeros(len(parents), 3)
    for j, p in enumerate(parents):  # rest bone = the t0 bone carried by its parent's new rest frame
        if p < 0:
            rest[j] = P[t0, j]
        else:
            rest[j] = rest[p] + S[p] @ G[t0, p].T @ (P[t0, j] - P[t0, p])
    posed = G @ S.transpose(-1, -2)  # G'_j(t): rotation from the new rest orientation
    parent_posed = posed[:, [max(p, 0) for p in parents]]
    local = parent_posed.transpose(-1, -2) @ posed
    roots = [j for j, p in enumerate(parents) if p < 0]
    local[:, roots] = posed[:, roots]
    return rest, local, t0
