"""What a fitting method needs from a photo, independent of where it came from (a FaceAnalysis of a
photo, or an engine render with known parameters in tests and training)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from face2param.engines.base import EngineParams

# iBUG-68 indices (0-based)
JAW = slice(0, 17)
NOSE_TIP = 30
LEFT_EYE = slice(36, 42)  # image left (the person's right eye)
RIGHT_EYE = slice(42, 48)
LEFT_CHEEK_POINTS = (1, 2, 31, 36, 41)  # image-left cheek: between jaw, nose wing and eye
RIGHT_CHEEK_POINTS = (15, 14, 35, 45, 46)


@dataclass
class FitTarget:
    """A face to fit. Pixel coordinates: x right, y down."""

    landmarks_68: np.ndarray  # (68, 2)
    landmarks_478: np.ndarray | None = None  # (478, 2|3) mediapipe mesh
    skin: np.ndarray | None = None  # (3,) RGB in [0, 1]
    hair: np.ndarray | None = None
    eyes: np.ndarray | None = None
    embedding: np.ndarray | None = None  # (128,) dlib descriptor
    image: np.ndarray | None = None  # (H, W, 3) uint8, for the identity term
    face_px: float = 0.0  # face box side in the photo
    appearance: object | None = None  # faces.appearance.AppearanceView: the discrete-asset chooser's input
    warnings: list[str] = field(default_factory=list)
    fixed_continuous: dict[str, float] = field(default_factory=dict)  # sliders the search holds (attributes)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks_68[LEFT_EYE].mean(0) - self.landmarks_68[RIGHT_EYE].mean(0)))

    def yaw_degrees(self) -> float:
        """Head yaw from how far the nose tip sits off the jaw's midline (0 = frontal)."""
        p = self.landmarks_68
        left = np.linalg.norm(p[NOSE_TIP] - p[0])
        right = np.linalg.norm(p[NOSE_TIP] - p[16])
        ratio = float(np.clip((left - right) / max(left + right, 1e-6), -1, 1))
        return math.degrees(math.asin(ratio)) * 2.0  # the nose sits ~half a face width from the jaw ends


def _unit(colour) -> np.ndarray | None:
    return None if colour is None else np.asarray(colour, dtype=np.float64) / 255.0


def target_from_analysis(analysis, image: np.ndarray | None = None) -> FitTarget:
    """From `faces.analysis.FaceAnalysis` (colours there are 0-255)."""
    colours = analysis.colours
    return FitTarget(
        landmarks_68=np.asarray(analysis.landmarks_68, dtype=np.float64),
        landmarks_478=np.asarray(analysis.landmarks_478, dtype=np.float64),
        skin=_unit(colours.skin) if colours else None,
        hair=_unit(colours.hair) if colours else None,
        eyes=_unit(colours.eyes) if colours else None,
        embedding=None if analysis.embedding is None else np.asarray(analysis.embedding),
        image=image, face_px=float(analysis.box.size), warnings=list(analysis.warnings),
        appearance=getattr(analysis, "appearance", None))


def target_from_engine(engine, params: EngineParams, size: int = 256, colours: bool = True) -> FitTarget:
    """A target with known parameters: the engine's own landmarks (and colours sampled from its render
    the way the fitting samples them), as a perfect face analysis would report them."""
    from face2param.methods.losses import sample_face_colours

    lm68 = engine.landmarks(params, size, "ibug68").points2d.cpu().numpy().astype(np.float64)
    try:
        lm478 = engine.landmarks(params, size, "mediapipe478").points2d.cpu().numpy().astype(np.float64)
    except Exception:  # an engine without the dense table
        lm478 = None
    skin = hair = eyes = None
    if colours:
        image = engine.render(params, size).permute(2, 0, 1)[None]
        sampled = sample_face_colours(image, torch.as_tensor(lm68, dtype=image.dtype, device=image.device)[None])
        skin, hair, eyes = (sampled[k][0].cpu().numpy().astype(np.float64) for k in ("skin", "hair", "eyes"))
    return FitTarget(lm68, lm478, skin, hair, eyes, face_px=float(size) / 2)
