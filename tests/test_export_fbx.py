"""FBX through Blender (optional `bpy` extra): run only where bpy is installed, in the slow tier."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from avatarclip_core.export import (
    FbxUnavailableError,
    fbx_available,
    glb_to_fbx,
    inspect_in_blender,
    require_bpy,
    write_glb,
)
from avatarclip_core.export import fbx as fbx_module

from test_export_fixtures import bending_motion, chain_skeleton, cylinder_mesh, world_joint_positions



@pytest.fixture
def needs_blender():
    from conftest import require_blender

    require_blender()


def test_missing_bpy_raises_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_BPY_PYTHON", sys.executable)  # the app's interpreter has no bpy
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpy" else real(name, *a))
    assert not fbx_available()
    with pytest.raises(FbxUnavailableError, match="make install-fbx"):
        require_bpy()
    with pytest.raises(FbxUnavailableError, match="make install-fbx"):
        glb_to_fbx(tmp_path / "a.glb", tmp_path / "a.fbx")
    assert not (tmp_path / "a.fbx").exists()


def test_child_without_bpy_maps_to_fbx_unavailable(tmp_path, monkeypatch):
    """An interpreter that cannot import bpy (here: bpy import blocked) exits 3 -> FbxUnavailableError."""
    blocker = tmp_path / "nobpy"
    blocker.mkdir()
    (blocker / "bpy.py").write_text("raise ImportError('blocked for the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))
    with pytest.raises(FbxUnavailableError, match="blocked for the test"):
        fbx_module._run_blender({"op": "inspect", "path": "x.glb"}, python=_other_name_for_python(tmp_path), timeout=60)


def _other_name_for_python(tmp_path) -> str:
    """A symlink to this interpreter, so fbx.py treats it as 'another' Python and spawns it."""
    link = tmp_path / "python-alias"
    link.symlink_to(sys.executable)
    return str(link)


@pytest.fixture(scope="module")
def animated_glb(tmp_path_factory):
    skel = chain_skeleton(5)
    mesh = cylinder_mesh(skel, colors=True, textured=True)
    motion = bending_motion(skel, frames=37, fps=30)
    path = write_glb(mesh, tmp_path_factory.mktemp("fbx") / "avatar.glb", motion)
    return path, skel, motion


@pytest.mark.slow
@pytest.mark.usefixtures("needs_blender")
def test_glb_imports_in_blender(animated_glb):
    path, skel, motion = animated_glb
    info = inspect_in_blender(path, sample_frames=[0, 12, 36])
    assert info["armatures"] == 1 and info["bones"] == skel.num_joints
    assert sorted(info["bone_names"]) == sorted(skel.names)
    assert info["meshes"] == 1, f"bone-shape Icosphere must not count: {info['mesh_names']}"
    assert info["frames"] == motion.num_frames and info["fps"] == pytest.approx(30.0)
    assert info["actions"] == 1 and info["images"] == 1
    assert_blender_pose_matches_fk(info, skel, motion, [0, 12, 36])
    assert "bpy" not in sys.modules, "bpy must stay out of this process"


def assert_blender_pose_matches_fk(info: dict, skel, motion, frames) -> None:
    """Blender's evaluated bone heads (Z up) equal our FK (Y up): glTF (x, y, z) -> Blender (x, -z, y)."""
    import torch

    expected = world_joint_positions(skel, motion)[:, :, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    for t in frames:
        got = torch.tensor([info["joint_positions"][str(t)][n] for n in skel.names], dtype=torch.float64)
        assert (got - expected[t]).abs().max() < 1e-4, f"frame {t}"


@pytest.mark.slow
@pytest.mark.usefixtures("needs_blender")
def test_glb_to_fbx_reimports_with_same_bones_and_frames(animated_glb, tmp_path):
    path, skel, motion = animated_glb
    fbx = glb_to_fbx(path, tmp_path / "out" / "avatar.fbx")
    assert fbx.exists() and fbx.read_bytes()[:18] == b"Kaydara FBX Binary"
    assert [p.name for p in fbx.parent.iterdir()] == ["avatar.fbx"], "no temp files left behind"
    info = inspect_in_blender(fbx, sample_frames=[0, 20, 36])
    assert info["armatures"] == 1 and info["bones"] == skel.num_joints, info["bone_names"]
    assert info["meshes"] == 1 and "Icosphere" not in " ".join(info["mesh_names"])
    assert info["frames"] == motion.num_frames
    assert info["images"] == 1, "the texture must be embedded even with vertex colours present"
    assert_blender_pose_matches_fk(info, skel, motion, [0, 20, 36])
    assert "bpy" not in sys.modules
