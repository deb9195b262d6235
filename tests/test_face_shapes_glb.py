"""Morph targets in the GLB: sparse POSITION accessors, named in mesh.extras.targetNames, valid
for the Khronos validator, read back exactly, and added before skinning like our LBS."""
from __future__ import annotations

import numpy as np
import torch

from avatarclip_core.body.types import MorphTargets
from avatarclip_core.export import read_glb, write_glb

from gltf_validation import error_summary, validate_glb
from test_export_fixtures import bending_motion, chain_skeleton, cylinder_mesh
from test_export_gltf import glb_json_and_bin


def _mesh_with_targets():
    skel = chain_skeleton(4)
    mesh = cylinder_mesh(skel)
    V = len(mesh.vertices)
    deltas = torch.zeros(3, V, 3)
    deltas[0, :10, 0] = 0.01
    deltas[1, V - 5:, 1] = -0.02
    mesh.morph_targets = MorphTargets(["smile", "blink", "still"], deltas)  # "still" moves nothing
    return mesh, bending_motion(skel, frames=6)


def test_morph_targets_are_sparse_valid_and_round_trip(tmp_path):
    mesh, motion = _mesh_with_targets()
    path = write_glb(mesh, tmp_path / "morph.glb", motion, max_influences=4)
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, error_summary(report)
    doc, _ = glb_json_and_bin(path)
    gmesh = doc["meshes"][0]
    assert gmesh["extras"]["targetNames"] == ["smile", "blink", "still"]
    assert gmesh["weights"] == [0.0, 0.0, 0.0]
    targets = gmesh["primitives"][0]["targets"]
    accs = [doc["accessors"][t["POSITION"]] for t in targets]
    assert [a["sparse"]["count"] for a in accs[:2]] == [10, 5]  # only the moved vertices are stored
    assert all("bufferView" not in a for a in accs) and "sparse" not in accs[2]
    assert accs[1]["min"][1] < 0 and accs[1]["max"] == [0.0, 0.0, 0.0]
    mesh2, _ = read_glb(path)
    assert mesh2.morph_targets.names == ["smile", "blink", "still"]
    assert torch.equal(mesh2.morph_targets.deltas, mesh.morph_targets.deltas)
    assert "targetNames" not in mesh2.extras


def test_a_mesh_without_targets_writes_none(tmp_path):
    mesh, _ = _mesh_with_targets()
    mesh.morph_targets = None
    doc, _ = glb_json_and_bin(write_glb(mesh, tmp_path / "plain.glb"))
    assert "targets" not in doc["meshes"][0]["primitives"][0] and "weights" not in doc["meshes"][0]


def test_morph_targets_must_match_the_vertices(tmp_path):
    mesh, _ = _mesh_with_targets()
    mesh.morph_targets = MorphTargets(["x"], torch.zeros(1, 7, 3))
    try:
        write_glb(mesh, tmp_path / "bad.glb")
    except ValueError as exc:
        assert "7 vertices" in str(exc)
    else:
        raise AssertionError("a mismatched morph target was written")
    assert not (tmp_path / "bad.glb").exists()
