"""One entry point from a photo (or its analysis) to engine parameters.

Methods (Shi et al.): `iterative` searches the parameters of one photo (best on high-resolution frontal
faces), `oneshot` runs the trained translator (fast, more robust in the wild), `mean` is the engine's
average face. `auto` follows the TPAMI recommendation (section 4.5): iterative on high-resolution frontal
faces, one-shot otherwise (iterative when no translator is available for the engine).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.device import resolve_device
from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig
from face2param.engines.base import DifferentiableEngine, EngineParams
from face2param.engines.registry import load_engine
from face2param.methods.losses import aligned_landmark_error
from face2param.methods.registry import FIT_METHODS, MethodJob, run_method
from face2param.methods.target import FitTarget, target_from_analysis

@dataclass
class FitResult:
    params: EngineParams
    method: str  # the method that ran (auto resolved)
    losses: dict
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)  # detected attributes, confidences, what they set and why


def config_device(config: Face2ParamConfig) -> str:
    return resolve_device(config.device)


def engine_device(engine) -> torch.device:
    return torch.device(getattr(engine, "device", "cpu"))


def choose_method(target: FitTarget, config: Face2ParamConfig) -> tuple[str, str]:
    """(method, reason) for `auto`."""
    yaw = abs(target.yaw_degrees())
    if target.face_px >= config.choice.min_face_px and yaw <= config.choice.max_yaw_degrees:
        return "iterative", f"frontal ({yaw:.0f} deg yaw) high-resolution face ({target.face_px:.0f} px)"
    return "oneshot", f"face of {target.face_px:.0f} px at {yaw:.0f} deg yaw: not a high-resolution frontal face"


def landmark_nme(engine, params: EngineParams, target: FitTarget, size: int = 256) -> float:
    """Mean 68-point distance of the engine's face to the similarity-aligned target, in eye distances.
    An engine without landmarks (a black box) is measured by the photo detectors on its real render
    (nan when they find no face there)."""
    try:
        pred = engine.landmarks(params, size, "ibug68").points2d[None].float()
    except NotImplementedError:
        from face2param.imitator.labels import detect_render_landmarks

        points = detect_render_landmarks(engine.render(params, size))
        if points is None:
            return float("nan")
        pred = torch.as_tensor(points, dtype=torch.float32)[None]
    goal = torch.as_tensor(target.landmarks_68[:, :2], dtype=torch.float32, device=pred.device)[None]
    return float(aligned_landmark_error(pred, goal, squared=False)[0])


def _target(image_or_analysis, config: Face2ParamConfig, timings: dict) -> FitTarget:
    if isinstance(image_or_analysis, FitTarget):
        return image_or_analysis
    from face2param.faces.analysis import FaceAnalysis, analyse_face
    from face2param.faces.images import load_image

    if isinstance(image_or_analysis, FaceAnalysis):
        return target_from_analysis(image_or_analysis)
    started = time.perf_counter()
    pixels = load_image(image_or_analysis)
    analysis = analyse_face(pixels, config.faces)
    timings["analyse_face"] = round(time.perf_counter() - started, 4)
    return target_from_analysis(analysis, pixels)


def reads_photo_pixels(method: str, config: Face2ParamConfig) -> bool:
    """Whether `fit(analysis, method)` reads the photo's pixels beyond its analysis: only an identity
    network on renders does (the iterative search's identity term with a checkpoint), so a batch need
    not carry a one-shot photo's pixels from its analysis process."""
    if method in ("oneshot", "mean"):
        return False
    if method in ("iterative", "auto"):
        return config.iterative.identity_weight > 0 and bool(config.iterative.identity_checkpoint)
    return True  # a method registered elsewhere may read them


def _identity(target: FitTarget, model, config: Face2ParamConfig, device, warnings: list[str]):
    """The identity term (x, probs) -> (B,) 1 - cosine, or None: a differentiable identity network on
    renders when a checkpoint is configured, else the identity surrogate of dlib's network (needs the
    photo's dlib descriptor and a differentiable engine)."""
    from face2param.methods.identity_surrogate import (IdentitySurrogateUnavailableError, distinct_loss,
                                                       identity_loss, load_for_engine, load_photo_mean,
                                                       render_domain_loss)

    cfg = config.iterative
    if cfg.identity_weight <= 0:
        return None
    if cfg.identity_checkpoint:
        if target.image is None:
            return None
        from face2param.faces.embedders import load_embedder
        from face2param.methods.identity_term import photo_crop_like_render

        embedder = load_embedder(cfg.identity_architecture, Path(cfg.identity_checkpoint), device)
        with torch.no_grad():
            photo_embedding = embedder(photo_crop_like_render(target, model, device))
        return identity_loss(lambda x, probs: embedder(model.render(x, probs)), photo_embedding)
    if target.embedding is None or not isinstance(getattr(model, "engine", None), DifferentiableEngine):
        return None

    try:
        surrogate = load_for_engine(cfg.identity_surrogate, model.spec, device)
    except IdentitySurrogateUnavailableError as exc:
        if cfg.identity_surrogate:  # the user named one: a wrong path is their error to fix
            raise
        warnings.append(f"{exc}; fitted without the identity term")
        return None
    photo = torch.as_tensor(np.asarray(target.embedding), dtype=torch.float32, device=device)[None]
    photo_mean = None
    if cfg.identity_render_domain or cfg.identity_distinct_weight > 0:
        if cfg.identity_photo_mean and not Path(cfg.identity_photo_mean).is_file():
            raise UserInputError(f"iterative.identity_photo_mean: no file {cfg.identity_photo_mean} (a .npz with "
                                 "'mean', the 128-d mean dlib descriptor of real photos)")
        photo_mean = load_photo_mean(Path(cfg.identity_photo_mean)) if cfg.identity_photo_mean else load_photo_mean()
    if photo_mean is None:
        return identity_loss(surrogate, photo)
    spec = model.spec
    mean_face = spec.defaults()
    with torch.no_grad():  # the mean face's descriptor: where the search starts in the renders' place
        render_mean = surrogate(mean_face.continuous_vector(spec, device)[None],
                                {k: v[None] for k, v in mean_face.discrete_one_hot(spec, device).items()})
    photo_mean = torch.as_tensor(photo_mean, device=device)[None]
    base = (render_domain_loss(surrogate, photo, photo_mean, render_mean) if cfg.identity_render_domain
            else identity_loss(surrogate, photo))
    if cfg.identity_distinct_weight <= 0:
        return base
    distinct, weight = distinct_loss(surrogate, photo, photo_mean, render_mean), cfg.identity_distinct_weight
    return lambda x, probs: base(x, probs) + weight * distinct(x, probs)


def fit(image_or_analysis, method: str = "auto", engine=None, config: Face2ParamConfig | None = None,
        progress=None, fixed: dict | None = None) -> FitResult:
    """Photo (path, bytes, array), FaceAnalysis or FitTarget -> FitResult. Bad input raises the specific
    UserInputError of face2param.faces (no face, face too small, not an image, ...). `fixed`: attributes or
    slots the user set (e.g. {"gender": "female", "hair_style": "long", "beard": "none"}); they win over
    detection (an unknown key or value raises faces.attributes.UnknownAttributeError)."""
    config = config or Face2ParamConfig()
    FIT_METHODS.find(method)  # an unknown name fails before the photo is analysed
    timings: dict[str, float] = {}
    target = _target(image_or_analysis, config, timings)
    engine = engine or load_engine(config)
    device = engine_device(engine)
    warnings = list(target.warnings)
    attributes_started = time.perf_counter()
    constraints = _attribute_constraints(target, engine, method, config, fixed)
    timings["attributes"] = round(time.perf_counter() - attributes_started, 4)
    if constraints is not None:  # the iterative search holds these phenotypes
        target = replace(target, fixed_continuous=dict(constraints.continuous))
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    outcome = run_method(method, MethodJob(target, engine, config, device, progress))  # methods/registry.py
    params, losses, method = outcome.params, outcome.losses, outcome.method
    warnings += outcome.warnings
    timings[method] = round(time.perf_counter() - started, 4)
    attributes = {}
    if constraints is not None:
        from face2param.methods.attribute_slots import hold_continuous

        params = hold_continuous(params, constraints)
    params, slot_losses = _choose_assets(target, engine, params, method, config)
    if constraints is not None:
        from face2param.methods.attribute_slots import apply_slots

        glasses = tuple(engine.spec.slot("glasses").options) if "glasses" in engine.spec.slot_names else ()
        params, sources = apply_slots(params, constraints, slot_losses.get("slots"), glasses)
        attributes = {**constraints.to_json(), "sources": sources}
    losses = {**losses, **slot_losses}
    timings["slot_choice"] = slot_losses.get("slot_choice_seconds", 0.0)
    losses = {"landmark_nme": landmark_nme(engine, params, target), **{k: v for k, v in losses.items() if k != "landmark_nme"}}
    return FitResult(params.validated(engine.spec), method, losses, warnings, timings, attributes)


def _attribute_constraints(target, engine, method, config, fixed):
    """Attributes from the photo (+ the user's fixed values) as constraints of the fit; None for the mean
    face (the baseline stays the engine's average) unless the user fixed something."""
    from face2param.methods.attribute_slots import attribute_constraints

    if method == "mean" and not fixed:
        return None
    return attribute_constraints(target, engine, fixed, config.attributes)


def _choose_assets(target, engine, params, method, config):
    """Hair style, beard, brows, glasses from the photo (methods/slots.py), after the continuous fit
    (its colours; its face for slots.fitted_face_methods). The mean method keeps the engine's defaults."""
    if method == "mean" or not config.slots.slots:
        return params, {"slots": "engine defaults"}
    if not isinstance(engine, DifferentiableEngine):
        return params, {"slots": "engine defaults: choosing assets needs the engine's coverage and landmarks"}
    from face2param.methods.slots import choose_slots

    return choose_slots(target.appearance, engine, params, config.slots, config.faces.regions,
                        on_fitted_face=method in config.slots.fitted_face_methods)


def _fit_iterative(target, engine, config, device, progress):
    from face2param.methods.iterative import EngineFaceModel, fit_iterative

    search = config.iterative
    if isinstance(engine, DifferentiableEngine):
        model = EngineFaceModel(engine, config.iterative.render_size)
    else:  # a black-box engine: its trained imitator G (+ landmark regressor) is the search's stand-in
        from face2param.imitator.face_model import imitator_face_model

        model = imitator_face_model(config, engine, device)
        # a learned stand-in is only right near its training data: shorter, damped steps and a firmer pull
        # to the average face keep the search from exploiting its errors (the real render is what counts)
        search = replace(search, damping=config.imitator.search_damping,
                         prior_weight=config.imitator.search_prior_weight)
    warnings: list[str] = []
    identity = _identity(target, model, config, device, warnings)
    step = (lambda it, loss: progress("fit", it / max(search.iterations, 1), f"loss {loss:.4g}")) if progress else None
    from face2param.methods.face_prior import face_prior_for

    prior = face_prior_for(engine, config.face_prior)  # None for engines without a head model
    params, losses, more = fit_iterative(target, model, search, device, identity, step, prior)
    return params, losses, warnings + more


def as_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float [0, 1] -> uint8."""
    return (image.detach().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
