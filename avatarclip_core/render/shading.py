"""Lambertian shading of the paper (Eqs. 8-9) and its random light / ambient sampling.

Texture-less: ``gray = A + D * max(n . l, 0)``; shaded: ``colour * (A + D * max(n . l, 0))`` with
``D = 1 - A``. The light is sampled around the camera direction (so the lit side is the side the
camera sees and geometric detail shows), the ambient ``A ~ U(0, 0.2)``.
"""
from __future__ import annotations

import math

import torch

from .cameras import PerspectiveCameras
from .config import ShadingConfig


def lambert(normals: torch.Tensor, light_dir: torch.Tensor, ambient: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit normals, (..., 3) unit light directions, (..., 1) ambient -> (..., 1) intensity."""
    ndotl = (normals * light_dir).sum(-1, keepdim=True).clamp_min(0.0)
    return ambient + (1.0 - ambient) * ndotl


def headlight(cameras: PerspectiveCameras) -> torch.Tensor:
    """(B, 3) unit direction from the scene towards each camera (its +Z axis in world space)."""
    return cameras.R[:, 2, :]


def sample_light_directions(cameras: PerspectiveCameras, generator: torch.Generator | None = None,
                            config: ShadingConfig | None = None) -> torch.Tensor:
    """(B, 3) unit directions towards the light: camera direction with its polar angle (from +Y)
    and azimuth (about +Y) each offset by U(-offset, offset)."""
    cfg = config or ShadingConfig()
    d = headlight(cameras).detach().cpu().float()
    polar = torch.acos(d[:, 1].clamp(-1.0, 1.0))
    azim = torch.atan2(d[:, 0], d[:, 2])
    off = math.radians(cfg.light_offset_deg)
    n = d.shape[0]
    polar = polar + (torch.rand(n, generator=generator) * 2.0 - 1.0) * off
    azim = azim + (torch.rand(n, generator=generator) * 2.0 - 1.0) * off
    sp = torch.sin(polar)
    out = torch.stack([sp * torch.sin(azim), torch.cos(polar), sp * torch.cos(azim)], dim=-1)
    return out.to(cameras.device)


def sample_ambient(n: int, generator: torch.Generator | None = None, config: ShadingConfig | None = None,
                   device=None) -> torch.Tensor:
    """(n,) ambient levels A ~ U(ambient_range) (paper: U(0, 0.2))."""
    lo, hi = (config or ShadingConfig()).ambient_range
    return (lo + (hi - lo) * torch.rand(n, generator=generator)).to(device)
