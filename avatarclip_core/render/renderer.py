"""MeshRenderer: rasterise once, then produce every image the AvatarCLIP losses need.

Images are (B, H, W, C), channels last, colours in [0, 1]:
- ``silhouette`` (C=1): soft coverage alpha (differentiable at the outline, see rasterizer.py);
- ``depth`` (C=1): view depth in metres of the visible surface, 0 on the background;
- ``normals`` (C=3): interpolated smooth vertex normals, world space, unit, 0 on the background;
- ``rgb`` (C=3): unlit vertex colour or UV texture, composited over the background;
- ``shaded`` (C=3): Eq. 9, ``rgb * (A + D max(n.l, 0))``, composited;
- ``textureless`` (C=3): Eq. 8, gray ``A + D max(n.l, 0)``, composited.
Compositing is ``alpha * image + (1 - alpha) * background``, so colour images also carry the
silhouette gradients. Ask only for the images you need (``outputs=``): each costs time.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch

from ._ops import gather_rows
from .cameras import PerspectiveCameras
from .rasterizer import Fragments, RasterSettings, rasterize
from .shading import headlight, lambert
from .topology import MeshTopology, get_topology, vertex_normals

ALL_OUTPUTS = ("silhouette", "depth", "normals", "rgb", "shaded", "textureless")


@dataclass
class RenderOutput:
    fragments: Fragments
    silhouette: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    normals: torch.Tensor | None = None
    rgb: torch.Tensor | None = None
    shaded: torch.Tensor | None = None
    textureless: torch.Tensor | None = None

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "fragments" and getattr(self, f.name) is not None}

    def __getitem__(self, name: str) -> torch.Tensor:
        value = getattr(self, name)
        if value is None:
            raise KeyError(name)
        return value




def sample_texture(texture: torch.Tensor, uv: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
    """Bilinear lookup of (Ht, Wt, C) or (B, Ht, Wt, C) textures at uv (S, 2) -> (S, C).

    uv: u right, v up (OpenGL); texture row 0 is the top of the image. Differentiable in both.
    """
    grid = torch.stack([uv[:, 0] * 2.0 - 1.0, 1.0 - uv[:, 1] * 2.0], dim=-1)
    if texture.dim() == 3:
        img = texture.permute(2, 0, 1).unsqueeze(0)
        out = torch.nn.functional.grid_sample(img, grid.view(1, 1, -1, 2), mode="bilinear",
                                              padding_mode="border", align_corners=False)
        return out[0, :, 0].t()
    out = uv.new_zeros(uv.shape[0], texture.shape[-1])
    for b in range(texture.shape[0]):
        idx = (batch == b).nonzero().squeeze(1)
        if idx.numel():
            out = out.index_copy(0, idx, sample_texture(texture[b], uv[idx]))
    return out


class MeshRenderer:
    """Differentiable mesh renderer (CPU via Warp + torch; the same code runs on CUDA)."""

    def __init__(self, settings: RasterSettings | None = None):
        self.settings = settings or RasterSettings()

    def background_image(self, background, B: int, H: int, W: int, device, dtype) -> torch.Tensor:
        """(B or 1, H, W, 3) from None (settings colour), an RGB triple or an image (H,W,3)/(B,H,W,3)."""
        if background is None:
            background = self.settings.background_color
        bg = torch.as_tensor(background, dtype=dtype, device=device)
        if bg.dim() == 1:
            return bg.view(1, 1, 1, -1)
        return bg if bg.dim() == 4 else bg.unsqueeze(0)

    def render(
        self,
        vertices: torch.Tensor,
        faces: torch.Tensor,
        cameras: PerspectiveCameras,
        vertex_colors: torch.Tensor | None = None,
        uvs: torch.Tensor | None = None,
        texture: torch.Tensor | None = None,
        light_dir: torch.Tensor | Sequence[float] | None = None,
        ambient: float | torch.Tensor | None = None,
        background=None,
        outputs: Sequence[str] | None = None,
        topology: MeshTopology | None = None,
    ) -> RenderOutput:
        """Render B views (B meshes sharing faces and/or B cameras; singletons broadcast).

        vertices (V, 3) | (B, V, 3); faces (F, 3) long; vertex_colors (V, 3|4) | (B, V, 3|4);
        uvs (V, 2) per vertex or (F, 3, 2) per face corner, with texture (Ht, Wt, 3) | (B, ...)
        (a texture is multiplied by vertex colours when both are given); light_dir (3,) | (B, 3)
        world direction *towards* the light (default: from the camera); ambient A scalar | (B,)
        (default 0.2); background: see ``background_image``. outputs: names from ALL_OUTPUTS
        (default: all that the inputs allow).
        """
        has_color = vertex_colors is not None or texture is not None
        if outputs is None:
            outputs = [o for o in ALL_OUTPUTS if has_color or o not in ("rgb", "shaded")]
        unknown = set(outputs) - set(ALL_OUTPUTS)
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {ALL_OUTPUTS}")
        if not has_color and {"rgb", "shaded"} & set(outputs):
            raise ValueError("rgb/shaded need vertex_colors or uvs + texture")
        if texture is not None and uvs is None:
            raise ValueError("a texture needs uvs")

        topo = topology or get_topology(faces)
        frags = rasterize(vertices, faces, cameras, self.settings, topology=topo)
        B, H, W = frags.shape
        dtype = frags.sample_bary.dtype
        device = frags.sample_bary.device
        out = RenderOutput(fragments=frags)

        if "silhouette" in outputs:
            out.silhouette = frags.alpha
        if "depth" in outputs:
            out.depth = frags.to_image(frags.sample_depth.unsqueeze(-1), 0.0, covered_only=True)

        need_normals = {"normals", "shaded", "textureless"} & set(outputs)
        if need_normals:
            verts = vertices if vertices.dim() == 3 else vertices.unsqueeze(0)
            n = torch.nn.functional.normalize(frags.interpolate(vertex_normals(verts, topo.faces, topo)), dim=-1, eps=1e-12)
            if "normals" in outputs:
                out.normals = frags.to_image(n, 0.0, covered_only=True)

        color = None
        if {"rgb", "shaded"} & set(outputs):
            if vertex_colors is not None:
                color = frags.interpolate(vertex_colors[..., :3])
            if texture is not None:
                uv = frags.interpolate_face_corners(uvs) if uvs.dim() == 3 else frags.interpolate(uvs)
                tex = sample_texture(texture, uv, frags.sample_batch)[:, :3]
                color = tex if color is None else color * tex

        bg = None
        if {"rgb", "shaded", "textureless"} & set(outputs):
            bg = self.background_image(background, B, H, W, device, dtype)
            bg = bg.to(dtype).expand(B, H, W, 3).reshape(B * H * W, 3)

        def composite(values: torch.Tensor) -> torch.Tensor:
            return frags.composite(values, bg)

        if "rgb" in outputs:
            out.rgb = composite(color)
        if {"shaded", "textureless"} & set(outputs):
            sb = frags.sample_batch
            if light_dir is None:
                l_dir = headlight(cameras.expand(B)).to(dtype)
            else:
                l_dir = torch.as_tensor(light_dir, dtype=dtype, device=device).reshape(-1, 3)
            l_dir = gather_rows(torch.nn.functional.normalize(l_dir.expand(B, 3), dim=-1), sb)
            amb = torch.as_tensor(0.2 if ambient is None else ambient, dtype=dtype, device=device).reshape(-1, 1)
            amb = gather_rows(amb.expand(B, 1), sb)
            intensity = lambert(n, l_dir, amb)
            if "shaded" in outputs:
                out.shaded = composite(color * intensity)
            if "textureless" in outputs:
                out.textureless = composite(intensity.expand(-1, 3))
        return out

    __call__ = render

