"""Face detection: mediapipe's two detectors (short range, tuned for selfies; full range, for
smaller faces in wider shots, skipped when the first finds a confident close face) merged, dlib's HOG
detector when neither finds anything. Several faces -> the largest, with a warning."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from face2param.faces import models
from face2param.faces.config import DetectionConfig
from face2param.faces.errors import FaceTooSmallError, NoFaceError


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face box in pixels (x right, y down) and where it came from."""

    left: float
    top: float
    width: float
    height: float
    score: float
    source: str  # "mediapipe:short_range", "mediapipe:full_range" or "dlib_hog"

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def center(self) -> np.ndarray:
        return np.array([self.left + self.width / 2, self.top + self.height / 2])

    @property
    def size(self) -> float:
        """The face's extent across: the smaller box side."""
        return min(self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_ltrb(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    def clipped(self, width: int, height: int) -> "FaceBox":
        left, top = max(0.0, self.left), max(0.0, self.top)
        right, bottom = min(float(width), self.right), min(float(height), self.bottom)
        return FaceBox(left, top, max(0.0, right - left), max(0.0, bottom - top), self.score,
                       self.source)


@dataclass
class Detection:
    box: FaceBox  # the chosen (largest) face
    all_boxes: list[FaceBox]  # largest first
    warnings: list[str] = field(default_factory=list)


def detect_faces(image: np.ndarray, config: DetectionConfig = DetectionConfig()) -> list[FaceBox]:
    """Every face found, largest first (may be empty): mediapipe's detectors merged, else HOG."""
    height, width = image.shape[:2]
    found: list[FaceBox] = []
    for index, model in enumerate(config.mediapipe_models):
        if index and _close_face(found, min(height, width), config):
            break  # a portrait: the later (farther-range) models would find the same face again
        found += _mediapipe_boxes(image, model, config.min_confidence)
    boxes = _without_duplicates(found, config.duplicate_overlap)
    if not boxes and config.use_hog_fallback:
        boxes = _hog_boxes(image, config)
    boxes = [b.clipped(width, height) for b in boxes]
    boxes = [b for b in boxes if b.width > 1 and b.height > 1]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def _close_face(boxes: list[FaceBox], short_side: int, config: DetectionConfig) -> bool:
    """Whether a confident face spans at least `close_face_fraction` of the photo's shorter side."""
    return config.close_face_fraction > 0 and any(
        b.score >= config.close_face_score and b.size >= config.close_face_fraction * short_side for b in boxes)


def detect_face(image: np.ndarray, config: DetectionConfig = DetectionConfig()) -> Detection:
    """The largest face, or NoFaceError / FaceTooSmallError saying what to upload instead."""
    boxes = detect_faces(image, config)
    height, width = image.shape[:2]
    if not boxes:
        tried = " and ".join([f"mediapipe ({', '.join(config.mediapipe_models)})"]
                             + (["dlib HOG"] if config.use_hog_fallback else []))
        raise NoFaceError(
            f"no face found in the {width}x{height} photo (tried {tried}): upload a photo "
            "where one face looks roughly at the camera, well lit and not covered")
    chosen = boxes[0]
    if chosen.size < config.min_face_px:
        raise FaceTooSmallError(
            f"the face is only {int(chosen.size)} px across; at least {config.min_face_px} px is "
            "needed: use a closer or higher-resolution photo")
    warnings = []
    if len(boxes) > 1:
        warnings.append(
            f"{len(boxes)} faces found; using the largest ({chosen.width:.0f}x{chosen.height:.0f}"
            f" px at x={chosen.left:.0f}, y={chosen.top:.0f})")
    return Detection(chosen, boxes, warnings)


def overlap_of_smaller(a: FaceBox, b: FaceBox) -> float:
    """Intersection area / the smaller box's area."""
    width = max(0.0, min(a.right, b.right) - max(a.left, b.left))
    height = max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))
    return width * height / max(1e-9, min(a.area, b.area))


def _without_duplicates(boxes: list[FaceBox], max_overlap: float) -> list[FaceBox]:
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(overlap_of_smaller(box, other) <= max_overlap for other in kept):
            kept.append(box)
    return kept


def _mediapipe_boxes(image: np.ndarray, model: str, min_confidence: float) -> list[FaceBox]:
    detector = models.mediapipe_face_detector(model, min_confidence)
    result = detector.process(np.ascontiguousarray(image))
    height, width = image.shape[:2]
    boxes = []
    for detection in result.detections or []:
        rel = detection.location_data.relative_bounding_box
        boxes.append(FaceBox(rel.xmin * width, rel.ymin * height, rel.width * width,
                             rel.height * height, float(detection.score[0]), f"mediapipe:{model}"))
    return boxes


def _hog_boxes(image: np.ndarray, config: DetectionConfig) -> list[FaceBox]:
    import cv2

    scale = min(1.0, config.hog_max_side / max(image.shape[:2]))
    small = image if scale == 1.0 else cv2.resize(
        image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector = models.dlib_hog_detector()
    with detector.lock:
        rects, scores, _ = detector.model.run(np.ascontiguousarray(small), config.hog_upsample,
                                              config.hog_min_score)
    return [FaceBox(r.left() / scale, r.top() / scale, r.width() / scale, r.height() / scale,
                    float(s), "dlib_hog") for r, s in zip(rects, scores)]
