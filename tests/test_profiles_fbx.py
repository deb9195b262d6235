"""The unity profile end to end (slow, needs Blender's bpy: make install-fbx): `avatar body` with
--profile unity --formats glb,vrm,fbx,bvh writes an FBX that Blender imports with Mixamo bone names,
the clip's frames and the pose our FK gives the profiled (T-pose, in-place) motion."""
from __future__ import annotations

import json

import pytest

from avatarclip_core.export import inspect_in_blender
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.profiles import MIXAMO_NAMES, resolve_profile
from avatarclip_core.motion.select import build_motion

from test_export_fbx import assert_blender_pose_matches_fk


@pytest.mark.slow
def test_unity_profile_fbx_in_blender(anny_body, tmp_path):
    from conftest import require_blender
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    require_blender()
    config = load_sliders_config("preview", {"motion.name": "wave", "export.profile": "unity",
                                             "export.formats": "glb,vrm,fbx,bvh", "preview.enabled": "false"})
    folder = run_sliders_job({}, config, tmp_path / "job")
    params = json.loads((folder / "params.json").read_text())
    assert params["export"]["profile"]["bone_names"] == "mixamo"
    assert params["export"]["files"] == ["avatar.fbx", "avatar.glb", "avatar.vrm", "motion.bvh", "motion.vrma"]

    mesh = anny_body.rigged_mesh({})
    motion, _ = build_motion(mesh.skeleton, config.motion, config.motion_gen)  # what the job built
    profiled, moved = apply_profile(mesh, motion, resolve_profile("unity"))
    info = inspect_in_blender(folder / "avatar.fbx", sample_frames=[0, 15, 40])
    assert info["armatures"] == 1 and set(MIXAMO_NAMES.values()) <= set(info["bone_names"])
    assert sorted(info["bone_names"]) == sorted(profiled.skeleton.names)
    assert info["frames"] == motion.num_frames
    assert_blender_pose_matches_fk(info, profiled.skeleton, moved, [0, 15, 40])
