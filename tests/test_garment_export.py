"""Garments in GLB and VRM: a dressed avatar (avatarclip_core.outfit) is written as the body plus one
skinned mesh node per garment on the same skin, each garment with its own material in its colour;
face shapes stay on the body and the VRM expressions point at it; the files are valid and read
back into the mesh that was written."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from avatarclip_core.export import read_glb, write_glb
from avatarclip_core.export.apply_profile import apply_profile
from avatarclip_core.export.color import srgb_to_linear
from avatarclip_core.export.face_shapes import with_face_shapes
from avatarclip_core.export.profiles import PROFILES
from avatarclip_core.export.vrm import read_vrm_extension, write_vrm
from avatarclip_core.outfit import GarmentSpec, dress

from gltf_validation import error_summary, validate_glb
from test_export_gltf import glb_json_and_bin

RED, BLUE, WHITE = (0.8, 0.1, 0.1), (0.15, 0.25, 0.6), (0.95, 0.95, 0.95)
OUTFIT = [GarmentSpec("t_shirt", RED), GarmentSpec("jeans", BLUE), GarmentSpec("shoes", WHITE)]
COLOURS = {g.kind: g.rgb for g in OUTFIT}


@pytest.fixture(scope="module")
def dressed(anny_body, anny_mesh):
    mesh, _ = dress(anny_mesh, OUTFIT, skin_rgb=(0.8, 0.62, 0.52))
    return with_face_shapes(mesh, anny_body, anny_mesh.vertices), len(anny_mesh.vertices)


@pytest.fixture(scope="module")
def glb(dressed, tmp_path_factory):
    mesh, _ = dressed
    return write_glb(mesh, tmp_path_factory.mktemp("garments") / "avatar.glb", max_influences=4)


@pytest.fixture(scope="module")
def vrm(dressed, tmp_path_factory):
    mesh, _ = dressed
    profile = PROFILES["vrm"]  # T-pose, 4 influences, VRM bone names
    vrm_mesh, _ = apply_profile(mesh, None, profile)
    return write_vrm(vrm_mesh, tmp_path_factory.mktemp("garments") / "avatar.vrm"), vrm_mesh


def _layout(path):
    doc, _ = glb_json_and_bin(path)
    mesh_nodes = [n for n in doc["nodes"] if "mesh" in n]
    return doc, mesh_nodes


def _check_layout(doc, mesh_nodes, mesh, n_body):
    records = mesh.extras["garments"]  # in the order dress() layered them (inner first)
    kinds = [r["kind"] for r in records]
    assert sorted(kinds) == sorted(COLOURS)
    assert [n["name"] for n in mesh_nodes] == [mesh.name] + [f"garment_{k}" for k in kinds]
    assert {n["skin"] for n in mesh_nodes} == {0} and len(doc["skins"]) == 1  # one skeleton for all
    roots = doc["scenes"][0]["nodes"]
    assert all(doc["nodes"].index(n) in roots for n in mesh_nodes)  # skinned meshes sit at the root
    prims = [doc["meshes"][n["mesh"]]["primitives"] for n in mesh_nodes]
    assert [len(p) for p in prims] == [1, 1, 1, 1]
    counts = [doc["accessors"][p[0]["attributes"]["POSITION"]]["count"] for p in prims]
    assert counts == [n_body] + [r["vertex_count"] for r in records]
    assert sum(counts) == len(mesh.vertices)
    faces = [doc["accessors"][p[0]["indices"]]["count"] // 3 for p in prims]
    assert sum(faces) == len(mesh.faces) and faces[1:] == [r["face_count"] for r in records]
    materials = [doc["materials"][p[0]["material"]] for p in prims]
    assert [m["name"] for m in materials[1:]] == [f"garment_{k}" for k in kinds]
    assert len({p[0]["material"] for p in prims}) == 4  # each garment its own material
    for material, kind in zip(materials[1:], kinds):
        np.testing.assert_allclose(material["pbrMetallicRoughness"]["baseColorFactor"],
                                   [*srgb_to_linear(np.array(COLOURS[kind])), 1.0], atol=1e-6)
    # face shapes: on the body only, named there, so an engine finds them on one mesh
    assert len(prims[0][0]["targets"]) == len(mesh.morph_targets.names) > 50
    assert doc["meshes"][mesh_nodes[0]["mesh"]]["extras"]["targetNames"] == list(mesh.morph_targets.names)
    assert all("targets" not in p[0] and "weights" not in doc["meshes"][n["mesh"]]
               for p, n in zip(prims[1:], mesh_nodes[1:]))
    return prims


def test_dressed_glb_has_a_mesh_and_material_per_garment(glb, dressed):
    mesh, n_body = dressed
    doc, mesh_nodes = _layout(glb)
    prims = _check_layout(doc, mesh_nodes, mesh, n_body)
    assert "COLOR_0" in prims[0][0]["attributes"]  # the body keeps its vertex colours
    report = validate_glb(glb)
    assert report["issues"]["numErrors"] == 0, error_summary(report)


def test_face_shapes_move_no_cloth(dressed):
    mesh, n_body = dressed  # what the writer relies on: face shapes stop above the neckline
    assert mesh.morph_targets.deltas[:, n_body:].abs().max() == 0
    assert mesh.morph_targets.deltas[:, :n_body].abs().max() > 1e-3


def test_dressed_glb_reads_back_as_the_mesh_written(glb, dressed):
    mesh, _ = dressed
    back, _ = read_glb(glb)
    assert back.vertices.shape == mesh.vertices.shape
    assert torch.allclose(back.vertices, mesh.vertices.float(), atol=1e-6)
    assert torch.equal(back.faces, mesh.faces.long())
    assert back.extras["garments"] == json.loads(json.dumps(mesh.extras["garments"]))  # tuples come back as lists
    assert torch.allclose(back.morph_targets.deltas, mesh.morph_targets.deltas.float(), atol=1e-6)
    assert torch.allclose(back.skin_weights.sum(1), torch.ones(len(mesh.vertices)), atol=1e-5)
    # colours: the body's per vertex, each garment's from its material (times its shading)
    error = (back.vertex_colors[:, :3] - mesh.vertex_colors[:, :3].float()).abs().max(dim=1).values
    for r in mesh.extras["garments"]:
        rows = slice(r["first_vertex"], r["first_vertex"] + r["vertex_count"])
        typical = back.vertex_colors[rows, :3].median(0).values.numpy()  # a sole or zip line is the exception
        assert np.abs(typical - np.array(r["colour"])).max() < 2e-3, (r["kind"], typical)
    # exact where the shading darkens (white shoes' sole); only a shade above the base colour is clamped
    assert error.max() < 2e-3, float(error.max())


def test_a_mesh_without_garments_keeps_one_mesh(tmp_path, anny_mesh):
    doc, mesh_nodes = _layout(write_glb(anny_mesh, tmp_path / "bare.glb"))
    assert len(mesh_nodes) == 1 and len(doc["meshes"]) == 1 and len(doc["materials"]) == 1


def test_bad_garment_record_is_refused(tmp_path, dressed):
    mesh, _ = dressed
    broken = replace(mesh, extras={**mesh.extras, "garments": mesh.extras["garments"][:-1]})  # stale record
    with pytest.raises(ValueError, match="covers"):
        write_glb(broken, tmp_path / "broken.glb")
    assert not (tmp_path / "broken.glb").exists()


@pytest.mark.slow  # the T-pose profile and a second validator run: ~5 s
def test_dressed_vrm_binds_expressions_to_the_body(vrm, dressed):
    path, vrm_mesh = vrm
    _, n_body = dressed
    doc, mesh_nodes = _layout(path)
    prims = _check_layout(doc, mesh_nodes, vrm_mesh, n_body)
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, error_summary(report)
    ext = read_vrm_extension(path)
    body_node = doc["nodes"].index(mesh_nodes[0])
    binds = [b for e in ext["expressions"]["preset"].values() for b in e["morphTargetBinds"]]
    assert binds and {b["node"] for b in binds} == {body_node}
    assert max(b["index"] for b in binds) < len(prims[0][0]["targets"])
    assert sorted(a["node"] for a in ext["firstPerson"]["meshAnnotations"]) == \
        sorted(doc["nodes"].index(n) for n in mesh_nodes)
    for n in mesh_nodes[1:]:  # garments: toon-shaded in their own colour
        material = doc["materials"][doc["meshes"][n["mesh"]]["primitives"][0]["material"]]
        mtoon = material["extensions"]["VRMC_materials_mtoon"]
        assert mtoon["shadeColorFactor"] == pytest.approx(
            [0.55 * c for c in material["pbrMetallicRoughness"]["baseColorFactor"][:3]])
    weights = vrm_mesh.skin_weights
    assert int((weights > 0).sum(1).max()) <= 4  # the profile capped garments too


@pytest.mark.slow
def test_three_js_and_three_vrm_load_the_garments(glb, vrm, dressed, tmp_path):
    """The real clients (tests/browser/three_client.js, headless Chromium): one skinned mesh per part
    on one skeleton, each garment with its own material and no morph targets; three-vrm's blink moves
    the body only."""
    from test_vrm_browser import _client

    mesh, n_body = dressed
    kinds = [r["kind"] for r in mesh.extras["garments"]]
    for path in (glb, vrm[0]):
        result = _client(tmp_path, "parts", str(path))
        parts = result["parts"]
        assert result["skeletons"] == 1, result
        assert [p["vertices"] for p in parts] == [n_body] + [r["vertex_count"] for r in mesh.extras["garments"]]
        assert [p["material"] for p in parts[1:]] == [f"garment_{k}" for k in kinds]
        assert parts[0]["morph_targets"] == 67 and all(p["morph_targets"] == 0 for p in parts[1:])
        for p, kind in zip(parts[1:], kinds):  # three.js keeps material colours linear
            assert p["color"] == pytest.approx(list(srgb_to_linear(np.array(COLOURS[kind]))), abs=1e-4)
    assert result["blinking"] == [parts[0]["name"]]
    assert {p["material_type"] for p in parts[1:]} == {"MToonMaterial"}
