"""Cloth that hangs instead of clinging: an offset of the skin reads as body paint, so each tube of
a garment (a trouser leg, a sleeve, the trunk of a top) is widened towards the convex outline of its
own cross-sections, and that outline is not allowed to narrow faster than a taper going down the
tube. A trouser leg then falls straight from the thigh, a shirt hangs from the chest over the
waist and the small of the back, and a sleeve is a tube rather than a second skin.

Only outward moves (the cloth never gets closer to the skin), so the skin stays under the cloth.
"""
from __future__ import annotations

import numpy as np


def hang_tube(points: np.ndarray, members: np.ndarray, start: np.ndarray, end: np.ndarray, taper: float,
              ease: float = 1.0, ramp: tuple[float, float] = (0.0, 0.0), bins: tuple[int, int] = (28, 36)) -> np.ndarray:
    """`points` with the `members` (bool mask) pushed out to their tube's hanging outline.

    start -> end: the tube's axis (e.g. hip joint -> ankle joint); taper: metres the outline may
    narrow per metre of axis; ease: how far (0..1) towards the outline; ramp: axis fractions over
    which the effect fades in from the start (where the tube joins the trunk)."""
    if not members.any():
        return points
    axis = end - start
    length = float(np.linalg.norm(axis))
    a = axis / length
    e1 = np.cross(a, [0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.cross(a, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(a, e1)
    rel = points[members] - start
    t = rel @ a / length
    x, y = rel @ e1, rel @ e2
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    nt, nphi = bins
    tb = np.clip(((t - t.min()) / max(np.ptp(t), 1e-9) * (nt - 1)).round().astype(int), 0, nt - 1)
    t_of_bin = t.min() + np.arange(nt) / (nt - 1) * max(np.ptp(t), 1e-9)
    pb = ((phi + np.pi) / (2 * np.pi) * nphi).astype(int) % nphi
    outline = np.zeros((nt, nphi))
    np.maximum.at(outline, (tb, pb), r)
    for _ in range(nphi):  # empty bins take their neighbours' radius
        empty = outline == 0
        if not empty.any():
            break
        outline[empty] = np.maximum(np.roll(outline, 1, 1), np.roll(outline, -1, 1))[empty]
    step = taper * length * (t_of_bin[1] - t_of_bin[0])
    for i in range(1, nt):  # may narrow at most `taper` going along the axis
        outline[i] = np.maximum(outline[i], outline[i - 1] - step)
    for _ in range(2):
        outline = np.maximum(outline, 0.25 * np.roll(outline, 1, 1) + 0.5 * outline + 0.25 * np.roll(outline, -1, 1))
    # bilinear lookup in (t, phi), phi circular
    ft = np.clip((t - t.min()) / max(np.ptp(t), 1e-9) * (nt - 1), 0, nt - 1)
    fp = (phi + np.pi) / (2 * np.pi) * nphi - 0.5
    t0 = np.minimum(ft.astype(int), nt - 2)
    p0 = np.floor(fp).astype(int)
    wt, wp = ft - t0, fp - p0
    p0, p1 = p0 % nphi, (p0 + 1) % nphi
    target = ((1 - wt) * ((1 - wp) * outline[t0, p0] + wp * outline[t0, p1])
              + wt * ((1 - wp) * outline[t0 + 1, p0] + wp * outline[t0 + 1, p1]))
    lo, hi = ramp
    fade = np.clip((t - lo) / max(hi - lo, 1e-9), 0.0, 1.0) if hi > lo else np.ones_like(t)
    grow = ease * fade * np.maximum(target - r, 0.0)
    out = points.copy()
    radial = np.stack([x, y], 1) / np.maximum(r, 1e-9)[:, None]
    out[members] += grow[:, None] * (radial[:, :1] * e1 + radial[:, 1:] * e2)
    return out
