"""Mesh connectivity the renderer needs (edges and their faces) and smooth vertex normals.

Edges are used to find contour edges (between a front- and a back-facing face, or on an open
boundary): the soft silhouette is the signed distance to the nearest of them. Connectivity only
depends on ``faces``, so it is computed once per faces tensor and cached by identity (keep
passing the same tensor; a copy each call just recomputes, which costs a few milliseconds).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from ._ops import flat_index, gather_rows, scatter_add_rows


@dataclass
class MeshTopology:
    faces: torch.Tensor  # (F, 3) long
    faces_i32: torch.Tensor  # (F, 3) int32, contiguous (for the warp kernels)
    edges: torch.Tensor  # (E, 2) long, vertex ids, a < b
    face_edges: torch.Tensor  # (F, 3) long: edge of corners (0,1), (1,2), (2,0)
    edge_faces: torch.Tensor  # (E, 2) long: first two faces of each edge, -1 when missing
    edge_face_count: torch.Tensor  # (E,) long
    corner_flat: torch.Tensor  # (F * 9,) element ids of the face corners in flattened (V, 3) data


def build_topology(faces: torch.Tensor) -> MeshTopology:
    faces = faces.long()
    F = faces.shape[0]
    corner_pairs = faces[:, [0, 1, 1, 2, 2, 0]].view(F * 3, 2)
    lo, hi = corner_pairs.min(dim=1).values, corner_pairs.max(dim=1).values
    n = int(faces.max()) + 1 if F else 1
    uniq, inverse = torch.unique(lo * n + hi, return_inverse=True)
    edges = torch.stack([uniq // n, uniq % n], dim=1)
    E = edges.shape[0]
    count = torch.bincount(inverse, minlength=E)
    order = torch.argsort(inverse, stable=True)
    face_of = (order // 3)
    start = torch.cumsum(count, 0) - count
    first = face_of[start]
    second = torch.where(count > 1, face_of[(start + 1).clamp_max(F * 3 - 1)], torch.full_like(first, -1))
    return MeshTopology(
        faces=faces,
        faces_i32=faces.to(torch.int32).contiguous(),
        edges=edges,
        face_edges=inverse.view(F, 3),
        edge_faces=torch.stack([first, second], dim=1),
        edge_face_count=count,
        corner_flat=flat_index(faces.reshape(-1), 3),
    )


_CACHE: OrderedDict[int, tuple[torch.Tensor, int, MeshTopology]] = OrderedDict()
_CACHE_SIZE = 8


def get_topology(faces: torch.Tensor) -> MeshTopology:
    """Cached ``build_topology`` keyed by the tensor's identity and version counter.

    The cache holds a reference to the tensor, so its id cannot be reused while it is cached.
    """
    key = id(faces)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is faces and hit[1] == faces._version:
        _CACHE.move_to_end(key)
        return hit[2]
    topo = build_topology(faces)
    _CACHE[key] = (faces, faces._version, topo)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return topo


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the last dim (plain arithmetic: faster than linalg.cross on small rows)."""
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim=-1)


def batched_faces(faces: torch.Tensor, B: int, V: int) -> torch.Tensor:
    """(B * F, 3) vertex ids into the flattened (B * V) vertices of B meshes sharing ``faces``."""
    if B == 1:
        return faces
    offset = torch.arange(B, device=faces.device).view(B, 1, 1) * V
    return (faces.unsqueeze(0) + offset).reshape(-1, 3)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, topology: MeshTopology | None = None) -> torch.Tensor:
    """Area-weighted smooth vertex normals, differentiable. vertices (B, V, 3) -> (B, V, 3) unit.

    topology (optional, for B = 1): reuses its precomputed corner indices.
    """
    B, V, _ = vertices.shape
    fidx = batched_faces(faces, B, V)
    flat = topology.corner_flat if topology is not None and B == 1 else None
    tri = gather_rows(vertices.reshape(B * V, 3), fidx, flat)  # (B*F, 3, 3)
    v0, v1, v2 = tri.unbind(1)
    fn = cross(v1 - v0, v2 - v0)  # length = 2 * area
    vn = scatter_add_rows(fn.unsqueeze(1).expand(-1, 3, 3).reshape(-1, 3), fidx.reshape(-1), B * V, flat)
    return torch.nn.functional.normalize(vn.view(B, V, 3), dim=-1, eps=1e-12)
