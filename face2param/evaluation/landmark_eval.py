"""Landmark accuracy on dlib-style XML annotations (imglab format: <image file><box><part/>).

Error per face: mean point-to-point distance / inter-ocular distance (outer eye corners 36 and
45, the 300-W normalisation), over the 68 points and per facial part. Methods:
- "dlib68": dlib's shape predictor on the annotated box;
- "dlib68_mesh_box": the predictor on the box found from Face Mesh (`dlib_predictor_box`, what
  analyse_face does);
- "mesh68": Face Mesh on a crop around the annotated box, mapped through MESH_TO_68.
Caveat for dlib's example sets: their points were made by dlib's 68-point predictor (see the
XML comment; on other image scales/boxes, so "dlib68" is not exactly 0), so every method here
measures agreement with dlib rather than with human annotators.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from face2param.faces.detect import FaceBox
from face2param.faces.errors import NoFaceError
from face2param.faces.images import load_image
from face2param.faces.landmarks import (LandmarkConfig, dlib_landmarks_68, dlib_predictor_box,
                                        face_mesh_478, mesh_to_68)

PARTS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
         "eyes": range(36, 48), "mouth": range(48, 68)}
METHODS = ("dlib68", "dlib68_mesh_box", "mesh68")


@dataclass
class AnnotatedFace:
    image_path: Path
    box: FaceBox
    points: np.ndarray  # (68, 2)


@dataclass
class MethodScore:
    faces: int = 0
    failures: int = 0  # faces the method found no landmarks for
    mean_nme: float = float("nan")
    median_nme: float = float("nan")
    part_nme: dict[str, float] = field(default_factory=dict)
    per_face_nme: list[float] = field(default_factory=list)


def read_dlib_xml(path: str | Path) -> list[AnnotatedFace]:
    """Faces with all 68 parts from an imglab XML; image paths resolved beside the XML."""
    path = Path(path)
    root = ET.parse(path).getroot()
    faces = []
    for image in root.iter("image"):
        for box in image.iter("box"):
            parts = sorted(box.iter("part"), key=lambda p: int(p.get("name")))
            if len(parts) != 68 or box.get("ignore") == "1":
                continue
            points = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
            left, top, width, height = (float(box.get(k)) for k in ("left", "top", "width",
                                                                      "height"))
            faces.append(AnnotatedFace(path.parent / image.get("file"),
                                       FaceBox(left, top, width, height, 1.0, "annotation"),
                                       points))
    return faces


def normalised_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(68,) point errors / inter-ocular distance (outer eye corners)."""
    inter_ocular = float(np.linalg.norm(truth[36] - truth[45]))
    return np.linalg.norm(predicted[:, :2] - truth, axis=1) / max(inter_ocular, 1e-6)


def evaluate_landmarks(faces: list[AnnotatedFace], methods: tuple[str, ...] = METHODS,
                       config: LandmarkConfig = LandmarkConfig()
                       ) -> tuple[dict[str, MethodScore], list[dict]]:
    """Scores per method, and per-face predictions (for report images)."""
    errors: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    scores = {m: MethodScore() for m in methods}
    per_face = []
    images: dict[Path, np.ndarray] = {}
    for face in faces:
        if face.image_path not in images:
            images[face.image_path] = load_image(face.image_path, min_side=1)
        image = images[face.image_path]
        predictions = _predict(image, face.box, methods, config)
        per_face.append({"image_path": str(face.image_path), "box": asdict(face.box),
                         "truth": face.points, "predictions": predictions})
        for method in methods:
            scores[method].faces += 1
            if predictions.get(method) is None:
                scores[method].failures += 1
            else:
                errors[method].append(normalised_errors(predictions[method], face.points))
    for method, found in errors.items():
        if not found:
            continue
        table = np.stack(found)
        per = table.mean(axis=1)
        score = scores[method]
        score.mean_nme, score.median_nme = float(per.mean()), float(np.median(per))
        score.part_nme = {part: float(table[:, list(idx)].mean()) for part, idx in PARTS.items()}
        score.per_face_nme = [round(float(v), 5) for v in per]
    return scores, per_face


def _predict(image, box, methods, config) -> dict[str, np.ndarray | None]:
    out: dict[str, np.ndarray | None] = {}
    if "dlib68" in methods:
        out["dlib68"] = dlib_landmarks_68(image, box)
    mesh = None
    if {"mesh68", "dlib68_mesh_box"} & set(methods):
        try:
            mesh = face_mesh_478(image, box, config)
        except NoFaceError:
            mesh = None
    if "mesh68" in methods:
        out["mesh68"] = None if mesh is None else mesh_to_68(mesh)[:, :2]
    if "dlib68_mesh_box" in methods:
        out["dlib68_mesh_box"] = None if mesh is None else dlib_landmarks_68(
            image, dlib_predictor_box(image, mesh_to_68(mesh)))
    return out
