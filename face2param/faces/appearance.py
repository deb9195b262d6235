"""Appearance descriptors of one face for choosing discrete assets (hair style, beard, brows, glasses).

All descriptors live in a face-aligned frame: origin between the eye centres, x along the eye line,
y down, in units of the eye distance, so a photo and an engine render of any size compare directly.
The same function runs on a photo (mediapipe's person mask, measured colours) and on engine renders
(exact coverage, colours measured the same way), so choosing an asset is a like-for-like comparison.

Pixels are "hair-like" when closer to the face's hair colour than to its skin colour (without a hair
colour: clearly darker than the skin). Descriptors:
- hair: occupancy of hair-like person pixels outside the face oval, in regions that reach above the
  eyes (not dark clothes), on a coarse grid around the head (length, volume, top);
- beard: hair-like fraction and darkness relative to the upper cheeks of moustache, chin and jaw zones;
- brows: hair-like fraction on rows x columns above each eye (thickness, arch), both sides averaged;
- glasses: fraction of near-black pixels on a grid over the eyes and the nose bridge (frames).
Brows and glasses are measured on a full-resolution window around the eyes, the rest on a resized crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from face2param.faces.config import AppearanceConfig
from face2param.faces.landmarks import FACE_OVAL, LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
NOSE_BOTTOM, UPPER_LIP_TOP, LOWER_LIP_BOTTOM, CHIN_BOTTOM = 2, 0, 17, 152
MOUTH_RIGHT, MOUTH_LEFT = 61, 291  # image left / right corners
CHEEK_REFERENCE = (50, 101, 118, 280, 330, 347)  # upper cheeks: beard-free on anyone


@dataclass
class AppearanceView:
    """What the descriptors need: an analysis crop of the face and what is known about it."""

    crop: np.ndarray  # (S, S, 3) uint8
    person: np.ndarray  # (S, S) bool
    points: np.ndarray  # (478, 2) mediapipe mesh points in crop pixels
    skin: tuple[int, int, int] | None  # RGB 0-255
    hair: tuple[int, int, int] | None  # None: no hair found (or skin-coloured: a bald scalp)
    greyscale: bool = False
    inside: np.ndarray | None = None  # (S, S) bool: crop pixels from inside the image (None: all)


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(origin, x axis, eye distance) of the face-aligned frame from 478 mesh points (pixels)."""
    right = points[list(RIGHT_EYE_CONTOUR)].mean(0)  # image left
    left = points[list(LEFT_EYE_CONTOUR)].mean(0)
    axis = left - right
    iod = float(np.linalg.norm(axis))
    return (left + right) / 2, axis / max(iod, 1e-6), max(iod, 1e-6)


def to_frame(xy: np.ndarray, origin, axis, iod) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) face-frame coordinates (x along the eyes, y down)."""
    d = (xy - origin) / iod
    return np.stack([d[..., 0] * axis[0] + d[..., 1] * axis[1], -d[..., 0] * axis[1] + d[..., 1] * axis[0]], -1)


def pixel_grid_to_frame(height: int, width: int, origin, axis, iod) -> np.ndarray:
    """(height, width, 2) face-frame coordinates of the pixel centres of a height x width image: `to_frame`
    of its (x + 0.5, y + 0.5) grid, bit for bit, from a row and a column (the grid's float64 copies were
    ~1/3 of the attribute cues' time)."""
    origin = np.asarray(origin, np.float64)
    dx = (np.arange(width, dtype=np.float32)[None, :] + np.float32(0.5) - origin[0:1]) / iod  # (1, w)
    dy = (np.arange(height, dtype=np.float32)[:, None] + np.float32(0.5) - origin[1:2]) / iod  # (h, 1)
    return np.stack([dx * axis[0] + dy * axis[1], -dx * axis[1] + dy * axis[0]], -1)


@dataclass
class _Pixels:
    """Pixels of (part of) the crop with their face-frame coordinates and classes."""

    uv: np.ndarray  # (h, w, 2)
    person: np.ndarray
    inside: np.ndarray
    hair_like: np.ndarray
    luma: np.ndarray
    points: np.ndarray  # (478, 2) mesh in these pixels
    iod: float


def _pixels(view: AppearanceView, config: AppearanceConfig, skin: np.ndarray, size: int | None,
            window: float | None = None) -> _Pixels:
    """The whole crop resized to `size`, or (size None) a full-resolution square window of +- `window`
    eye distances around the eyes (fine detail: brows, frames)."""
    crop, person = view.crop, view.person
    inside = np.ones_like(person) if view.inside is None else view.inside
    points = np.asarray(view.points, np.float64)[:, :2]
    if size is not None:
        scale = size / crop.shape[0]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        person, inside = _resized_mask(person, size), _resized_mask(inside, size)
        points = points * scale
        x0 = y0 = 0
    else:
        origin, _, iod = face_frame(points)
        half = window * iod
        x0, y0 = (int(max(0, np.floor(c - half))) for c in origin)
        x1, y1 = (int(min(crop.shape[1 - k], np.ceil(c + half))) for k, c in enumerate(origin))
        crop, person, inside = crop[y0:y1, x0:x1], person[y0:y1, x0:x1], inside[y0:y1, x0:x1]
        points = points - [x0, y0]
    origin, axis, iod = face_frame(points)
    colours = crop.astype(np.float32)
    return _Pixels(pixel_grid_to_frame(crop.shape[0], crop.shape[1], origin, axis, iod), person, inside,
                   _hair_like(colours, skin, view.hair, config), colours @ LUMA, points, iod)


def describe(view: AppearanceView, config: AppearanceConfig = AppearanceConfig()) -> dict[str, np.ndarray]:
    """slot kind ('hair', 'beard', 'brows', 'glasses') -> descriptor vector."""
    skin = np.asarray(view.skin if view.skin is not None else np.median(view.crop[view.person], 0)
                      if view.person.any() else (128, 128, 128), np.float32)
    coarse = _pixels(view, config, skin, config.work_px)
    oval = polygon_mask(coarse.person.shape, coarse.points[list(FACE_OVAL)])
    grow = max(1, int(round(config.oval_margin * coarse.iod)))
    oval_dilated = cv2.dilate(oval.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) > 0
    origin, axis, iod = face_frame(coarse.points)
    fp = to_frame(coarse.points, origin, axis, iod)  # mesh in the frame
    fine = _pixels(view, config, skin, None, window=config.fine_window)
    return {
        "hair": _hair_grid(coarse.uv, _attached_to_scalp(coarse.person & coarse.hair_like & ~oval_dilated, coarse.uv),
                           coarse.inside, config),
        "beard": _beard(coarse.uv, fp, coarse.hair_like, coarse.luma, oval, _contrast(skin, view.hair, config),
                        float(skin @ LUMA)),
        "brows": _brows(fine.uv, fine.hair_like, config),
        "glasses": _glasses(fine.uv, fine.luma < config.frame_luma * float(skin @ LUMA), config),
    }


def _contrast(skin, hair, config) -> float:
    """How much darker than the skin the hair is (1 - luma ratio), floored; a default without hair."""
    if hair is None:
        return config.default_contrast
    ratio = float(np.asarray(hair, np.float32) @ LUMA) / max(float(skin @ LUMA), 1e-6)
    return max(1.0 - ratio, config.min_contrast)


def _hair_like(crop, skin, hair, config) -> np.ndarray:
    to_skin = colour_distance(crop, skin)
    if hair is None:
        return (to_skin > config.dark_skin_distance) & (crop @ LUMA < float(skin @ LUMA))
    return colour_distance(crop, np.asarray(hair, np.float32)) < to_skin


def colour_distance(pixels: np.ndarray, colour) -> np.ndarray:
    """(..., 3) float32 pixels -> (...) Euclidean distance to `colour`: np.linalg.norm(pixels - colour,
    axis=-1) bit for bit (the same differences and products, summed in the same order, in the dtype
    `pixels - colour` has). Each channel's difference is a contiguous plane and the sum is made in place:
    ~10x faster than the norm (a reduction over a 3-long last axis is numpy's slow case), ~3.5x faster
    than the same sum over strided views of one difference image."""
    colour = np.asarray(colour)  # numpy scalars below promote as the whole array would
    planes = [pixels[..., k] - colour[k] for k in range(3)]
    total = planes[0] * planes[0]
    total += planes[1] * planes[1]
    total += planes[2] * planes[2]
    return np.sqrt(total, out=total)


def _cells(uv, mask, x_edges, y_edges, counted=None) -> np.ndarray:
    """Fraction of `mask` pixels among the `counted` ones per (y, x) cell of the face frame (0 where
    a cell has none); uniform edges."""
    nx, ny = len(x_edges) - 1, len(y_edges) - 1
    col = np.floor((uv[..., 0] - x_edges[0]) / (x_edges[-1] - x_edges[0]) * nx).astype(np.int64)
    row = np.floor((uv[..., 1] - y_edges[0]) / (y_edges[-1] - y_edges[0]) * ny).astype(np.int64)
    keep = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    if counted is not None:
        keep &= counted
    index = (row * nx + col)[keep]
    total = np.bincount(index, minlength=nx * ny)
    hits = np.bincount(index, weights=mask[keep].astype(np.float64), minlength=nx * ny)
    return np.where(total > 0, hits / np.maximum(total, 1), 0.0).reshape(ny, nx)


def _attached_to_scalp(mask, uv) -> np.ndarray:
    """Only hair regions that reach above the eye line: hair hangs from the scalp, while dark clothes
    (the person mask includes the torso) and shadows below the face are separate regions."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    above = np.unique(labels[mask & (uv[..., 1] < -0.5)])
    return np.isin(labels, above[above > 0])


def _hair_grid(uv, mask, inside, config) -> np.ndarray:
    """Cell occupancies, then the fraction of the grid's area inside the image (a tightly cropped
    photo cannot show its hair's length)."""
    edges = np.linspace(-config.hair_extent, config.hair_extent, config.hair_cells + 1)
    seen = _cells(uv, inside, edges, edges).mean()
    return np.append(_cells(uv, mask, edges, edges, inside).ravel(), seen)


def _zone_stats(zone, hair_like, luma, reference, contrast) -> list[float]:
    """Hair-like fraction and darkness in units of the hair's own darkness (a blond beard on fair
    skin darkens less than a black one: both read as fully covered)."""
    if not zone.any():
        return [0.0, 0.0]
    darkness = (1.0 - float(np.median(luma[zone])) / max(reference, 1e-6)) / contrast
    return [float(hair_like[zone].mean()), float(np.clip(darkness, -1.0, 1.5))]


def _beard(uv, fp, hair_like, luma, oval, contrast, skin_luma) -> np.ndarray:
    """Moustache (nose to upper lip), chin (lower lip to chin) and jaw (beside the mouth, down to the
    jaw line) zones: hair-like fraction and darkness relative to the upper cheeks. Beard pixels must
    also be at least half as much darker than the skin as the hair is: shading under the lips and
    along the jaw is nearer a dark hair colour than lit skin, yet is no beard."""
    hair_like = hair_like & (luma < skin_luma * (1.0 - 0.5 * contrast))
    u, v = uv[..., 0], uv[..., 1]
    half_mouth = abs(fp[MOUTH_LEFT, 0] - fp[MOUTH_RIGHT, 0]) / 2
    mouth_y = (fp[MOUTH_LEFT, 1] + fp[MOUTH_RIGHT, 1]) / 2
    nose, lip_top = fp[NOSE_BOTTOM, 1], fp[UPPER_LIP_TOP, 1]
    lip_bottom, chin = fp[LOWER_LIP_BOTTOM, 1], fp[CHIN_BOTTOM, 1]
    moustache = (v > nose + 0.25 * (lip_top - nose)) & (v < lip_top - 0.1 * (lip_top - nose)) & (np.abs(u) < half_mouth)
    chin_zone = (v > lip_bottom + 0.15 * (chin - lip_bottom)) & (v < chin - 0.15 * (chin - lip_bottom)) \
        & (np.abs(u) < 0.6 * half_mouth) & oval
    jaw = (v > mouth_y) & (v < chin) & (np.abs(u) > 1.2 * half_mouth) & oval
    cheeks = np.zeros_like(oval)
    ref_points = fp[list(CHEEK_REFERENCE)]
    for point in ref_points:
        cheeks |= ((u - point[0]) ** 2 + (v - point[1]) ** 2) < 0.08 ** 2
    reference = float(np.median(luma[cheeks])) if cheeks.any() else float(np.median(luma[oval]) if oval.any() else 1.0)
    return np.array(sum((_zone_stats(z, hair_like, luma, reference, contrast) for z in (moustache, chin_zone, jaw)), []))


def _mirrored_cells(uv, mask, x_edges, y_edges) -> np.ndarray:
    """Cells on the image-right half and the mirrored image-left half, averaged (left-right symmetric)."""
    mirrored = uv * np.array([-1.0, 1.0], np.float32)
    return ((_cells(uv, mask, x_edges, y_edges) + _cells(mirrored, mask, x_edges, y_edges)) / 2).ravel()


def _brows(uv, hair_like, config) -> np.ndarray:
    """Rows x columns (inner to outer) hair-like fractions above the eyes: thickness and arch."""
    y_edges = np.linspace(config.brow_top, config.brow_bottom, config.brow_rows + 1)
    x_edges = np.linspace(0.05, 1.05, config.brow_columns + 1)
    return _mirrored_cells(uv, hair_like, x_edges, y_edges)


def _glasses(uv, dark, config) -> np.ndarray:
    """Near-black fractions on a grid over the eyes and the nose bridge (rims, bridge, corners)."""
    n = config.glasses_cells
    return _mirrored_cells(uv, dark, np.linspace(0.0, 1.1, n + 1), np.linspace(-0.45, 0.45, n + 1))


def _resized_mask(mask: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask > 0
