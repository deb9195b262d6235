"""Colour cues of one face: skin, hair and iris colour, a beard/moustache cue.

Everything is measured on one square analysis crop around the face (3 face widths, 512 px) with
mediapipe's selfie segmentation run on it (the person mask keeps background out of skin/hair):
- skin: median of small discs on both cheeks and the forehead, person pixels only;
- hair: person pixels above eye level, outside the (dilated) face oval, within a band around
  the head; none when too few such pixels exist (hat, cropped photo); hair the colour of skin
  is flagged (`hair_like_skin`: a bald scalp);
- eyes: iris rings (mediapipe refine points 468-477) inside the eyelids, pupil and specular
  highlights excluded; none when the eyes are closed;
- beard: darkness of upper-lip/chin discs relative to the cheeks (1 - luma ratio).
The crop, person mask, mesh points and colours are kept as an `AppearanceView` (faces/appearance.py)
for the asset descriptors; engine renders pass their exact coverage as `person` (no segmentation).
A glasses cue is not offered: a nose-bridge edge score (|d/dy| at the bridge over the gradient
of forehead and cheeks) overlapped too much on the 55 faces of dlib's example photos (7 with
glasses: 0.8-3.8; without: 0.2-1.5), and the under-eye rim score did not separate at all.
Colours are (R, G, B) medians in 0-255.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from face2param.faces import models
from face2param.faces.config import RegionConfig
from face2param.faces.appearance import AppearanceView, polygon_mask
from face2param.faces.landmarks import (FACE_OVAL, LEFT_EYE_CONTOUR, LEFT_IRIS,
                                        RIGHT_EYE_CONTOUR, RIGHT_IRIS)

CHEEK_AND_FOREHEAD = (50, 101, 118, 205, 280, 330, 347, 425, 151, 108, 337, 9)
UPPER_LIP_AND_CHIN = (164, 167, 393, 199, 175, 171, 396, 32, 262)
CHEEKS = CHEEK_AND_FOREHEAD[:8]


@dataclass
class FaceColours:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int] | None
    eyes: tuple[int, int, int] | None


@dataclass
class FaceCues:
    beard_darkness: float  # 0 = lower face as bright as the cheeks
    beard_likely: bool
    hair_fraction: float  # hair pixels found / face-oval pixels
    hair_like_skin: bool  # "hair" pixels the colour of skin: a bald scalp, most likely
    greyscale_photo: bool
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class RegionResult:
    colours: FaceColours
    cues: FaceCues
    person_mask: np.ndarray  # (crop_px, crop_px) bool, in the analysis crop
    crop: np.ndarray  # (crop_px, crop_px, 3) uint8 analysis crop
    image_to_crop: np.ndarray  # (2, 3) affine
    view: AppearanceView  # what the asset descriptors need (faces/appearance.py)


def analyse_regions(image: np.ndarray, mesh: np.ndarray, config: RegionConfig = RegionConfig(),
                    person: np.ndarray | None = None) -> RegionResult:
    """Colours and cues from the photo and the face's (478, 2|3) mesh points (pixels). `person`: an
    (H, W) person probability of the image itself (an engine render's coverage) instead of mediapipe's
    segmentation of the crop."""
    face_width = float(np.linalg.norm(mesh[234, :2] - mesh[454, :2]))
    center = mesh[list(FACE_OVAL), :2].mean(axis=0)
    scale = config.crop_px / (config.crop_scale * face_width)
    to_crop = np.array([[scale, 0.0, config.crop_px / 2 - scale * center[0]],
                        [0.0, scale, config.crop_px / 2 - scale * center[1]]])
    crop = cv2.warpAffine(np.ascontiguousarray(image), to_crop, (config.crop_px,) * 2,
                          flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    points = mesh[:, :2] * scale + to_crop[:, 2]
    if person is None:
        person = person_mask(crop) >= config.segmentation_threshold
    else:  # outside the image is not the person
        person = cv2.warpAffine(np.asarray(person, np.float32), to_crop, (config.crop_px,) * 2,
                                flags=cv2.INTER_LINEAR, borderValue=0.0) >= config.segmentation_threshold
    width = face_width * scale
    radius = max(2, int(round(config.disc_radius * width)))

    skin_pixels = _disc_pixels(crop, points, CHEEK_AND_FOREHEAD, radius, person)
    if len(skin_pixels) == 0:  # segmentation missed the face: use the discs unmasked
        skin_pixels = _disc_pixels(crop, points, CHEEK_AND_FOREHEAD, radius, None)
    skin = _median(skin_pixels)
    cheeks = _disc_pixels(crop, points, CHEEKS, radius, None)
    lower = _disc_pixels(crop, points, UPPER_LIP_AND_CHIN, radius, None)
    darkness = float(np.clip(1.0 - _luma(lower) / max(_luma(cheeks), 1e-6), 0.0, 1.0))

    oval = polygon_mask(crop.shape[:2], points[list(FACE_OVAL)])
    hair_pixels, hair_fraction = _hair_pixels(crop, points, oval, person, width, config)
    eyes = _iris_pixels(crop, points)
    greyscale = is_greyscale(crop)
    colours = FaceColours(
        skin=skin,
        hair=_median(hair_pixels) if hair_fraction >= config.hair_min_fraction else None,
        eyes=_median(eyes) if len(eyes) >= 8 else None)
    like_skin = colours.hair is not None and float(np.linalg.norm(
        np.subtract(colours.hair, skin))) < config.hair_skin_distance
    cues = FaceCues(round(darkness, 4), darkness > config.beard_threshold,
                    round(hair_fraction, 4), like_skin, greyscale)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), to_crop, (config.crop_px,) * 2,
                            flags=cv2.INTER_NEAREST, borderValue=0) > 0
    view = AppearanceView(crop, person, points, colours.skin, None if like_skin else colours.hair,
                          greyscale, inside)
    return RegionResult(colours, cues, person, crop, to_crop, view)


def person_mask(crop: np.ndarray) -> np.ndarray:
    """(H, W) float person probability from mediapipe's selfie segmentation."""
    segmenter = models.mediapipe_selfie_segmentation()
    result = segmenter.process(np.ascontiguousarray(crop))
    return np.asarray(result.segmentation_mask, dtype=np.float32)


def _hair_pixels(crop, points, oval, person, face_width, config):
    """Person pixels outside the dilated face oval, from eye level up to 0.8 face widths above
    the oval's top, within 0.3 face widths of its sides."""
    eye_y = float(points[[33, 263], 1].mean())
    oval_points = points[list(FACE_OVAL)]
    top = oval_points[:, 1].min() - 0.8 * face_width
    left = oval_points[:, 0].min() - 0.3 * face_width
    right = oval_points[:, 0].max() + 0.3 * face_width
    band = np.zeros_like(oval)
    y0, y1 = int(max(0, top)), int(max(0, eye_y))
    x0, x1 = int(max(0, left)), int(min(crop.shape[1], right))
    band[y0:y1, x0:x1] = True
    grow = max(1, int(0.04 * face_width))
    dilated = cv2.dilate(oval.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) > 0
    hair = band & person & ~dilated
    return crop[hair], float(hair.sum()) / max(1.0, float(oval.sum()))


def _iris_pixels(crop, points):
    """Iris-ring pixels of both eyes inside the eyelids, without pupil and highlights."""
    selected = []
    for iris, contour in ((RIGHT_IRIS, RIGHT_EYE_CONTOUR), (LEFT_IRIS, LEFT_EYE_CONTOUR)):
        centre = points[iris[0]]
        radius = float(np.linalg.norm(points[list(iris[1:])] - centre, axis=1).mean())
        # work in a window around the iris, not over the whole crop
        x0, y0 = (int(max(0, np.floor(c - radius - 1))) for c in centre)
        x1 = int(min(crop.shape[1], np.ceil(centre[0] + radius + 2)))
        y1 = int(min(crop.shape[0], np.ceil(centre[1] + radius + 2)))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        distance = np.hypot(xx - centre[0], yy - centre[1])
        ring = (distance <= radius) & (distance >= 0.35 * radius)
        lids = polygon_mask((y1 - y0, x1 - x0), points[list(contour)] - [x0, y0])
        pixels = crop[y0:y1, x0:x1][ring & lids]
        if len(pixels):
            luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            pixels = pixels[luma < np.percentile(luma, 90)]  # drop specular highlights
        selected.append(pixels)
    return np.concatenate(selected) if selected else np.zeros((0, 3), np.uint8)


def _disc_pixels(crop, points, indices, radius, mask):
    height, width = crop.shape[:2]
    disc = np.zeros((height, width), np.uint8)
    for index in indices:
        x, y = points[index]
        cv2.circle(disc, (int(round(x)), int(round(y))), radius, 1, thickness=-1)
    keep = disc > 0
    if mask is not None:
        keep &= mask
    return crop[keep]


def _median(pixels: np.ndarray) -> tuple[int, int, int]:
    if len(pixels) == 0:
        return (0, 0, 0)
    return tuple(int(v) for v in np.median(pixels.reshape(-1, 3), axis=0))


def _luma(pixels: np.ndarray) -> float:
    if len(pixels) == 0:
        return 0.0
    return float(np.median(pixels.reshape(-1, 3).astype(np.float32)
                           @ np.array([0.299, 0.587, 0.114], np.float32)))


def is_greyscale(rgb: np.ndarray, tolerance: int = 2) -> bool:
    """Whether green and blue are within `tolerance` of red everywhere in (H, W, 3) uint8 pixels: exact
    differences of uint8 planes (~5x cheaper than the int16 copy of every pixel it replaced, same answer)."""
    red, green, blue = cv2.split(np.ascontiguousarray(rgb[..., :3]))
    return max(int(cv2.absdiff(green, red).max()), int(cv2.absdiff(blue, red).max())) <= tolerance
