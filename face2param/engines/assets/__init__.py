"""Procedural assets (hair, beards, glasses, eyebrow patterns) built in code from the head mesh.

Every geometric slot is one `BlendAsset`: a fixed topology whose vertex i sits at an anchor head vertex
plus a per-option offset. Options that do not use a vertex put it just inside the skin (hidden by the
head), so the softmax relaxation is exact and differentiable: X = V[anchor] + sum_k p_k offset_k.
Offsets follow the head when face sliders move it, since they are relative to anchor vertices.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from avatarclip_core.render.topology import vertex_normals

HIDDEN_INSET = 0.002  # metres under the skin for vertices an option does not use


@dataclass
class BlendAsset:
    name: str
    options: list[str]
    anchors: torch.Tensor  # (N,) head vertex ids
    offsets: torch.Tensor  # (K, N, 3) per option, rest frame
    faces: torch.Tensor  # (F, 3) into the asset's vertices
    colour_role: str  # "hair" | "frame"

    def vertices(self, head_vertices: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """head (B, Nh, 3), probs (B, K) -> (B, N, 3)."""
        offset = (probs @ self.offsets.reshape(len(self.options), -1)).view(probs.shape[0], -1, 3)
        return head_vertices[:, self.anchors] + offset

    def to(self, device) -> "BlendAsset":
        return BlendAsset(self.name, self.options, self.anchors.to(device), self.offsets.to(device),
                          self.faces.to(device), self.colour_role)


@dataclass
class HeadFrame:
    """Rest-pose head geometry the builders measure against (metres, Y up, facing +Z)."""

    vertices: torch.Tensor  # (Nh, 3)
    faces: torch.Tensor  # (Fh, 3)
    normals: torch.Tensor  # (Nh, 3)
    centre: torch.Tensor  # (3,) centre of the skull (between the ears, at brow height)
    eye_left: torch.Tensor  # (3,) +X side
    eye_right: torch.Tensor
    top: float  # y of the crown
    chin: float  # y of the chin
    skin: torch.Tensor  # (Nh,) bool: skin vertices (not eyes / mouth)
    mouth: torch.Tensor  # (3,) centre of the mouth (x, y; z inside the mouth)
    body: torch.Tensor | None = None  # (Nb, 3) the whole rest body, when known: long hair drapes over it

    @property
    def brow_y(self) -> float:
        return float((self.eye_left[1] + self.eye_right[1]) / 2) + 0.022

    def local(self) -> torch.Tensor:
        """(Nh, 3) vertices relative to the skull centre."""
        return self.vertices - self.centre

    def azimuth(self) -> torch.Tensor:
        """(Nh,) angle about the vertical axis: 0 in front (+Z), +pi/2 on the avatar's left (+X)."""
        q = self.local()
        return torch.atan2(q[:, 0], q[:, 2])


def head_frame(vertices: torch.Tensor, faces: torch.Tensor, regions: torch.Tensor,
               body: torch.Tensor | None = None) -> HeadFrame:
    from face2param.engines.head import IRIS, SKIN, TONGUE

    normals = vertex_normals(vertices.unsqueeze(0), faces)[0]
    iris = vertices[regions == IRIS]
    eye_left, eye_right = iris[iris[:, 0] > 0].mean(0), iris[iris[:, 0] < 0].mean(0)
    top = float(vertices[:, 1].max())
    eye_y = float((eye_left[1] + eye_right[1]) / 2)
    # chin: the most forward point of the lower midline profile (pogonion), 1.5 cm above the menton
    midline = vertices[(vertices[:, 0].abs() < 0.01) & (vertices[:, 1] < eye_y - 0.09)]
    chin = float(midline[midline[:, 2].argmax(), 1]) - 0.015
    mouth = vertices[regions == TONGUE].mean(0)
    band = vertices[(vertices[:, 1] - eye_y).abs() < 0.02]
    centre = torch.tensor([0.0, eye_y + 0.02, float((band[:, 2].max() + band[:, 2].min()) / 2)])
    return HeadFrame(vertices, faces, normals, centre, eye_left, eye_right, top, chin, regions == SKIN, mouth, body)


def shell_faces(faces: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Head faces whose three vertices are in `mask` -> (anchor vertex ids (N,), faces into them)."""
    keep = mask[faces].all(dim=1)
    sub = faces[keep]
    ids = sub.unique()
    remap = torch.full((mask.shape[0],), -1, dtype=torch.long)
    remap[ids] = torch.arange(ids.numel())
    return ids, remap[sub]


def smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)
