"""A standing rest pose for a source rig whose zero pose is not one (rigs with baked joint orients).

retarget.py aligns our rest to the source's rest bone by bone with the smallest rotation, which is
right when the source rest is a T-pose (CMU, Mixamo, SMPL) but not when a BVH's zero-rotation pose is
an artefact of its exporter: Bandai-Namco's rig has every bone along its joint's local X, so its
"rest" has the spine, one leg and one arm along +X and the others along -X; the real joint frames
live in the animation (each rotation carries its joint's orient). Bone directions still come out
right, but the twists (pelvis, chest, head, hands) and so the hip and collar placement would not.

The fix: take the rest orientation S_j of every joint's frame from the motion. A clip's most
standing frame t0 (trunk up, legs and arms down) gives S_j = C G_j(t0), C turning its pelvis to face
+Z, and the pelvis's S = F^T G_pelvis(t0) (F: its frame from the hip line and the spine); a corpus
of one rig averages these over its clips (`mean_orientations`, rig_rest.py), so every clip shares
one rest and a pose means the same rotations in all of them. The rest's legs are then swung
straight down, the rest kept as it stands; a pose over it is G_j(t) S_j^T.
"""
from __future__ import annotations

import math

import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.motion.canonical import ROLE_INDEX

STANDING_COS = math.cos(math.radians(30.0))  # a rest counts as standing within this of upright
OUTLIER_DEG = 45.0  # a clip's standing joint frame this far from the others' mean is left out of it
# (from role, to role, direction when standing relaxed): what picks the most standing frame.
STANDING_BONES = [("pelvis", "neck", 1.0)] + [
    (f"{side}_{a}", f"{side}_{b}", -1.0) for side in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]
# Bones made straight in the rest (their joint, the role they point to, direction): straight legs
# make the hip-to-ankle distance the leg length retarget.py scales the root travel by. The rest of the
# body keeps its mean standing pose: a leaf (head, hands) turns with its parent's rest alignment, so a
# neck straightened there would tilt the head back by the neck's usual lean (a walk looked 28 deg up).
STRAIGHT_BONES = [(f"{side}_{a}", f"{side}_{b}", -1.0) for side in ("left", "right")
                  for a, b in (("hip", "knee"), ("knee", "ankle"))]


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
    up = (joint["spine1"] if "spine1" in joint else joint["neck"]) - joint["pelvis"]
    y = up - (up @ x) * x
    y = y / y.norm()
    return torch.stack([x, y, torch.linalg.cross(x, y)], 1)


def _facing_turn(frame: torch.Tensor) -> torch.Tensor:
    """The turn about Y taking the frame's horizontal hip line to +X (so it faces +Z)."""
    yaw = math.atan2(-float(frame[2, 0]), float(frame[0, 0]))  # angle of the hip line about +Y
    return axis_angle_to_matrix(torch.tensor([0.0, -yaw, 0.0]))


def standing_orientations(world: torch.Tensor, roles: list[int]) -> torch.Tensor:
    """(J, 3, 3) rest orientation of every joint frame from a clip's world transforms (T, J, 4, 4):
    its most standing frame, faced to +Z, with the pelvis frame made level."""
    G, P = world[..., :3, :3].float(), world[..., :3, 3].float()
    t0 = int(_vertical_cosines(P, roles).mean(-1).argmax())
    frame = _pelvis_frame(P[t0], roles)
    S = _facing_turn(frame) @ G[t0]
    pelvis = roles[ROLE_INDEX["pelvis"]]
    S[pelvis] = frame.T @ G[t0, pelvis]
    return S


def _nearest_rotation(m: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(m)
    d = torch.det(U @ Vh)
    return U @ torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1)) @ Vh


def _angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cos = ((a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def mean_orientations(orientations: torch.Tensor, rounds: int = 3) -> torch.Tensor:
    """(J, 3, 3) per-joint mean of (N, J, 3, 3) rotations (chordal), each round leaving out those
    more than OUTLIER_DEG from the last mean (a clip whose standing frame still raises an arm)."""
    mean = _nearest_rotation(orientations.mean(0))
    for _ in range(rounds):
        keep = (_angle_deg(mean[None], orientations) < OUTLIER_DEG).to(orientations)[..., None, None]
        mean = _nearest_rotation((orientations * keep).sum(0) + mean * (keep.sum(0) == 0))
    return mean


def _swing(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The smallest rotation taking direction a to direction b (not opposite)."""
    a, b = a / a.norm(), b / b.norm()
    axis = torch.linalg.cross(a, b)
    return axis_angle_to_matrix(axis / axis.norm().clamp_min(1e-12) * torch.atan2(axis.norm(), a @ b))


def rebase(world: torch.Tensor, parents: list[int], offsets: torch.Tensor, roles: list[int],
           orientations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rest joint positions (J, 3) and world-axis local rotations (T, J, 3, 3) over a new rest in
    which joint j's frame is turned by orientations[j] (legs then swung straight).
    offsets: (J, 3) each joint's offset from its parent in the parent's frame (the file's OFFSET)."""
    S = orientations.float().clone()
    for a, b, sign in STRAIGHT_BONES:
        ja, jb = roles[ROLE_INDEX[a]], roles[ROLE_INDEX[b]]
        if ja >= 0 and jb >= 0 and parents[jb] == ja:
            S[ja] = _swing(S[ja] @ offsets[jb].float(), torch.tensor([0.0, sign, 0.0])) @ S[ja]
    rest = torch.zeros(len(parents), 3)
    for j, p in enumerate(parents):  # parents first
        if p >= 0:
            rest[j] = rest[p] + S[p] @ offsets[j].float()
    posed = world[..., :3, :3].float() @ S.transpose(-1, -2)  # G'_j(t): rotation from the new rest
    local = posed[:, [max(p, 0) for p in parents]].transpose(-1, -2) @ posed
    roots = [j for j, p in enumerate(parents) if p < 0]
    local[:, roots] = posed[:, roots]
    return rest, local
