"""Loss terms shared by the iterative fit, the translator's training and the imitator path.

Landmark terms are similarity invariant: the photo's points are moved onto the prediction by the
least-squares similarity (Umeyama) before the distance, so head size, roll and framing of the
photo do not leak into the sliders. Distances are in units of the eye distance (NME)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from face2param.methods.target import LEFT_CHEEK_POINTS, LEFT_EYE, RIGHT_CHEEK_POINTS, RIGHT_EYE

BROWS = slice(17, 27)
CHIN = 8
HAIR_ABOVE_BROWS = 0.55  # hair sample: this many brow-to-chin distances above the brows
IRIS_OFFSET = 0.075  # iris sample: this many eye distances beside the pupil (iris ring, not pupil)


def similarity_fit(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batched 2-D Umeyama: source (B, L, 2) moved onto target (B, L, 2) by its best similarity."""
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    s, t = source - mu_s, target - mu_t
    cov = t.transpose(1, 2) @ s / source.shape[1]  # (B, 2, 2)
    u, sing, vt = torch.linalg.svd(cov)
    sign = torch.ones_like(sing)
    sign[:, -1] = torch.sign(torch.det(u) * torch.det(vt))
    rot = u @ torch.diag_embed(sign) @ vt
    var = (s ** 2).sum(-1).mean(1).clamp_min(1e-12)
    scale = (sing * sign).sum(-1) / var
    return scale[:, None, None] * s @ rot.transpose(1, 2) + mu_t


def eye_distance(points: torch.Tensor) -> torch.Tensor:
    """(B, 68, 2) -> (B,) distance between the eye centres."""
    return (points[:, LEFT_EYE].mean(1) - points[:, RIGHT_EYE].mean(1)).norm(dim=-1)


def aligned_landmark_error(pred: torch.Tensor, target: torch.Tensor, unit: torch.Tensor | None = None,
                           squared: bool = True) -> torch.Tensor:
    """(B,) mean (squared) distance of the prediction to the similarity-aligned target, in units of
    the prediction's eye distance (or `unit`). The alignment is not differentiated: it is a gauge."""
    with torch.no_grad():
        moved = similarity_fit(target.to(pred.dtype), pred)
        unit = eye_distance(pred) if unit is None else unit
    d = ((pred - moved) ** 2).sum(-1) / unit[:, None] ** 2
    return d.mean(1) if squared else d.sqrt().mean(1)


def _sample(images: torch.Tensor, points: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Mean colour of 3x3 samples around each point: images (B, 3, H, W), points (B, P, 2) pixels,
    radius (B,) pixels -> (B, 3)."""
    B, _, H, W = images.shape
    offsets = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 3), indexing="xy"), -1)
    offsets = offsets.reshape(1, 1, 9, 2).to(images) * radius[:, None, None, None]
    pts = points[:, :, None, :] + offsets  # (B, P, 9, 2)
    grid = torch.stack([pts[..., 0] / W * 2 - 1, pts[..., 1] / H * 2 - 1], -1)
    values = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return values.mean((2, 3))


def sample_face_colours(images: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Skin (cheeks), hair (above the brows) and iris colours (B, 3) of renders (B, 3, H, W) whose
    68 landmarks (B, 68, 2) are in the images' pixels; differentiable in the images."""
    iod = eye_distance(landmarks)
    cheeks = torch.cat([landmarks[:, list(LEFT_CHEEK_POINTS)].mean(1, keepdim=True),
                        landmarks[:, list(RIGHT_CHEEK_POINTS)].mean(1, keepdim=True)], 1)
    brows = landmarks[:, BROWS].mean(1)
    up = brows - landmarks[:, CHIN]
    hair = (brows + HAIR_ABOVE_BROWS * up)[:, None]
    side = torch.stack([iod * IRIS_OFFSET, torch.zeros_like(iod)], -1)[:, None]
    eyes = torch.cat([landmarks[:, LEFT_EYE].mean(1, keepdim=True) + side,
                      landmarks[:, RIGHT_EYE].mean(1, keepdim=True) - side], 1)
    return {"skin": _sample(images, cheeks, iod * 0.06), "hair": _sample(images, hair, iod * 0.06),
            "eyes": _sample(images, eyes, iod * 0.015)}
