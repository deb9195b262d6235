"""`dress(mesh, garments)`: the body with its outfit, as one rigged mesh.

Each garment of the shipped procedural set is made from the body's own surface: the region its
kind covers (regions.py) is cut out along a smooth edge, pushed out along the normals by the
cloth's thickness plus whatever it is worn over, smoothed, and hemmed back to the skin; skirts are
flared tubes (skirt.py). Garment vertices carry the body's skin weights (interpolated where cut),
so the one LBS (body/lbs.py) moves them with the body. Body triangles a garment hides with a margin
are dropped (the usual game practice: nothing left under the cloth to poke through it); the body's
vertices stay first and in order, so body-indexed data (face shapes) still lines up.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.config.ranges import NonNegative, NonNegativeInt
from avatarclip_core.errors import UserInputError
from avatarclip_core.export.gltf import smooth_vertex_normals
from avatarclip_core.rig.transfer import _sparse_top_k

from .catalogue import GarmentKind, garment_kind
from .drape import hang_tube
from .regions import PARTS, BodyFrame
from .skirt import SkirtShape, skirt_tube, skirt_weights
from .surface import boundary_loops, compact, cut_negative, hem_strip, keep_large_pieces, smooth_loop, taubin_smooth

SKIN_CLEARANCE = 0.001  # metres between the skin and a hem's inner edge
HEM_DEPTH = 0.015  # metres: a loose hem turns in this far, not down into every hollow of the skin


@dataclass
class GarmentSpec:
    """One garment to wear: a kind from catalogue.GARMENT_KINDS and its colour (RGB in [0, 1];
    None: the kind's default, e.g. denim blue for jeans)."""

    kind: str
    rgb: tuple[float, float, float] | None = None


@dataclass
class OutfitConfig:
    hide_covered_skin: bool = True  # drop body triangles a garment covers (past the margin below)
    hidden_margin: NonNegative = 0.02  # metres inside a garment's edge where the skin starts to go
    edge_smoothing: NonNegativeInt = 10  # Laplacian passes over the coverage field (smooth edges)
    shell_smoothing: NonNegativeInt = 4  # Taubin passes over each garment (irons out skin detail)
    skirt: SkirtShape = field(default_factory=SkirtShape)


@dataclass
class GarmentRecord:
    """Where a garment is in the dressed mesh (what an exporter needs to split it out)."""

    kind: str
    colour: tuple[float, float, float]
    first_vertex: int
    vertex_count: int
    first_face: int
    face_count: int
    thickness_mm: float  # mean distance of the cloth from the skin under it
    outer_vertex_count: int  # its first vertices that make the cloth's outside (fit_check uses them)


@dataclass
class OutfitReport:
    garments: list[GarmentRecord]
    body_faces_hidden: int
    vertices_added: int
    faces_added: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Piece:
    kind: GarmentKind
    colour: tuple[float, float, float]
    vertices: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3), local ids
    weights: np.ndarray  # (n, J) dense
    thickness: float
    outer_count: int  # the first outer_count vertices are the outside of the cloth (then hems, lining)
    shades: np.ndarray | None = None  # (n,) colour multiplier per vertex (a zip line, a sole), None: plain


def dress(mesh: RiggedMesh, garments: list[GarmentSpec], config: OutfitConfig | None = None,
          skin_rgb: tuple[float, float, float] | None = None) -> tuple[RiggedMesh, OutfitReport]:
    """The body in `mesh` wearing `garments` (any order: they are layered by kind, e.g. a jacket
    over a t-shirt over jeans). skin_rgb: the body's colour when `mesh` has no vertex colours.
    Raises UnknownGarmentError / UserInputError for a bad list, before any work."""
    config = config or OutfitConfig()
    kinds = _checked(garments)
    body_colours = _body_colours(mesh, skin_rgb)
    frame = BodyFrame.of(mesh)
    V = frame.vertices
    F = mesh.faces.cpu().numpy().astype(np.int64)
    normals = smooth_vertex_normals(V, F)
    J = mesh.skeleton.num_joints
    dense = np.zeros((len(V), J))
    np.add.at(dense, (np.arange(len(V))[:, None], mesh.skin_indices.cpu().numpy()),
              mesh.skin_weights.detach().cpu().double().numpy())
    order = sorted(range(len(kinds)), key=lambda i: (kinds[i].layer, i))
    pieces: list[_Piece] = []
    worn: list[tuple[np.ndarray, np.ndarray]] = []  # (field, offset) on the body of each shell so far
    hidden = np.zeros(len(V), bool)
    for i in order:
        kind, colour = kinds[i], _colour(garments[i], kinds[i])
        if kind.top_hem or kind.leg_end is not None or kind.foot_start is not None:
            f = frame.coverage_field(kind, F, config.edge_smoothing)
            offset = kind.thickness + _under(worn, len(V))
            piece = _shell(kind, colour, F, f, frame, normals, dense, offset, config)
            _clear_of(piece, [p for p in pieces if p.kind.category != "shoes" or kind.category == "shoes"])
            pieces.append(piece)
            worn.append((f, offset))
            if config.hide_covered_skin:
                hidden |= f < -config.hidden_margin
        if kind.skirt_hem is not None:
            pieces.append(_skirt(kind, colour, frame, mesh, pieces, config.skirt))
    body_faces = F[~hidden[F].all(1)] if config.hide_covered_skin else F
    return _assemble(mesh, body_faces, pieces, len(F) - len(body_faces), body_colours)


def _checked(garments: list[GarmentSpec]) -> list[GarmentKind]:
    kinds = [garment_kind(g.kind) for g in garments]
    seen = set()
    for g in garments:
        if g.kind in seen:
            raise UserInputError(f"garment kind {g.kind!r} is listed twice")
        seen.add(g.kind)
        if g.rgb is not None and (len(g.rgb) != 3 or not all(0.0 <= float(c) <= 1.0 for c in g.rgb)):
            raise UserInputError(f"garment {g.kind!r}: colour must be 3 numbers in [0, 1], got {g.rgb!r}")
    categories = [k.category for k in kinds]
    for single in ("shoes",):
        if categories.count(single) > 1:
            raise UserInputError(f"only one pair of {single} at a time, got {[k.name for k in kinds if k.category == single]}")
    return kinds


def _colour(spec: GarmentSpec, kind: GarmentKind) -> tuple[float, float, float]:
    return tuple(float(c) for c in (spec.rgb if spec.rgb is not None else kind.colour))


def _under(worn: list[tuple[np.ndarray, np.ndarray]], n: int, reach: float = 0.03) -> np.ndarray:
    """(n,) metres of cloth already on each body vertex: the outermost garment under it, fading out
    over `reach` past that garment's edge so an outer layer clears an inner one's hem."""
    under = np.zeros(n)
    for f, offset in worn:
        cover = np.clip((reach - f) / reach, 0.0, 1.0)
        under = np.maximum(under, cover * (offset + 0.002))
    return under


def _shell(kind, colour, F, f, frame: BodyFrame, normals, dense, offset, config: OutfitConfig) -> _Piece:
    limbs = tuple(frame.chain_s)
    attrs = {"p": frame.vertices, "n": normals, "w": dense, "off": offset[:, None], "part": frame.part_weights,
             "s": np.stack([frame.chain_s[k] for k in limbs], 1)}
    faces, attrs, _ = cut_negative(F, f, attrs)
    faces = keep_large_pieces(faces, len(attrs["p"]))
    if len(faces) == 0:
        raise UserInputError(f"garment {kind.name!r} covers no part of this body")
    faces, attrs = compact(faces, attrs)
    P = attrs["p"]
    N = attrs["n"] / np.maximum(np.linalg.norm(attrs["n"], axis=1, keepdims=True), 1e-12)
    off = attrs["off"][:, 0]
    outer = P + N * off[:, None]
    loops = boundary_loops(faces)
    on_edge = np.zeros(len(P), bool)
    for loop in loops:
        on_edge[loop] = True
    outer = taubin_smooth(outer, faces, on_edge, config.shell_smoothing * (3 if kind.category == "shoes" else 1))
    outer = _hang(kind, outer, attrs["part"], dict(zip(limbs, attrs["s"].T)), frame)
    for loop in loops:
        smooth_loop(outer, loop)
    lift = ((outer - P) * N).sum(1)  # keep the cloth off the skin wherever smoothing pulled it in
    outer += N * np.maximum(0.8 * off - lift, 0.0)[:, None]
    if kind.category == "shoes":
        outer = _flat_sole(outer, P)
    verts, tris, weights = [outer], [faces], [attrs["w"]]
    n = len(outer)
    for loop in loops:  # the hem goes back towards the skin, at most HEM_DEPTH deep
        lift = ((outer[loop] - P[loop]) * N[loop]).sum(1)
        ring = outer[loop] - N[loop] * np.clip(lift - SKIN_CLEARANCE, 0.0, HEM_DEPTH)[:, None]
        inner = np.arange(n, n + len(loop))
        smooth_loop(ring, np.arange(len(loop)))  # the skin-side edge as smooth as the cloth's
        verts.append(ring)
        weights.append(attrs["w"][loop])
        tris.append(hem_strip(loop, inner))
        n += len(loop)
    verts = np.concatenate(verts)
    return _Piece(kind, colour, verts, np.concatenate(tris), np.concatenate(weights), float(off.mean()), len(outer),
                  _details(kind, verts, P, frame))


def _clear_of(piece: _Piece, under: list[_Piece], gap: float = 0.003) -> None:
    """Push `piece`'s vertices out over the garments worn under it (their draped surface may stand
    further out than the offsets assumed), in place: each vertex ends at least `gap` outside the
    nearest under-garment vertex, along that vertex's normal."""
    from scipy.spatial import cKDTree

    for p in under:
        normals = smooth_vertex_normals(p.vertices, p.faces)
        dist, near = cKDTree(p.vertices).query(piece.vertices, distance_upper_bound=0.05)
        hit = np.isfinite(dist)
        n = normals[near[hit]]
        depth = ((piece.vertices[hit] - p.vertices[near[hit]]) * n).sum(1)
        push = np.maximum(gap - depth, 0.0)
        piece.vertices[hit] += n * push[:, None]


def _hang(kind: GarmentKind, outer: np.ndarray, part: np.ndarray, chain_s: dict[str, np.ndarray],
          frame: BodyFrame) -> np.ndarray:
    """Let the cloth hang (drape.hang_tube): sleeves and trouser legs as tubes, a top's trunk from the chest."""
    j = frame.joints
    col = {p: i for i, p in enumerate(PARTS)}
    if kind.sleeve_end is not None:  # each arm bone its own tube: the rest pose bends the elbow
        for side in ("l", "r"):
            arm, s = part[:, col[f"arm_{side}"]] > 0.5, chain_s[f"arm_{side}"]
            shoulder, elbow, wrist = j[f"upperarm_{side}"], j[f"lowerarm_{side}"], j[f"hand_{side}"]
            ramp = (0.05, 0.25) if kind.sleeve_end < 1 else (0.15, 0.5)
            outer = hang_tube(outer, arm & (s < 1.0), shoulder, elbow, taper=0.10, ease=0.8, ramp=ramp)
            outer = hang_tube(outer, arm & (s >= 1.0), elbow, wrist, taper=0.10, ease=0.8)
    if kind.top_hem is not None:
        chest_y = j["spine_03"][1] + 0.5 * (j["clavicle_l"][1] - j["spine_03"][1])
        body = part[:, [col["trunk"], col["leg_l"], col["leg_r"]]].sum(1) > 0.5
        hem_y = frame.levels[kind.top_hem]
        top = np.array([0.0, chest_y, j["spine_03"][2]])
        outer = hang_tube(outer, body & (outer[:, 1] < chest_y), top, np.array([0.0, hem_y, top[2]]),
                          taper=0.25, ramp=(0.0, 0.2))
    if kind.foot_start is not None:  # a shoe's toe box: the foot's outline, not its toes
        for side in ("l", "r"):
            ankle, ball = j[f"foot_{side}"], j[f"ball_{side}"]
            foot = (part[:, col[f"leg_{side}"]] > 0.5) & (chain_s[f"leg_{side}"] > 1.97)
            outer = hang_tube(outer, foot, ankle, ball + 0.6 * (ball - ankle), taper=0.0, ramp=(0.15, 0.4))
    if kind.leg_end is not None:
        taper = 0.14 if kind.name == "jeans" else 0.06
        for side in ("l", "r"):
            outer = hang_tube(outer, part[:, col[f"leg_{side}"]] > 0.5, j[f"thigh_{side}"], j[f"foot_{side}"],
                              taper=taper, ramp=(0.03, 0.2))
    return outer


def _details(kind: GarmentKind, verts: np.ndarray, skin: np.ndarray, frame: BodyFrame) -> np.ndarray | None:
    """Shading that tells garments apart at a glance: a dark zip / button line down the front of
    jackets, hoodies and shirts, a contrasting sole on shoes and boots."""
    j = frame.joints
    if kind.category == "shoes":
        ground = float(skin[:, 1].min())
        sole = verts[:, 1] < ground + 0.015
        return np.where(sole, 0.35 if np.mean(kind.colour) > 0.5 else 2.2, 1.0)
    if kind.name in ("jacket", "hoodie", "shirt"):
        front = (verts[:, 2] > j["spine_03"][2]) & (np.abs(verts[:, 0] - j["spine_03"][0]) < 0.006)
        return np.where(front & (verts[:, 1] < j["neck_01"][1]), 0.45, 1.0)
    return None


def _flat_sole(outer: np.ndarray, skin: np.ndarray, sole: float = 0.012) -> np.ndarray:
    """Shoes stand on a flat sole: everything below the sole's top is pressed onto the ground plane
    under the foot's lowest skin point, in a smooth blend."""
    ground = float(skin[:, 1].min())
    out = outer.copy()
    low = out[:, 1] < ground + sole
    blend = np.clip((ground + sole - out[low, 1]) / sole, 0.0, 1.0)
    out[low, 1] = (ground - 0.002) * blend + (1 - blend) * out[low, 1]
    out[:, 1] = np.maximum(out[:, 1], ground - 0.002)
    return out


def _skirt(kind, colour, frame: BodyFrame, mesh: RiggedMesh, pieces: list[_Piece], shape: SkirtShape) -> _Piece:
    j = frame.joints
    hip_y = 0.5 * (j["thigh_l"][1] + j["thigh_r"][1])
    knee_y = 0.5 * (j["calf_l"][1] + j["calf_r"][1])
    ankle_y = 0.5 * (j["foot_l"][1] + j["foot_r"][1])
    s = kind.skirt_hem
    hem_y = hip_y + s * (knee_y - hip_y) if s <= 1 else knee_y + (s - 1) * (ankle_y - knee_y)
    top_y = frame.levels[kind.waist]
    trunk_or_leg = frame.part_weights[:, [PARTS.index(p) for p in ("trunk", "leg_l", "leg_r")]].sum(1) > 0.5
    wrap = [frame.vertices[trunk_or_leg]] + [p.vertices for p in pieces if p.kind.category != "shoes"]
    centre = np.array([0.5 * (j["thigh_l"][0] + j["thigh_r"][0]), j["pelvis"][2]])
    verts, faces, drop, outer = skirt_tube(np.concatenate(wrap), top_y, hem_y, centre, kind.thickness, shape)
    names = mesh.skeleton.names
    weights = skirt_weights(verts, drop, centre[0], shape.side_blend, names.index("pelvis"),
                            names.index("thigh_l"), names.index("thigh_r"), len(names))
    return _Piece(kind, colour, verts, faces, weights, kind.thickness, int(outer.sum()))


def _body_colours(mesh: RiggedMesh, skin_rgb) -> torch.Tensor:
    if mesh.texture is not None:
        raise UserInputError("dressing a textured mesh is not supported yet (garments are vertex-coloured)")
    if mesh.vertex_colors is not None:
        return mesh.vertex_colors
    if skin_rgb is None:
        raise UserInputError("dressing a mesh without vertex colours needs skin_rgb (the body's colour)")
    return torch.tensor(skin_rgb, dtype=torch.float32).expand(len(mesh.vertices), 3).clone()


def _assemble(mesh: RiggedMesh, body_faces: np.ndarray, pieces: list[_Piece], hidden: int, colours: torch.Tensor
              ) -> tuple[RiggedMesh, OutfitReport]:
    n_body = len(mesh.vertices)
    K = mesh.skin_indices.shape[1]
    verts, faces, idx, wts, cols, records = [], [], [], [], [], []
    v0, f0 = n_body, len(body_faces)
    for p in pieces:
        i, w = _sparse_top_k(torch.from_numpy(p.weights).float(), K)
        c = torch.tensor(p.colour, dtype=colours.dtype).expand(len(p.vertices), 3)
        if p.shades is not None:
            c = (c * torch.from_numpy(p.shades).to(colours.dtype)[:, None]).clamp(0, 1)
        if colours.shape[1] == 4:
            c = torch.cat([c, torch.ones(len(p.vertices), 1, dtype=colours.dtype)], 1)
        verts.append(torch.from_numpy(p.vertices).to(mesh.vertices.dtype))
        faces.append(torch.from_numpy(p.faces + v0))
        idx.append(i.to(mesh.skin_indices.dtype))
        wts.append(w.to(mesh.skin_weights.dtype))
        cols.append(c)
        records.append(GarmentRecord(p.kind.name, p.colour, v0, len(p.vertices), f0, len(p.faces),
                                     round(1000 * p.thickness, 2), p.outer_count))
        v0 += len(p.vertices)
        f0 += len(p.faces)
    morph = mesh.morph_targets
    if morph is not None:
        from avatarclip_core.body.types import MorphTargets

        pad = torch.zeros(morph.deltas.shape[0], v0 - n_body, 3, dtype=morph.deltas.dtype)
        morph = MorphTargets(list(morph.names), torch.cat([morph.deltas, pad], 1))
    report = OutfitReport(records, hidden, v0 - n_body, f0 - len(body_faces))
    extras = dict(mesh.extras)
    extras["garments"] = [asdict(r) for r in records]
    dressed = RiggedMesh(
        vertices=torch.cat([mesh.vertices, *verts]),
        faces=torch.cat([torch.from_numpy(body_faces).to(mesh.faces.dtype), *[f.to(mesh.faces.dtype) for f in faces]]),
        skeleton=mesh.skeleton,
        skin_indices=torch.cat([mesh.skin_indices, *idx]),
        skin_weights=torch.cat([mesh.skin_weights, *wts]),
        vertex_colors=torch.cat([colours, *cols]),
        uvs=None, texture=None, name=mesh.name, extras=extras, morph_targets=morph,
    )
    return dressed, report
