"""Landmark labels of a black-box engine's renders: the photo pipeline's own detectors on the render
(mediapipe detection + Face Mesh crop + dlib's 68-point predictor, as `analyse_face` runs on a photo),
so the regressor learns the detector's view of the avatar, the same view the photo target has."""
from __future__ import annotations

import numpy as np
import torch

from avatarclip_core.errors import UserInputError
from face2param.faces.analysis import FaceAnalysisConfig, analyse_face

# landmarks only: no identity embedding, no colour regions (the search samples colours itself)
LABEL_ANALYSIS = FaceAnalysisConfig(compute_embedding=False, compute_regions=False)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float [0, 1] render -> uint8."""
    return (image.detach().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def detect_render_landmarks(image: torch.Tensor | np.ndarray) -> np.ndarray | None:
    """(68, 2) pixel landmarks of the face in an engine render, or None when the detectors miss it."""
    pixels = to_uint8(image) if isinstance(image, torch.Tensor) else image
    try:
        return np.asarray(analyse_face(pixels, LABEL_ANALYSIS).landmarks_68, dtype=np.float64)
    except UserInputError:  # no face / face too small: the caller drops (and counts) this render
        return None
