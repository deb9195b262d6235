"""dlib's 128-d identity embedding (ResNet-29 metric network, 99.38% on LFW).

Two photos of one person are usually within Euclidean distance 0.6 of each other
(`DLIB_SAME_PERSON_DISTANCE`, dlib's own threshold). The raw descriptor is kept (norm ~1.3-1.5,
not 1) so that threshold keeps its meaning; `identity_cosine` compares directions.
"""
from __future__ import annotations

import numpy as np

from face2param.faces import models
from face2param.faces.detect import FaceBox
from face2param.faces.landmarks import dlib_full_object_detection

DLIB_SAME_PERSON_DISTANCE = 0.6


def dlib_embedding(image: np.ndarray, points_68: np.ndarray, box: FaceBox,
                   jitters: int = 0) -> np.ndarray:
    """(128,) float64 descriptor of the face with these 68 points. `jitters` > 0 averages that
    many randomly jittered crops (slower, ~1% more accurate in dlib's tests)."""
    shape = dlib_full_object_detection(image, points_68, box)
    network = models.dlib_face_recognition()
    with network.lock:
        descriptor = network.model.compute_face_descriptor(
            np.ascontiguousarray(image), shape, int(jitters))
    return np.asarray(descriptor, dtype=np.float64)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two dlib descriptors (< 0.6: probably the same person)."""
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


def identity_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings of any identity network (1 = same direction)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    if denominator == 0:
        raise ValueError("cannot compare a zero embedding")
    return float(a @ b / denominator)


def same_person(a: np.ndarray, b: np.ndarray,
                threshold: float = DLIB_SAME_PERSON_DISTANCE) -> bool:
    return identity_distance(a, b) < threshold
