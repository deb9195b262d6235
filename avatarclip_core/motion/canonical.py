"""Skeleton-independent canonical motion: 20 anatomical roles, world-axis rotations.

A canonical clip holds, per frame and role, the rotation the role applies about WORLD axes as if
its parents were at rest (the BVH / procedural `_Builder` convention), plus the pelvis displacement
from its rest position. The world rotation change of a role is then the product of these along its
chain, G_role = G_parent_role @ W_role, whatever the rest orientations of the skeleton's joint
frames are; so a clip authored or learned once can be applied to any rig with a known role map:
on a skeleton, R_local = R_rest^T W R_rest for role joints and the identity elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, Skeleton
from avatarclip_core.errors import UserInputError

# Anatomical role -> joint name, per rig family (procedural.py re-exports this).
ROLE_MAPS: dict[str, dict[str, str]] = {
    "game_engine": {
        "pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_02", "spine3": "spine_03",
        "neck": "neck_01", "head": "head",
        "left_hip": "thigh_l", "left_knee": "calf_l", "left_ankle": "foot_l",
        "right_hip": "thigh_r", "right_knee": "calf_r", "right_ankle": "foot_r",
        "left_collar": "clavicle_l", "left_shoulder": "upperarm_l", "left_elbow": "lowerarm_l", "left_wrist": "hand_l",
        "right_collar": "clavicle_r", "right_shoulder": "upperarm_r", "right_elbow": "lowerarm_r", "right_wrist": "hand_r",
    },
    "smpl": {name: name for name in (
        "pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_hip", "left_knee", "left_ankle",
        "right_hip", "right_knee", "right_ankle", "left_collar", "left_shoulder", "left_elbow", "left_wrist",
        "right_collar", "right_shoulder", "right_elbow", "right_wrist")},
}
# Toe joints (ground contact of the front of the foot), where a rig family has them.
TOE_MAPS: dict[str, tuple[str, str]] = {"game_engine": ("ball_l", "ball_r"), "smpl": ("left_foot", "right_foot")}

ROLES: tuple[str, ...] = tuple(ROLE_MAPS["game_engine"])
ROLE_INDEX: dict[str, int] = {role: i for i, role in enumerate(ROLES)}
NUM_ROLES = len(ROLES)


def _mirror_role(role: str) -> str:
    if role.startswith("left_"):
        return "right_" + role[5:]
    if role.startswith("right_"):
        return "left_" + role[6:]
    return role


MIRRORED_ROLE_ORDER: list[int] = [ROLE_INDEX[_mirror_role(r)] for r in ROLES]
# Mirroring across the avatar's sagittal plane (x -> -x): rotations become M R M.
MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))


class UnknownSkeletonError(UserInputError):
    pass


@dataclass
class CanonicalMotion:
    """rotations: (T, 20, 3, 3) world-axis rotation per role in ROLES order, as if the parents were
    at rest; root_translation: (T, 3) pelvis displacement from its rest position, metres."""

    fps: float
    rotations: torch.Tensor
    root_translation: torch.Tensor

    def __post_init__(self) -> None:
        T = self.rotations.shape[0]
        if tuple(self.rotations.shape[1:]) != (NUM_ROLES, 3, 3):
            raise ValueError(f"CanonicalMotion: rotations must be (T, {NUM_ROLES}, 3, 3), got {tuple(self.rotations.shape)}")
        if tuple(self.root_translation.shape) != (T, 3):
            raise ValueError("CanonicalMotion: root_translation must be (T, 3)")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps

    def to(self, device: torch.device | str) -> "CanonicalMotion":
        return CanonicalMotion(self.fps, self.rotations.to(device), self.root_translation.to(device))


def rig_family(skeleton: Skeleton) -> str:
    names = set(skeleton.names)
    for family, mapping in ROLE_MAPS.items():
        if all(name in names for name in mapping.values()):
            return family
    raise UnknownSkeletonError(
        "motions need a skeleton with a known role map (game_engine or SMPL joint names); "
        f"missing for this skeleton, e.g. {sorted(set(ROLE_MAPS['game_engine'].values()) - names)[:5]}"
    )


def role_joint_indices(skeleton: Skeleton) -> list[int]:
    """Skeleton joint index of each role, in ROLES order."""
    mapping = ROLE_MAPS[rig_family(skeleton)]
    return [skeleton.index(mapping[role]) for role in ROLES]


def toe_joint_indices(skeleton: Skeleton) -> list[int] | None:
    toes = TOE_MAPS.get(rig_family(skeleton))
    if toes and all(t in skeleton.names for t in toes):
        return [skeleton.index(t) for t in toes]
    return None


def _rest_rotations(skeleton: Skeleton, like: torch.Tensor) -> torch.Tensor:
    rest = skeleton.rest_transforms[:, :3, :3].to(device=like.device, dtype=like.dtype)
    return rest / torch.linalg.norm(rest, dim=1, keepdim=True)  # unit columns (scaled rigs)


def to_motion(canonical: CanonicalMotion, skeleton: Skeleton, name: str = "motion") -> Motion:
    """Local rotations on `skeleton` (R_local = R_rest^T W R_rest on role joints, identity elsewhere)."""
    idx = role_joint_indices(skeleton)
    W = canonical.rotations
    T, J = W.shape[0], skeleton.num_joints
    rest = _rest_rotations(skeleton, W)[idx]  # (20, 3, 3)
    rotations = torch.eye(3, dtype=W.dtype, device=W.device).repeat(T, J, 1, 1)
    rotations[:, idx] = rest.transpose(-1, -2) @ W @ rest
    return Motion(fps=canonical.fps, joint_names=list(skeleton.names), rotations=rotations,
                  root_translation=canonical.root_translation.clone(), name=name)


def to_canonical(motion: Motion, skeleton: Skeleton) -> CanonicalMotion:
    """Canonical form of a motion on `skeleton`. Rotations of joints outside the role map that
    sit between two roles are folded into the child role (so the world pose of every role joint
    is kept); the pelvis displacement comes from FK, so a rotated root joint is handled too."""
    rotations = motion.rotations
    if list(motion.joint_names) != list(skeleton.names):
        missing = sorted(set(skeleton.names) - set(motion.joint_names))
        if missing:
            raise UnknownSkeletonError(f"motion lacks joints of the skeleton: {missing[:8]}")
        rotations = rotations[:, [motion.joint_names.index(n) for n in skeleton.names]]
    rotations = rotations.float()
    root_translation = motion.root_translation.to(rotations)
    idx = role_joint_indices(skeleton)
    rest = _rest_rotations(skeleton, rotations)
    world_axis = rest @ rotations @ rest.transpose(-1, -2)  # (T, J, 3, 3) W_j for every joint
    folded = fold_into_roles(world_axis, skeleton.parents, idx)
    pelvis = idx[ROLE_INDEX["pelvis"]]
    world = lbs.forward_kinematics(skeleton.rest_transforms.to(rotations), skeleton.parents, rotations, root_translation)
    displacement = world[:, pelvis, :3, 3] - skeleton.rest_positions[pelvis].to(rotations)
    return CanonicalMotion(fps=float(motion.fps), rotations=folded, root_translation=displacement)


def fold_into_roles(world_axis: torch.Tensor, parents: list[int], roles: list[int]) -> torch.Tensor:
    """(T, 20, 3, 3) role rotations from (T, J, 3, 3) world-axis rotations of every joint: each role
    takes the rotations of the joints between it and its nearest role ancestor (outside the role
    map), so every role joint keeps its world orientation. roles[k] = joint of role k, -1 if absent
    (identity)."""
    role_set = {j for j in roles if j >= 0}
    eye = torch.eye(3, dtype=world_axis.dtype, device=world_axis.device).expand(world_axis.shape[0], 3, 3)
    folded = []
    for j in roles:
        if j < 0:
            folded.append(eye)
            continue
        W = world_axis[:, j]
        p = parents[j]
        while p >= 0 and p not in role_set:
            W = world_axis[:, p] @ W
            p = parents[p]
        folded.append(W)
    return torch.stack(folded, 1)


def role_skeleton(skeleton: Skeleton) -> Skeleton:
    """The 20 roles (+ the two toes when the rig has them) as a world-aligned skeleton rooted at
    the pelvis: canonical rotations are its local rotations, so FK on it is cheap and exact."""
    idx = role_joint_indices(skeleton)
    toes = toe_joint_indices(skeleton) or []
    joints = idx + toes
    position = {j: k for k, j in enumerate(joints)}
    parents = []
    for j in joints:
        p = skeleton.parents[j]
        while p >= 0 and p not in position:
            p = skeleton.parents[p]
        parents.append(position.get(p, -1))
    rest = torch.eye(4).repeat(len(joints), 1, 1)
    rest[:, :3, 3] = skeleton.rest_positions[joints].float()
    names = list(ROLES) + ["left_toe", "right_toe"][: len(toes)]
    return Skeleton(names=names, parents=parents, rest_transforms=rest)


def _role_world(canonical: CanonicalMotion, skeleton: Skeleton) -> tuple[torch.Tensor, Skeleton]:
    small = role_skeleton(skeleton)
    R = canonical.rotations
    T = R.shape[0]
    extra = small.num_joints - NUM_ROLES
    rotations = torch.cat([R, torch.eye(3, dtype=R.dtype, device=R.device).expand(T, extra, 3, 3)], 1)
    world = lbs.forward_kinematics(small.rest_transforms.to(R), small.parents, rotations, canonical.root_translation)
    return world[..., :3, 3], small


def canonical_joint_positions(canonical: CanonicalMotion, skeleton: Skeleton) -> torch.Tensor:
    """(T, 20, 3) world positions of the role joints on `skeleton` (lbs FK)."""
    return _role_world(canonical, skeleton)[0][:, :NUM_ROLES]


def foot_points(canonical: CanonicalMotion, skeleton: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """World positions (T, 2, P, 3) of each foot's contact points (ankle, toe when the rig has one;
    [left, right]) and their rest heights (2, P): a point touches the ground when its height is
    back at its rest height (the rest pose stands on the floor)."""
    positions, small = _role_world(canonical, skeleton)
    cols = [[ROLE_INDEX["left_ankle"]], [ROLE_INDEX["right_ankle"]]]
    if small.num_joints > NUM_ROLES:
        cols[0].append(NUM_ROLES)
        cols[1].append(NUM_ROLES + 1)
    cols_t = torch.tensor(cols, device=positions.device)
    rest_heights = small.rest_transforms[:, 1, 3].to(positions)[cols_t]
    return positions[:, cols_t], rest_heights


def foot_clearance(canonical: CanonicalMotion, skeleton: Skeleton) -> torch.Tensor:
    """(T, 2) height of each foot's lowest contact point above the ground (left, right), metres."""
    points, rest_heights = foot_points(canonical, skeleton)
    return (points[..., 1] - rest_heights).amin(-1)


def mirror(canonical: CanonicalMotion) -> CanonicalMotion:
    """The clip mirrored left <-> right (across the avatar's sagittal plane, x -> -x)."""
    M = MIRROR.to(canonical.rotations)
    rotations = M @ canonical.rotations[:, MIRRORED_ROLE_ORDER] @ M
    return CanonicalMotion(canonical.fps, rotations, canonical.root_translation @ M)
