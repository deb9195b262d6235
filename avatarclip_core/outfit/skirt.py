"""A skirt as a flared tube around the hips and both legs (one piece, never split between the
legs), the way game skirts are made: rows of rings from the waist to the hem, each ring the
convex outline of everything under it at that height (body and the garments already on it) plus
the cloth's thickness, never narrower than the ring above plus the flare.

The tube is closed into a thin shell (an outer wall, an inner wall a thickness inside it, a strip
at the hem and one at the waistband down to the skin), so looking up the skirt shows cloth, not a
hole. Skinning follows common practice: the waistband moves with the pelvis, further down each
side blends onto its thigh (left of the body's centre onto the left thigh), so a stride swings the
cloth with the leg under it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SkirtShape:
    rows: int = 22  # rings from the waist to the hem
    around: int = 72  # vertices per ring
    flare: float = 0.22  # metres of extra radius per metre of drop (an A-line)
    band: float = 0.02  # half-height of the slice of points each ring wraps (metres)
    side_blend: float = 0.035  # metres either side of the centre over which left/right thighs blend


def skirt_tube(points: np.ndarray, top_y: float, hem_y: float, centre: np.ndarray, thickness: float,
               shape: SkirtShape) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (N, 3), faces (M, 3), each vertex's height fraction (0 waist .. 1 hem) and whether
    it is on the outer wall. `points`: what the skirt must wrap (body trunk/legs, lower garments)."""
    ys = np.linspace(top_y, hem_y, shape.rows)
    theta = np.linspace(0.0, 2 * np.pi, shape.around, endpoint=False)
    # counter-clockwise seen from above (+Y): u = (sin, cos) in (x, z) starts at the front (+Z)
    u = np.stack([np.sin(theta), np.cos(theta)], 1)
    rel = points[:, [0, 2]] - centre[None]
    radius = np.zeros((shape.rows, shape.around))
    prev = None
    for i, y in enumerate(ys):
        near = np.abs(points[:, 1] - y) < shape.band
        support = (rel[near] @ u.T).max(0) if near.any() else (prev if prev is not None else np.full(shape.around, 0.1))
        support = _smooth_circular(support, 2)
        r = support + thickness
        if prev is not None:
            r = np.maximum(r, prev + shape.flare * (ys[i - 1] - y))
        radius[i] = r
        prev = r
    skin_ring = radius[0] - thickness + 0.001  # the waistband's inner edge, just off the skin
    inner = np.maximum(radius - thickness, skin_ring[None])
    outer_v = _rings(ys, radius, u, centre)
    inner_v = _rings(ys, inner, u, centre)
    R, A = shape.rows, shape.around
    grid = np.arange(R * A).reshape(R, A)
    a, b = grid[:-1], np.roll(grid[:-1], -1, 1)
    c, d = grid[1:], np.roll(grid[1:], -1, 1)
    # ring i above ring i+1; around goes counter-clockwise from above, so (a, c, b) faces outward
    outer_f = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    inner_f = outer_f[:, ::-1] + R * A
    ring_top, ring_hem = grid[0], grid[-1]
    hem = _strip(ring_hem, ring_hem + R * A)
    waist = _strip(ring_top + R * A, ring_top)
    verts = np.concatenate([outer_v, inner_v])
    faces = np.concatenate([outer_f, inner_f, hem, waist])
    drop = np.tile(np.repeat((ys - top_y) / (hem_y - top_y), A), 2)
    outer = np.concatenate([np.ones(R * A, bool), np.zeros(R * A, bool)])
    return verts, faces, drop, outer


def skirt_weights(verts: np.ndarray, drop: np.ndarray, centre_x: float, side_blend: float,
                  pelvis: int, thigh_l: int, thigh_r: int, num_joints: int) -> np.ndarray:
    """(N, J) dense skin weights: pelvis at the waistband, the thighs further down, by side."""
    follow = np.clip(drop * 2.2, 0.0, 1.0) ** 1.2  # how much of the leg's swing the cloth takes
    left = 1.0 / (1.0 + np.exp(-(verts[:, 0] - centre_x) / (side_blend / 4)))  # +X is the body's left
    w = np.zeros((len(verts), num_joints))
    w[:, pelvis] = 1.0 - follow
    w[:, thigh_l] = follow * left
    w[:, thigh_r] = follow * (1.0 - left)
    return w


def _rings(ys: np.ndarray, radius: np.ndarray, u: np.ndarray, centre: np.ndarray) -> np.ndarray:
    xz = centre[None, None] + radius[..., None] * u[None]
    return np.concatenate([xz[..., :1], np.broadcast_to(ys[:, None, None], xz[..., :1].shape), xz[..., 1:]],
                          -1).reshape(-1, 3)


def _strip(ring_a: np.ndarray, ring_b: np.ndarray) -> np.ndarray:
    a, b = ring_a, np.roll(ring_a, -1)
    c, d = ring_b, np.roll(ring_b, -1)
    return np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def _smooth_circular(x: np.ndarray, iterations: int) -> np.ndarray:
    for _ in range(iterations):
        x = np.maximum(x, 0.25 * np.roll(x, 1) + 0.5 * x + 0.25 * np.roll(x, -1))
    return x
