"""Preview strips for job pages (preview.png) and an atomic PNG writer.

A preview is a row of square shaded views of the whole body (front, side, back by default)
framed automatically from the mesh bounds, lit by a key light above the camera, on a soft gray
gradient. Written atomically so a web page polling the file never reads half a PNG.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .cameras import orbit_camera
from .rasterizer import RasterSettings
from .renderer import MeshRenderer

# azimuth (degrees) of each named view; 0 = in front of the avatar (+Z), 90 = on its left (+X)
VIEW_AZIMUTHS = {"front": 0.0, "three_quarter": 35.0, "left": 90.0, "side": 90.0, "back": 180.0, "right": -90.0}


def save_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (H, W, 3|4) image in [0, 1] (a leading batch of 1 is dropped) as an 8-bit PNG.

    Written to a temporary file in the same folder, then renamed over ``path`` (atomic).
    """
    arr = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"save_png: expected (H, W, 3|4) or (H, W), got {arr.shape}")
    data = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            Image.fromarray(data).save(fh, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def gradient_background(H: int, W: int, top=(0.93, 0.94, 0.96), bottom=(0.74, 0.76, 0.80)) -> torch.Tensor:
    t = torch.linspace(0.0, 1.0, H).view(H, 1, 1)
    return (torch.tensor(top) * (1 - t) + torch.tensor(bottom) * t).expand(H, W, 3)


# the code-book renders' surface (shape and pose queries): CLIP features are cached for this look
CLAY = (0.75, 0.74, 0.72)


def clay_render(verts: torch.Tensor, faces: torch.Tensor, cams, size: int, vertex_colors: torch.Tensor | None = None,
                uvs=None, texture=None, background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """(B, size, size, 3) shaded renders in [0, 1]: the one look of previews and code-book renders. Key
    light from the camera, raised and turned a little to the side; ambient 0.35; soft edges; CLAY when
    no colours or texture are given."""
    back, right, up = cams.R[:, 2], cams.R[:, 0], cams.R[:, 1]
    light = torch.nn.functional.normalize(back + 0.6 * up + 0.35 * right, dim=-1)
    if vertex_colors is None and texture is None:
        vertex_colors = torch.tensor(CLAY, device=verts.device).expand(verts.shape[-2], 3)
    out = MeshRenderer(RasterSettings(image_size=size, sigma=0.5)).render(
        verts, faces, cams, vertex_colors=vertex_colors, uvs=uvs, texture=texture, light_dir=light, ambient=0.35,
        background=background, outputs=("shaded",))
    return out.shaded.clamp(0, 1)


@torch.no_grad()
def render_preview(vertices: torch.Tensor, faces: torch.Tensor, vertex_colors: torch.Tensor | None = None,
                   size: int = 512, views: Sequence[str | float] = ("front", "three_quarter", "side", "back"),
                   elevation: float = 8.0, fov: float = 30.0, uvs: torch.Tensor | None = None,
                   texture: torch.Tensor | None = None, path: str | os.PathLike | None = None) -> torch.Tensor:
    """(size, size * len(views), 3) strip of shaded views; also saved as PNG when ``path`` is given.

    views: names from VIEW_AZIMUTHS or azimuths in degrees. Without colours the body is clay gray.
    """
    verts = vertices.detach().float().cpu()
    if verts.dim() == 3:
        verts = verts[0]
    faces = faces.cpu()
    lo, hi = verts.min(0).values, verts.max(0).values
    center = (lo + hi) / 2
    half_h = float(hi[1] - lo[1]) / 2
    horiz = float(torch.linalg.norm(verts[:, [0, 2]] - center[[0, 2]], dim=1).max())
    fit = max(half_h, horiz) * 1.08
    distance = fit / math.tan(math.radians(fov) / 2) + horiz

    az = [VIEW_AZIMUTHS[v] if isinstance(v, str) else float(v) for v in views]
    cams = orbit_camera(distance=distance, azimuth=az, elevation=elevation, at=center.tolist(), fov=fov)
    if vertex_colors is None and texture is None:
        vertex_colors = torch.tensor([0.78, 0.76, 0.73]).expand(verts.shape[0], 3)
    shaded = clay_render(verts, faces, cams, size, None if vertex_colors is None else vertex_colors.cpu().float(),
                         uvs=uvs, texture=texture, background=gradient_background(size, size))
    strip = torch.cat(list(shaded), dim=1)  # (size, size * n, 3)
    if path is not None:
        save_png(strip, path)
    return strip
