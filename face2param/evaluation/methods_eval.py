"""`avatar eval photo` for the photo -> game-parameter methods: every method against the mean face.

Per photo (analysed once): each method fits it, the engine renders the result, and we measure
(a) the 68-point landmark error of the fitted engine face against the photo after similarity
alignment, in eye distances (`methods.fit.landmark_nme`), (b) dlib identity cosine / distance between
the photo and the render (analysed like a photo; a render without a detectable face is a failure),
(c) fit time. Plus parameter recovery on engine renders (`recovery.py`) and, given a folder with one
subfolder per person, whether renders of the best method keep same-person pairs closer than others.
A method that cannot run here (no one-shot translator yet, say) is recorded, not fatal.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from avatarclip_core.device import torch_threads
from avatarclip_core.errors import UserInputError
from avatarclip_core.jobfolder import atomic_job_folder
from face2param.evaluation.attribute_eval import attribute_section, set_by_fit
from face2param.evaluation.identity_eval import IMAGE_SUFFIXES, identity_separation
from face2param.evaluation.likeness import likeness_collector, plausibility_summary
from face2param.evaluation.lopo_mean import lopo_photo_means, needs_lopo_photo_mean
from face2param.evaluation.recovery import RecoveryConfig, evaluate_recovery
from face2param.evaluation.report import ImagePair, crop_around, to_jsonable, write_report
from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
from face2param.faces.identity import DLIB_SAME_PERSON_DISTANCE, identity_cosine, identity_distance
from face2param.faces.images import load_image
from face2param.methods.registry import FIT_METHODS

BASELINE = "mean"


@dataclass
class PhotoEvalConfig:
    render_size: int = 512  # engine renders that are analysed for identity (face ~230 px across)
    tile_size: int = 256  # HTML tiles
    photo_crop_scale: float = 2.0  # photo crop around the face box, close to the render's framing
    render_analysis: FaceAnalysisConfig = field(
        default_factory=lambda: FaceAnalysisConfig(compute_regions=False))
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)


class MethodRunner:
    """fit() with the bookkeeping of an evaluation: a method that is not available (its module or
    artifact is missing, or fit fell back to another method) is remembered and not retried."""

    def __init__(self, engine, config):
        self.engine, self.config = engine, config
        self.unavailable: dict[str, str] = {}

    def __call__(self, target, method: str):
        from face2param.methods.fit import fit

        if method in self.unavailable:
            return None, 0.0, self.unavailable[method]
        started = time.perf_counter()
        try:
            # the photo job's torch threads (its `threads`, 1 in the presets; 0 or a bare Face2ParamConfig: as
            # they are): fit times as a job sees them (two threads on a loaded 2-core machine: 3-5x the time)
            with torch_threads(getattr(self.config, "threads", 0)):
                result = fit(target, method, self.engine, self.config)
        except ImportError as exc:
            self.unavailable[method] = f"not available: {exc}"
            return None, 0.0, self.unavailable[method]
        except UserInputError as exc:
            return None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        if method != "auto" and result.method != method:
            why = next((w for w in result.warnings if "instead" in w), f"fit ran {result.method} instead")
            self.unavailable[method] = f"not available: {why}"
            return None, seconds, self.unavailable[method]
        return result, seconds, None


def evaluate_photo_methods(photos_dir: str | Path, out_dir: str | Path,
                           methods: tuple[str, ...] = ("mean", "iterative", "oneshot"),
                           config=None, force: bool = False, people_dir: str | Path | None = None,
                           recovery_samples: int = 20,
                           progress: Callable[[str, float, str], None] | None = None,
                           eval_config: PhotoEvalConfig | None = None) -> dict:
    """Evaluate `methods` on every photo of `photos_dir`; write report.json + index.html (+ images/)
    into `out_dir` atomically; return the summary. `config` is a Face2ParamConfig (device, fitting
    settings); the mean face is always measured, as the baseline of the win rates."""
    from face2param.config import Face2ParamConfig
    from face2param.methods.fit import load_engine

    photos = _photo_list(photos_dir)
    methods = _method_list(methods)
    if people_dir is not None and not Path(people_dir).is_dir():
        raise UserInputError(f"people folder not found: {people_dir}")
    if recovery_samples < 0:
        raise UserInputError(f"recovery_samples must be 0 or more, got {recovery_samples}")
    config = config or Face2ParamConfig()
    eval_config = eval_config or PhotoEvalConfig()
    # labels.json naming people: identity of the renders of what a user gets (the default method)
    likeness = likeness_collector(photos_dir, config.method, eval_config.photo_crop_scale)
    if likeness is not None and likeness.method not in methods:
        methods = methods + (likeness.method,)
    started = time.perf_counter()
    with atomic_job_folder(Path(out_dir), force) as folder:
        engine = load_engine(config)
        run = MethodRunner(engine, config)
        analyses, photo_configs = {}, {}
        if needs_lopo_photo_mean(config, likeness is not None):
            if progress:
                progress("photos", 0.0, "leave-one-person-out photo means")
            analyses, photo_configs = lopo_photo_means(photos, likeness.labels, config, folder)
        per_photo, pairs = _photo_section(photos, methods, engine, run, config, eval_config, progress, likeness,
                                          analyses, photo_configs)
        summary: dict = {"photos_dir": str(photos_dir), "photos": len(photos),
                         "evaluated": sum("error" not in r for r in per_photo.values()),
                         "device": str(getattr(engine, "device", "cpu")), "methods": {}}
        for method in methods:
            summary["methods"][method] = _method_summary(method, per_photo, run.unavailable)
        if recovery_samples > 0:
            recovery_config = dataclasses.replace(eval_config.recovery, samples=recovery_samples)
            summary["recovery"] = evaluate_recovery(engine, methods, run, recovery_config,
                                                    config.faces, progress)  # as photos are analysed
        attributes = attribute_section(photos_dir, per_photo, methods, engine)  # with labels.json only
        if attributes is not None:
            summary["attributes"] = attributes
        if likeness is not None:  # contact sheet + render identity (likeness.py)
            summary["likeness"] = likeness.section(engine, folder, eval_config.render_size)
        if people_dir is not None:
            summary["people"] = _people_section(Path(people_dir), folder, _best_method(summary),
                                                engine, run, eval_config, progress)
        summary["per_photo"] = per_photo
        summary["wall_seconds"] = round(time.perf_counter() - started, 2)
        write_report(folder, "Photo -> game parameters: methods against the mean face", summary, pairs)
    return to_jsonable(summary)


def _photo_list(photos_dir) -> list[Path]:
    folder = Path(photos_dir)
    if not folder.is_dir():
        raise UserInputError(f"photo folder not found: {folder}")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise UserInputError(f"no photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return photos


def _method_list(methods) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(methods))
    for method in methods:
        FIT_METHODS.find(method)  # an unknown name: the registry's error, listing every method
    return (BASELINE,) + tuple(m for m in methods if m != BASELINE)


def _photo_section(photos, methods, engine, run, config, eval_config, progress, likeness=None,
                   analyses=None, photo_configs=None):
    """analyses: photos analysed already (name -> FaceAnalysis); photo_configs: a photo's own fit config
    (leave-one-person-out photo means, lopo_mean.py), else `config`."""
    from face2param.methods.target import target_from_analysis

    per_photo, pairs = {}, []
    analyses, photo_configs = analyses or {}, photo_configs or {}
    for index, path in enumerate(photos):
        if progress:
            progress("photos", index / len(photos), path.name)
        run.config = photo_configs.get(path.name, config)
        try:
            pixels = load_image(path)
            analysis = analyses.get(path.name) or analyse_face(pixels, config.faces)
        except UserInputError as exc:  # not an image, no face, face too small: recorded, not fatal
            per_photo[path.name] = {"error": type(exc).__name__, "message": str(exc)}
            continue
        target = target_from_analysis(analysis, pixels)
        results, renders, embeddings = {}, {}, {}
        for method in methods:
            results[method], renders[method], embeddings[method] = _measure(method, target, analysis, engine, run,
                                                                            eval_config)
        if likeness is not None:
            likeness.add(path.name, pixels, analysis, renders, embeddings)
        per_photo[path.name] = {"face_px": round(float(analysis.box.size), 1),
                                "warnings": analysis.warnings, "methods": results}
        pairs.append(_pair(path.name, pixels, analysis, results, renders, eval_config))
    run.config = config
    if progress:
        progress("photos", 1.0, "done")
    return per_photo, pairs


def _measure(method, target, analysis, engine, run, eval_config) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """(row, render, the render's dlib descriptor or None)."""
    from face2param.methods.face_prior import plausibility
    from face2param.methods.fit import as_numpy_image, landmark_nme

    result, seconds, reason = run(target, method)
    if result is None:
        return {"error": reason}, None, None
    render = as_numpy_image(engine.render(result.params, eval_config.render_size))
    row = {"method_ran": result.method, "landmark_nme": landmark_nme(engine, result.params, target),
           "fit_seconds": round(seconds, 3), "warnings": result.warnings,
           "attributes_set": set_by_fit(result.params), "plausibility": plausibility(engine, result.params)}
    embedding = None
    try:
        embedding = analyse_face(render, eval_config.render_analysis).embedding
        if analysis.embedding is None or embedding is None:
            raise UserInputError("no identity embedding (embeddings are switched off)")
        row["identity_cosine"] = identity_cosine(analysis.embedding, embedding)
        row["identity_distance"] = identity_distance(analysis.embedding, embedding)
    except UserInputError as exc:
        row["identity_error"] = f"render: {type(exc).__name__}: {exc}"
    return row, render, embedding


def _method_summary(method: str, per_photo: dict, unavailable: dict) -> dict:
    rows = {name: r["methods"][method] for name, r in per_photo.items() if "methods" in r}
    ok = {name: r for name, r in rows.items() if "error" not in r}
    nme = [r["landmark_nme"] for r in ok.values()]
    cosine = [r["identity_cosine"] for r in ok.values() if "identity_cosine" in r]
    distance = [r["identity_distance"] for r in ok.values() if "identity_distance" in r]
    summary = {
        "photos_fitted": len(ok),
        "landmark_nme_mean": _stat(np.mean, nme), "landmark_nme_median": _stat(np.median, nme),
        "identity_cosine_mean": _stat(np.mean, cosine), "identity_distance_mean": _stat(np.mean, distance),
        "identity_same_person_rate": _stat(np.mean, [d < DLIB_SAME_PERSON_DISTANCE for d in distance]),
        "fit_seconds_mean": _stat(np.mean, [r["fit_seconds"] for r in ok.values()]),
        "fit_seconds_median": _stat(np.median, [r["fit_seconds"] for r in ok.values()]),
        "failures": {name: r["error"] for name, r in rows.items() if "error" in r},
        "identity_failures": {name: r["identity_error"] for name, r in ok.items() if "identity_error" in r},
        "plausibility": plausibility_summary([r.get("plausibility", {}) for r in ok.values()]),
    }
    if method in unavailable:
        summary["unavailable"] = unavailable[method]
    if method != BASELINE:
        both = [(r["landmark_nme"], per_photo[name]["methods"][BASELINE].get("landmark_nme"))
                for name, r in ok.items()]
        wins = [mine < base for mine, base in both if base is not None]
        summary["win_rate_vs_mean"] = _stat(np.mean, wins)
    return summary


def _stat(fn, values) -> float:
    return float(fn(values)) if len(values) else math.nan


def _best_method(summary: dict) -> str:
    """The fitted method with the lowest mean landmark error (the mean face when none ran)."""
    scored = [(s["landmark_nme_mean"], m) for m, s in summary["methods"].items()
              if m != BASELINE and s["photos_fitted"] > 0]
    return min(scored)[1] if scored else BASELINE


def _people_section(people_dir: Path, folder: Path, method: str, engine, run, eval_config, progress) -> dict:
    """identity_separation on the photos and on the renders of `method` (same folder layout)."""
    from PIL import Image

    from face2param.methods.fit import as_numpy_image

    section: dict = {"method": method, "photos": to_jsonable(identity_separation(people_dir))}
    renders_dir, failed = folder / "people_renders", {}
    people = sorted(p for p in people_dir.iterdir() if p.is_dir())
    images = [(person, path) for person in people for path in sorted(person.iterdir())
              if path.suffix.lower() in IMAGE_SUFFIXES]
    for index, (person, path) in enumerate(images):
        if progress:
            progress("people", index / max(len(images), 1), f"{person.name}/{path.name}")
        (renders_dir / person.name).mkdir(parents=True, exist_ok=True)
        result, _, reason = run(path, method)  # bad photos come back as a reason, not an error
        if result is None:
            failed[f"{person.name}/{path.name}"] = reason
            continue
        render = as_numpy_image(engine.render(result.params, eval_config.render_size))
        Image.fromarray(render).save(renders_dir / person.name / f"{path.stem}.png")
    section["render_failures"] = failed
    try:
        section["renders"] = to_jsonable(identity_separation(renders_dir))
    except UserInputError as exc:
        section["renders"] = {"error": str(exc)}
    return section


def _pair(name, pixels, analysis, results, renders, eval_config) -> ImagePair:
    """photo | mean render | each method's render (numbers on the tiles and in the caption)."""
    size = eval_config.tile_size
    crop, _ = crop_around(pixels, analysis.box.as_ltrb(), eval_config.photo_crop_scale, size)
    tiles, metrics = [], {}
    for method, row in results.items():
        image = renders[method]
        tile = (np.full((size, size, 3), 200, np.uint8) if image is None
                else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
        label = method if "error" in row else f"{method} nme {row['landmark_nme']:.3f}"
        if "identity_cosine" in row:
            label += f" cos {row['identity_cosine']:.2f}"
            metrics[f"{method} cos"] = row["identity_cosine"]
        if "landmark_nme" in row:
            metrics[f"{method} nme"] = row["landmark_nme"]
        tiles.append(_label(tile.copy(), "n/a " + method if image is None else label))
    return ImagePair(name, crop, np.hstack(tiles), "photo", " | ".join(results),
                     "; ".join(analysis.warnings), metrics)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.rectangle(tile, (0, tile.shape[0] - 18), (tile.shape[1], tile.shape[0]), (255, 255, 255), -1)
    cv2.putText(tile, text, (3, tile.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return tile
