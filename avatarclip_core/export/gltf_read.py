"""Read a skinned GLB back into our types: round-trip tests, previews and later import tools.

It reads everything `write_glb` writes and the common subset of other skinned GLBs: one skinned
mesh primitive (plus the garment meshes of a dressed avatar, merged back after the body), one skin, the first animation (rotation channels of joints plus the root joint's
translation; scale channels and other joints' translations cannot be expressed by `Motion` and are
ignored). Inverse of the mapping documented in `gltf.py`.
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pygltflib as gl
import torch

from ..body.lbs import quaternion_xyzw_to_matrix, rest_local_transforms
from ..body.types import MorphTargets, Motion, RiggedMesh, Skeleton
from .color import colors_linear_to_srgb

_DTYPES = {
    gl.BYTE: np.int8,
    gl.UNSIGNED_BYTE: np.uint8,
    gl.SHORT: np.int16,
    gl.UNSIGNED_SHORT: np.uint16,
    gl.UNSIGNED_INT: np.uint32,
    gl.FLOAT: np.float32,
}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


class _Glb:
    """A loaded GLB and typed access to its accessors and buffer views."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.gltf = gl.GLTF2.load(str(self.path))
        self.blob = self.gltf.binary_blob() or b""

    def view_bytes(self, view_index: int) -> bytes:
        view = self.gltf.bufferViews[view_index]
        if view.buffer != 0 or self.gltf.buffers[0].uri is not None:
            raise NotImplementedError("only GLB files with their data in the binary chunk are supported")
        start = view.byteOffset or 0
        return self.blob[start : start + view.byteLength]

    def accessor(self, index: int) -> np.ndarray:
        """(count, width) array (normalised integers become floats in [0, 1] / [-1, 1])."""
        acc = self.gltf.accessors[index]
        dtype = np.dtype(_DTYPES[acc.componentType])
        width = _WIDTHS[acc.type]
        if acc.bufferView is None:
            arr = np.zeros((acc.count, width), dtype)
        else:
            view = self.gltf.bufferViews[acc.bufferView]
            data = self.view_bytes(acc.bufferView)
            stride = view.byteStride or dtype.itemsize * width
            arr = np.ndarray(
                (acc.count, width), dtype, buffer=data, offset=acc.byteOffset or 0, strides=(stride, dtype.itemsize)
            ).copy()
        if acc.sparse is not None:  # replace the listed rows (indices are strictly increasing)
            sp = acc.sparse
            rows = np.frombuffer(self.view_bytes(sp.indices.bufferView), _DTYPES[sp.indices.componentType],
                                 sp.count, sp.indices.byteOffset or 0)
            arr[rows] = np.frombuffer(self.view_bytes(sp.values.bufferView), dtype, sp.count * width,
                                      sp.values.byteOffset or 0).reshape(sp.count, width)
        if acc.normalized:
            info = np.iinfo(dtype)
            arr = np.maximum(arr.astype(np.float64) / info.max, -1.0).astype(np.float32)
        return arr

    def image(self, image_index: int):
        from PIL import Image

        img = self.gltf.images[image_index]
        if img.bufferView is not None:
            data = self.view_bytes(img.bufferView)
        elif img.uri and img.uri.startswith("data:"):
            data = base64.b64decode(img.uri.split(",", 1)[1])
        else:
            data = (self.path.parent / img.uri).read_bytes()
        return Image.open(io.BytesIO(data))


def _node_local(node: gl.Node) -> np.ndarray:
    if node.matrix is not None:
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T  # column-major in glTF
    m = np.eye(4)
    if node.rotation is not None:
        q = torch.tensor(node.rotation, dtype=torch.float64)
        m[:3, :3] = quaternion_xyzw_to_matrix(q / q.norm()).numpy()
    if node.scale is not None:
        m[:3, :3] = m[:3, :3] * np.asarray(node.scale, dtype=np.float64)[None, :]
    if node.translation is not None:
        m[:3, 3] = node.translation
    return m


def _node_parents(gltf: gl.GLTF2) -> list[int]:
    parents = [-1] * len(gltf.nodes)
    for i, node in enumerate(gltf.nodes):
        for c in node.children or []:
            parents[c] = i
    return parents


def _node_world(gltf: gl.GLTF2, parents: list[int]) -> list[np.ndarray]:
    world: list[np.ndarray | None] = [None] * len(gltf.nodes)

    def get(i: int) -> np.ndarray:
        if world[i] is None:
            local = _node_local(gltf.nodes[i])
            world[i] = local if parents[i] < 0 else get(parents[i]) @ local
        return world[i]

    return [get(i) for i in range(len(gltf.nodes))]


def _read_skeleton(glb: _Glb, skin: gl.Skin) -> tuple[Skeleton, list[int], np.ndarray]:
    """Skeleton in an order where parents precede children, the joint's node indices in that order,
    and old->new joint index remapping for the skin attributes."""
    gltf = glb.gltf
    node_parents = _node_parents(gltf)
    node_world = _node_world(gltf, node_parents)
    joint_nodes = list(skin.joints)
    joint_set = set(joint_nodes)

    def joint_parent(node: int) -> int:
        p = node_parents[node]
        while p >= 0 and p not in joint_set:
            p = node_parents[p]
        return p

    def depth(node: int) -> int:
        d, p = 0, joint_parent(node)
        while p >= 0:
            d, p = d + 1, joint_parent(p)
        return d

    order = list(range(len(joint_nodes)))
    position = {n: k for k, n in enumerate(joint_nodes)}
    if any(joint_parent(n) >= 0 and position[joint_parent(n)] > k for k, n in enumerate(joint_nodes)):
        order.sort(key=lambda k: depth(joint_nodes[k]))  # stable: parents now precede children
    nodes = [joint_nodes[k] for k in order]
    remap = np.empty(len(order), np.int64)
    remap[order] = np.arange(len(order))
    pos = {n: i for i, n in enumerate(nodes)}
    parents = [pos[joint_parent(n)] if joint_parent(n) >= 0 else -1 for n in nodes]

    # The rest pose must be the bind pose the vertices are in (inverse bind matrices); node transforms
    # are preferred when they agree, because the JSON keeps them in double precision.
    world = np.stack([node_world[n] for n in nodes])
    if skin.inverseBindMatrices is not None:
        ibm = glb.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)[order]
        bind = np.linalg.inv(ibm.astype(np.float64))
        if not np.allclose(bind, world, atol=1e-4):
            world = bind
    names = [gltf.nodes[n].name or f"joint_{i}" for i, n in enumerate(nodes)]
    skeleton = Skeleton(names=names, parents=parents, rest_transforms=torch.from_numpy(world).float())
    return skeleton, nodes, remap


def _channel_on_timeline(times: np.ndarray, key_times: np.ndarray, values: np.ndarray, interpolation: str) -> np.ndarray:
    if interpolation == gl.ANIM_CUBICSPLINE:
        values = values.reshape(len(key_times), 3, -1)[:, 1]  # keep the values, drop the tangents
    if len(key_times) == len(times) and np.allclose(key_times, times):
        return values
    return np.stack([np.interp(times, key_times, values[:, c]) for c in range(values.shape[1])], axis=1)


def _read_motion(glb: _Glb, skeleton: Skeleton, joint_nodes: list[int], name: str) -> Motion | None:
    gltf = glb.gltf
    if not gltf.animations:
        return None
    anim = gltf.animations[0]
    joint_of = {n: j for j, n in enumerate(joint_nodes)}
    inputs = {s.input for s in anim.samplers}
    times = max((glb.accessor(i)[:, 0].astype(np.float64) for i in inputs), key=len)
    T, J = len(times), skeleton.num_joints

    rest_local = rest_local_transforms(skeleton.rest_transforms.double(), skeleton.parents).numpy()
    rest_rot = rest_local[:, :3, :3] / np.linalg.norm(rest_local[:, :3, :3], axis=1, keepdims=True)
    node_local = np.stack([_node_local(gltf.nodes[n]) for n in joint_nodes])
    node_rot = node_local[:, :3, :3] / np.linalg.norm(node_local[:, :3, :3], axis=1, keepdims=True)
    anim_rot = np.repeat(node_rot[None], T, axis=0)  # joints without a channel keep their node rotation
    root_t = np.repeat(node_local[None, 0, :3, 3], T, axis=0)

    for ch in anim.channels:
        j = joint_of.get(ch.target.node)
        if j is None or ch.target.path not in ("rotation", "translation"):
            continue
        if ch.target.path == "translation" and j != 0:
            continue
        sampler = anim.samplers[ch.sampler]
        key_times = glb.accessor(sampler.input)[:, 0].astype(np.float64)
        values = glb.accessor(sampler.output).astype(np.float64)
        values = _channel_on_timeline(times, key_times, values, sampler.interpolation or gl.ANIM_LINEAR)
        if ch.target.path == "rotation":
            q = torch.from_numpy(values)
            anim_rot[:, j] = quaternion_xyzw_to_matrix(q / q.norm(dim=-1, keepdim=True)).numpy()
        else:
            root_t = values

    rotations = np.einsum("jba,tjbc->tjac", rest_rot, anim_rot)  # R_rest_local^T @ R_node
    extras = anim.extras or {}
    if "fps" in extras:
        fps = float(extras["fps"])
    elif T > 1:
        fps = 1.0 / float(np.median(np.diff(times)))
        fps = float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps
    else:
        fps = 30.0
    return Motion(
        fps=fps,
        joint_names=list(skeleton.names),
        rotations=torch.from_numpy(rotations).float(),
        root_translation=torch.from_numpy(root_t - rest_local[0, :3, 3]).float(),
        name=anim.name or name,
    )


def _read_primitive(glb: _Glb, prim: gl.Primitive, remap: np.ndarray, garment: bool = False) -> dict:
    """One skinned primitive's arrays: vertices, faces (local), skin, colours (sRGB; a garment's are
    COLOR_0 times its material's base colour, which is how `write_glb` stores them), uvs and texture."""
    gltf, attrs = glb.gltf, prim.attributes
    vertices = glb.accessor(attrs.POSITION)
    if prim.indices is not None:
        faces = glb.accessor(prim.indices).reshape(-1, 3).astype(np.int64)
    else:
        faces = np.arange(len(vertices), dtype=np.int64).reshape(-1, 3)
    # pygltflib declares only set 0; further sets are plain instance attributes.
    joint_sets = [a for a in (getattr(attrs, f"JOINTS_{i}", None) for i in range(2)) if a is not None]
    weight_sets = [a for a in (getattr(attrs, f"WEIGHTS_{i}", None) for i in range(2)) if a is not None]
    skin_indices = remap[np.concatenate([glb.accessor(a).astype(np.int64) for a in joint_sets], axis=1)]
    skin_weights = np.concatenate([glb.accessor(a).astype(np.float32) for a in weight_sets], axis=1)

    material = gltf.materials[prim.material] if prim.material is not None else None
    pbr = material.pbrMetallicRoughness if material else None
    linear = glb.accessor(attrs.COLOR_0).astype(np.float64) if attrs.COLOR_0 is not None else None
    if garment:
        base = np.asarray(pbr.baseColorFactor if pbr and pbr.baseColorFactor else [1.0] * 4, dtype=np.float64)
        linear = (np.ones((len(vertices), 3)) if linear is None else linear[:, :3]) * base[:3]
    colors = None if linear is None else colors_linear_to_srgb(linear)  # linear in glTF, sRGB in our types
    uvs = texture = None
    tex_info = pbr.baseColorTexture if pbr else None
    if attrs.TEXCOORD_0 is not None and tex_info is not None:
        uv = glb.accessor(attrs.TEXCOORD_0).astype(np.float32)
        uv[:, 1] = 1.0 - uv[:, 1]
        uvs = torch.from_numpy(uv)
        img = glb.image(gltf.textures[tex_info.index].source)
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        texture = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    return {"vertices": vertices, "faces": faces, "skin_indices": skin_indices, "skin_weights": skin_weights,
            "colors": colors, "uvs": uvs, "texture": texture}


def read_glb(path: str | os.PathLike) -> tuple[RiggedMesh, Motion | None]:
    """Parse a skinned GLB (as written by `write_glb`) into a RiggedMesh and its first animation.

    Skin attributes come back as (V, 4) or (V, 8) indices/weights (zero-weight slots included),
    uvs with v up again, vertex colours sRGB again, the base-colour texture as (H, W, 3|4) floats
    in [0, 1]. A dressed avatar's garment meshes (mesh extras "garment", same skin) are merged back
    after the body, so the result matches the mesh that was written (extras["garments"] included).
    """
    glb = _Glb(path)
    gltf = glb.gltf
    mesh_nodes = [n for n in gltf.nodes if n.mesh is not None]
    node = next((n for n in mesh_nodes if n.skin is not None), None)
    if node is None:
        raise ValueError(f"{path}: no skinned mesh node")
    gmesh = gltf.meshes[node.mesh]
    if len(gmesh.primitives) != 1:
        raise NotImplementedError(f"{path}: meshes with {len(gmesh.primitives)} primitives are not supported")
    skeleton, joint_nodes, remap = _read_skeleton(glb, gltf.skins[node.skin])
    prim = gmesh.primitives[0]
    body = _read_primitive(glb, prim, remap)
    parts = [body]
    # garments (written by `write_glb` for a dressed mesh): further skinned meshes on the same skin,
    # each with extras.garment; merged back after the body in file order, as `dress` laid them out
    for other in mesh_nodes:
        extras = gltf.meshes[other.mesh].extras
        if other is node or other.skin != node.skin or not (isinstance(extras, dict) and "garment" in extras):
            continue
        garment_prims = gltf.meshes[other.mesh].primitives
        if len(garment_prims) != 1:
            raise NotImplementedError(f"{path}: garment meshes with {len(garment_prims)} primitives are not supported")
        parts.append(_read_primitive(glb, garment_prims[0], remap, garment=True))
    offsets = np.cumsum([0] + [len(p["vertices"]) for p in parts])
    vertices = np.concatenate([p["vertices"] for p in parts])
    faces = np.concatenate([p["faces"] + o for p, o in zip(parts, offsets)])
    skin_indices = np.concatenate([p["skin_indices"] for p in parts])
    skin_weights = np.concatenate([p["skin_weights"] for p in parts])
    colors = None
    if all(p["colors"] is not None for p in parts):
        width = min(p["colors"].shape[1] for p in parts)
        colors = torch.from_numpy(np.concatenate([p["colors"][:, :width] for p in parts]).astype(np.float32))
    uvs, texture = body["uvs"], body["texture"]
    if len(parts) > 1 and uvs is not None:
        raise NotImplementedError(f"{path}: a textured body with garments is not supported")

    extras = dict(gmesh.extras or {})
    morph_targets = None
    if prim.targets:
        names = extras.pop("targetNames", None) or [f"target_{k}" for k in range(len(prim.targets))]
        deltas = np.stack([glb.accessor(t["POSITION"] if isinstance(t, dict) else t.POSITION) for t in prim.targets])
        deltas = np.concatenate([deltas, np.zeros((len(deltas), len(vertices) - len(deltas[0]), 3), deltas.dtype)], 1)
        morph_targets = MorphTargets(list(names), torch.from_numpy(deltas.astype(np.float32)))

    name = gmesh.name or node.name or "avatar"
    mesh = RiggedMesh(
        vertices=torch.from_numpy(vertices.astype(np.float32)),
        faces=torch.from_numpy(faces),
        skeleton=skeleton,
        skin_indices=torch.from_numpy(skin_indices),
        skin_weights=torch.from_numpy(skin_weights),
        vertex_colors=colors,
        uvs=uvs,
        texture=texture,
        name=name,
        extras=extras,
        morph_targets=morph_targets,
    )
    return mesh, _read_motion(glb, skeleton, joint_nodes, "motion")
