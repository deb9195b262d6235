"""One call from a photo to everything the parameter fitting needs about its face."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from face2param.faces.appearance import AppearanceView
from face2param.faces.config import FaceAnalysisConfig
from face2param.faces.detect import Detection, FaceBox, detect_face
from face2param.faces.errors import NoFaceError
from face2param.faces.identity import dlib_embedding
from face2param.faces.images import ImageSource, load_image
from face2param.faces.landmarks import (dlib_landmarks_68, dlib_predictor_box,
                                        face_mesh_478, mesh_to_68)
from face2param.faces.regions import FaceColours, FaceCues, analyse_regions


@dataclass
class FaceAnalysis:
    image_size: tuple[int, int]  # (width, height)
    box: FaceBox  # the detector's box of the chosen face
    landmarks_478: np.ndarray  # (478, 3): x, y pixels; z relative depth in x's pixel scale
    landmarks_68: np.ndarray  # (68, 2) dlib shape predictor, pixels
    embedding: np.ndarray | None  # (128,) dlib descriptor (raw, norm ~1.4)
    colours: FaceColours | None
    cues: FaceCues | None
    warnings: list[str]
    timings: dict[str, float]  # seconds per step
    appearance: AppearanceView | None = None  # crop, person mask, mesh, colours: the asset descriptors' input

    def to_json(self) -> dict:
        """A JSON-ready summary (landmarks as nested lists)."""
        return {
            "image_size": list(self.image_size),
            "box": asdict(self.box),
            "landmarks_478": np.round(self.landmarks_478, 3).tolist(),
            "landmarks_68": np.round(self.landmarks_68, 3).tolist(),
            "embedding": None if self.embedding is None else self.embedding.tolist(),
            "colours": None if self.colours is None else asdict(self.colours),
            "cues": None if self.cues is None else asdict(self.cues),
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
        }


def analyse_face(image: ImageSource, config: FaceAnalysisConfig = FaceAnalysisConfig()
                 ) -> FaceAnalysis:
    """Detect the (largest) face, then mesh, 68 points, identity embedding and colour cues.
    `image` is a path, bytes or an array; bad input raises a specific UserInputError."""
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        result = fn(*args)
        timings[name] = round(time.perf_counter() - t0, 4)
        return result

    pixels = timed("load", load_image, image)
    detection = timed("detect", detect_face, pixels, config.detection)
    warnings = list(detection.warnings)
    box, mesh = timed("mesh_478", _first_face_with_mesh, pixels, detection, config, warnings)
    predictor_box, points_68 = timed("landmarks_68", _dlib_points, pixels, mesh)
    embedding = (timed("embedding", dlib_embedding, pixels, points_68, predictor_box,
                       config.embedding_jitters) if config.compute_embedding else None)
    regions = (timed("regions", analyse_regions, pixels, mesh, config.regions)
               if config.compute_regions else None)
    if regions is not None and regions.cues.greyscale_photo:
        warnings.append("the photo is greyscale: skin, hair and eye colours are not meaningful")
    timings["total"] = round(time.perf_counter() - started, 4)
    return FaceAnalysis(
        image_size=(pixels.shape[1], pixels.shape[0]), box=box, landmarks_478=mesh,
        landmarks_68=points_68, embedding=embedding,
        colours=None if regions is None else regions.colours,
        cues=None if regions is None else regions.cues, warnings=warnings, timings=timings,
        appearance=None if regions is None else regions.view)


def _dlib_points(pixels: np.ndarray, mesh: np.ndarray) -> tuple[FaceBox, np.ndarray]:
    box = dlib_predictor_box(pixels, mesh_to_68(mesh))
    return box, dlib_landmarks_68(pixels, box)


def _first_face_with_mesh(pixels: np.ndarray, detection: Detection, config: FaceAnalysisConfig,
                          warnings: list[str]) -> tuple[FaceBox, np.ndarray]:
    """The largest detection on which Face Mesh finds a face: a detector's false positive (a
    dog, a pattern) is skipped with a warning instead of ending the analysis."""
    candidates = [detection.box] + [b for b in detection.all_boxes[1:]
                                    if b.size >= config.detection.min_face_px]
    failure = None
    for box in candidates[:config.max_mesh_attempts]:
        try:
            return box, face_mesh_478(pixels, box, config.landmarks)
        except NoFaceError as exc:
            failure = failure or exc
            warnings.append(f"skipped a detection at x={box.left:.0f}, y={box.top:.0f} "
                            f"({box.width:.0f} px): no facial landmarks there")
    raise failure
