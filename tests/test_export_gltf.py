"""GLB export: Khronos-valid files whose skin and animation reproduce our FK/LBS exactly."""
from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch

from avatarclip_core.body.lbs import (
    dense_skin_weights,
    forward_kinematics,
    pose_body,
    quaternion_xyzw_to_matrix,
)
from avatarclip_core.export import read_glb, write_glb
from avatarclip_core.export.gltf import smooth_vertex_normals

from gltf_validation import error_summary, validate_glb
from test_export_fixtures import bending_motion, chain_skeleton, cylinder_mesh, world_joint_positions


def glb_json_and_bin(path) -> tuple[dict, bytes]:
    """Parse a GLB container by hand (independently of pygltflib)."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON" and json_len % 4 == 0
    doc = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack_from("<I4s", data, 20 + json_len)
    assert bin_type == b"BIN\0" and bin_len % 4 == 0
    return doc, data[28 + json_len : 28 + json_len + bin_len]


_NP = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_W = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    assert "byteStride" not in view
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    n = acc["count"] * _W[acc["type"]]
    return np.frombuffer(blob, _NP[acc["componentType"]], n, start).reshape(acc["count"], -1)


def assert_valid(path) -> dict:
    report = validate_glb(path)
    issues = report["issues"]
    print(f"{path.name}: {issues['numErrors']} errors, {issues['numWarnings']} warnings, {issues['numInfos']} infos")
    assert issues["numErrors"] == 0, error_summary(report)
    assert issues["numWarnings"] == 0, error_summary(report)
    return report


@pytest.fixture(scope="module")
def chain():
    skel = chain_skeleton(4)
    return skel, cylinder_mesh(skel), bending_motion(skel, frames=24, still_joints=(2,))


@pytest.fixture(scope="module")
def chain_glb(chain, tmp_path_factory):
    skel, mesh, motion = chain
    return write_glb(mesh, tmp_path_factory.mktemp("glb") / "chain.glb", motion)


def test_chain_glb_is_valid_and_complete(chain, chain_glb):
    report = assert_valid(chain_glb)
    info = report["info"]
    assert info["animationCount"] == 1 and info["hasSkins"] and info["drawCallCount"] == 1
    assert info["maxInfluences"] == 4 and info["totalVertexCount"] == len(chain[1].vertices)
    doc, _ = glb_json_and_bin(chain_glb)
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    assert {"POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0"} <= set(attrs)
    assert "JOINTS_1" not in attrs, "3 influences fit in one set"
    assert "COLOR_0" not in attrs and "TEXCOORD_0" not in attrs
    assert doc["accessors"][attrs["POSITION"]]["min"] and doc["accessors"][attrs["POSITION"]]["max"]
    scene = doc["scenes"][doc["scene"]]
    skin = doc["skins"][0]
    assert skin["skeleton"] in scene["nodes"], "skeleton root must be in the scene"
    mesh_nodes = [n for n in scene["nodes"] if "mesh" in doc["nodes"][n]]
    assert len(mesh_nodes) == 1 and doc["nodes"][mesh_nodes[0]]["skin"] == 0


def test_joint_nodes_carry_rest_transforms_and_ibm_inverts_them(chain, chain_glb):
    skel = chain[0]
    doc, blob = glb_json_and_bin(chain_glb)
    skin = doc["skins"][0]
    world = glb_rest_world(doc, skin["joints"])
    assert np.allclose(world, skel.rest_transforms.double().numpy(), atol=1e-6)
    for j in skin["joints"]:
        q = np.array(doc["nodes"][j]["rotation"])
        assert abs(np.linalg.norm(q) - 1) < 1e-9
    ibm = accessor(doc, blob, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    assert np.allclose(ibm.astype(np.float64) @ world, np.eye(4), atol=1e-5)


def node_matrix(node: dict, rotation=None, translation=None) -> np.ndarray:
    """glTF node local matrix T * R * S (spec semantics, written here independently of the exporter)."""
    m = np.eye(4)
    q = torch.tensor(rotation if rotation is not None else node.get("rotation", [0, 0, 0, 1]), dtype=torch.float64)
    m[:3, :3] = quaternion_xyzw_to_matrix(q).numpy() * np.array(node.get("scale", [1, 1, 1]))[None]
    m[:3, 3] = translation if translation is not None else node.get("translation", [0, 0, 0])
    return m


def glb_rest_world(doc: dict, joints: list[int], overrides: dict | None = None) -> np.ndarray:
    parent = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    overrides = overrides or {}

    def world(i: int) -> np.ndarray:
        local = node_matrix(doc["nodes"][i], **overrides.get(i, {}))
        return local if i not in parent else world(parent[i]) @ local

    return np.stack([world(j) for j in joints])


def test_glb_animation_plays_back_our_fk_exactly(chain, chain_glb):
    """Evaluate the file with glTF semantics (node TRS, channel keys) and compare with lbs FK."""
    skel, mesh, motion = chain
    doc, blob = glb_json_and_bin(chain_glb)
    anim = doc["animations"][0]
    times = accessor(doc, blob, anim["samplers"][0]["input"])[:, 0]
    assert np.allclose(times, np.arange(motion.num_frames) / motion.fps, atol=1e-6)
    t_acc = doc["accessors"][anim["samplers"][0]["input"]]
    assert t_acc["min"] == [0.0] and abs(t_acc["max"][0] - motion.duration) < 1e-6
    assert all(s["interpolation"] == "LINEAR" for s in anim["samplers"])
    keys = {}
    for ch in anim["channels"]:
        values = accessor(doc, blob, anim["samplers"][ch["sampler"]]["output"]).astype(np.float64)
        keys.setdefault(ch["target"]["node"], {})[ch["target"]["path"]] = values
    joints = doc["skins"][0]["joints"]
    assert "rotation" not in keys.get(joints[2], {}), "a joint that never moves needs no channel"
    assert set(keys[joints[0]]) == {"translation", "rotation"}
    expected = forward_kinematics(
        skel.rest_transforms.double(), skel.parents, motion.rotations.double(), motion.root_translation.double()
    ).numpy()
    for t in range(motion.num_frames):
        overrides = {
            n: {"rotation": k.get("rotation", [None])[t] if "rotation" in k else None,
                "translation": k["translation"][t] if "translation" in k else None}
            for n, k in keys.items()
        }
        got = glb_rest_world(doc, joints, overrides)
        assert np.allclose(got, expected[t], atol=2e-6), f"frame {t}"


def test_rotation_keys_are_unit_and_hemisphere_continuous(chain_glb):
    assert_rotation_keys_continuous(chain_glb)


def assert_rotation_keys_continuous(path) -> None:
    doc, blob = glb_json_and_bin(path)
    anim = doc["animations"][0]
    for ch in anim["channels"]:
        if ch["target"]["path"] != "rotation":
            continue
        q = accessor(doc, blob, anim["samplers"][ch["sampler"]]["output"]).astype(np.float64)
        assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-6)
        assert ((q[1:] * q[:-1]).sum(1) >= 0).all(), "slerp between keys would take the long way"


def test_skinning_in_glb_matches_our_lbs(chain, chain_glb):
    """Posed vertices with glTF's skinning formula (joint world @ IBM, JOINTS/WEIGHTS) equal pose_body."""
    skel, mesh, motion = chain
    doc, blob = glb_json_and_bin(chain_glb)
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    verts = accessor(doc, blob, attrs["POSITION"]).astype(np.float64)
    j = accessor(doc, blob, attrs["JOINTS_0"]).astype(np.int64)
    w = accessor(doc, blob, attrs["WEIGHTS_0"]).astype(np.float64)
    ibm = accessor(doc, blob, doc["skins"][0]["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    posed, world = pose_body(
        mesh.vertices.double(), skel.rest_transforms.double(), skel.parents,
        dense_skin_weights(mesh.skin_indices, mesh.skin_weights.double(), skel.num_joints),
        motion.rotations[5:6].double(), motion.root_translation[5:6].double(),
    )
    joint_mats = world[0].numpy() @ ibm.astype(np.float64)  # (J, 4, 4)
    blended = (w[:, :, None, None] * joint_mats[j]).sum(1)
    got = (blended[:, :3, :3] @ verts[:, :, None])[..., 0] + blended[:, :3, 3]
    assert np.abs(got - posed[0].numpy()).max() < 1e-5


def test_read_glb_round_trip(chain, chain_glb):
    skel, mesh, motion = chain
    mesh2, motion2 = read_glb(chain_glb)
    assert mesh2.skeleton.names == skel.names and mesh2.skeleton.parents == skel.parents
    assert torch.allclose(mesh2.skeleton.rest_transforms, skel.rest_transforms, atol=1e-6)
    assert torch.equal(mesh2.vertices, mesh.vertices)
    assert torch.equal(mesh2.faces, mesh.faces)
    dense = dense_skin_weights(mesh.skin_indices, mesh.skin_weights.double(), skel.num_joints)
    dense2 = dense_skin_weights(mesh2.skin_indices, mesh2.skin_weights.double(), skel.num_joints)
    assert torch.allclose(dense2, dense, atol=1e-6)
    assert mesh2.extras == mesh.extras and mesh2.name == mesh.name
    assert motion2 is not None and motion2.num_frames == motion.num_frames and motion2.fps == motion.fps
    assert motion2.name == motion.name
    assert torch.allclose(motion2.rotations, motion.rotations, atol=1e-5)
    assert torch.allclose(motion2.root_translation, motion.root_translation, atol=1e-6)
    err = (world_joint_positions(mesh2.skeleton, motion2) - world_joint_positions(skel, motion)).abs().max()
    assert err < 1e-5


def test_static_mesh_has_no_animation(chain, tmp_path):
    _, mesh, _ = chain
    path = write_glb(mesh, tmp_path / "static.glb")
    assert_valid(path)
    assert read_glb(path)[1] is None
    doc, _ = glb_json_and_bin(path)
    assert "animations" not in doc or not doc["animations"]


def test_nine_influences_keep_the_largest_eight(tmp_path):
    skel = chain_skeleton(10)
    mesh = cylinder_mesh(skel, influences=9)
    motion = bending_motion(skel, frames=12)
    path = write_glb(mesh, tmp_path / "nine.glb", motion)
    assert assert_valid(path)["info"]["maxInfluences"] == 8
    doc, blob = glb_json_and_bin(path)
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    assert {"JOINTS_1", "WEIGHTS_1"} <= set(attrs)
    j = np.concatenate([accessor(doc, blob, attrs["JOINTS_0"]), accessor(doc, blob, attrs["JOINTS_1"])], 1)
    w = np.concatenate([accessor(doc, blob, attrs["WEIGHTS_0"]), accessor(doc, blob, attrs["WEIGHTS_1"])], 1)
    assert np.abs(w.astype(np.float64).sum(1) - 1).max() < 2e-7
    src_w = mesh.skin_weights.double().numpy()
    src_i = mesh.skin_indices.numpy()
    smallest = src_w.argmin(1)
    for v in range(0, len(w), 7):
        keep = np.delete(np.arange(9), smallest[v])
        expect = dict(zip(src_i[v, keep], src_w[v, keep] / src_w[v, keep].sum()))
        got = dict(zip(j[v], w[v]))
        assert set(got) == set(expect)
        assert all(abs(got[k] - expect[k]) < 1e-6 for k in expect)
    mesh2, motion2 = read_glb(path)
    assert mesh2.skin_indices.shape[1] == 8


def test_five_influences_use_a_second_set_and_drop_nothing(tmp_path):
    skel = chain_skeleton(6)
    mesh = cylinder_mesh(skel, influences=9)  # 6 joints -> 6 non-zero influences
    path = write_glb(mesh, tmp_path / "six.glb")
    assert_valid(path)
    mesh2, _ = read_glb(path)
    assert mesh2.skin_indices.shape[1] == 8
    dense = dense_skin_weights(mesh.skin_indices, mesh.skin_weights.double(), 6)
    dense2 = dense_skin_weights(mesh2.skin_indices, mesh2.skin_weights.double(), 6)
    assert torch.allclose(dense2, dense, atol=1e-6)


@pytest.mark.parametrize("colors,textured", [(True, False), (False, True), (True, True)])
def test_colour_and_texture_variants_validate_and_round_trip(tmp_path, colors, textured):
    skel = chain_skeleton(4)
    mesh = cylinder_mesh(skel, colors=colors, textured=textured)
    path = write_glb(mesh, tmp_path / "variant.glb", bending_motion(skel, frames=6))
    report = assert_valid(path)
    doc, _ = glb_json_and_bin(path)
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]
    assert ("COLOR_0" in attrs) == colors and ("TEXCOORD_0" in attrs) == textured
    mesh2, _ = read_glb(path)
    if colors:
        assert torch.allclose(mesh2.vertex_colors, mesh.vertex_colors, atol=1e-5)
        # COLOR_0 is linear in glTF: our sRGB 0.5 grey must be stored as ~0.214.
        doc, blob = glb_json_and_bin(path)
        stored = accessor(doc, blob, attrs["COLOR_0"]).astype(np.float64)
        v = int(torch.argmin((mesh.vertex_colors[:, 0] - 0.5).abs()))
        srgb = mesh.vertex_colors[v, 0].item()
        expected = ((srgb + 0.055) / 1.055) ** 2.4
        assert abs(stored[v, 0] - expected) < 1e-6 and stored[v, 0] < srgb - 0.1
    if textured:
        assert report["info"]["resources"] and any(r.get("mimeType") == "image/png" for r in report["info"]["resources"])
        assert doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"] == 0
        assert torch.allclose(mesh2.uvs, mesh.uvs, atol=1e-6)
        assert mesh2.texture.shape == mesh.texture.shape
        assert (mesh2.texture - mesh.texture).abs().max() <= 0.5 / 255 + 1e-6
        # glTF's uv origin is the top-left corner: a vertex at our v=1 (top) samples image row 0.
        top = int(torch.argmax(mesh.uvs[:, 1]))
        assert abs(doc_uv(path, top)[1]) < 1e-6


def doc_uv(path, vertex: int) -> np.ndarray:
    doc, blob = glb_json_and_bin(path)
    return accessor(doc, blob, doc["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"])[vertex]


def test_smooth_normals_are_unit_and_point_outwards():
    skel = chain_skeleton(4)
    mesh = cylinder_mesh(skel)
    n = smooth_vertex_normals(mesh.vertices.numpy(), mesh.faces.numpy())
    assert np.allclose(np.linalg.norm(n, axis=1), 1)
    radial = mesh.vertices.numpy().copy()
    radial[:, 1] = 0
    assert ((n * radial).sum(1) > 0).mean() > 0.99  # outward for the cylinder's winding
    lonely = smooth_vertex_normals(np.zeros((4, 3)), np.array([[0, 1, 2]]))
    assert np.allclose(np.linalg.norm(lonely, axis=1), 1)


def test_write_is_atomic(chain, tmp_path):
    skel, mesh, motion = chain
    path = write_glb(mesh, tmp_path / "a.glb", motion)
    before = path.read_bytes()
    bad = cylinder_mesh(skel)
    bad.skin_weights = torch.zeros_like(bad.skin_weights)  # no weight at all: refused
    with pytest.raises(ValueError, match="no skin weight"):
        write_glb(bad, path, motion)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.glb"], "no temp files left behind"


def test_motion_joint_order_is_matched_by_name(chain, tmp_path):
    skel, mesh, motion = chain
    perm = [2, 0, 3, 1]
    shuffled = type(motion)(
        fps=motion.fps, joint_names=[motion.joint_names[i] for i in perm],
        rotations=motion.rotations[:, perm], root_translation=motion.root_translation, name=motion.name,
    )
    _, back = read_glb(write_glb(mesh, tmp_path / "s.glb", shuffled))
    err = (world_joint_positions(skel, back) - world_joint_positions(skel, motion)).abs().max()
    assert err < 1e-5
    wrong = type(motion)(
        fps=30, joint_names=["x"] * 4, rotations=motion.rotations, root_translation=motion.root_translation
    )
    with pytest.raises(ValueError, match="do not match"):
        write_glb(mesh, tmp_path / "w.glb", wrong)


def test_large_rotations_survive(tmp_path):
    """Half turns and beyond: quaternion sign handling must not flip the pose."""
    skel = chain_skeleton(3)
    mesh = cylinder_mesh(skel)
    T = 16
    angle = torch.linspace(0, 3 * math.pi, T, dtype=torch.float64)
    aa = torch.zeros(T, 3, 3, dtype=torch.float64)
    aa[:, 1, 2] = angle
    from avatarclip_core.body.lbs import axis_angle_to_matrix

    motion = type(bending_motion(skel))(
        fps=24, joint_names=skel.names, rotations=axis_angle_to_matrix(aa).float(),
        root_translation=torch.zeros(T, 3),
    )
    path = write_glb(mesh, tmp_path / "spin.glb", motion)
    assert_valid(path)
    assert_rotation_keys_continuous(path)
    _, back = read_glb(path)
    assert (world_joint_positions(skel, back) - world_joint_positions(skel, motion)).abs().max() < 1e-5
