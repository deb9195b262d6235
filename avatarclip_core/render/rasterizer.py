"""Rasteriser: a non-differentiable visibility pass (Warp) + differentiable torch geometry.

Design (nvdiffrast-like, split in two halves):

1. Visibility (no gradients, ``_kernels.raster_triangles``): for every pixel, the id of the
   nearest triangle whose interior contains the pixel centre, found with one packed int64
   ``atomic_min`` per covered pixel. Triangles reaching in front of ``znear`` are dropped whole.
2. Barycentrics (torch, differentiable): for the covered pixels only, the perspective-correct
   barycentric coordinates and depth are recomputed from the triangle ids and the projected
   vertex positions, so gradients reach vertex positions, and through interpolation colours,
   UVs and textures. Nothing is ever pixels x triangles.
3. Soft silhouette (``sigma`` > 0): a second Warp pass finds, for pixels within ``band`` pixels of
   a *contour edge* (between a front- and a back-facing face, or an open boundary), the nearest
   such edge; torch then computes the differentiable signed distance ``d`` (pixels, > 0 inside)
   and coverage ``alpha = sigmoid(d / sigma)`` for background pixels near the mesh and covered
   pixels near the background. Everywhere else alpha is the hard mask. This is what gives
   vertex positions gradients at the silhouette (the SoftRas idea restricted to a thin band).
   Only edges that are the nearest edge of some background pixel are kept (a second, smaller
   pass), so inner contours (an arm in front of the torso, hidden folds) never soften covered
   pixels.
   Background pixels in the band are shaded with the visible face next to their edge, at the
   nearest point of the edge, so colour images composite smoothly (and anti-aliased).
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from functools import cached_property

import torch
import warp as wp

from avatarclip_core.warp_runtime import ensure_warp

from . import _kernels as K
from .cameras import ImageSize, PerspectiveCameras, as_hw
from ._ops import gather_rows, scatter_rows
from .topology import MeshTopology, get_topology

_LOW32 = 0xFFFFFFFF


@dataclass
class RasterSettings:
    """How to rasterise (and, for MeshRenderer, composite).

    sigma: width of the soft silhouette edge in pixels (0 = hard mask: no gradients to vertex
    positions through coverage). ~0.5 looks like anti-aliasing; 1-3 widens the basin for
    silhouette fitting. band: half-width in pixels of the region where soft coverage is
    computed (default 5 sigma, where the sigmoid is below 1 %).
    """

    image_size: ImageSize = 224
    sigma: float = 0.5
    band: float | None = None
    background_color: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def hw(self) -> tuple[int, int]:
        return as_hw(self.image_size)

    @property
    def band_px(self) -> float:
        return float(self.band) if self.band is not None else max(1.0, 5.0 * self.sigma)


@dataclass
class Fragments:
    """Per-pixel rasterisation results (pytorch3d-like, K = 1 face per pixel).

    The renderer works on compact per-sample arrays (``sample_*``: covered pixels first, then the
    background pixels of the soft band); dense pytorch3d-style tensors are built on demand.
    """

    batch: int
    height: int
    width: int
    pix_to_face: torch.Tensor  # (B, H, W, 1) long, -1 = background
    sample_pix: torch.Tensor  # (S,) flat pixel index into B*H*W
    sample_face: torch.Tensor  # (S,) long
    sample_bary: torch.Tensor  # (S, 3) perspective-correct barycentrics (differentiable)
    sample_depth: torch.Tensor  # (S,) view depth (differentiable)
    sample_alpha: torch.Tensor  # (S,) soft coverage (1 on covered pixels away from the outline)
    num_covered: int  # the first num_covered samples are covered pixels
    faces: torch.Tensor  # (F, 3) long
    num_vertices: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.batch, self.height, self.width

    @cached_property
    def sample_batch(self) -> torch.Tensor:
        return torch.div(self.sample_pix, self.height * self.width, rounding_mode="floor")

    def to_image(self, values: torch.Tensor, fill: float = 0.0, covered_only: bool = False) -> torch.Tensor:
        """Scatter per-sample values (S, C) into a dense (B, H, W, C) image."""
        n = self.num_covered if covered_only else values.shape[0]
        out = scatter_rows(values[:n], self.sample_pix[:n], self.batch * self.height * self.width, fill)
        return out.view(self.batch, self.height, self.width, values.shape[-1])

    @cached_property
    def alpha(self) -> torch.Tensor:
        """(B, H, W, 1) soft coverage, 0 away from the mesh (differentiable in the band)."""
        return self.to_image(self.sample_alpha.unsqueeze(-1), 0.0)

    def composite(self, values: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Blend per-sample colours (S, C) over a dense background (B*H*W, C) -> (B, H, W, C).

        Only the samples are touched (``bg + alpha (value - bg)``); every other pixel is background.
        """
        bg = gather_rows(background, self.sample_pix)
        blended = bg + self.sample_alpha.unsqueeze(-1) * (values - bg)
        out = scatter_rows(blended, self.sample_pix, background.shape[0], base=background)
        return out.view(self.batch, self.height, self.width, values.shape[-1])

    @cached_property
    def zbuf(self) -> torch.Tensor:
        """(B, H, W, 1) view depth of the visible surface, -1 on the background (differentiable)."""
        return self.to_image(self.sample_depth.unsqueeze(-1), -1.0, covered_only=True)

    @cached_property
    def bary_coords(self) -> torch.Tensor:
        """(B, H, W, 1, 3) barycentrics of the visible face, 0 on the background (differentiable)."""
        return self.to_image(self.sample_bary, 0.0, covered_only=True).unsqueeze(3)

    def interpolate(self, attributes: torch.Tensor) -> torch.Tensor:
        """Interpolate per-vertex attributes at the samples: (V, C) or (B, V, C) -> (S, C)."""
        idx = self.sample_vertex_ids if attributes.dim() == 3 and attributes.shape[0] > 1 else self.sample_face_vids
        corner = gather_rows(attributes.reshape(-1, attributes.shape[-1]), idx)  # (S, 3, C)
        return self._blend(corner)

    def _blend(self, corner: torch.Tensor) -> torch.Tensor:
        # explicit sum of three products: faster on the CPU than a strided reduction over dim 1
        b = self.sample_bary
        return b[:, 0:1] * corner[:, 0] + b[:, 1:2] * corner[:, 1] + b[:, 2:3] * corner[:, 2]

    @cached_property
    def sample_face_vids(self) -> torch.Tensor:
        """(S, 3) vertex ids of each sample's face."""
        return self.faces.index_select(0, self.sample_face)

    @cached_property
    def sample_vertex_ids(self) -> torch.Tensor:
        """(S, 3) ids into the flattened (B * V) vertices of the batch."""
        return self.sample_face_vids + (self.sample_batch * self.num_vertices).unsqueeze(1)

    def interpolate_face_corners(self, attributes: torch.Tensor) -> torch.Tensor:
        """Interpolate per-face-corner attributes (F, 3, C) (e.g. UVs with seams) -> (S, C)."""
        F = attributes.shape[0]
        corner = gather_rows(attributes.reshape(F, -1), self.sample_face).view(-1, 3, attributes.shape[-1])
        return self._blend(corner)


def _launch(kernel, dim, inputs, device: torch.device) -> None:
    # On CUDA, run on torch's current stream so the kernel is ordered with the torch ops around it.
    stream = wp.stream_from_torch(device) if device.type == "cuda" else None
    wp.launch(kernel, dim=dim, inputs=inputs, device=wp.device_from_torch(device), stream=stream)


def _barycentrics(screen_flat, vids, px, py):
    """Differentiable perspective-correct barycentrics + depth of pixel centres in their faces."""
    v = gather_rows(screen_flat, vids)  # (N, 3, 3): x, y, depth
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (c.unbind(1) for c in v.unbind(1))
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area
    w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area
    q0, q1, q2 = w0 / z0, w1 / z1, (1.0 - w0 - w1) / z2
    depth = 1.0 / (q0 + q1 + q2)
    return torch.stack([q0 * depth, q1 * depth, q2 * depth], dim=1), depth


def _pixel_centres(pix: torch.Tensor, H: int, W: int, dtype):
    rem = pix % (H * W)
    return (rem % W).to(dtype) + 0.5, torch.div(rem, W, rounding_mode="floor").to(dtype) + 0.5


def _contour_edges(topo: MeshTopology, screen: torch.Tensor, znear: float):
    """Contour edges per view: (C, 3) int32 [batch, vertex a, vertex b], (C,) edge ids, (B, F) front.

    An edge is a contour when its two faces face opposite ways in screen space, or when it has one
    face (open boundary). Non-manifold edges are judged by their first two faces.
    """
    s = screen[..., :2]
    faces = topo.faces
    p0, p1, p2 = (s.index_select(1, faces[:, k]) for k in range(3))
    e1, e2 = p1 - p0, p2 - p0
    # y points down in pixels, so a counter-clockwise (front-facing, OpenGL) face has area < 0.
    front = (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]) < 0  # (B, F)
    f0, f1 = topo.edge_faces[:, 0], topo.edge_faces[:, 1]
    contour = (f1 < 0) | (front.index_select(1, f0) != front.index_select(1, f1.clamp_min(0)))
    ok = screen[..., 2] >= znear
    contour &= ok.index_select(1, topo.edges[:, 0]) & ok.index_select(1, topo.edges[:, 1])
    be = contour.nonzero()  # (C, 2): batch, edge
    ends = topo.edges.index_select(0, be[:, 1])
    packed = torch.cat([be[:, :1], ends], dim=1).to(torch.int32).contiguous()
    return packed, be[:, 1], front


def _visible_face_of_edge(topo: MeshTopology, front: torch.Tensor, b: torch.Tensor, e: torch.Tensor):
    f0, f1 = topo.edge_faces[e, 0], topo.edge_faces[e, 1]
    f0_front = front[b, f0]
    return torch.where(f0_front | (f1 < 0), f0, f1)


def _visibility_keys(screen_d: torch.Tensor, topo: MeshTopology, cameras: PerspectiveCameras, H: int, W: int):
    """(B, H, W) int64 keys of the nearest face at each pixel centre (K.EMPTY: none; face id in the low 32 bits)."""
    keys = torch.full((screen_d.shape[0], H, W), K.EMPTY, dtype=torch.int64, device=screen_d.device)
    if topo.faces.shape[0] > 0:
        _launch(K.raster_triangles, (screen_d.shape[0], topo.faces.shape[0]),
                [wp.from_torch(screen_d), wp.from_torch(topo.faces_i32), float(cameras.znear),
                 float(cameras.zfar), wp.from_torch(keys)], screen_d.device)
    return keys


def visible_faces(vertices: torch.Tensor, faces: torch.Tensor, cameras: PerspectiveCameras,
                  settings: RasterSettings | None = None,
                  window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """(B, H, W) id of the face seen at each pixel (-1: none), not differentiable: `rasterize`'s
    pix_to_face[..., 0] from its visibility pass alone, without the barycentrics and the soft band
    (for tests of what is in sight, e.g. the face prior's mesh check). `window` (left, top, right,
    bottom) in the image's pixels: only that part, (B, bottom - top, right - left), the same ids as
    the whole image's there (the points move by whole pixels, which float32 subtracts exactly), for a
    fraction of the work when only a small part of the image matters."""
    settings = settings or RasterSettings()
    H, W = settings.hw
    with torch.no_grad():
        screen, cameras = _screen_points(vertices, cameras, H, W)
        screen = screen.to(torch.float32)
        if window is not None:
            left, top, right, bottom = window
            assert 0 <= left < right <= W and 0 <= top < bottom <= H, window
            screen = screen - torch.tensor([left, top, 0.0], dtype=screen.dtype, device=screen.device)
            H, W = bottom - top, right - left
        keys = _visibility_keys(screen.contiguous(), get_topology(faces), cameras, H, W)
    return torch.where(keys != K.EMPTY, keys & _LOW32, torch.full_like(keys, -1))


def pixel_window(vertices: torch.Tensor, cameras: PerspectiveCameras,
                 settings: RasterSettings | None = None) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom): the pixels that triangles of these vertices ((V, 3) or (B, V, 3), any
    of the batch) can cover, a `visible_faces` window; None when they cover none of the image."""
    settings = settings or RasterSettings()
    H, W = settings.hw
    with torch.no_grad():
        screen, _ = _screen_points(vertices, cameras, H, W)
        xy = screen[..., :2].reshape(-1, 2)
        if not bool(torch.isfinite(xy).all()):  # a point at the camera: no bound, the whole image
            return 0, 0, W, H
        low, high = xy.amin(0), xy.amax(0)
    # a pixel is covered when its centre (j + 0.5) is inside: the same bounds as the kernel, 1 px wider
    left, top = (max(0, math.floor(float(v) - 0.5) - 1) for v in low)
    right, bottom = min(W, math.ceil(float(high[0]) - 0.5) + 2), min(H, math.ceil(float(high[1]) - 0.5) + 2)
    return (left, top, right, bottom) if left < right and top < bottom else None


def _screen_points(vertices: torch.Tensor, cameras: PerspectiveCameras, H: int, W: int):
    """((B, V, 3) screen points, the B cameras) for (V, 3) or (B, V, 3) vertices and 1 or B cameras."""
    ensure_warp()
    if vertices.dim() == 2:
        vertices = vertices.unsqueeze(0)
    B = max(vertices.shape[0], len(cameras))
    cameras = cameras.expand(B)
    screen = cameras.transform_points_screen(vertices, (H, W))  # (B or 1, V, 3), differentiable
    if screen.shape[0] != B:
        screen = screen.expand(B, vertices.shape[1], 3)
    return screen, cameras


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: PerspectiveCameras,
    settings: RasterSettings | None = None,
    topology: MeshTopology | None = None,
) -> Fragments:
    """Rasterise B meshes sharing ``faces`` with B cameras (either side may be 1 and broadcast).

    vertices: (V, 3) or (B, V, 3) world positions; faces: (F, 3) long, counter-clockwise seen from
    outside. Runs on the vertices' device (CPU, or CUDA through Warp).
    """
    settings = settings or RasterSettings()
    H, W = settings.hw
    screen, cameras = _screen_points(vertices, cameras, H, W)
    B, V = screen.shape[:2]
    topo = topology or get_topology(faces)
    device = vertices.device
    screen_d = screen.detach().to(torch.float32).contiguous()
    screen_flat = screen.reshape(B * V, 3)

    # 1. visibility
    flat = _visibility_keys(screen_d, topo, cameras, H, W).view(-1)
    covered = flat != K.EMPTY
    fg_pix = covered.nonzero().squeeze(1)
    fg_face = flat[fg_pix] & _LOW32
    pix_to_face = torch.where(covered, flat & _LOW32, torch.full_like(flat, -1))

    # 2. differentiable barycentrics
    fg_b = torch.div(fg_pix, H * W, rounding_mode="floor")
    px, py = _pixel_centres(fg_pix, H, W, screen.dtype)
    fg_vids = topo.faces.index_select(0, fg_face) + (fg_b * V).unsqueeze(1)
    fg_bary, fg_depth = _barycentrics(screen_flat, fg_vids, px, py)

    pix, face, bary, depth = [fg_pix], [fg_face], [fg_bary], [fg_depth]

    # 3. soft silhouette band
    n = fg_pix.numel()
    alpha = torch.ones(n, dtype=screen.dtype, device=device)
    if settings.sigma > 0 and n > 0:
        band = _soft_band(topo, screen_flat, screen_d, covered, cameras.znear, settings, B, H, W)
        if band is not None:
            in_pix, in_alpha, o_pix, o_alpha, o_face, o_bary, o_depth = band
            alpha = alpha.index_put((torch.searchsorted(fg_pix, in_pix),), in_alpha)
            pix.append(o_pix)
            face.append(o_face)
            bary.append(o_bary)
            depth.append(o_depth)
            alpha = torch.cat([alpha, o_alpha])

    return Fragments(
        batch=B, height=H, width=W,
        pix_to_face=pix_to_face.view(B, H, W, 1),
        sample_pix=torch.cat(pix), sample_face=torch.cat(face), sample_bary=torch.cat(bary),
        sample_depth=torch.cat(depth), sample_alpha=alpha, num_covered=n,
        faces=topo.faces, num_vertices=V,
    )


def _nearest_edge_keys(screen_d, edge_list, band, B, H, W):
    keys = torch.full((B, H, W), K.EMPTY, dtype=torch.int64, device=screen_d.device)
    if edge_list.shape[0] > 0:
        _launch(K.nearest_edges, edge_list.shape[0],
                [wp.from_torch(screen_d), wp.from_torch(edge_list), float(band), wp.from_torch(keys)], screen_d.device)
    return keys.view(-1)


def _soft_band(topo, screen_flat, screen_d, covered, znear, settings, B, H, W):
    """Soft coverage of the pixels within ``band`` of the silhouette (see the module docstring).

    Returns covered band pixels and their alpha, then the uncovered band pixels with their alpha,
    shading face, barycentrics and depth; None when there is no contour edge in view.
    """
    V = screen_d.shape[1]
    band = settings.band_px
    with torch.no_grad():
        edge_list, edge_ids, front = _contour_edges(topo, screen_d, znear)
        if edge_list.shape[0] == 0:
            return None
        ekeys = _nearest_edge_keys(screen_d, edge_list, band, B, H, W)
        # The nearest contour edge of a background pixel is on the outer silhouette; that of a
        # covered pixel may be an inner contour (an arm over the torso, a hidden fold). Keep only
        # the edges some background pixel sees as nearest, and search again among those.
        seen = ekeys[(ekeys != K.EMPTY) & ~covered] & _LOW32
        keep = torch.zeros(edge_list.shape[0], dtype=torch.bool, device=screen_d.device)
        keep[seen] = True
        sel = keep.nonzero().squeeze(1)
        if sel.numel() < edge_list.shape[0]:
            edge_list, edge_ids = edge_list[sel].contiguous(), edge_ids[sel]
            ekeys = _nearest_edge_keys(screen_d, edge_list, band, B, H, W)
        s_pix = (ekeys != K.EMPTY).nonzero().squeeze(1)
        if s_pix.numel() == 0:
            return None
        c = ekeys[s_pix] & _LOW32
        s_b, va, vb = edge_list.index_select(0, c).long().unbind(1)
        inside = covered.index_select(0, s_pix)

    # differentiable distance from each pixel centre to its edge (screen space, pixels)
    ab = gather_rows(screen_flat, torch.stack([va, vb], dim=1) + (s_b * V).unsqueeze(1))
    (ax, ay, az), (bx, by, bz) = ab[:, 0].unbind(1), ab[:, 1].unbind(1)
    sx, sy = _pixel_centres(s_pix, H, W, screen_flat.dtype)
    dx, dy, rx, ry = bx - ax, by - ay, sx - ax, sy - ay
    t = ((rx * dx + ry * dy) / (dx * dx + dy * dy).clamp_min(1e-12)).clamp(0.0, 1.0)
    ox, oy = rx - t * dx, ry - t * dy
    dist = torch.sqrt(ox * ox + oy * oy + 1e-12)
    alpha = torch.sigmoid(torch.where(inside, dist, -dist) / settings.sigma)

    # uncovered pixels of the band: shade the visible face at the nearest point of the edge
    out = ~inside
    o_t, o_va, o_vb = t[out], va[out], vb[out]
    o_face = _visible_face_of_edge(topo, front, s_b[out], edge_ids[c[out]])
    wa, wb = (1.0 - o_t) / az[out], o_t / bz[out]
    inv = wa + wb
    fv = topo.faces.index_select(0, o_face)
    o_bary = (fv == o_va.unsqueeze(1)) * (wa / inv).unsqueeze(1) + (fv == o_vb.unsqueeze(1)) * (wb / inv).unsqueeze(1)
    return s_pix[inside], alpha[inside], s_pix[out], alpha[out], o_face, o_bary, 1.0 / inv
