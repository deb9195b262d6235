"""One entry point from a photo (or its analysis) to engine parameters.

Methods (Shi et al.): `iterative` searches the parameters of one photo (best on high-resolution frontal
faces), `oneshot` runs the trained translator (fast, more robust in the wild), `mean` is the engine's
average face. `auto` follows the TPAMI recommendation (section 4.5): iterative on high-resolution frontal
faces, one-shot otherwise (iterative when no translator is available for the engine).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.body.factory import resolve_device
from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig
from face2param.engines.base import DifferentiableEngine, EngineParams
from face2param.methods.losses import aligned_landmark_error
from face2param.methods.target import FitTarget, target_from_analysis

METHODS = ("auto", "iterative", "oneshot", "mean")


class UnknownMethodError(UserInputError):
    pass


@dataclass
class FitResult:
    params: EngineParams
    method: str  # the method that ran (auto resolved)
    losses: dict
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


_ENGINES: dict = {}


def config_device(config: Face2ParamConfig) -> str:
    return resolve_device(config.device)


def load_engine(config: Face2ParamConfig | None = None):
    """The bundled AnnyFaceEngine, built once per process and configuration."""
    from face2param.engines.anny_engine import AnnyEngineConfig, AnnyFaceEngine

    config = config or Face2ParamConfig()
    engine_config = config.engine
    if engine_config.device == "auto" and config.device != "auto":
        engine_config = AnnyEngineConfig(**{**vars(engine_config), "device": config.device})
    key = repr(engine_config)
    if key not in _ENGINES:
        _ENGINES[key] = AnnyFaceEngine(engine_config)
    return _ENGINES[key]


def engine_device(engine) -> torch.device:
    return torch.device(getattr(engine, "device", "cpu"))


def choose_method(target: FitTarget, config: Face2ParamConfig) -> tuple[str, str]:
    """(method, reason) for `auto`."""
    yaw = abs(target.yaw_degrees())
    if target.face_px >= config.choice.min_face_px and yaw <= config.choice.max_yaw_degrees:
        return "iterative", f"frontal ({yaw:.0f} deg yaw) high-resolution face ({target.face_px:.0f} px)"
    return "oneshot", f"face of {target.face_px:.0f} px at {yaw:.0f} deg yaw: not a high-resolution frontal face"


def landmark_nme(engine, params: EngineParams, target: FitTarget, size: int = 256) -> float:
    """Mean 68-point distance of the engine's face to the similarity-aligned target, in eye distances."""
    pred = engine.landmarks(params, size, "ibug68").points2d[None].float()
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


def _identity(target: FitTarget, model, config: Face2ParamConfig, device):
    """(embedder on renders, photo embedding) when a differentiable identity network is configured."""
    cfg = config.iterative
    if cfg.identity_weight <= 0 or not cfg.identity_checkpoint or target.image is None:
        return None
    from face2param.faces.embedders import load_embedder
    from face2param.methods.identity_term import photo_crop_like_render

    embedder = load_embedder(cfg.identity_architecture, Path(cfg.identity_checkpoint), device)
    crop = photo_crop_like_render(target, model, device)
    with torch.no_grad():
        photo_embedding = embedder(crop)
    return embedder, photo_embedding


def fit(image_or_analysis, method: str = "auto", engine=None, config: Face2ParamConfig | None = None,
        progress=None) -> FitResult:
    """Photo (path, bytes, array), FaceAnalysis or FitTarget -> FitResult. Bad input raises the specific
    UserInputError of face2param.faces (no face, face too small, not an image, ...)."""
    config = config or Face2ParamConfig()
    if method not in METHODS:
        raise UnknownMethodError(f"unknown fitting method {method!r}; choose one of {', '.join(METHODS)}")
    timings: dict[str, float] = {}
    target = _target(image_or_analysis, config, timings)
    engine = engine or load_engine(config)
    device = engine_device(engine)
    warnings = list(target.warnings)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    if method == "auto":
        method, reason = choose_method(target, config)
        warnings.append(f"auto chose {method}: {reason}")
    if method == "oneshot":
        try:
            from face2param.methods.oneshot import TranslatorUnavailableError, fit_oneshot
        except ImportError:  # an install without the translator package: say so, fit iteratively
            warnings.append("the one-shot translator is not installed; used the iterative method instead")
            method = "iterative"
        else:
            try:
                params, losses, more = fit_oneshot(target, engine, config, device)
            except TranslatorUnavailableError as exc:
                warnings.append(f"{exc}; used the iterative method instead")
                method = "iterative"
    if method == "iterative":
        params, losses, more = _fit_iterative(target, engine, config, device, progress)
    elif method == "mean":
        from face2param.methods.mean import fit_mean

        params, losses, more = fit_mean(engine), {}, []
    warnings += more
    timings[method] = round(time.perf_counter() - started, 4)
    losses = {"landmark_nme": landmark_nme(engine, params, target), **{k: v for k, v in losses.items() if k != "landmark_nme"}}
    return FitResult(params.validated(engine.spec), method, losses, warnings, timings)


def method_name(engine) -> str:
    return getattr(engine, "name", None) or type(engine).__name__


def _fit_iterative(target, engine, config, device, progress):
    from face2param.methods.iterative import EngineFaceModel, fit_iterative

    if isinstance(engine, DifferentiableEngine):
        model = EngineFaceModel(engine, config.iterative.render_size)
    else:  # a black-box engine needs the imitator G as its differentiable stand-in (not built yet)
        raise UnknownMethodError(
            f"the {method_name(engine)} engine only renders (no gradients): iterative fitting needs the "
            "imitator network, which this version does not include; use --method mean for now")
    identity = _identity(target, model, config, device)
    step = (lambda it, loss: progress("fit", it / max(config.iterative.iterations, 1), f"loss {loss:.4g}")) if progress else None
    return fit_iterative(target, model, config.iterative, device, identity, step)


def as_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float [0, 1] -> uint8."""
    return (image.detach().clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
