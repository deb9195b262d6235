"""glTF 2.0 binary (GLB) export of a rigged, optionally textured and animated avatar.

GLB is the product's primary format: one self-contained file that game engines, Blender and web
viewers load with its skin and animation. We write it with pygltflib because trimesh cannot write
skins or animations.

Mapping from our types (see body/types.py) to glTF:
- each skeleton joint is a node whose local TRS is its rest transform relative to its parent
  (`lbs.rest_local_transforms`); the skin's inverse bind matrices are the inverse rest world
  transforms, so the bind pose is exactly the rest pose;
- a motion's local rotation R_m (relative to the joint's rest frame) becomes the node rotation
  R_rest_local @ R_m and the root's translation t_rest + root_translation, which is precisely what
  `lbs.forward_kinematics` computes, so a glTF player reproduces our FK;
- morph targets (e.g. the ARKit face shapes, `face_shapes.py`) are POSITION-only sparse accessors in
  the rest pose, named in mesh.extras.targetNames (what three.js, Blender and Babylon read); players
  add them before skinning, as our LBS does;
- a dressed mesh (mesh.extras["garments"], from avatarclip_core.outfit) becomes the body's skinned
  mesh node plus one skinned mesh node per garment ("garment_<kind>"), all at the scene root on the
  one skin, each garment with its own material (its colour as baseColorFactor, its shading, e.g. a
  sole, as COLOR_0 factors). Separate nodes rather than primitives of one mesh: Blender and Unity
  then give each garment its own object / SkinnedMeshRenderer (hide or swap it), glTF requires every
  primitive of a mesh to carry the same morph targets (so garments would need 67 empty face shapes),
  and VRM expressions bind the body node only; VRoid's VRMs share one skin the same way. Face shapes
  stay on the body; a mesh without garments is written as one mesh, as before;
- uvs are stored with v flipped (glTF's texture origin is the top-left corner, ours is OpenGL's);
- vertex colours are display (sRGB) values like textures and previews, but glTF's COLOR_0 is
  linear, so they are linearised (see color.py); textures are stored as they are (sRGB PNG).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pygltflib as gl
import torch

from ..body.lbs import matrix_to_quaternion_xyzw, rest_local_transforms
from ..body.types import Motion, RiggedMesh
from ._atomic import atomic_write_bytes
from ._common import check_single_root, motion_in_skeleton_order
from .color import colors_srgb_to_linear
from ._glb_builder import GlbBuilder
from .garments import MeshPart, garment_parts
from .gltf_read import read_glb
from .weights import MAX_SLOTS, pack_skin_weights

__all__ = ["write_glb", "read_glb", "smooth_vertex_normals", "glb_bytes"]

# Below this max deviation from the identity a joint's motion rotation counts as "never changes".
_IDENTITY_TOL = 1e-7


def smooth_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals; vertices on no (or only degenerate) faces get +Y so
    every normal is unit length, as the glTF validator requires."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, f[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    good = length[:, 0] > 1e-20
    normals[good] /= length[good]
    normals[~good] = (0.0, 1.0, 0.0)
    return normals


def _trs(local: np.ndarray) -> tuple[list[float], list[float], list[float] | None]:
    """Split rigid(+scale) 4x4 transforms into glTF translation, unit xyzw quaternion, scale."""
    t = local[:3, 3]
    m = local[:3, :3]
    s = np.linalg.norm(m, axis=0)
    q = matrix_to_quaternion_xyzw(torch.from_numpy(m / s)).numpy()
    q = q / np.linalg.norm(q)
    scale = None if np.allclose(s, 1.0, atol=1e-6) else [float(x) for x in s]
    return [float(x) for x in t], [float(x) for x in q], scale


def _column_major(mats: np.ndarray) -> np.ndarray:
    """(N, 4, 4) row-major matrices -> (N, 16) float32 in glTF's column-major order."""
    return np.ascontiguousarray(np.transpose(mats, (0, 2, 1)).reshape(-1, 16), dtype=np.float32)


def _png_bytes(texture: torch.Tensor) -> bytes:
    from PIL import Image

    img = texture.detach().cpu().float().clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"texture must be (H, W, 3|4), got {tuple(img.shape)}")
    buf = io.BytesIO()
    Image.fromarray(img, "RGB" if img.shape[2] == 3 else "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _json_extras(extras: dict) -> dict | None:
    """The JSON-serialisable part of RiggedMesh.extras (tensors and the like are left out)."""
    kept = {}
    for key, value in extras.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[str(key)] = value
    return kept or None


def _add_material(gltf: gl.GLTF2, b: GlbBuilder, mesh: RiggedMesh) -> int:
    pbr = gl.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=0.8)
    if mesh.uvs is not None and mesh.texture is not None:
        view = b.add_buffer_view(_png_bytes(mesh.texture))
        gltf.images.append(gl.Image(bufferView=view, mimeType="image/png", name=f"{mesh.name}_albedo"))
        gltf.samplers.append(
            gl.Sampler(magFilter=gl.LINEAR, minFilter=gl.LINEAR_MIPMAP_LINEAR, wrapS=gl.REPEAT, wrapT=gl.REPEAT)
        )
        gltf.textures.append(gl.Texture(source=0, sampler=0))
        pbr.baseColorTexture = gl.TextureInfo(index=0, texCoord=0)
    gltf.materials.append(gl.Material(name=f"{mesh.name}_material", pbrMetallicRoughness=pbr, doubleSided=False))
    return 0


def _garment_material(part: MeshPart) -> gl.Material:
    """A garment's own material: its colour as the base colour, cloth-rough, both sides (hems and
    open sleeves show the inside)."""
    pbr = gl.PbrMetallicRoughness(baseColorFactor=part.colour_linear, metallicFactor=0.0, roughnessFactor=0.9)
    return gl.Material(name=part.name, pbrMetallicRoughness=pbr, doubleSided=True)


def _garment_color_factors(colors: np.ndarray | None, part: MeshPart) -> np.ndarray | None:
    """COLOR_0 for a garment: its per-vertex shading (a zip line, a sole) as linear factors of the
    material's base colour, or None for a plain garment. glTF multiplies COLOR_0 by the base colour;
    a shade brighter than the base colour (a light sole on dark shoes) is clamped at 1."""
    if colors is None:
        return None
    base = np.asarray(part.colour_linear[:3])
    factors = np.divide(colors[part.rows, :3], base, out=np.ones((part.rows.stop - part.rows.start, 3)),
                        where=base > 1e-6)
    factors = np.clip(factors, 0.0, 1.0)
    return None if np.abs(factors - 1.0).max() < 1e-3 else factors


def _add_animation(
    gltf: gl.GLTF2, b: GlbBuilder, mesh: RiggedMesh, motion: Motion, local_rest: np.ndarray, joint_nodes: list[int]
) -> None:
    rotations, root_translation = motion_in_skeleton_order(mesh.skeleton, motion)
    T, J = rotations.shape[:2]
    rest_rot = torch.from_numpy(local_rest[:, :3, :3])
    rest_rot = rest_rot / torch.linalg.norm(rest_rot, dim=1, keepdim=True)  # tolerate scaled rest frames
    node_rot = rest_rot.unsqueeze(0) @ rotations  # (T, J, 3, 3), lbs: local_rest @ pose
    quats = matrix_to_quaternion_xyzw(node_rot).numpy()
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    # q and -q are the same rotation, but LINEAR (slerp) interpolation between keys takes the short
    # way only when consecutive keys lie in the same hemisphere.
    for t in range(1, T):
        flip = (quats[t] * quats[t - 1]).sum(-1) < 0
        quats[t, flip] *= -1

    times = (np.arange(T, dtype=np.float64) / float(motion.fps)).astype(np.float32)
    time_acc = b.add_accessor(times, with_bounds=True)
    channels: list[gl.AnimationChannel] = []
    samplers: list[gl.AnimationSampler] = []

    def channel(node: int, path: str, values: np.ndarray) -> None:
        out = b.add_accessor(values.astype(np.float32))
        samplers.append(gl.AnimationSampler(input=time_acc, output=out, interpolation=gl.ANIM_LINEAR))
        channels.append(gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=node, path=path)))

    root_t = local_rest[0, :3, 3][None, :] + root_translation.numpy()
    channel(joint_nodes[0], "translation", root_t)
    eye = torch.eye(3, dtype=torch.float64)
    for j in range(J):
        # A joint whose motion rotation is the identity in every frame keeps its node's rest rotation,
        # so leaving its channel out is lossless and keeps files small (fingers are often still).
        if (rotations[:, j] - eye).abs().max() <= _IDENTITY_TOL:
            continue
        channel(joint_nodes[j], "rotation", quats[:, j])
    gltf.animations.append(
        gl.Animation(name=motion.name, channels=channels, samplers=samplers, extras={"fps": float(motion.fps), "frames": T})
    )


def _add_morph_targets(b: GlbBuilder, mesh: RiggedMesh, rows: slice) -> tuple[list[dict], list[str]]:
    """Sparse POSITION morph targets of `mesh`'s vertices `rows` (the body's) and their names (none
    without morph targets). Garments get none: a face shape that moved cloth would be dropped, so
    it is refused instead (face shapes fade out well above the neckline)."""
    targets = mesh.morph_targets
    if targets is None:
        return [], []
    # float32, as stored (a float64 copy of a photo avatar's 67 shapes was a 27 MB temporary; the
    # accessors are float32 either way)
    deltas = targets.deltas.detach().cpu().float().numpy()
    if deltas.shape[1] != mesh.vertices.shape[0]:
        raise ValueError(f"morph targets have {deltas.shape[1]} vertices, the mesh {mesh.vertices.shape[0]}")
    if not np.isfinite(deltas).all():
        raise ValueError("morph target deltas contain NaN or inf")
    outside = float(np.abs(np.delete(deltas, np.s_[rows], axis=1)).max(initial=0.0))
    if outside > 1e-6:
        raise ValueError(f"morph targets move garment vertices (up to {outside * 1000:.2f} mm); "
                         "face shapes must stay on the body")
    return ([{"POSITION": b.add_sparse_accessor(d[rows].astype(np.float32))} for d in deltas],
            list(targets.names))


def glb_bytes(
    mesh: RiggedMesh,
    motion: Motion | None = None,
    *,
    generator_note: str = "avatar-studio",
    max_influences: int = MAX_SLOTS,
) -> bytes:
    """The GLB file's bytes (what `write_glb` writes, e.g. for an HTTP response); see the module
    docstring for the mapping. max_influences caps the skin influences per vertex (`cap_influences`:
    4 for three.js, Unity's default quality and VRM, which read only JOINTS_0/WEIGHTS_0)."""
    skel = mesh.skeleton
    check_single_root(skel)
    J = skel.num_joints
    rest_world = skel.rest_transforms.detach().cpu().double()
    local_rest = rest_local_transforms(rest_world, skel.parents).numpy()
    rest_world = rest_world.numpy()

    verts = mesh.vertices.detach().cpu().double().numpy()
    faces = mesh.faces.detach().cpu().long().numpy()
    if not np.isfinite(verts).all():
        raise ValueError("vertices contain NaN or inf")
    if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
        raise ValueError("face index out of range")
    V = len(verts)
    joints, weights = pack_skin_weights(
        mesh.skin_indices.detach().cpu().numpy(), mesh.skin_weights.detach().cpu().numpy(), J, max_influences
    )

    gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator=f"{generator_note} (pygltflib {gl.__version__})"))
    gltf.scene = 0
    b = GlbBuilder(gltf)

    normals = smooth_vertex_normals(verts, faces)
    colors = None
    if mesh.vertex_colors is not None:
        colors = colors_srgb_to_linear(mesh.vertex_colors.detach().cpu().double().numpy())
    uv = None
    if mesh.uvs is not None and mesh.texture is not None:
        uv = mesh.uvs.detach().cpu().double().numpy().copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # OpenGL (v up) -> glTF (origin top-left)
    parts = garment_parts(mesh)
    body_rows, body_faces = (parts[0].rows, parts[0].faces) if parts else (slice(0, V), faces)
    joint_dtype = np.uint8 if J <= 256 else np.uint16

    def primitive(rows: slice, part_faces: np.ndarray, part_colors: np.ndarray | None, material: int) -> gl.Primitive:
        attrs = gl.Attributes()
        attrs.POSITION = b.add_accessor(verts[rows].astype(np.float32), target=gl.ARRAY_BUFFER, with_bounds=True)
        attrs.NORMAL = b.add_accessor(normals[rows].astype(np.float32), target=gl.ARRAY_BUFFER)
        if uv is not None:
            attrs.TEXCOORD_0 = b.add_accessor(uv[rows].astype(np.float32), target=gl.ARRAY_BUFFER)
        if part_colors is not None:
            attrs.COLOR_0 = b.add_accessor(part_colors.astype(np.float32), target=gl.ARRAY_BUFFER)
        attrs.JOINTS_0 = b.add_accessor(joints[rows, :4].astype(joint_dtype), target=gl.ARRAY_BUFFER)
        attrs.WEIGHTS_0 = b.add_accessor(weights[rows, :4], target=gl.ARRAY_BUFFER)
        if joints.shape[1] > 4:
            attrs.JOINTS_1 = b.add_accessor(joints[rows, 4:8].astype(joint_dtype), target=gl.ARRAY_BUFFER)
            attrs.WEIGHTS_1 = b.add_accessor(weights[rows, 4:8], target=gl.ARRAY_BUFFER)
        count = rows.stop - rows.start
        index_dtype = np.uint16 if count < 65535 else np.uint32
        indices = b.add_accessor(part_faces.reshape(-1).astype(index_dtype), target=gl.ELEMENT_ARRAY_BUFFER)
        return gl.Primitive(attributes=attrs, indices=indices, material=material, mode=gl.TRIANGLES)

    # the body's accessors, then its material (image) and morph targets: the order files always had
    body = primitive(body_rows, body_faces, None if colors is None else colors[body_rows], 0)
    body.material = _add_material(gltf, b, mesh)
    morph_targets, target_names = _add_morph_targets(b, mesh, body_rows)
    body.targets = morph_targets or None
    extras = _json_extras(mesh.extras) or {}
    if target_names:
        extras["targetNames"] = target_names
    gltf.meshes.append(
        gl.Mesh(
            name=mesh.name,
            primitives=[body],
            weights=[0.0] * len(target_names) if target_names else None,
            extras=extras or None,
        )
    )
    for part in parts[1:]:  # each garment: its own skinned mesh and material (see the module docstring)
        gltf.materials.append(_garment_material(part))
        gltf.meshes.append(gl.Mesh(name=part.name, extras={"garment": part.record}, primitives=[primitive(
            part.rows, part.faces, _garment_color_factors(colors, part), len(gltf.materials) - 1)]))

    # Nodes: joints first (index j = joint j), then the skinned mesh node at the scene root.
    children: list[list[int]] = [[] for _ in range(J)]
    for j, p in enumerate(skel.parents):
        if p >= 0:
            children[p].append(j)
    for j in range(J):
        t, q, s = _trs(local_rest[j])
        gltf.nodes.append(gl.Node(name=skel.names[j], translation=t, rotation=q, scale=s, children=children[j] or None))
    mesh_node = J
    gltf.nodes.append(gl.Node(name=mesh.name, mesh=0, skin=0))
    garment_nodes = [gltf.nodes.append(gl.Node(name=part.name, mesh=k, skin=0)) or len(gltf.nodes) - 1
                     for k, part in enumerate(parts[1:], start=1)]

    inverse_bind = np.linalg.inv(rest_world)
    inverse_bind[:, 3, :] = (0.0, 0.0, 0.0, 1.0)
    ibm = b.add_accessor(_column_major(inverse_bind), flat_type=gl.MAT4)
    # Blender names the armature object after the skin; "Armature" is the name Unreal's FBX importer
    # recognises and drops, instead of adding an extra root bone named after the object.
    gltf.skins.append(gl.Skin(name="Armature", inverseBindMatrices=ibm, joints=list(range(J)), skeleton=0))
    gltf.scenes.append(gl.Scene(name="Scene", nodes=[mesh_node, *garment_nodes, 0]))

    if motion is not None:
        _add_animation(gltf, b, mesh, motion, local_rest, list(range(J)))
    b.finish()
    return b"".join(gltf.save_to_bytes())


def write_glb(
    mesh: RiggedMesh,
    path: str | os.PathLike,
    motion: Motion | None = None,
    *,
    generator_note: str = "avatar-studio",
    max_influences: int = MAX_SLOTS,
) -> Path:
    """Write `mesh` (and `motion`, if given, as one animation) to a GLB at `path`, atomically.

    Returns the resolved path. Up to `max_influences` (8) influences per vertex are kept (the largest,
    renormalised, when a vertex has more); mesh.morph_targets become sparse morph targets. Joints whose motion rotation is the identity in every frame get no
    rotation channel (their node keeps the rest rotation, so the pose is unchanged).
    """
    return atomic_write_bytes(path, glb_bytes(mesh, motion, generator_note=generator_note, max_influences=max_influences))
