"""Similarity alignment of landmarks to a template, and canonical face crops.

The template is an argument (the engine's average-face landmarks will be the usual one): any
(N, 2) or (N, 3) points in any unit. `aligned_crop` fits the template's x-y extent into the crop
(with a margin) and warps the photo so the face's landmarks land on the template's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SimilarityTransform:
    """x -> scale * rotation @ x + translation (rotation proper: no reflection)."""

    scale: float
    rotation: np.ndarray  # (D, D)
    translation: np.ndarray  # (D,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation

    def matrix(self) -> np.ndarray:
        """(D+1, D+1) homogeneous matrix."""
        d = self.rotation.shape[0]
        out = np.eye(d + 1)
        out[:d, :d] = self.scale * self.rotation
        out[:d, d] = self.translation
        return out

    def inverse(self) -> "SimilarityTransform":
        rotation = self.rotation.T
        return SimilarityTransform(1.0 / self.scale, rotation,
                                   -(rotation @ self.translation) / self.scale)


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True,
            weights: np.ndarray | None = None) -> SimilarityTransform:
    """Least-squares similarity taking `source` (N, D) onto `target` (N, D) (Umeyama 1991)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[0] < 2:
        raise ValueError(f"need matching (N>=2, D) point sets, got {src.shape} and {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    src_mean, dst_mean = w @ src, w @ dst
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = (dst_c * w[:, None]).T @ src_c
    u, singular, vt = np.linalg.svd(covariance)
    d = src.shape[1]
    sign = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0  # the best proper rotation, not a reflection
    rotation = u @ np.diag(sign) @ vt
    src_variance = float(w @ (src_c ** 2).sum(axis=1))
    scale = 1.0
    if with_scale and src_variance > 0:
        scale = float((singular * sign).sum() / src_variance)
    translation = dst_mean - scale * rotation @ src_mean
    return SimilarityTransform(scale, rotation, translation)


def align_landmarks(landmarks: np.ndarray, template: np.ndarray, with_scale: bool = True
                    ) -> tuple[np.ndarray, SimilarityTransform]:
    """Landmarks moved onto the template's frame (same D for both) and the transform used."""
    transform = umeyama(landmarks, template, with_scale)
    return transform.apply(landmarks), transform


def template_in_crop(template: np.ndarray, size: int, margin: float = 0.2,
                     template_y_up: bool = False) -> np.ndarray:
    """(N, 2) crop pixel positions of the template points: x-y extent centred in the crop, its
    larger side spanning (1 - 2 margin) * size. `template_y_up` flips a Y-up (engine) template
    into image orientation (y down)."""
    points = np.asarray(template, dtype=np.float64)[:, :2].copy()
    if template_y_up:
        points[:, 1] = -points[:, 1]
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    if extent <= 0:
        raise ValueError("the template's points all coincide")
    scale = (1.0 - 2.0 * margin) * size / extent
    return (points - (low + high) / 2) * scale + size / 2


@dataclass
class AlignedCrop:
    pixels: np.ndarray  # (size, size, 3) uint8
    image_to_crop: SimilarityTransform  # 2-D, photo pixels -> crop pixels
    template_points: np.ndarray  # (N, 2) template positions in crop pixels


def aligned_crop(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray, size: int,
                 margin: float = 0.2, template_y_up: bool = False,
                 border_value: int = 128) -> AlignedCrop:
    """A size x size canonical face crop: the 2-D similarity that best maps `landmarks` (N, 2|3)
    onto the template (N, 2|3), which `template_in_crop` places in the crop."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if len(landmarks) != len(template):
        raise ValueError(f"{len(landmarks)} landmarks for a {len(template)}-point template")
    target = template_in_crop(template, size, margin, template_y_up)
    transform = umeyama(landmarks[:, :2], target)
    matrix = transform.matrix()[:2]
    interpolation = cv2.INTER_AREA if transform.scale < 1 else cv2.INTER_LINEAR
    pixels = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=interpolation,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 3)
    return AlignedCrop(pixels, transform, target)
