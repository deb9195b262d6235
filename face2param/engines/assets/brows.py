"""Eyebrow styles: thin shells over the brow ridge whose outline (height, width, arch) differs per style."""
from __future__ import annotations

import torch

from . import HIDDEN_INSET, BlendAsset, HeadFrame, shell_faces, smoothstep

BROW_STYLES = ("thin", "thick", "arched", "straight", "bushy")
BROW_THICKNESS = 0.0012
# style -> (half height of the band (m), arch height at the middle (m), inner/outer span (m), lift (m))
_SHAPES = {"thin": (0.0028, 0.004, (0.012, 0.058), 0.0), "thick": (0.0060, 0.003, (0.010, 0.060), 0.0),
           "arched": (0.0038, 0.009, (0.012, 0.058), 0.002), "straight": (0.0045, 0.0, (0.010, 0.060), -0.001),
           "bushy": (0.0075, 0.004, (0.008, 0.063), 0.001)}


def brow_cover(style: str, frame: HeadFrame, q: torch.Tensor) -> torch.Tensor:
    """(N,) 1 inside the style's brow outline, 0 outside, smooth at the edge."""
    half, arch, (inner, outer), lift = _SHAPES[style]
    ax = q[:, 0].abs()
    t = ((ax - inner) / (outer - inner)).clamp(0, 1)
    centre_y = frame.brow_y - frame.centre[1] + lift + arch * torch.sin(torch.pi * t ** 0.8) - 0.004 * t
    taper = 1 - 0.5 * t  # brows thin out towards the temples
    inside_y = 1 - smoothstep(half * taper * 0.6, half * taper * 1.2, (q[:, 1] - centre_y).abs())
    inside_x = smoothstep(inner - 0.003, inner + 0.002, ax) * (1 - smoothstep(outer - 0.004, outer + 0.002, ax))
    return inside_y * inside_x * (q[:, 2] > 0)


def build_brows(frame: HeadFrame) -> BlendAsset:
    q = frame.local()
    region = frame.skin & (q[:, 2] > 0) & ((q[:, 1] - (frame.brow_y - frame.centre[1])).abs() < 0.03) \
        & (q[:, 0].abs() < 0.07)
    anchors, faces = shell_faces(frame.faces, region)
    nrm, qa = frame.normals[anchors], q[anchors]
    offsets = torch.stack([nrm * (-HIDDEN_INSET + (HIDDEN_INSET + BROW_THICKNESS) * brow_cover(s, frame, qa))[:, None]
                           for s in BROW_STYLES])
    return BlendAsset("eyebrows", list(BROW_STYLES), anchors, offsets, faces, "brows")
