"""Export profiles: what each engine or client expects from a rigged avatar, as plain data (no torch).

A profile fixes four things that differ between engines and that users otherwise fix by hand:
- bone names: the body's own Unreal-mannequin names (`unreal`), Mixamo's `mixamorig:` names (what
  Unity's Humanoid and three.js examples map without help) or VRM humanoid names;
- rest pose: the body's A-pose or a T-pose (arms and fingers along +-X, legs straight down), which
  Unity's Humanoid and VRM require; `apply_profile.py` bakes it into mesh, inverse binds and motion;
- max influences per vertex: 8 (two glTF sets) or 4 (three.js, Unity's default quality and VRM
  read only JOINTS_0/WEIGHTS_0);
- root motion (the clip moves the character) or in place (horizontal root travel removed).

`ExportConfig` (the application's job config) names a profile and may override each field; the
resolved profile is recorded in params.json.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

BoneNaming = Literal["unreal", "mixamo", "vrm"]
RestPose = Literal["A", "T"]
RootMotion = Literal["root_motion", "in_place"]
ProfileName = Literal["generic", "unity", "unreal", "threejs", "vrm"]
FormatName = Literal["auto", "glb", "vrm", "fbx", "bvh"]
FILE_FORMATS: tuple[str, ...] = ("glb", "vrm", "fbx", "bvh")


@dataclass(frozen=True)
class ExportProfile:
    name: str
    bone_names: BoneNaming
    rest_pose: RestPose
    max_influences: int  # 4 or 8
    root_motion: RootMotion

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, ExportProfile] = {
    # what the exporter always wrote: the body's own rig
    "generic": ExportProfile("generic", "unreal", "A", 8, "root_motion"),
    # the UE mannequin's names; UE reads 8 influences and retargets from its A-pose mannequin
    "unreal": ExportProfile("unreal", "unreal", "A", 8, "root_motion"),
    # Humanoid avatars: Mixamo names map automatically, T-pose, 4 influences (default quality);
    # in place because a character controller usually moves the character (root_motion overrides)
    "unity": ExportProfile("unity", "mixamo", "T", 4, "in_place"),
    # three.js reads JOINTS_0/WEIGHTS_0 only; its examples and retargeting helpers use Mixamo names
    "threejs": ExportProfile("threejs", "mixamo", "T", 4, "root_motion"),
    # VRM 1.0: T-pose rest and 4 influences are required
    "vrm": ExportProfile("vrm", "vrm", "T", 4, "root_motion"),
}
FROM_PROFILE = "profile"  # an override field left at this value takes the profile's value


def resolve_profile(
    name: str,
    bone_names: str = FROM_PROFILE,
    rest_pose: str = FROM_PROFILE,
    max_influences: int = 0,
    root_motion: str = FROM_PROFILE,
) -> ExportProfile:
    """The named profile with any overrides applied (0 / "profile" keep the profile's value)."""
    if name not in PROFILES:
        raise ValueError(f"unknown export profile {name!r}; choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    changes: dict = {}
    if bone_names != FROM_PROFILE:
        changes["bone_names"] = bone_names
    if rest_pose != FROM_PROFILE:
        changes["rest_pose"] = rest_pose
    if max_influences:
        if max_influences not in (4, 8):
            raise ValueError(f"max_influences must be 4 or 8 (0 = the profile's), got {max_influences}")
        changes["max_influences"] = max_influences
    if root_motion != FROM_PROFILE:
        changes["root_motion"] = root_motion
    return replace(profile, **changes) if changes else profile


def resolve_formats(formats: tuple[str, ...] | list[str], fbx_installed: bool, fbx_flag: bool = False) -> tuple[str, ...]:
    """The files to write, in FILE_FORMATS order: "auto" is glb and bvh, plus fbx where Blender's bpy
    is installed; the legacy `fbx` flag adds fbx. An empty list or an unknown name is an error."""
    chosen = {f.strip().lower() for f in formats if f.strip()}
    unknown = sorted(chosen - set(FILE_FORMATS) - {"auto"})
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; choose from auto, {', '.join(FILE_FORMATS)}")
    if not chosen:
        raise ValueError(f"export.formats is empty; choose from auto, {', '.join(FILE_FORMATS)}")
    if "auto" in chosen:
        chosen |= {"glb", "bvh"} | ({"fbx"} if fbx_installed else set())
    if fbx_flag:
        chosen.add("fbx")
    return tuple(f for f in FILE_FORMATS if f in chosen)


# --- bone names ------------------------------------------------------------------------------------
# Keys are the body's own (Unreal mannequin) joint names; joints a table leaves out keep their name
# (the `Root` joint at the origin, which carries root motion, exists in none of the other rigs).

_SIDES = {"l": ("Left", "left"), "r": ("Right", "right")}
_FINGERS = {"thumb": ("Thumb", "Thumb"), "index": ("Index", "Index"), "middle": ("Middle", "Middle"),
            "ring": ("Ring", "Ring"), "pinky": ("Pinky", "Little")}
_VRM_FINGER_SEGMENTS = {"thumb": ("Metacarpal", "Proximal", "Distal")}
_VRM_SEGMENTS = ("Proximal", "Intermediate", "Distal")


def _bone_tables() -> tuple[dict[str, str], dict[str, str]]:
    mixamo = {"pelvis": "Hips", "spine_01": "Spine", "spine_02": "Spine1", "spine_03": "Spine2",
              "neck_01": "Neck", "head": "Head"}
    vrm = {"pelvis": "hips", "spine_01": "spine", "spine_02": "chest", "spine_03": "upperChest",
           "neck_01": "neck", "head": "head"}
    limbs = {"clavicle": ("Shoulder", "Shoulder"), "upperarm": ("Arm", "UpperArm"), "lowerarm": ("ForeArm", "LowerArm"),
             "hand": ("Hand", "Hand"), "thigh": ("UpLeg", "UpperLeg"), "calf": ("Leg", "LowerLeg"),
             "foot": ("Foot", "Foot"), "ball": ("ToeBase", "Toes")}
    for side, (mixamo_side, vrm_side) in _SIDES.items():
        for ue, (mx, vr) in limbs.items():
            mixamo[f"{ue}_{side}"] = f"{mixamo_side}{mx}"
            vrm[f"{ue}_{side}"] = f"{vrm_side}{vr}"
        for finger, (mx, vr) in _FINGERS.items():
            segments = _VRM_FINGER_SEGMENTS.get(finger, _VRM_SEGMENTS)
            for k in range(3):
                mixamo[f"{finger}_0{k + 1}_{side}"] = f"{mixamo_side}Hand{mx}{k + 1}"
                vrm[f"{finger}_0{k + 1}_{side}"] = f"{vrm_side}{vr}{segments[k]}"
    return {k: f"mixamorig:{v}" for k, v in mixamo.items()}, vrm


MIXAMO_NAMES, VRM_HUMANOID_NAMES = _bone_tables()
BONE_NAME_TABLES: dict[str, dict[str, str]] = {"unreal": {}, "mixamo": MIXAMO_NAMES, "vrm": VRM_HUMANOID_NAMES}
# VRM 1.0's required humanoid bones (VRMC_vrm humanoid.humanBones)
VRM_REQUIRED_BONES: tuple[str, ...] = (
    "hips", "spine", "head", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm",
    "rightHand", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot")


def renamed_bones(names: list[str], bone_names: str) -> list[str]:
    """Joint names in the given convention (from the body's Unreal names)."""
    table = BONE_NAME_TABLES[bone_names]
    return [table.get(n, n) for n in names]


def vrm_bone_of(name: str) -> str | None:
    """The VRM humanoid bone a joint plays, whichever convention names it; None for other joints."""
    return _VRM_BY_ANY_NAME.get(name)


_VRM_BY_ANY_NAME: dict[str, str] = {}
for _ue, _vrm in VRM_HUMANOID_NAMES.items():
    _VRM_BY_ANY_NAME[_ue] = _VRM_BY_ANY_NAME[_vrm] = _VRM_BY_ANY_NAME[MIXAMO_NAMES[_ue]] = _vrm
