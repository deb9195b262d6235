"""The face-analysis part of `avatar eval photo`: landmark accuracy on dlib-style XML sets,
analyse_face on every photo of a folder (success, warnings, colours, timings), identity
separation when a folder of people is given; one report folder (report.json + index.html)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarclip_core.errors import UserInputError
from avatarclip_core.jobfolder import atomic_job_folder
from face2param.evaluation.identity_eval import IMAGE_SUFFIXES, identity_separation
from face2param.evaluation.landmark_eval import evaluate_landmarks, read_dlib_xml
from face2param.evaluation.report import (ImagePair, crop_around, draw_points, to_jsonable,
                                          transform_points, write_report)
from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
from face2param.faces.images import load_image
from face2param.faces.landmarks import mesh_to_68

TRUTH, DLIB, MESH = (0, 255, 0), (255, 0, 0), (0, 128, 255)


def evaluate_face_analysis(photos: str | Path, out: str | Path, force: bool = False,
                           xml_files: list[Path] | None = None, people: str | Path | None = None,
                           config: FaceAnalysisConfig | None = None,
                           max_pairs: int = 12) -> dict:
    """Evaluate on a folder of photos (and the *_with_face_landmarks.xml / given XML files in
    it); write the report into `out` atomically; return the summary."""
    photos = Path(photos)
    if not photos.is_dir():
        raise UserInputError(f"photo folder not found: {photos}")
    config = config or FaceAnalysisConfig()
    xml_files = (sorted(photos.glob("*_with_face_landmarks.xml")) if xml_files is None
                 else [Path(p) for p in xml_files])
    with atomic_job_folder(Path(out), force) as folder:
        summary: dict = {"photos": str(photos)}
        pairs: list[ImagePair] = []
        if xml_files:
            summary["landmarks"], landmark_pairs = _landmark_section(xml_files, config, max_pairs)
            pairs += landmark_pairs
        summary["analysis"], analysis_pairs = _analysis_section(photos, config, max_pairs)
        pairs += analysis_pairs
        if people is not None:
            summary["identity"] = to_jsonable(identity_separation(people))
        write_report(folder, "Face analysis evaluation", summary, pairs)
    return summary


def _landmark_section(xml_files, config, max_pairs):
    section, pairs = {}, []
    for xml in xml_files:
        faces = read_dlib_xml(xml)
        scores, per_face = evaluate_landmarks(faces, config=config.landmarks)
        section[xml.name] = {m: to_jsonable(s) for m, s in scores.items()}
        for face in per_face[: max(0, max_pairs // (2 * len(xml_files)))]:
            image = load_image(face["image_path"], min_side=1)
            box = face["box"]
            crop, matrix = crop_around(image, (box["left"], box["top"],
                                               box["left"] + box["width"],
                                               box["top"] + box["height"]))
            truth = draw_points(crop, transform_points(face["truth"], matrix), TRUTH, 2)
            predicted = crop
            for method, colour in (("dlib68", DLIB), ("mesh68", MESH)):
                if face["predictions"].get(method) is not None:
                    points = transform_points(face["predictions"][method], matrix)
                    predicted = draw_points(predicted, points, colour, 2)
            pairs.append(ImagePair(f"{xml.name}: {Path(face['image_path']).name}", truth,
                                   predicted, "annotation", "dlib68 (red), mesh68 (blue)"))
    return section, pairs


def _analysis_section(photos, config, max_pairs):
    results, timings, pairs = {}, [], []
    for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            analysis = analyse_face(path, config)
        except UserInputError as exc:
            results[path.name] = {"error": type(exc).__name__, "message": str(exc)}
            continue
        timings.append(analysis.timings)
        results[path.name] = {"box": to_jsonable(analysis.box), "warnings": analysis.warnings,
                              "colours": to_jsonable(analysis.colours),
                              "cues": to_jsonable(analysis.cues), "timings": analysis.timings}
        if len(pairs) < max_pairs // 2:
            image = load_image(path)
            crop, matrix = crop_around(image, analysis.box.as_ltrb(), 2.0)
            drawn = draw_points(crop, transform_points(analysis.landmarks_478, matrix), MESH, 1)
            drawn = draw_points(drawn, transform_points(analysis.landmarks_68, matrix), DLIB, 2)
            pairs.append(ImagePair(path.name, crop, _with_swatches(drawn, analysis.colours),
                                   "photo", "mesh (blue), dlib 68 (red), skin/hair/eye colours",
                                   "; ".join(analysis.warnings)))
    step_means = ({step: float(np.mean([t[step] for t in timings if step in t]))
                   for step in timings[0]} if timings else {})
    section = {"photos": len(results),
               "analysed": sum("error" not in r for r in results.values()),
               "mean_timings_s": step_means, "per_photo": results}
    return section, pairs


def _with_swatches(image: np.ndarray, colours) -> np.ndarray:
    out = image.copy()
    if colours is None:
        return out
    size = out.shape[0] // 8
    for index, colour in enumerate((colours.skin, colours.hair, colours.eyes)):
        if colour is not None:
            out[:size, index * size:(index + 1) * size] = colour
    return out
