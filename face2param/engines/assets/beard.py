"""Beards: a shell over the lower face (jaw, chin, upper lip) whose coverage and thickness differ per style."""
from __future__ import annotations

import torch

from . import HIDDEN_INSET, BlendAsset, HeadFrame, shell_faces, smoothstep

BEARD_STYLES = ("none", "stubble", "moustache", "goatee", "full")


def _lip_gap(frame: HeadFrame, q: torch.Tensor) -> torch.Tensor:
    """1 away from the lips, 0 on them (an ellipse around the mouth)."""
    m = frame.mouth - frame.centre
    d = ((q[:, 0] - m[0]) / 0.029) ** 2 + ((q[:, 1] - m[1]) / 0.011) ** 2
    return smoothstep(1.0, 1.4, d)


def beard_cover(style: str, frame: HeadFrame, q: torch.Tensor) -> torch.Tensor:
    """(N,) thickness (m) per vertex; 0 where the style has no hair."""
    m = frame.mouth - frame.centre
    ax, y, chin = q[:, 0].abs(), q[:, 1], frame.chin - frame.centre[1]
    lips = _lip_gap(frame, q)
    moustache = smoothstep(0.0, 0.004, y - m[1] - 0.006) * (1 - smoothstep(0.014, 0.02, y - m[1])) \
        * (1 - smoothstep(0.026, 0.032, ax))
    chin_patch = (1 - smoothstep(0.018, 0.026, ax)) * (1 - smoothstep(-0.006, 0.0, y - m[1] + 0.012)) \
        * smoothstep(-0.03, -0.02, y - chin)
    jaw = (1 - smoothstep(-0.025, -0.012, y - m[1] - 0.02 + 0.25 * ax)) * smoothstep(-0.035, -0.02, y - chin)
    # a full beard grows up the cheeks to the sideburns: its upper edge rises from below the lower lip at the
    # middle to above the mouth at the sides (the jaw zone above sinks at the sides: a chin strap, read as a goatee)
    cheeks = (1 - smoothstep(-0.006, 0.004, y - m[1] + 0.012 - 0.45 * ax)) * smoothstep(-0.035, -0.02, y - chin)
    front = (q[:, 2] > -0.02).float()
    if style == "stubble":
        return 0.0008 * torch.maximum(jaw, moustache) * lips * front
    if style == "moustache":
        return 0.004 * moustache * lips * front
    if style == "goatee":
        return 0.006 * torch.maximum(chin_patch, moustache) * lips * front
    if style == "full":
        return 0.010 * torch.maximum(torch.maximum(jaw, cheeks), moustache) * lips * front
    return torch.zeros_like(y)


def build_beard(frame: HeadFrame) -> BlendAsset:
    q = frame.local()
    m = frame.mouth - frame.centre
    region = frame.skin & (q[:, 1] < m[1] + 0.03) & (q[:, 2] > -0.03) & (q[:, 1] > frame.chin - frame.centre[1] - 0.04)
    anchors, faces = shell_faces(frame.faces, region)
    nrm, qa = frame.normals[anchors], q[anchors]
    offsets = []
    for s in BEARD_STYLES:
        t = beard_cover(s, frame, qa)
        offsets.append(nrm * (-HIDDEN_INSET + (HIDDEN_INSET + t) * (t > 2e-4))[:, None])
    return BlendAsset("beard", list(BEARD_STYLES), anchors, torch.stack(offsets), faces, "hair")
