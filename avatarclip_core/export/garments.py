"""Where the body and each garment are in a dressed mesh, for writers that give each its own mesh.

`avatarclip_core.outfit.dress` appends garments to the body and records them in
mesh.extras["garments"] (contiguous vertex and face ranges, body first). The GLB and VRM writers
turn each range into its own skinned mesh node and material; this module is the one reading of
that record, checked so a stale or hand-made record fails with a clear error instead of a file
with faces pointing into another part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..body.types import RiggedMesh
from .color import srgb_to_linear


@dataclass(frozen=True)
class MeshPart:
    """One part of a dressed mesh: the body (record None) or a garment."""

    name: str  # glTF mesh/node name: the mesh's own name for the body, "garment_<kind>" for garments
    rows: slice  # its vertices in the dressed mesh
    faces: np.ndarray  # (F, 3) its triangles, indices local to `rows`
    record: dict | None  # the garment's entry in mesh.extras["garments"]

    @property
    def colour_linear(self) -> list[float]:
        """The garment's colour (sRGB in the record) as glTF's linear base colour factor (RGBA)."""
        return [float(c) for c in srgb_to_linear(np.asarray(self.record["colour"][:3]))] + [1.0]


def garment_parts(mesh: RiggedMesh) -> list[MeshPart]:
    """[body, garment, ...] for a mesh with extras["garments"]; [] for one without (written whole)."""
    records = (mesh.extras or {}).get("garments") or []
    if not records:
        return []
    faces = mesh.faces.detach().cpu().long().numpy()
    V, F = len(mesh.vertices), len(faces)
    first_v, first_f = int(records[0]["first_vertex"]), int(records[0]["first_face"])
    parts = [MeshPart(mesh.name, slice(0, first_v), faces[:first_f], None)]
    v, f = first_v, first_f
    for r in records:
        v0, nv, f0, nf = (int(r[k]) for k in ("first_vertex", "vertex_count", "first_face", "face_count"))
        if v0 != v or f0 != f or nv <= 0 or nf <= 0:
            raise ValueError(f"garment {r.get('kind')!r}: its vertex/face ranges do not follow the previous part's")
        parts.append(MeshPart(f"garment_{r['kind']}", slice(v0, v0 + nv), faces[f0:f0 + nf] - v0, r))
        v, f = v0 + nv, f0 + nf
    if v != V or f != F:
        raise ValueError(f"mesh.extras['garments'] covers {v} of {V} vertices and {f} of {F} faces")
    for part in parts:
        count = part.rows.stop - part.rows.start
        if part.faces.size and (part.faces.min() < 0 or part.faces.max() >= count):
            raise ValueError(f"{part.name}: its faces use vertices of another part")
    return parts
