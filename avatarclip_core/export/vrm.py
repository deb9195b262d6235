"""VRM 1.0 (`avatar.vrm`): the GLB plus the VRMC_vrm extension that VTuber/VR apps and three-vrm read.

A VRM is a GLB whose root carries `VRMC_vrm`: meta (name, authors, licence and permissions), the
humanoid map (glTF node of each VRM bone), expressions (presets bound to morph targets), lookAt and
firstPerson. The mesh must already be in VRM's shape, which the `vrm` export profile gives
(`apply_profile`): T-pose rest, at most 4 influences per vertex, +Z forward (our convention).

Expressions are bound by ARKit blend-shape names (the face shapes the GLB writer stores as morph
targets, listed in mesh.extras.targetNames as glTF viewers expect); an expression whose shapes the
avatar lacks is written without binds, so the preset set is always complete. lookAt is driven by
expressions (the body has no eye bones): lookUp/Down/Left/Right bind ARKit's eyeLook* shapes.
Materials are MToon (VRMC_materials_mtoon, VRM's toon shading) when the avatar's colour is a
texture or one uniform colour: shading is what makes a blink or a smile visible on a plain face.
MToon has no vertex colours, so an avatar coloured per vertex (photo avatars: skin, hair, brows)
gets KHR_materials_unlit instead, which keeps its colours in every VRM client. Garments (a dressed
avatar's own mesh nodes, see gltf.py) are one colour each and get MToon; expressions bind the body's
node, firstPerson lists every mesh node.

The motion goes to a separate `motion.vrma` (VRMC_vrm_animation 1.0, `write_vrma`): the same T-posed
skeleton with humanoid rotation channels and the hips' translation, which VRM clients retarget onto
any VRM (three-vrm-animation plays it on avatar.vrm within 0.01 mm of our FK).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib as gl
import torch

from ..body.lbs import forward_kinematics, matrix_to_quaternion_xyzw, rest_local_transforms
from ..body.types import Motion, RiggedMesh
from ._atomic import atomic_write_bytes
from ._common import check_single_root, motion_in_skeleton_order
from ._glb_builder import GlbBuilder
from .color import colors_srgb_to_linear
from .garments import garment_parts
from .gltf import _trs, glb_bytes
from .profiles import VRM_REQUIRED_BONES, vrm_bone_of

__all__ = ["VrmMeta", "EXPRESSION_BINDS", "VRM_EXPRESSIONS", "vrm_bytes", "write_vrm", "vrma_bytes", "write_vrma"]

# VRM 1.0 preset expressions -> (ARKit blend shape, weight). Weights follow the shapes' meaning
# (e.g. a smile also squints the cheeks); `neutral` is the rest face, so it binds nothing.
EXPRESSION_BINDS: dict[str, tuple[tuple[str, float], ...]] = {
    "happy": (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0), ("cheekSquintLeft", 0.6),
              ("cheekSquintRight", 0.6), ("eyeSquintLeft", 0.4), ("eyeSquintRight", 0.4)),
    "angry": (("browDownLeft", 1.0), ("browDownRight", 1.0), ("eyeSquintLeft", 0.5), ("eyeSquintRight", 0.5),
              ("noseSneerLeft", 0.6), ("noseSneerRight", 0.6), ("mouthFrownLeft", 0.6), ("mouthFrownRight", 0.6)),
    "sad": (("browInnerUp", 1.0), ("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0), ("mouthShrugLower", 0.4),
            ("eyeSquintLeft", 0.2), ("eyeSquintRight", 0.2)),
    "relaxed": (("mouthSmileLeft", 0.4), ("mouthSmileRight", 0.4), ("eyeBlinkLeft", 0.35),
                ("eyeBlinkRight", 0.35), ("browInnerUp", 0.2)),
    "surprised": (("browInnerUp", 1.0), ("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0), ("eyeWideLeft", 1.0),
                  ("eyeWideRight", 1.0), ("jawOpen", 0.5)),
    # visemes (Japanese vowels, as VRM names them)
    "aa": (("jawOpen", 0.7), ("mouthLowerDownLeft", 0.3), ("mouthLowerDownRight", 0.3)),
    "ih": (("jawOpen", 0.2), ("mouthStretchLeft", 0.6), ("mouthStretchRight", 0.6)),
    "ou": (("mouthPucker", 1.0), ("mouthFunnel", 0.3), ("jawOpen", 0.15)),
    "ee": (("mouthStretchLeft", 0.5), ("mouthStretchRight", 0.5), ("mouthSmileLeft", 0.3), ("mouthSmileRight", 0.3),
           ("jawOpen", 0.1)),
    "oh": (("mouthFunnel", 1.0), ("jawOpen", 0.4)),
    "blink": (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    "blinkLeft": (("eyeBlinkLeft", 1.0),),
    "blinkRight": (("eyeBlinkRight", 1.0),),
    # gaze: the avatar's own left is +X; its left eye looks "out" to the left, its right eye "in"
    "lookUp": (("eyeLookUpLeft", 1.0), ("eyeLookUpRight", 1.0)),
    "lookDown": (("eyeLookDownLeft", 1.0), ("eyeLookDownRight", 1.0)),
    "lookLeft": (("eyeLookOutLeft", 1.0), ("eyeLookInRight", 1.0)),
    "lookRight": (("eyeLookInLeft", 1.0), ("eyeLookOutRight", 1.0)),
    "neutral": (),
}
VRM_EXPRESSIONS: tuple[str, ...] = tuple(EXPRESSION_BINDS)
_MOUTH = {"aa", "ih", "ou", "ee", "oh"}
_BLINK = {"blink", "blinkLeft", "blinkRight"}
_LOOK = {"lookUp", "lookDown", "lookLeft", "lookRight"}
_EMOTION = {"happy", "angry", "sad", "relaxed", "surprised"}
# Eyes relative to the head joint when the avatar has no blink shapes to locate them (adult Anny).
_DEFAULT_EYE_OFFSET = (0.0, 0.06, 0.08)


@dataclass
class VrmMeta:
    """VRMC_vrm meta. The licence fields describe what the generated avatar really is: made with
    avatar-studio (Apache-2.0) on the Anny body model (Apache-2.0, derived from MakeHuman's CC0
    assets). Usage permissions are the conservative VRM defaults and only the author may perform as
    the avatar (a photo avatar shows a real person); the author can loosen them."""

    name: str = "avatar"
    version: str = "1"
    authors: tuple[str, ...] = ("avatar-studio user",)
    copyright_information: str = ""
    third_party_licenses: str = ("Body: Anny body model (NAVER LABS Europe), Apache-2.0, derived from MakeHuman "
                                 "assets (CC0). Generated with avatar-studio (Apache-2.0).")
    references: tuple[str, ...] = ("https://github.com/naver/anny", "https://www.makehumancommunity.org/")
    avatar_permission: str = "onlyAuthor"  # onlyAuthor | onlySeparatelyLicensedPerson | everyone
    commercial_usage: str = "personalNonProfit"  # personalNonProfit | personalProfit | corporation
    allow_redistribution: bool = True
    modification: str = "allowModificationRedistribution"
    credit_notation: str = "required"  # Apache-2.0 asks to keep the attribution notices
    other_license_url: str = "https://www.apache.org/licenses/LICENSE-2.0"
    extra: dict = field(default_factory=dict)

    def as_vrm(self) -> dict:
        meta = {
            "name": self.name, "version": self.version, "authors": list(self.authors) or ["unknown"],
            "copyrightInformation": self.copyright_information, "references": list(self.references),
            "thirdPartyLicenses": self.third_party_licenses, "licenseUrl": "https://vrm.dev/licenses/1.0/",
            "avatarPermission": self.avatar_permission, "allowExcessivelyViolentUsage": False,
            "allowExcessivelySexualUsage": False, "commercialUsage": self.commercial_usage,
            "allowPoliticalOrReligiousUsage": False, "allowAntisocialOrHateUsage": False,
            "creditNotation": self.credit_notation, "allowRedistribution": self.allow_redistribution,
            "modification": self.modification, "otherLicenseUrl": self.other_license_url,
        }
        meta.update(self.extra)
        return {k: v for k, v in meta.items() if v != ""}


def _humanoid(gltf: gl.GLTF2) -> dict:
    bones: dict[str, dict] = {}
    for index, node in enumerate(gltf.nodes):
        bone = vrm_bone_of(node.name or "")
        if bone is not None and bone not in bones:
            bones[bone] = {"node": index}
    missing = [b for b in VRM_REQUIRED_BONES if b not in bones]
    if missing:
        raise ValueError(f"VRM needs the humanoid bones {missing}; the skeleton has no joints named for them")
    return {"humanBones": bones}


def _target_names(gltf: gl.GLTF2) -> list[str]:
    mesh = gltf.meshes[0]
    names = (mesh.extras or {}).get("targetNames") if isinstance(mesh.extras, dict) else None
    count = len(mesh.primitives[0].targets or [])
    return list(names)[:count] if names else []


def _expressions(targets: list[str], mesh_node: int) -> dict:
    index = {name: i for i, name in enumerate(targets)}
    preset = {}
    for name, binds in EXPRESSION_BINDS.items():
        entry: dict = {
            "morphTargetBinds": [{"node": mesh_node, "index": index[shape], "weight": weight}
                                 for shape, weight in binds if shape in index],
            "isBinary": False,
            # an emotion or vowel closes the eyes or moves the gaze only through its own shapes
            "overrideBlink": "blend" if name in _EMOTION else "none",
            "overrideLookAt": "none",
            "overrideMouth": "blend" if name in _EMOTION else "none",
        }
        preset[name] = entry
    return {"preset": preset, "custom": {}}


def _eye_offset(mesh: RiggedMesh, targets: list[str], head_position: np.ndarray) -> list[float]:
    """Eye centre relative to the head joint: the centre of the vertices the blink shapes move."""
    shapes = mesh.morph_targets
    moved = []
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        if shapes is not None and name in shapes.names:
            delta = shapes.deltas[shapes.index(name)].detach().cpu().double().numpy()
            moved.append(np.linalg.norm(delta, axis=1) > 1e-4)
    if not moved:
        return list(_DEFAULT_EYE_OFFSET)
    verts = mesh.vertices.detach().cpu().double().numpy()
    centre = verts[np.logical_or.reduce(moved)].mean(axis=0)
    return [float(x) for x in centre - head_position]


def _mtoon(base: list[float]) -> dict:
    return {
        "specVersion": "1.0", "transparentWithZWrite": False, "renderQueueOffsetNumber": 0,
        "shadeColorFactor": [0.55 * c for c in base], "shadingShiftFactor": 0.0, "shadingToonyFactor": 0.5,
        "giEqualizationFactor": 0.9, "matcapFactor": [0.0, 0.0, 0.0], "parametricRimColorFactor": [0.0, 0.0, 0.0],
        "parametricRimFresnelPowerFactor": 5.0, "parametricRimLiftFactor": 0.0, "rimLightingMixFactor": 1.0,
        "outlineWidthMode": "none", "outlineWidthFactor": 0.0, "outlineColorFactor": [0.0, 0.0, 0.0],
        "outlineLightingMixFactor": 1.0,
    }


def _set_material(gltf: gl.GLTF2, mesh: RiggedMesh) -> set[str]:
    """MToon for textured or uniformly coloured avatars, unlit for per-vertex colours (see the module
    docstring); garments (one plain colour each, their own materials after the body's) get MToon.
    Returns the extensions used."""
    used = {_set_body_material(gltf, mesh)}
    for material in gltf.materials[1:]:
        material.extensions = {**(material.extensions or {}),
                               "VRMC_materials_mtoon": _mtoon(material.pbrMetallicRoughness.baseColorFactor[:3])}
        used.add("VRMC_materials_mtoon")
    return used


def _set_body_material(gltf: gl.GLTF2, mesh: RiggedMesh) -> str:
    material = gltf.materials[0]
    parts = garment_parts(mesh)
    colors = mesh.vertex_colors if not parts or mesh.vertex_colors is None else mesh.vertex_colors[parts[0].rows]
    uniform = colors is None or float((colors[:, :3] - colors[:1, :3]).abs().max()) < 1e-3
    if mesh.texture is None and not uniform:
        material.extensions = {**(material.extensions or {}), "KHR_materials_unlit": {}}
        return "KHR_materials_unlit"
    if mesh.texture is None and colors is not None:
        # the uniform vertex colour becomes the base colour (COLOR_0 stays, MToon ignores it)
        base = colors_srgb_to_linear(colors[:1, :3].detach().cpu().double().numpy())[0]
        material.pbrMetallicRoughness.baseColorFactor = [float(c) for c in base] + [1.0]
    mtoon = _mtoon(material.pbrMetallicRoughness.baseColorFactor[:3])
    texture = material.pbrMetallicRoughness.baseColorTexture
    if texture is not None:
        mtoon["shadeMultiplyTexture"] = {"index": texture.index}
    material.extensions = {**(material.extensions or {}), "VRMC_materials_mtoon": mtoon}
    return "VRMC_materials_mtoon"


def vrm_bytes(mesh: RiggedMesh, meta: VrmMeta | None = None, *, generator_note: str = "avatar-studio") -> bytes:
    """The VRM file's bytes for a mesh in VRM's shape (the `vrm` profile: T-pose, <= 4 influences)."""
    used = int((mesh.skin_weights > 0).sum(dim=1).max())
    if used > 4:
        raise ValueError(f"VRM allows 4 skin influences per vertex, the mesh has up to {used}: "
                         "apply the 'vrm' export profile first")
    gltf = gl.GLTF2.load_from_bytes(glb_bytes(mesh, None, generator_note=generator_note))
    for accessor in gltf.accessors:
        if accessor.bufferView is None:  # sparse morph targets: pygltflib's loader adds byteOffset 0,
            accessor.byteOffset = None   # which the validator refuses without a bufferView
    mesh_node = next(i for i, n in enumerate(gltf.nodes) if n.mesh is not None)
    targets = _target_names(gltf)
    head = next(i for i, n in enumerate(gltf.nodes) if vrm_bone_of(n.name or "") == "head")
    head_position = mesh.skeleton.rest_transforms[head, :3, 3].detach().cpu().double().numpy()
    material_extensions = _set_material(gltf, mesh)
    mesh_nodes = [i for i, n in enumerate(gltf.nodes) if n.mesh is not None]
    gaze_range = {"inputMaxValue": 30.0, "outputScale": 1.0}  # expression weights reach 1 at 30 degrees
    gltf.extensions = {**(gltf.extensions or {}), "VRMC_vrm": {
        "specVersion": "1.0",
        "meta": (meta or VrmMeta()).as_vrm(),
        "humanoid": _humanoid(gltf),
        "firstPerson": {"meshAnnotations": [{"node": node, "type": "auto"} for node in mesh_nodes]},
        "lookAt": {"type": "expression", "offsetFromHeadBone": _eye_offset(mesh, targets, head_position),
                   "rangeMapHorizontalInner": gaze_range, "rangeMapHorizontalOuter": gaze_range,
                   "rangeMapVerticalDown": gaze_range, "rangeMapVerticalUp": gaze_range},
        "expressions": _expressions(targets, mesh_node),
    }}
    gltf.extensionsUsed = sorted(set(gltf.extensionsUsed or []) | {"VRMC_vrm", *material_extensions})
    return b"".join(gltf.save_to_bytes())


def write_vrm(mesh: RiggedMesh, path: str | os.PathLike, meta: VrmMeta | None = None,
              *, generator_note: str = "avatar-studio") -> Path:
    """Write `avatar.vrm` atomically; returns the resolved path."""
    return atomic_write_bytes(path, vrm_bytes(mesh, meta, generator_note=generator_note))


def read_vrm_extension(path: str | os.PathLike) -> dict:
    """The VRMC_vrm object of a written file (for checks and tests)."""
    gltf = gl.GLTF2.load_binary(str(path))  # .vrm: pygltflib's load() picks the format by extension
    ext = (gltf.extensions or {}).get("VRMC_vrm")
    if ext is None:
        raise ValueError(f"{path} has no VRMC_vrm extension")
    return json.loads(json.dumps(ext))


def vrma_bytes(mesh: RiggedMesh, motion: Motion, *, generator_note: str = "avatar-studio") -> bytes:
    """`motion.vrma` (VRMC_vrm_animation 1.0) for the avatar `mesh` (in VRM's shape, as for `vrm_bytes`):
    the skeleton's nodes in their T-pose rest, one rotation channel per humanoid bone and the hips'
    translation. Channels are taken from our FK (each node's animated transform relative to its parent),
    so a non-humanoid joint above the hips (our `Root`, which carries root motion) is folded into the
    hips, whose parent stays at rest: VRMA clients animate humanoid bones only."""
    skel = mesh.skeleton
    check_single_root(skel)
    rotations, root_translation = motion_in_skeleton_order(skel, motion)
    rest = skel.rest_transforms.detach().cpu().double()
    world = forward_kinematics(rest, skel.parents, rotations, root_translation).numpy()  # (T, J, 4, 4)
    local_rest = rest_local_transforms(rest, skel.parents).numpy()
    bones = {vrm_bone_of(n): j for j, n in enumerate(skel.names) if vrm_bone_of(n) is not None}
    missing = [b for b in VRM_REQUIRED_BONES if b not in bones]
    if missing:
        raise ValueError(f"VRM animation needs the humanoid bones {missing}")

    gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator=f"{generator_note} (pygltflib {gl.__version__})"))
    gltf.scene = 0
    b = GlbBuilder(gltf)
    children: list[list[int]] = [[] for _ in skel.names]
    for j, p in enumerate(skel.parents):
        if p >= 0:
            children[p].append(j)
    for j, name in enumerate(skel.names):
        t, q, s = _trs(local_rest[j])
        gltf.nodes.append(gl.Node(name=name, translation=t, rotation=q, scale=s, children=children[j] or None))
    gltf.scenes.append(gl.Scene(name="Scene", nodes=[0]))

    T = rotations.shape[0]
    times = b.add_accessor((np.arange(T, dtype=np.float64) / float(motion.fps)).astype(np.float32), with_bounds=True)
    channels, samplers = [], []

    def channel(node: int, path: str, values: np.ndarray) -> None:
        samplers.append(gl.AnimationSampler(input=times, output=b.add_accessor(values.astype(np.float32)),
                                            interpolation=gl.ANIM_LINEAR))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=node, path=path)))

    for bone, j in bones.items():
        parent = skel.parents[j]
        if bone == "hips":  # relative to its parent's rest: the parent is not animated in a VRMA
            parent_world = np.broadcast_to(rest[parent].numpy() if parent >= 0 else np.eye(4), world[:, j].shape)
        else:
            parent_world = world[:, parent]
        local = np.linalg.inv(parent_world) @ world[:, j]
        quats = matrix_to_quaternion_xyzw(torch.from_numpy(np.ascontiguousarray(local[:, :3, :3]))).numpy()
        quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
        for t in range(1, T):  # same hemisphere as the previous key, so slerp takes the short way
            if (quats[t] * quats[t - 1]).sum() < 0:
                quats[t] *= -1
        channel(j, "rotation", quats)
        if bone == "hips":
            channel(j, "translation", local[:, :3, 3])
    gltf.animations.append(gl.Animation(name=motion.name, channels=channels, samplers=samplers))
    gltf.extensions = {"VRMC_vrm_animation": {
        "specVersion": "1.0", "humanoid": {"humanBones": {bone: {"node": j} for bone, j in bones.items()}}}}
    gltf.extensionsUsed = ["VRMC_vrm_animation"]
    b.finish()
    return b"".join(gltf.save_to_bytes())


def write_vrma(mesh: RiggedMesh, motion: Motion, path: str | os.PathLike, *, generator_note: str = "avatar-studio") -> Path:
    """Write `motion.vrma` atomically; returns the resolved path."""
    return atomic_write_bytes(path, vrma_bytes(mesh, motion, generator_note=generator_note))
