"""Export of the real default body (53 joints, ~14k vertices, up to 6 influences) with a procedural walk."""
from __future__ import annotations

import time

import pytest

from avatarclip_core.export import read_bvh, read_glb, write_bvh, write_glb

from gltf_validation import error_summary, validate_glb
from test_export_fixtures import world_joint_positions


@pytest.fixture(scope="module")
def walk(anny_mesh):
    from avatarclip_core.motion.procedural import MotionConfig, make_motion

    motion = make_motion(anny_mesh.skeleton, MotionConfig(name="walk", fps=30))
    motion.rotations, motion.root_translation = motion.rotations[:60], motion.root_translation[:60]
    return motion


def test_default_body_glb_is_valid_and_round_trips(anny_mesh, walk, tmp_path):
    start = time.perf_counter()
    path = write_glb(anny_mesh, tmp_path / "avatar.glb", walk)
    print(f"write_glb: {len(anny_mesh.vertices)} vertices, {anny_mesh.skeleton.num_joints} joints, "
          f"{walk.num_frames} frames in {time.perf_counter() - start:.3f} s, {path.stat().st_size / 1e6:.2f} MB")
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, error_summary(report)
    assert report["issues"]["numWarnings"] == 0, error_summary(report)
    assert report["info"]["totalVertexCount"] == len(anny_mesh.vertices)
    mesh2, motion2 = read_glb(path)
    assert mesh2.skeleton.names == anny_mesh.skeleton.names
    err = (world_joint_positions(mesh2.skeleton, motion2) - world_joint_positions(anny_mesh.skeleton, walk)).abs().max()
    assert err < 1e-5


def test_default_body_bvh_round_trips(anny_mesh, walk, tmp_path):
    skel = anny_mesh.skeleton
    skel2, motion2 = read_bvh(write_bvh(skel, walk, tmp_path / "walk.bvh", scale=100.0), scale=100.0)
    assert skel2.num_joints == skel.num_joints
    order = [skel2.names.index(n) for n in skel.names]
    got = world_joint_positions(skel2, motion2)[:, order]
    assert (got - world_joint_positions(skel, walk)).abs().max() < 1e-4


@pytest.mark.slow
def test_default_body_fbx_keeps_53_bones_and_60_frames(anny_mesh, walk, tmp_path):
    from conftest import require_blender

    require_blender()
    from avatarclip_core.export import glb_to_fbx, inspect_in_blender

    glb = write_glb(anny_mesh, tmp_path / "avatar.glb", walk)
    start = time.perf_counter()
    fbx = glb_to_fbx(glb, tmp_path / "avatar.fbx")
    print(f"glb_to_fbx: {time.perf_counter() - start:.2f} s, {fbx.stat().st_size / 1e6:.2f} MB")
    for path in (glb, fbx):
        info = inspect_in_blender(path)
        assert (info["armatures"], info["bones"], info["meshes"]) == (1, 53, 1), (path.name, info["mesh_names"])
        assert info["frames"] == 60 and info["vertices"] == len(anny_mesh.vertices)
