"""VRM 1.0 avatar.vrm: VRMC_vrm content (meta, humanoid, expressions, lookAt, firstPerson), MToon or
unlit material, <= 4 influences, Khronos validator 0 errors."""
from __future__ import annotations

import json

import pytest
import torch

from avatarclip_core.body.types import MorphTargets
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.profiles import VRM_REQUIRED_BONES, resolve_profile
from avatarclip_core.export.vrm import EXPRESSION_BINDS, VRM_EXPRESSIONS, read_vrm_extension, write_vrm
import pygltflib as gl

from gltf_validation import error_summary, validate_glb

PRESETS = ("happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft",
           "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral")


@pytest.fixture(scope="module")
def vrm_mesh(anny_mesh):
    mesh, _ = apply_profile(anny_mesh, None, resolve_profile("vrm"))
    mesh.vertex_colors = torch.tensor([0.8, 0.62, 0.52]).expand(len(mesh.vertices), 3).clone()
    return mesh


def test_vrm_is_valid_and_complete(vrm_mesh, tmp_path):
    path = write_vrm(vrm_mesh, tmp_path / "avatar.vrm")
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, error_summary(report)
    ext = read_vrm_extension(path)
    assert ext["specVersion"] == "1.0"
    bones = ext["humanoid"]["humanBones"]
    assert set(VRM_REQUIRED_BONES) <= set(bones)
    assert {"leftThumbMetacarpal", "rightLittleDistal", "leftToes"} <= set(bones)  # fingers and toes too
    glb = gl.GLTF2.load_binary(str(path))
    nodes = glb.nodes
    assert nodes[bones["hips"]["node"]].name == "hips" and nodes[bones["leftHand"]["node"]].name == "leftHand"
    assert tuple(ext["expressions"]["preset"]) == PRESETS == VRM_EXPRESSIONS
    meta = ext["meta"]
    assert meta["licenseUrl"] == "https://vrm.dev/licenses/1.0/" and "Apache-2.0" in meta["thirdPartyLicenses"]
    assert "MakeHuman" in meta["thirdPartyLicenses"] and meta["authors"]
    assert ext["lookAt"]["type"] == "expression" and ext["firstPerson"]["meshAnnotations"][0]["type"] == "auto"
    material = glb.materials[0]
    assert "VRMC_materials_mtoon" in material.extensions
    assert material.pbrMetallicRoughness.baseColorFactor[0] == pytest.approx(0.604, abs=0.01)  # sRGB 0.8
    prim = glb.meshes[0].primitives[0]
    assert getattr(prim.attributes, "JOINTS_1", None) is None  # 4 influences: one set
    assert "VRMC_vrm" in glb.extensionsUsed and "VRMC_materials_mtoon" in glb.extensionsUsed


def test_expressions_bind_arkit_targets(vrm_mesh, tmp_path):
    names = ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft"]
    V = len(vrm_mesh.vertices)
    deltas = torch.zeros(len(names), V, 3)
    head = vrm_mesh.skeleton.index("head")
    face = (vrm_mesh.skin_indices[:, 0] == head) & (vrm_mesh.vertices[:, 2] > 0.1)
    deltas[:, face, 1] = -0.002
    mesh = type(vrm_mesh)(**{**vrm_mesh.__dict__, "morph_targets": MorphTargets(names, deltas)})
    path = write_vrm(mesh, tmp_path / "m.vrm")
    assert validate_glb(path)["issues"]["numErrors"] == 0  # sparse morph targets survive the VRM rewrite
    ext = read_vrm_extension(path)
    preset = ext["expressions"]["preset"]
    assert preset["blink"]["morphTargetBinds"] == [{"node": preset["blink"]["morphTargetBinds"][0]["node"],
                                                    "index": 1, "weight": 1.0},
                                                   {"node": preset["blink"]["morphTargetBinds"][0]["node"],
                                                    "index": 2, "weight": 1.0}]
    assert [b["index"] for b in preset["aa"]["morphTargetBinds"]] == [0]  # only the shapes the avatar has
    assert preset["neutral"]["morphTargetBinds"] == []
    # the eyes sit where the blink shapes move the face, not at the default guess
    assert ext["lookAt"]["offsetFromHeadBone"] != [0.0, 0.06, 0.08]


def test_every_binding_names_an_arkit_shape():
    arkit = {"eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
             "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
             "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
             "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
             "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
             "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
             "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
             "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
             "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
             "noseSneerRight", "tongueOut"}
    assert len(arkit) == 52
    used = {shape for binds in EXPRESSION_BINDS.values() for shape, _ in binds}
    assert used <= arkit, used - arkit


def test_vrm_refuses_more_than_four_influences(anny_mesh, tmp_path):
    mesh, _ = apply_profile(anny_mesh, None, resolve_profile("vrm", max_influences=8))
    with pytest.raises(ValueError, match="VRM allows 4 skin influences"):
        write_vrm(mesh, tmp_path / "x.vrm")
    assert not (tmp_path / "x.vrm").exists()


def test_per_vertex_colours_get_unlit(vrm_mesh, tmp_path):
    colors = torch.rand(len(vrm_mesh.vertices), 3)
    mesh = type(vrm_mesh)(**{**vrm_mesh.__dict__, "vertex_colors": colors})
    path = write_vrm(mesh, tmp_path / "c.vrm")
    gltf = json.loads(gl.GLTF2.load_binary(str(path)).to_json())
    assert "KHR_materials_unlit" in gltf["materials"][0]["extensions"]
    assert validate_glb(path)["issues"]["numErrors"] == 0


def test_vrma_carries_the_humanoid_motion(anny_mesh, tmp_path):
    from avatarclip_core.export.vrm import write_vrma
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.procedural import MotionConfig
    from avatarclip_core.motion.select import build_motion

    motion, _ = build_motion(anny_mesh.skeleton, MotionConfig(name="walk"), MotionGenConfig())
    vrm_mesh, vrm_motion = apply_profile(anny_mesh, motion, resolve_profile("vrm"))
    path = write_vrma(vrm_mesh, vrm_motion, tmp_path / "motion.vrma")
    assert validate_glb(path)["issues"]["numErrors"] == 0
    gltf = gl.GLTF2.load_binary(str(path))
    ext = gltf.extensions["VRMC_vrm_animation"]
    bones = ext["humanoid"]["humanBones"]
    assert ext["specVersion"] == "1.0" and set(VRM_REQUIRED_BONES) <= set(bones)
    channels = gltf.animations[0].channels
    translated = [c.target.node for c in channels if c.target.path == "translation"]
    assert translated == [bones["hips"]["node"]]  # root travel folded into the hips, the only translation
    assert {c.target.node for c in channels if c.target.path == "rotation"} == {b["node"] for b in bones.values()}
    assert not gltf.meshes and not gltf.skins
