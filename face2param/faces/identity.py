"""dlib's 128-d identity embedding (ResNet-29 metric network, 99.38% on LFW).

Two photos of one person are usually within Euclidean distance 0.6 of each other
(`DLIB_SAME_PERSON_DISTANCE`, dlib's own threshold). The raw descriptor is kept (norm ~1.3-1.5,
not 1) so that threshold keeps its meaning; `identity_cosine` compares directions.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from face2param.faces import models
from face2param.faces.detect import FaceBox
from face2param.faces.dlib_resnet import CHIP_PADDING, CHIP_SIZE
from face2param.faces.landmarks import dlib_full_object_detection

DLIB_SAME_PERSON_DISTANCE = 0.6


def dlib_embedding(image: np.ndarray, points_68: np.ndarray, box: FaceBox,
                   jitters: int = 0) -> np.ndarray:
    """(128,) float64 descriptor of the face with these 68 points. `jitters` > 0 averages that
    many randomly jittered crops (slower, ~1% more accurate in dlib's tests)."""
    crop, origin = face_window(image, points_68)
    shifted = np.asarray(points_68, dtype=np.float64)[:, :2] - origin
    moved = dataclasses.replace(box, left=box.left - origin[0], top=box.top - origin[1])
    shape = dlib_full_object_detection(crop, shifted, moved)
    if jitters:  # dlib's own network jitters the chip
        network = models.dlib_face_recognition()
        with network.lock:
            descriptor = network.model.compute_face_descriptor(crop, shape, int(jitters))
        return np.asarray(descriptor, dtype=np.float64)
    import dlib

    chip = dlib.get_face_chip(crop, shape, size=CHIP_SIZE, padding=CHIP_PADDING)  # what dlib's network sees
    network = models.dlib_face_resnet()
    with network.lock:  # one OpenCV Net runs one forward at a time
        return network.model.descriptors(chip)[0]


def face_window(image: np.ndarray, points_68: np.ndarray, margin: float = 1.0,
                align: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(contiguous crop, its (x, y) origin): the face's points plus `margin` times their extent on every
    side, so dlib's 150 px chip (the aligned face with 25% padding, at any roll) lies inside it and the
    network sees the same pixels as on the whole photo, without converting and downsampling a 12 MP
    photo for a face of a few hundred pixels. The origin sits on a multiple of `align` so dlib's
    image pyramid samples the same grid."""
    points = np.asarray(points_68, dtype=np.float64)[:, :2]
    low, high = points.min(0), points.max(0)
    pad = margin * float((high - low).max())
    height, width = image.shape[:2]
    x0, y0 = (max(0, int(np.floor(v - pad)) // align * align) for v in low)
    x1 = min(width, int(np.ceil(high[0] + pad)))
    y1 = min(height, int(np.ceil(high[1] + pad)))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), np.array([x0, y0], dtype=np.float64)


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
