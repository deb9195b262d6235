"""Import BVH mocap (CMU, Mixamo / MotionBuilder, MakeHuman, SMPL, Bandai-Namco, our own game_engine
export) as canonical clips, by joint names (see retarget.py for the rest-pose alignment).

The file is parsed by export/bvh.py's `read_bvh` (world-aligned rest frames, so its local rotations
are world-axis rotations as if the parents were at rest). Assumed: Y up, the performer facing +Z
in the rest pose (CMU's BVH conversions and Blender's BVH export do; `face_forward` turns the first
frame to face +Z anyway). Files with position channels on inner joints (root motion on Hips under
a still Root) are read by bvh_translations.py; a rest that is not a standing pose (exporters that
bake joint orients into the rotations) is replaced by one taken from the motion (rest_pose.py): the
clip's own most standing frame, or the rest a corpus of that rig shares (rig_rest.py, given in).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Skeleton
from avatarclip_core.errors import UserInputError
from avatarclip_core.export.bvh import read_bvh
from avatarclip_core.motion.canonical import ROLE_MAPS, ROLES, TOE_MAPS, CanonicalMotion
from avatarclip_core.motion.corpus.bvh_translations import joint_translations, world_transforms
from avatarclip_core.motion.corpus.rest_pose import rebase, rest_is_standing, standing_orientations
from avatarclip_core.motion.corpus.retarget import SourceRig, retarget


class MotionFileError(UserInputError):
    """A motion file that cannot be imported (format, keys, skeleton)."""


def _sided(left: dict[str, str]) -> dict[str, str]:
    """Add the right-side names: 'Left'->'Right', '.l'->'.r', 'l_'->'r_', '_l'->'_r'."""
    out = dict(left)
    for name, role in left.items():
        if not role.startswith("left_"):
            continue
        right_role = "right_" + role[5:]
        for a, b in (("left", "right"), (".l", ".r"), ("l_", "r_"), ("_l", "_r")):
            if a in name:
                out[name.replace(a, b, 1) if a != "_l" else name[: -2] + "_r"] = right_role
                break
    return out


_LIMBS = {"leftupleg": "left_hip", "leftleg": "left_knee", "leftfoot": "left_ankle", "leftshoulder": "left_collar",
          "leftarm": "left_shoulder", "leftforearm": "left_elbow", "lefthand": "left_wrist"}
# Lower-case joint name (namespace such as "mixamorig:" removed) -> role, per naming family.
BVH_JOINT_MAPS: dict[str, dict[str, str]] = {
    "cmu": _sided({"hips": "pelvis", "lowerback": "spine1", "spine": "spine2", "spine1": "spine3", "neck": "neck",
                   "head": "head", **_LIMBS}),
    "mixamo/motionbuilder": _sided({"hips": "pelvis", "spine": "spine1", "spine1": "spine2", "spine2": "spine3",
                                    "neck": "neck", "head": "head", **_LIMBS}),
    "makehuman": _sided({"root": "pelvis", "spine04": "spine1", "spine02": "spine2", "spine01": "spine3",
                         "neck01": "neck", "head": "head", "upperleg01.l": "left_hip", "lowerleg01.l": "left_knee",
                         "foot.l": "left_ankle", "clavicle.l": "left_collar", "upperarm01.l": "left_shoulder",
                         "lowerarm01.l": "left_elbow", "wrist.l": "left_wrist"}),
    "game_engine": {name.lower(): role for role, name in ROLE_MAPS["game_engine"].items()},
    # Bandai-Namco Research Motion datasets: one chest joint, "_L"/"_R" suffixes.
    "bandai": _sided({"hips": "pelvis", "spine": "spine1", "chest": "spine3", "neck": "neck", "head": "head",
                      "upperleg_l": "left_hip", "lowerleg_l": "left_knee", "foot_l": "left_ankle",
                      "shoulder_l": "left_collar", "upperarm_l": "left_shoulder", "lowerarm_l": "left_elbow",
                      "hand_l": "left_wrist"}),
    "smpl": {**{role: role for role in ROLES},
             **_sided({"l_hip": "left_hip", "l_knee": "left_knee", "l_ankle": "left_ankle", "l_collar": "left_collar",
                       "l_shoulder": "left_shoulder", "l_elbow": "left_elbow", "l_wrist": "left_wrist"})},
}
TOE_NAMES: dict[str, tuple[str, str]] = {
    "cmu": ("lefttoebase", "righttoebase"), "mixamo/motionbuilder": ("lefttoebase", "righttoebase"),
    "makehuman": ("toe1-1.l", "toe1-1.r"), "game_engine": TOE_MAPS["game_engine"], "smpl": ("left_foot", "right_foot"),
    "bandai": ("toes_l", "toes_r"),
}
MIN_MAPPED_ROLES = 8  # fewer than this is not a body we know how to read


def _normalise(name: str) -> str:
    return name.rsplit(":", 1)[-1].strip().lower()


def map_roles(joint_names: list[str], where: str = "BVH file") -> tuple[str, list[int], tuple[int, int] | None]:
    """The naming family that maps the most roles, the joint of each role (-1 if absent), and the toes."""
    normalised = [_normalise(n) for n in joint_names]
    best, best_roles = "", [-1] * len(ROLES)
    for family, mapping in BVH_JOINT_MAPS.items():
        found = {mapping[n]: j for j, n in reversed(list(enumerate(normalised))) if n in mapping}
        roles = [found.get(role, -1) for role in ROLES]
        if sum(r >= 0 for r in roles) > sum(r >= 0 for r in best_roles):
            best, best_roles = family, roles
    if sum(r >= 0 for r in best_roles) < MIN_MAPPED_ROLES or best_roles[0] < 0:
        raise MotionFileError(
            f"{where}: cannot map its skeleton to a body (joints {joint_names[:12]}"
            f"{' ...' if len(joint_names) > 12 else ''}); expected joint names such as CMU's Hips, LowerBack, Spine, "
            "Spine1, Neck, Head, LeftUpLeg, LeftLeg, LeftFoot, LeftShoulder, LeftArm, LeftForeArm, LeftHand (and Right*), "
            "Mixamo/MotionBuilder's Hips, Spine, Spine1, Spine2, ..., MakeHuman's root, spine04, upperleg01.L, ..., "
            "SMPL's pelvis, left_hip, ..., Bandai-Namco's Hips, Chest, UpperLeg_L, UpperArm_L, ... "
            "or the game_engine rig's pelvis, spine_01, thigh_l, upperarm_l, ...")
    toes = TOE_NAMES.get(best)
    toe_idx = None
    if toes and toes[0] in normalised and toes[1] in normalised:
        toe_idx = (normalised.index(toes[0]), normalised.index(toes[1]))
    return best, best_roles, toe_idx


@dataclass
class BvhSource:
    """A parsed BVH clip: its zero-pose skeleton, the file's local rotations (T, J, 3, 3), world joint
    transforms (T, J, 4, 4, file units), the joint of each role (-1 if absent) and the toes."""

    skeleton: Skeleton
    rotations: torch.Tensor
    world: torch.Tensor
    fps: float
    roles: list[int]
    toes: tuple[int, int] | None

    @property
    def offsets(self) -> torch.Tensor:
        """(J, 3) each joint's OFFSET from its parent (the root's: its rest position)."""
        rest = self.skeleton.rest_positions
        return torch.stack([rest[j] - rest[p] if p >= 0 else rest[j] for j, p in enumerate(self.skeleton.parents)])

    @property
    def rest_is_standing(self) -> bool:
        return rest_is_standing(self.skeleton.rest_positions, self.roles)


def read_bvh_source(path: str | os.PathLike) -> BvhSource:
    """Parse a BVH file and map its joints to roles (MotionFileError naming the file if it cannot)."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"{path}: no such BVH file")
    try:
        source_skeleton, motion = read_bvh(path)
    except (ValueError, IndexError, KeyError) as exc:
        raise MotionFileError(f"{path}: not a readable BVH file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise MotionFileError(f"{path}: not a BVH file (binary content)") from exc
    if motion.num_frames < 1:
        raise MotionFileError(f"{path}: the BVH file has no frames")
    _, roles, toes = map_roles(source_skeleton.names, str(path))
    translations = joint_translations(path)
    if translations is None:
        world = lbs.forward_kinematics(source_skeleton.rest_transforms, source_skeleton.parents, motion.rotations,
                                       motion.root_translation)
    else:
        world = world_transforms(translations, source_skeleton.parents, motion.rotations)
    return BvhSource(source_skeleton, motion.rotations, world, motion.fps, roles, toes)


def import_bvh(path: str | os.PathLike, skeleton: Skeleton, face_forward: bool = True,
               rest_orientations: torch.Tensor | None = None) -> CanonicalMotion:
    """A BVH file as a canonical clip retargeted to `skeleton` (at the file's frame rate).
    rest_orientations: (J, 3, 3) the rest its rig shares in a corpus (rig_rest.py); by default a rig
    whose zero pose does not stand takes its rest from this clip's most standing frame."""
    source = read_bvh_source(path)
    rest, rotations = source.skeleton.rest_positions, source.rotations
    if rest_orientations is not None or not source.rest_is_standing:
        if rest_orientations is None:
            rest_orientations = standing_orientations(source.world, source.roles)
        rest, rotations = rebase(source.world, source.skeleton.parents, source.offsets, source.roles,
                                 rest_orientations)
    rig = SourceRig(source.skeleton.parents, rest, source.roles, source.toes)
    pelvis = source.roles[0]
    displacement = source.world[:, pelvis, :3, 3] - rest[pelvis]
    # BVH rest frames are world-aligned, so the local rotations are the world-axis rotations.
    return retarget(rotations, displacement, source.fps, rig, skeleton, face_forward=face_forward)
