"""Export profiles: typed table and overrides (torch-free), bone names, T-pose baking that keeps the
motion's look, influence caps and in-place clips, on the real Anny body."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.types import MorphTargets
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.profiles import (
    MIXAMO_NAMES, PROFILES, VRM_HUMANOID_NAMES, VRM_REQUIRED_BONES, resolve_formats, resolve_profile, vrm_bone_of)
from avatarclip_core.motion.gen_config import MotionGenConfig
from avatarclip_core.motion.procedural import MotionConfig
from avatarclip_core.motion.select import build_motion
from avatarclip_core.rig.rest_pose import rest_change_error, t_pose_rotations


def test_profiles_module_loads_without_torch():
    code = "import sys, avatarclip_core.export.profiles; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_profile_table_and_overrides():
    assert PROFILES["unity"].bone_names == "mixamo" and PROFILES["unity"].rest_pose == "T"
    assert {p.max_influences for n, p in PROFILES.items() if n in ("unity", "threejs", "vrm")} == {4}
    assert PROFILES["generic"].rest_pose == "A" and PROFILES["generic"].max_influences == 8
    custom = resolve_profile("unity", root_motion="root_motion", max_influences=8)
    assert (custom.root_motion, custom.max_influences, custom.bone_names) == ("root_motion", 8, "mixamo")
    with pytest.raises(ValueError, match="unknown export profile 'godot'"):
        resolve_profile("godot")
    with pytest.raises(ValueError, match="max_influences must be 4 or 8"):
        resolve_profile("vrm", max_influences=5)


def test_formats():
    assert resolve_formats(("auto",), fbx_installed=False) == ("glb", "bvh")
    assert resolve_formats(("auto",), fbx_installed=True) == ("glb", "fbx", "bvh")
    assert resolve_formats(("vrm", "glb"), fbx_installed=True) == ("glb", "vrm")
    assert resolve_formats(("glb",), fbx_installed=False, fbx_flag=True) == ("glb", "fbx")
    with pytest.raises(ValueError, match="unknown export format"):
        resolve_formats(("obj",), fbx_installed=False)


def test_bone_name_tables_cover_the_rig(anny_mesh):
    names = anny_mesh.skeleton.names
    assert set(MIXAMO_NAMES) <= set(names) and set(VRM_HUMANOID_NAMES) <= set(names)
    assert len(set(MIXAMO_NAMES.values())) == len(MIXAMO_NAMES)
    assert MIXAMO_NAMES["upperarm_l"] == "mixamorig:LeftArm" and MIXAMO_NAMES["index_02_r"] == "mixamorig:RightHandIndex2"
    assert set(VRM_REQUIRED_BONES) <= set(VRM_HUMANOID_NAMES.values())
    assert vrm_bone_of("mixamorig:LeftHandPinky3") == vrm_bone_of("pinky_03_l") == "leftLittleDistal"


@pytest.fixture(scope="module")
def walk(anny_mesh):
    motion, _ = build_motion(anny_mesh.skeleton, MotionConfig(name="walk"), MotionGenConfig())
    return motion


def test_unity_profile_t_pose_same_motion(anny_mesh, walk):
    mesh, motion = apply_profile(anny_mesh, walk, resolve_profile("unity", root_motion="root_motion"))
    skel = mesh.skeleton
    assert skel.names[1] == "mixamorig:Hips" and "pelvis" not in skel.names
    assert motion.joint_names == skel.names
    assert int((mesh.skin_weights > 0).sum(dim=1).max()) <= 4
    rest = skel.rest_transforms.double()
    pos = {n: rest[skel.index(n), :3, 3] for n in skel.names}
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        for a, b in (("Arm", "ForeArm"), ("ForeArm", "Hand"), ("Hand", "HandMiddle1")):
            d = pos[f"mixamorig:{side}{b}"] - pos[f"mixamorig:{side}{a}"]
            assert float(d[0]) * sign / float(d.norm()) > 0.999, (side, a, b)
        d = pos[f"mixamorig:{side}Leg"] - pos[f"mixamorig:{side}UpLeg"]
        assert float(-d[1] / d.norm()) > 0.999
    # every joint moves exactly as before: the rest change is folded into the motion
    order = [walk.joint_names.index(n) for n in anny_mesh.skeleton.names]
    before = lbs.forward_kinematics(anny_mesh.skeleton.rest_transforms.double(), anny_mesh.skeleton.parents,
                                    walk.rotations[:, order].double(), walk.root_translation.double())
    after = lbs.forward_kinematics(rest, skel.parents, motion.rotations.double(), motion.root_translation.double())
    assert torch.allclose(before[..., :3, 3], after[..., :3, 3], atol=1e-5)
    assert torch.allclose(before[..., :3, :3], after[..., :3, :3], atol=1e-5)


def test_t_pose_vertex_change_is_small(anny_mesh, walk):
    from avatarclip_core.export.apply_profile import capped_mesh
    from avatarclip_core.rig.rest_pose import bake_rest_pose

    capped = capped_mesh(anny_mesh, 4)
    pose = t_pose_rotations(capped.skeleton)
    error = rest_change_error(capped, bake_rest_pose(capped, pose), walk, pose)
    assert 0.0 < error < 0.03  # measured 23.9 mm at the shoulders (LBS blends the baked vertices anew)


def test_in_place_and_morph_targets_follow(anny_mesh, walk):
    V = len(anny_mesh.vertices)
    hand = anny_mesh.skeleton.index("hand_l")
    on_hand = (anny_mesh.skin_indices == hand).any(dim=1) & (anny_mesh.skin_weights.max(dim=1).values > 0.99)
    deltas = torch.zeros(1, V, 3)
    deltas[0, on_hand, 1] = -0.01
    anny = type(anny_mesh)(**{**anny_mesh.__dict__, "morph_targets": MorphTargets(["handDown"], deltas)})
    mesh, motion = apply_profile(anny, walk, resolve_profile("vrm", root_motion="in_place"))
    assert float(motion.root_translation[:, [0, 2]].abs().max()) == 0.0
    assert torch.equal(motion.root_translation[:, 1], walk.root_translation[:, 1])
    turned = mesh.morph_targets.deltas[0, on_hand]
    assert torch.allclose(turned.norm(dim=1), torch.full((int(on_hand.sum()),), 0.01), atol=3e-4)  # blends of rotations
    assert float((turned - deltas[0, on_hand]).norm(dim=1).max()) > 1e-3  # the hand turned, so did its offsets
    assert "hips" in mesh.skeleton.names and anny_mesh.skeleton.names[1] == "pelvis"  # input untouched


def test_rest_requests_take_formats_and_profile():
    from web import jobs as J

    specs = [J.SliderInfo("height", 0.0, 1.0, 0.5, "phenotype")]
    req = J.parse_sliders_request('{"height": 0.9, "formats": ["glb", "VRM"], "profile": "unity"}', specs, ["preview"])
    assert req.sliders == {"height": 0.9}
    assert req.submit_args()[2]["overrides"] == {"export.formats": "glb,vrm", "export.profile": "unity"}
    text = J.parse_text_request('{"shape": "a tall man", "formats": "glb,bvh"}')
    assert text["config"]["overrides"] == {"export.formats": "glb,bvh"}
    with pytest.raises(Exception, match='unknown format "obj"'):
        J.parse_sliders_request('{"height": 0.9, "formats": ["obj"]}', specs, ["preview"])
    with pytest.raises(Exception, match='unknown profile "godot"'):
        J.parse_text_request('{"shape": "a man", "profile": "godot"}')
    assert J.ordered_files(["motion.bvh", "avatar.vrm", "avatar.glb"]) == ["avatar.glb", "avatar.vrm", "motion.bvh"]
