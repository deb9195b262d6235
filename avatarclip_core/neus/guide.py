"""Dilated-silhouette ray selection (AvatarCLIP Sec. 3.3.2) and template-guided ray intervals.

For a batch of cameras the template mesh is rasterised with render/'s rasteriser (hard mask,
no soft band): its silhouette, dilated by a radius (metres projected at each view's look-at
distance, or fixed pixels), selects the rays that are marched; every other pixel shows the
background. The same pass gives the template's front depth, from which each ray's [near, far]
shrinks to where a surface within ``band`` of the template can be (see volume.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avatarclip_core.render import PerspectiveCameras, RasterSettings, rasterize
from avatarclip_core.render.cameras import ImageSize, as_hw

from .volume import camera_rays


@dataclass
class TemplateGuide:
    silhouette: torch.Tensor  # (B, H, W) bool: template coverage
    mask: torch.Tensor  # (B, H, W) bool: dilated silhouette = rays to march
    near: torch.Tensor  # (B, H, W) metres along each ray
    far: torch.Tensor  # (B, H, W) metres along each ray (inf: up to the model's box)
    dilation_px: list[int]

    @property
    def near_far(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.near, self.far


def dilation_pixels(cameras: PerspectiveCameras, image_size: ImageSize, radius_m: float,
                    target: torch.Tensor) -> list[int]:
    """Pixels that ``radius_m`` metres span at the distance from each camera to ``target`` (B, 3) | (3,)."""
    H, _ = as_hw(image_size)
    fov = torch.as_tensor(cameras.fov, dtype=torch.float32).reshape(-1).expand(len(cameras))
    focal_px = (H / 2.0) / torch.tan(torch.deg2rad(fov.cpu()) / 2.0)
    dist = (cameras.get_camera_center().cpu() - torch.as_tensor(target, dtype=torch.float32).reshape(-1, 3)).norm(dim=-1)
    return [int(math.ceil(float(r))) for r in radius_m * focal_px / dist.clamp_min(1e-3)]


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """(H, W) or (B, H, W) bool mask dilated by a (2r+1) square."""
    if radius <= 0:
        return mask
    m = mask.float().reshape(-1, 1, *mask.shape[-2:])
    return (F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius) > 0).reshape(mask.shape)


def _min_pool(x: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return x
    return -F.max_pool2d(-x.unsqueeze(0).unsqueeze(0), 2 * radius + 1, stride=1, padding=radius)[0, 0]


@torch.no_grad()
def template_guide(vertices: torch.Tensor, faces: torch.Tensor, cameras: PerspectiveCameras, image_size: ImageSize, *,
                   dilation_radius: float = 0.06, dilation_px: int = 0, band: float = 0.05, margin: float = 0.03,
                   target: torch.Tensor | None = None, far_factor: float = 4.0) -> TemplateGuide:
    """Rasterise the template for ``cameras`` and derive the marched mask and per-ray bounds.

    target: (B, 3) points that set each view's dilation scale (default: the template's centre).
    Bounds: near = (front depth, min-pooled over the dilation) - band - margin; far = front
    depth + far_factor (band + margin) on covered pixels, unbounded on the dilated rim.
    """
    H, W = as_hw(image_size)
    B = len(cameras)
    frags = rasterize(vertices.detach().float(), faces, cameras, RasterSettings(image_size=(H, W), sigma=0.0))
    sil = frags.pix_to_face[..., 0] >= 0  # (B, H, W)
    depth = frags.zbuf[..., 0].detach()  # view depth, -1 on background
    if target is None:
        target = 0.5 * (vertices.min(0).values + vertices.max(0).values)
    target = torch.as_tensor(target, dtype=torch.float32).detach().cpu().reshape(-1, 3).expand(B, 3)
    if dilation_px > 0:
        radii = [int(dilation_px)] * B
    else:
        radii = dilation_pixels(cameras, (H, W), dilation_radius, target)
    # cos between each pixel's ray and the view axis converts view depth to distance along the ray
    _, d = camera_rays(cameras, (H, W))
    cos = (d.view(B, H * W, 3) * cameras.get_view_direction().float().unsqueeze(1)).sum(-1).view(B, H, W).clamp_min(1e-3)
    inf = torch.tensor(float("inf"), device=depth.device)
    masks, nears, fars = [], [], []
    pad = band + margin
    for i in range(B):
        r = min(radii[i], max(H, W))
        m = dilate(sil[i], r)
        front = torch.where(sil[i], depth[i], inf)
        near_v = _min_pool(front, r) - pad
        near = torch.where(torch.isfinite(near_v), near_v.clamp_min(0.0) / cos[i], torch.zeros_like(near_v))
        far = torch.where(sil[i], (depth[i] + far_factor * pad) / cos[i], inf)
        masks.append(m)
        nears.append(near)
        fars.append(far)
    return TemplateGuide(sil, torch.stack(masks), torch.stack(nears), torch.stack(fars), radii)
