"""Mesh operations the garments are made with: cutting a surface along a field's zero line,
dropping stray islands, finding boundary loops, smoothing, and closing an offset shell's open edge
with a hem (a strip from the cloth back down to the skin, so no gap or paper-thin edge shows).

Plain numpy on (V, 3) float64 positions and (F, 3) int faces; per-vertex attributes travel in a dict
of (V, k) arrays and are interpolated wherever new vertices are made.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .regions import laplacian_smooth, vertex_adjacency


def cut_negative(faces: np.ndarray, field: np.ndarray, attributes: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The part of the mesh where `field` < 0, its triangles cut exactly along the zero line.

    Returns (faces, attributes, field) of the piece; new vertices sit on the zero line (field 0),
    their attributes interpolated linearly along the cut edge."""
    f = field.astype(np.float64).copy()
    tiny = 1e-7  # keep every vertex strictly on one side, so no zero-area triangles are made
    f[np.abs(f) < tiny] = tiny
    neg = f[faces] < 0
    count = neg.sum(1)
    keep_whole = faces[count == 3]
    cut = faces[(count == 1) | (count == 2)]
    cneg = neg[(count == 1) | (count == 2)]
    V = len(f)
    # one new vertex per crossing edge, keyed by (min, max) vertex id
    edges = np.concatenate([cut[:, [0, 1]], cut[:, [1, 2]], cut[:, [2, 0]]])
    sign_change = (f[edges[:, 0]] < 0) != (f[edges[:, 1]] < 0)
    ekey = np.sort(edges[sign_change], 1)
    uniq, inv_all = np.unique(ekey[:, 0] * V + ekey[:, 1], return_inverse=True)
    ea, eb = uniq // V, uniq % V
    t = f[ea] / (f[ea] - f[eb])
    new_attr = {k: np.concatenate([a, a[ea] + t[:, None] * (a[eb] - a[ea])]) for k, a in attributes.items()}
    new_f = np.concatenate([f, np.zeros(len(uniq))])

    def crossing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        key = np.minimum(a, b) * V + np.maximum(a, b)
        return V + np.searchsorted(uniq, key)

    tris = [keep_whole]
    for rot in range(3):  # rotate each cut triangle so that corner 0 is the odd one out
        i0, i1, i2 = rot, (rot + 1) % 3, (rot + 2) % 3
        one = (cneg.sum(1) == 1) & cneg[:, i0]
        a, b, c = cut[one, i0], cut[one, i1], cut[one, i2]
        tris.append(np.stack([a, crossing(a, b), crossing(a, c)], 1))
        two = (cneg.sum(1) == 2) & ~cneg[:, i0]  # corner 0 outside, 1 and 2 inside
        a, b, c = cut[two, i0], cut[two, i1], cut[two, i2]
        ab, ac = crossing(a, b), crossing(a, c)
        tris.append(np.stack([ab, b, c], 1))
        tris.append(np.stack([ab, c, ac], 1))
    out = np.concatenate(tris).astype(np.int64)
    del inv_all
    return compact(out, new_attr, new_f)


def compact(faces: np.ndarray, attributes: dict[str, np.ndarray], field: np.ndarray | None = None):
    """Drop vertices no face uses; returns (faces, attributes[, field]) renumbered."""
    used = np.unique(faces)
    remap = np.full(len(next(iter(attributes.values()))), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    attrs = {k: a[used] for k, a in attributes.items()}
    if field is None:
        return remap[faces], attrs
    return remap[faces], attrs, field[used]


def keep_large_pieces(faces: np.ndarray, n: int, min_share: float = 0.05) -> np.ndarray:
    """Faces of the connected pieces holding at least `min_share` of all faces (drops stray islands)."""
    if len(faces) == 0:
        return faces
    count, label = connected_components(vertex_adjacency(faces, n), directed=False)
    face_label = label[faces[:, 0]]
    sizes = np.bincount(face_label, minlength=count)
    return faces[sizes[face_label] >= min_share * len(faces)]


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Each open boundary as an ordered vertex loop, in the direction the faces walk its edges."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = int(faces.max()) + 1
    key = e[:, 0] * n + e[:, 1]
    rev = e[:, 1] * n + e[:, 0]
    border = e[~np.isin(key, rev)]
    nxt = dict(zip(border[:, 0].tolist(), border[:, 1].tolist()))
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen and v in nxt:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        if len(loop) >= 3:
            loops.append(np.array(loop))
    return loops


def smooth_loop(points: np.ndarray, loop: np.ndarray, iterations: int = 8, lam: float = 0.5) -> None:
    """Laplacian smoothing of a closed loop's points, in place (straightens a jagged hem line)."""
    p = points[loop].copy()
    for _ in range(iterations):
        p += lam * (0.5 * (np.roll(p, 1, 0) + np.roll(p, -1, 0)) - p)
    points[loop] = p


def taubin_smooth(points: np.ndarray, faces: np.ndarray, fixed: np.ndarray, iterations: int = 6) -> np.ndarray:
    """Volume-keeping (Taubin lambda/mu) smoothing of a surface; `fixed` vertices do not move."""
    out = points.copy()
    free = ~fixed
    for _ in range(iterations):
        for lam in (0.5, -0.53):
            step = laplacian_smooth(out, faces, 1, lam) - out
            out[free] += step[free]
    return out


def hem_strip(loop: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Faces joining a boundary loop (outer vertex ids, in face-walk order) to `inner` ids (same
    order), oriented to continue the shell's winding over the edge."""
    a, b = loop, np.roll(loop, -1)
    ia, ib = inner, np.roll(inner, -1)
    return np.concatenate([np.stack([b, a, ia], 1), np.stack([b, ia, ib], 1)])
