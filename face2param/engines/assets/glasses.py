"""Glasses: two rims, a bridge and two temples as square tubes, anchored rigidly to the nasal bridge."""
from __future__ import annotations

import math

import torch

from . import HIDDEN_INSET, BlendAsset, HeadFrame

GLASSES_STYLES = ("none", "rectangular", "round")
TUBE = 0.0022  # frame thickness (m)


def _tube(path: torch.Tensor, closed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A square tube along a (P, 3) polyline: vertices (P*4, 3), faces."""
    P = len(path)
    nxt = torch.roll(path, -1, 0) if closed else torch.cat([path[1:], path[-1:] * 2 - path[-2:-1]])
    tangent = torch.nn.functional.normalize(nxt - path, dim=1)
    up = torch.tensor([0.0, 1.0, 0.0]).expand(P, 3)
    side = torch.nn.functional.normalize(torch.linalg.cross(tangent, up, dim=1) + 1e-6, dim=1)
    normal = torch.linalg.cross(side, tangent, dim=1)
    corners = [side + normal, -side + normal, -side - normal, side - normal]
    verts = torch.stack([path + TUBE * 0.5 * c for c in corners], 1).reshape(-1, 3)
    faces = []
    for i in range(P if closed else P - 1):
        j = (i + 1) % P
        for c in range(4):
            a, b = i * 4 + c, i * 4 + (c + 1) % 4
            faces += [[a, b, j * 4 + (c + 1) % 4], [a, j * 4 + (c + 1) % 4, j * 4 + c]]
    return verts, torch.tensor(faces)


def _rim(centre: torch.Tensor, round_shape: bool, n: int = 20) -> torch.Tensor:
    t = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    w, h = (0.024, 0.021) if round_shape else (0.027, 0.017)
    e = 2.0 if round_shape else 6.0  # superellipse exponent: 2 = ellipse, large = rectangle
    x = w * torch.sign(torch.cos(t)) * torch.cos(t).abs() ** (2 / e)
    y = h * torch.sign(torch.sin(t)) * torch.sin(t).abs() ** (2 / e)
    return centre + torch.stack([x, y, torch.zeros_like(x)], 1)


def _glasses(frame: HeadFrame, round_shape: bool) -> tuple[torch.Tensor, torch.Tensor]:
    z_front = float(frame.vertices[frame.skin & (frame.vertices[:, 1] - frame.eye_left[1]).abs().lt(0.01)][:, 2].max())
    parts = []
    for eye in (frame.eye_left, frame.eye_right):
        c = torch.tensor([float(eye[0]) * 1.05, float(eye[1]), z_front - 0.004])
        parts.append(_tube(_rim(c, round_shape), True))
    inner = 0.008
    bridge = torch.tensor([[-inner, frame.eye_left[1] + 0.006, z_front - 0.003],
                           [0.0, frame.eye_left[1] + 0.009, z_front - 0.002],
                           [inner, frame.eye_left[1] + 0.006, z_front - 0.003]])
    parts.append(_tube(bridge, False))
    v = frame.vertices
    temple_zone = frame.skin & ((v[:, 1] - frame.eye_left[1]).abs() < 0.01) & (v[:, 2] > frame.centre[2] + 0.025)
    half_width = float(v[temple_zone][:, 0].max()) + 0.003
    for s in (1, -1):
        temple = torch.tensor([[s * (abs(float(frame.eye_left[0])) * 1.05 + 0.026), frame.eye_left[1] + 0.005, z_front - 0.006],
                               [s * half_width, frame.eye_left[1] + 0.005, z_front - 0.03],
                               [s * half_width, frame.eye_left[1] + 0.002, float(frame.centre[2]) - 0.005]])
        parts.append(_tube(temple, False))
    verts, faces, n = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + n)
        n += len(v)
    return torch.cat(verts), torch.cat(faces)


def build_glasses(frame: HeadFrame) -> BlendAsset:
    midpoint = (frame.eye_left + frame.eye_right) / 2
    bridge = frame.vertices.clone()
    bridge[~frame.skin] = 1e3
    anchor = int(((bridge - (midpoint + torch.tensor([0.0, 0.0, 0.03]))).norm(dim=1)).argmin())
    rect_v, faces = _glasses(frame, False)
    round_v, round_f = _glasses(frame, True)
    assert torch.equal(faces, round_f)
    base = frame.vertices[anchor]
    hidden = (-HIDDEN_INSET * frame.normals[anchor]).expand_as(rect_v)
    offsets = torch.stack([hidden, rect_v - base, round_v - base])
    anchors = torch.full((len(rect_v),), anchor)
    return BlendAsset("glasses", list(GLASSES_STYLES), anchors, offsets, faces, "frame")
