"""Mesh extraction from the NeuS model: marching cubes, vertex colours, a baked UV texture.

- ``extract_mesh``: f on a grid over the model's box (``resolution`` cells along the longest side,
  cubic cells), PyMCubes at level 0, faces wound counter-clockwise seen from outside (outward
  normals, as the renderer and glTF expect), small disconnected pieces dropped.
- ``query_colors``: c_c (or c) at the vertices with the SDF normal.
- ``bake_texture`` (beyond the paper): xatlas charts, each texel centre inside a chart is mapped
  to its surface point by barycentric interpolation in UV space and coloured by the network;
  texels within 2 texels of a chart take the colour of the chart's closest point (so bilinear
  lookups at chart edges, and charts smaller than a texel, read their own colours); what is
  left of the gutters is filled by dilation.
  UV convention as render.sample_texture: u right, v up, texture row 0 at v = 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .networks import NeusModel


@torch.no_grad()
def sdf_grid(model: NeusModel, resolution: int, chunk: int = 131072):
    """f (metres) at the corners of a grid over the model's box; returns (values (X, Y, Z), origin, step)."""
    lo, hi = model.normalizer.box_min.float().cpu(), model.normalizer.box_max.float().cpu()
    step = float((hi - lo).max()) / max(resolution, 2)
    counts = [int(np.ceil(float(hi[k] - lo[k]) / step)) + 1 for k in range(3)]
    axes = [lo[k] + step * torch.arange(counts[k], dtype=torch.float32) for k in range(3)]
    vals = torch.empty(counts[0], counts[1] * counts[2])
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), -1).reshape(-1, 2)
    for i, x in enumerate(axes[0]):
        pts = torch.cat([torch.full((yz.shape[0], 1), float(x)), yz], -1)
        vals[i] = model.sdf_world(pts, chunk)
    return vals.view(*counts), lo, step


def _components(faces: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """Connected-component label per face (faces sharing a vertex are connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = faces.numpy()
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    adj = coo_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n_vertices, n_vertices))
    _, labels = connected_components(adj, directed=False)
    return torch.from_numpy(labels[f[:, 0]]).long()


def clean_mesh(vertices: torch.Tensor, faces: torch.Tensor, min_component_fraction: float = 0.02):
    """Drop connected pieces with fewer than this fraction of the faces, and unused vertices."""
    if faces.shape[0] == 0:
        return vertices, faces
    if min_component_fraction > 0:
        labels = _components(faces, vertices.shape[0])
        counts = torch.bincount(labels)
        keep = counts[labels] >= max(1.0, min_component_fraction * faces.shape[0])
        faces = faces[keep]
    used = torch.zeros(vertices.shape[0], dtype=torch.bool)
    used[faces.reshape(-1)] = True
    remap = torch.cumsum(used.long(), 0) - 1
    return vertices[used], remap[faces]


def extract_mesh(model: NeusModel, resolution: int = 192, min_component_fraction: float = 0.02):
    """Marching cubes of f = 0: vertices (V, 3) float32 world metres, faces (F, 3) long (outward)."""
    import mcubes

    vals, lo, step = sdf_grid(model, resolution)
    v, f = mcubes.marching_cubes(vals.numpy().astype(np.float64), 0.0)
    vertices = torch.from_numpy(np.ascontiguousarray(v)).float() * step + lo
    faces = torch.from_numpy(np.ascontiguousarray(f.astype(np.int64)))
    if faces.shape[0] == 0:
        return vertices, faces
    # orient outward: the signed volume of a closed outward-wound surface is positive
    tri = vertices[faces].double()
    volume = (tri[:, 0] * torch.linalg.cross(tri[:, 1], tri[:, 2], dim=-1)).sum() / 6.0
    if volume < 0:
        faces = faces[:, [0, 2, 1]]
    return clean_mesh(vertices, faces, min_component_fraction)


def query_colors(model: NeusModel, points: torch.Tensor, stylised: bool = True) -> torch.Tensor:
    """Colour network at world points (N, 3) -> (N, 3) in [0, 1]."""
    return model.color_world(points.float(), stylised=stylised).clamp(0.0, 1.0)


@dataclass
class UVBake:
    vertices: torch.Tensor  # (V', 3) the mesh's vertices split along chart seams
    faces: torch.Tensor  # (F, 3) long, into vertices / uvs
    uvs: torch.Tensor  # (V', 2) in [0, 1], v up
    texture: torch.Tensor  # (H, W, 3) in [0, 1], row 0 = top (v = 1)
    source_vertex: torch.Tensor  # (V',) long: the welded vertex each split vertex copies


def uv_atlas(vertices: torch.Tensor, faces: torch.Tensor, size: int, padding: int = 2):
    """xatlas parametrisation: (source vertex (V',), faces (F, 3), uvs (V', 2) in [0, 1])."""
    import xatlas

    atlas = xatlas.Atlas()
    # xatlas ignores faces with area below float epsilon (and gives them uv 0): marching cubes makes
    # slivers that small on metre-sized meshes, so hand it the mesh scaled to a ~1000-unit box
    v = vertices.double()
    v = (v - v.min(0).values) * (1000.0 / float((v.max(0).values - v.min(0).values).max().clamp_min(1e-9)))
    atlas.add_mesh(v.numpy().astype(np.float32), faces.numpy().astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = int(size)
    pack.padding = int(padding)
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    vmap, idx, uvs = atlas[0]
    return (torch.from_numpy(vmap.astype(np.int64)), torch.from_numpy(idx.astype(np.int64)),
            torch.from_numpy(uvs.astype(np.float32)))


def rasterize_uv(uvs: torch.Tensor, faces: torch.Tensor, size: int, dilate: int = 0, chunk: int = 20000):
    """Which triangle each texel of a size x size texture belongs to, and where on it.

    Texel centres inside a triangle take that triangle and their barycentrics. With ``dilate`` > 0,
    texels within that many texels of some triangle but inside none (chart borders, charts smaller
    than a texel) take the *closest point* of the nearest triangle, so bilinear lookups at chart
    edges read the chart's own colours. Returns texel ids (T,) into the flattened image (row 0 =
    top, v = 1), faces (T,) and barycentrics (T, 3).
    """
    from .mesh_sdf import closest_points_on_triangles

    H = W = int(size)
    px = uvs[:, 0] * W  # texel-space x (centres at j + 0.5)
    py = (1.0 - uvs[:, 1]) * H  # rows from the top
    tx, ty = px[faces], py[faces]  # (F, 3)
    x0 = (tx.min(1).values.floor() - dilate).clamp(0, W - 1).long()
    x1 = (tx.max(1).values.ceil() + dilate).clamp(0, W).long()
    y0 = (ty.min(1).values.floor() - dilate).clamp(0, H - 1).long()
    y1 = (ty.max(1).values.ceil() + dilate).clamp(0, H).long()
    bw, bh = (x1 - x0).clamp_min(1), (y1 - y0).clamp_min(1)
    corners = torch.stack([tx, ty, torch.zeros_like(tx)], -1)  # (F, 3 corners, xyz)
    out_pix, out_face, out_bary, out_dist = [], [], [], []
    for s in range(0, faces.shape[0], chunk):
        n = bw[s:s + chunk] * bh[s:s + chunk]
        fid = torch.repeat_interleave(torch.arange(s, s + n.shape[0]), n)
        start = torch.cumsum(n, 0) - n
        local = torch.arange(int(n.sum())) - torch.repeat_interleave(start, n)
        bwf = bw[fid]
        cx = x0[fid] + local % bwf
        cy = y0[fid] + torch.div(local, bwf, rounding_mode="floor")
        ok = (cx < W) & (cy < H)
        fid, cx, cy = fid[ok], cx[ok], cy[ok]
        q = torch.stack([cx.float() + 0.5, cy.float() + 0.5, torch.zeros_like(cx, dtype=torch.float32)], -1)
        c = corners[fid]
        bary, _ = closest_points_on_triangles(q, c[:, 0], c[:, 1], c[:, 2])
        dist = (q - (c * bary.unsqueeze(-1)).sum(1)).norm(dim=-1)
        keep = dist <= (dilate if dilate > 0 else 1e-4)
        out_pix.append((cy * W + cx)[keep])
        out_face.append(fid[keep])
        out_bary.append(bary[keep])
        out_dist.append(dist[keep])
    pix, face, bary, dist = (torch.cat(x) for x in (out_pix, out_face, out_bary, out_dist))
    # one triangle per texel: the nearest (inside = distance 0; ties keep the first)
    order = torch.argsort(dist, stable=True)
    order = order[torch.argsort(pix[order], stable=True)]
    pix, face, bary = pix[order], face[order], bary[order]
    first = torch.ones_like(pix, dtype=torch.bool)
    first[1:] = pix[1:] != pix[:-1]
    return pix[first], face[first], bary[first]


def fill_gutters(texture: torch.Tensor, covered: torch.Tensor, iterations: int,
                 fill_color: tuple[float, float, float] = (0.5, 0.5, 0.5)) -> torch.Tensor:
    """Grow chart colours into empty texels (average of covered 3x3 neighbours), ``iterations`` times;
    texels still empty get ``fill_color``."""
    img = texture.permute(2, 0, 1).unsqueeze(0) * covered.float()
    cov = covered.float().view(1, 1, *covered.shape)
    kernel = torch.ones(1, 1, 3, 3)
    for _ in range(max(0, iterations)):
        s = F.conv2d(img, kernel.expand(3, 1, 3, 3), padding=1, groups=3)
        c = F.conv2d(cov, kernel, padding=1)
        grow = (c > 0) & (cov == 0)
        img = torch.where(grow, s / c.clamp_min(1.0), img)
        cov = torch.where(grow, torch.ones_like(cov), cov)
    img = torch.where(cov > 0, img, torch.tensor(fill_color, dtype=img.dtype).view(1, 3, 1, 1))
    return img[0].permute(1, 2, 0).contiguous()


def bake_texture(model: NeusModel, vertices: torch.Tensor, faces: torch.Tensor, size: int = 1024, padding: int = 4,
                 stylised: bool = True, fill_color: tuple[float, float, float] = (0.5, 0.5, 0.5)) -> UVBake:
    """UV-unwrap the mesh with xatlas and bake the colour network into a size x size texture."""
    vmap, uv_faces, uvs = uv_atlas(vertices, faces, size, padding=max(1, padding // 2))
    uv_vertices = vertices[vmap]
    pix, face, bary = rasterize_uv(uvs, uv_faces, size, dilate=2)
    pts = (uv_vertices[uv_faces[face]] * bary.unsqueeze(-1)).sum(1)
    colors = query_colors(model, pts, stylised) if pts.shape[0] else pts.new_zeros(0, 3)
    tex = torch.tensor(fill_color, dtype=torch.float32).repeat(size * size, 1)
    tex[pix] = colors
    covered = torch.zeros(size * size, dtype=torch.bool)
    covered[pix] = True
    tex = fill_gutters(tex.view(size, size, 3), covered.view(size, size), padding + 2, fill_color)
    return UVBake(uv_vertices, uv_faces, uvs, tex.clamp(0.0, 1.0), vmap)
