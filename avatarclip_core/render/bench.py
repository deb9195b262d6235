"""Render timing on a body-sized synthetic mesh (no body model needed).

``python -m avatarclip_core.render.bench`` prints median forward / forward+backward times of the
CLIP-loop workload (shaded + textureless + silhouette, gradients to vertices and colours).
"""
from __future__ import annotations

import math
import statistics
import time

import torch

from .cameras import orbit_camera
from .rasterizer import RasterSettings
from .renderer import MeshRenderer


def uv_ellipsoid(center, radii, rings: int = 40, segments: int = 60):
    """Closed UV-sphere mesh scaled to an ellipsoid; faces counter-clockwise seen from outside."""
    theta = torch.linspace(0, math.pi, rings + 1)[1:-1]
    phi = torch.arange(segments) * (2 * math.pi / segments)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    ring = torch.stack([st * torch.sin(phi), ct.expand(-1, segments), st * torch.cos(phi)], dim=-1).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0.0, 1.0, 0.0]]), ring, torch.tensor([[0.0, -1.0, 0.0]])])
    verts = verts * torch.tensor(radii) + torch.tensor(center)
    faces = []
    s = segments
    for j in range(s):
        faces.append([0, 1 + j, 1 + (j + 1) % s])
    for i in range(rings - 2):
        for j in range(s):
            a, b = 1 + i * s + j, 1 + i * s + (j + 1) % s
            c, d = a + s, b + s
            faces += [[a, c, b], [b, c, d]]
    last = verts.shape[0] - 1
    base = 1 + (rings - 2) * s
    for j in range(s):
        faces.append([last, base + (j + 1) % s, base + j])
    return verts, torch.tensor(faces, dtype=torch.long)


def synthetic_body():
    """~14k vertices / 28k triangles of overlapping ellipsoids with an adult's proportions."""
    parts = [((0.0, 1.25, 0.0), (0.18, 0.3, 0.12)), ((0.0, 1.62, 0.02), (0.09, 0.12, 0.1)),
             ((-0.27, 1.12, 0.0), (0.05, 0.32, 0.05)), ((0.27, 1.12, 0.0), (0.05, 0.32, 0.05)),
             ((-0.1, 0.47, 0.0), (0.08, 0.47, 0.08)), ((0.1, 0.47, 0.0), (0.08, 0.47, 0.08))]
    verts, faces, n = [], [], 0
    for c, r in parts:
        v, f = uv_ellipsoid(c, r)
        verts.append(v)
        faces.append(f + n)
        n += v.shape[0]
    return torch.cat(verts), torch.cat(faces)


def bench_render(image_size: int, repeats: int = 10, batch: int = 1, sigma: float = 0.5, mesh=None) -> dict:
    """Median wall-clock milliseconds of ``render`` (forward, no grad) and forward + backward for the
    CLIP workload. mesh: optional (vertices, faces) to time instead of ``synthetic_body()``.
    Wall time: on a shared machine, run it when the cores are idle."""
    verts, faces = synthetic_body() if mesh is None else (mesh[0].float(), mesh[1].long())
    renderer = MeshRenderer(RasterSettings(image_size=image_size, sigma=sigma))
    cams = orbit_camera(distance=torch.linspace(2.2, 2.8, batch), azimuth=torch.linspace(-40, 40, batch),
                        elevation=10.0, at=(0.0, 0.9, 0.0), fov=60.0)
    offset = torch.zeros_like(verts, requires_grad=True)
    colors = torch.full_like(verts, 0.6, requires_grad=True)
    outputs = ("silhouette", "shaded", "textureless")

    def step(backward: bool) -> float:
        t0 = time.perf_counter()
        out = renderer.render(verts + offset, faces, cams, vertex_colors=colors, outputs=outputs)
        if backward:
            (out.shaded.mean() + out.textureless.mean() + out.silhouette.mean()).backward()
        return (time.perf_counter() - t0) * 1000.0

    step(True)  # warm-up: kernel compile / load, topology cache
    with torch.no_grad():
        fwd = [step(False) for _ in range(repeats)]
    fb = [step(True) for _ in range(repeats)]
    return {"image_size": image_size, "batch": batch, "vertices": int(verts.shape[0]), "faces": int(faces.shape[0]),
            "forward_ms": statistics.median(fwd), "forward_backward_ms": statistics.median(fb),
            "torch_threads": torch.get_num_threads()}


if __name__ == "__main__":
    for size in (128, 224, 256):
        for b in (1, 4):
            print(bench_render(size, repeats=10, batch=b))
