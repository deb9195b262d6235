"""Does skin (or an inner garment) show through the clothes in motion? Measured, not assumed.

For each garment, the points it covers are found in the rest pose: visible body vertices (on a
body triangle still drawn) and the vertices of garments worn under it, lying under its outside --
within `reach` of their nearest cloth vertex, on the inner side of its normal, and roughly straight
below it (so points beside an open hem do not count). Every frame of a motion is then posed with
the one LBS (body/lbs.py) and a covered point counts as through when it lies outside its nearest
cloth vertex's posed tangent plane by more than `tolerance`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from avatarclip_core.body import lbs
from avatarclip_core.body.types import Motion, RiggedMesh
from avatarclip_core.export.gltf import smooth_vertex_normals

from .surface import boundary_loops


EDGE_RINGS = 2  # rings of cloth vertices next to an open edge that do not count as covering


@dataclass
class ThroughCount:
    garment: str
    covered: int  # points under the garment at rest (body, or inner garments when layer=True)
    through_any_frame: int  # of those, how many come out in at least one frame
    worst_frame: int  # the most that are out in a single frame
    layer: bool  # True: inner garments' vertices, False: the body's


def posed_vertices(mesh: RiggedMesh, motion: Motion) -> torch.Tensor:
    """(T, V, 3) every vertex of `mesh` in every frame of `motion` (the project's one LBS)."""
    if list(motion.joint_names) != list(mesh.skeleton.names):
        raise ValueError("fit check: the motion is for another skeleton")
    dense = lbs.dense_skin_weights(mesh.skin_indices, mesh.skin_weights.float(), mesh.skeleton.num_joints)
    verts, _ = lbs.pose_body(mesh.vertices.float(), mesh.skeleton.rest_transforms.float(), mesh.skeleton.parents,
                             dense, motion.rotations.float(), motion.root_translation.float())
    return verts


def skin_through(mesh: RiggedMesh, motion: Motion, reach: float = 0.06, tolerance: float = 0.0005,
                 hidden_too: bool = False) -> list[ThroughCount]:
    """Per garment of a dressed mesh (mesh.extras["garments"], from `dress`): body vertices and
    inner-garment vertices that it covers at rest and that end up outside it in the motion.
    hidden_too: also count the body vertices whose triangles `dress` dropped (they draw nothing, but
    their staying inside shows the cloth follows the body)."""
    records = mesh.extras.get("garments")
    if not records:
        raise ValueError("fit check: the mesh has no garments (dress it first)")
    posed = posed_vertices(mesh, motion).numpy()
    rest = mesh.vertices.detach().cpu().double().numpy()
    faces = mesh.faces.cpu().numpy()
    n_body = records[0]["first_vertex"]
    visible_body = np.arange(n_body) if hidden_too else np.unique(faces[(faces < n_body).all(1)])
    out = []
    for k, g in enumerate(records):
        lo, hi = g["first_vertex"], g["first_vertex"] + g["vertex_count"]
        own = faces[g["first_face"]:g["first_face"] + g["face_count"]] - lo
        outside = np.arange(g["outer_vertex_count"])
        own = own[(own < len(outside)).all(1)]  # the cloth's outside only: hems and lining face elsewhere
        inner = [np.arange(r["first_vertex"], r["first_vertex"] + r["vertex_count"]) for r in records[:k]
                 if r["kind"] not in ("shoes", "boots") or g["kind"] in ("shoes", "boots")]
        for layer, points in ((False, visible_body), (True, np.concatenate(inner) if inner else np.zeros(0, int))):
            if layer and len(points) == 0:
                continue
            covered, near = _covered(rest[points], rest[lo:hi], own, outside, reach)
            pts = points[covered]
            any_out = np.zeros(len(pts), bool)
            worst = 0
            for frame in posed:
                cloth = frame[lo:hi].astype(np.float64)
                normals = smooth_vertex_normals(cloth, own)[outside]
                _, idx = cKDTree(cloth[outside]).query(frame[pts])
                depth = ((frame[pts] - cloth[outside][idx]) * normals[idx]).sum(1)
                now = depth > tolerance
                any_out |= now
                worst = max(worst, int(now.sum()))
            del near
            out.append(ThroughCount(g["kind"], int(len(pts)), int(any_out.sum()), worst, layer))
    return out


def _covered(points: np.ndarray, cloth: np.ndarray, faces: np.ndarray, outside: np.ndarray, reach: float):
    """Mask of `points` lying under the cloth's outside at rest (not nearest to its edge, where
    they are only beside an opening), and their nearest outside vertex."""
    normals = smooth_vertex_normals(cloth, faces)[outside]
    dist, idx = cKDTree(cloth[outside]).query(points, distance_upper_bound=reach)
    ok = np.isfinite(dist)
    idx = np.where(ok, idx, 0)
    edge = np.zeros(len(outside), bool)
    for loop in boundary_loops(faces):
        edge[loop] = True
    for _ in range(EDGE_RINGS):  # points by an opening are beside the cloth, not under it
        edge[np.unique(faces[edge[faces].any(1)])] = True
    ok &= ~edge[idx]
    up = cloth[outside][idx] - points
    length = np.maximum(np.linalg.norm(up, axis=1), 1e-9)
    along = (up * normals[idx]).sum(1) / length
    return ok & (along > 0.5), idx
