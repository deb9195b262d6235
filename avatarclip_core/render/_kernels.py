"""Warp kernels for the two non-differentiable passes of the rasteriser.

Both passes write a packed int64 key per pixel with one ``atomic_min``: the high 32 bits hold a
quantised distance (depth, or distance to an edge) and the low 32 bits the primitive id, so the
nearest primitive wins and ties break deterministically towards the lowest id. One thread per
primitive loops over the pixels of its screen bounding box: meshes here have many small
triangles, so this is cheap on the CPU (Warp runs CPU kernels serially) and maps to CUDA unchanged
(``atomic_min`` on int64 is native there).
"""
from __future__ import annotations

import warp as wp

EMPTY = (1 << 63) - 1  # key of a pixel nobody wrote (int64 max)
_SHIFT = wp.constant(wp.int64(4294967296))  # 2**32
_QMAX = wp.constant(1073741823.0)  # 2**30 - 1: quantisation levels of the distance part

# These passes are never differentiated by Warp (gradients come from the torch half), so skip
# generating adjoint code: it halves the one-off compile time.
wp.set_module_options({"enable_backward": False})


@wp.kernel
def raster_triangles(
    verts: wp.array3d(dtype=wp.float32),  # (B, V, 3): x_pix, y_pix, depth
    faces: wp.array2d(dtype=wp.int32),  # (F, 3)
    znear: wp.float32,
    zfar: wp.float32,
    keys: wp.array3d(dtype=wp.int64),  # (B, H, W)
):
    b, f = wp.tid()
    H = keys.shape[1]
    W = keys.shape[2]
    i0 = faces[f, 0]
    i1 = faces[f, 1]
    i2 = faces[f, 2]
    z0 = verts[b, i0, 2]
    z1 = verts[b, i1, 2]
    z2 = verts[b, i2, 2]
    # No near-plane clipping: a triangle reaching in front of znear is dropped whole.
    if wp.min(wp.min(z0, z1), z2) < znear:
        return
    x0 = verts[b, i0, 0]
    y0 = verts[b, i0, 1]
    x1 = verts[b, i1, 0]
    y1 = verts[b, i1, 1]
    x2 = verts[b, i2, 0]
    y2 = verts[b, i2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    if wp.abs(area) < 1.0e-12:
        return
    inv_area = 1.0 / area
    # Pixel j is covered when its centre j + 0.5 lies inside the triangle.
    xmin = wp.max(int(wp.ceil(wp.min(wp.min(x0, x1), x2) - 0.5)), 0)
    xmax = wp.min(int(wp.floor(wp.max(wp.max(x0, x1), x2) - 0.5)), W - 1)
    ymin = wp.max(int(wp.ceil(wp.min(wp.min(y0, y1), y2) - 0.5)), 0)
    ymax = wp.min(int(wp.floor(wp.max(wp.max(y0, y1), y2) - 0.5)), H - 1)
    iz0 = 1.0 / z0
    iz1 = 1.0 / z1
    iz2 = 1.0 / z2
    span = zfar - znear
    eps = -1.0e-6
    for y in range(ymin, ymax + 1):
        py = float(y) + 0.5
        for x in range(xmin, xmax + 1):
            px = float(x) + 0.5
            w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv_area
            w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv_area
            w2 = 1.0 - w0 - w1
            if w0 >= eps and w1 >= eps and w2 >= eps:
                z = 1.0 / (w0 * iz0 + w1 * iz1 + w2 * iz2)
                if z >= znear and z <= zfar:
                    q = wp.int64((z - znear) / span * _QMAX)
                    wp.atomic_min(keys, b, y, x, q * _SHIFT + wp.int64(f))


@wp.kernel
def nearest_edges(
    verts: wp.array3d(dtype=wp.float32),  # (B, V, 3): x_pix, y_pix, depth
    edges: wp.array2d(dtype=wp.int32),  # (C, 3): batch, vertex a, vertex b
    radius: wp.float32,
    keys: wp.array3d(dtype=wp.int64),  # (B, H, W)
):
    c = wp.tid()
    H = keys.shape[1]
    W = keys.shape[2]
    b = edges[c, 0]
    ax = verts[b, edges[c, 1], 0]
    ay = verts[b, edges[c, 1], 1]
    bx = verts[b, edges[c, 2], 0]
    by = verts[b, edges[c, 2], 1]
    dx = bx - ax
    dy = by - ay
    len2 = wp.max(dx * dx + dy * dy, 1.0e-12)
    xmin = wp.max(int(wp.ceil(wp.min(ax, bx) - radius - 0.5)), 0)
    xmax = wp.min(int(wp.floor(wp.max(ax, bx) + radius - 0.5)), W - 1)
    ymin = wp.max(int(wp.ceil(wp.min(ay, by) - radius - 0.5)), 0)
    ymax = wp.min(int(wp.floor(wp.max(ay, by) + radius - 0.5)), H - 1)
    r2 = radius * radius
    for y in range(ymin, ymax + 1):
        py = float(y) + 0.5
        for x in range(xmin, xmax + 1):
            px = float(x) + 0.5
            t = wp.clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0)
            ex = ax + t * dx - px
            ey = ay + t * dy - py
            d2 = ex * ex + ey * ey
            if d2 <= r2:
                q = wp.int64(d2 / r2 * _QMAX)
                wp.atomic_min(keys, b, y, x, q * _SHIFT + wp.int64(c))
