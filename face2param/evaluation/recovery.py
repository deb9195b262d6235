"""Parameter recovery: how much of a known parameter set a fitting method gets back.

Random parameter sets are drawn from the engine's spec (seeded; sliders uniform in a central range,
discrete slots uniform), rendered, and each method fits the render. Two kinds of target:
- `exact`: the engine's own landmarks and colours of the render (`target_from_engine`), i.e. a perfect
  face analysis: what the method itself can identify;
- `analysed`: `analyse_face` on the rendered image, the path a photo takes: adds the gap between the
  photo detectors' landmark definitions and the engine's landmark tables.
R^2 = 1 - SS_res / SS_tot is pooled over the *identifiable* sliders only (`iterative.identifiability`:
the rms landmark motion, in eye distances, that a full-range change of a slider still causes when all
others re-adjust; sliders below `identifiable_threshold` cannot be recovered from front-view landmarks
by any method). SS_tot is taken about the centre of the sampling range (the population mean, known
here), so predicting the centre scores exactly 0 whatever the number of samples: `mean` (the average
face, 0.5 on two-sided sliders) is the R^2 ~ 0 baseline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from avatarclip_core.errors import UserInputError
from face2param.engines.base import EngineParams, ParamSpec

TARGET_KINDS = ("exact", "analysed")
IDENTIFIABILITY_BANDS = (0.0, 0.005, 0.01, 0.015, 0.02)  # eye distances


@dataclass
class RecoveryConfig:
    samples: int = 20
    low: float = 0.2  # sliders ~ U(low, high): a central range, away from the clamps
    high: float = 0.8
    render_size: int = 512  # the face spans ~230 px: above `auto`'s 200 px "high resolution"
    targets: tuple[str, ...] = TARGET_KINDS
    identifiable_threshold: float = 0.01  # eye distances (see the module docstring)
    seed: int = 0


# (target, method) -> (FitResult | None, seconds, reason it did not run)
MethodRunner = Callable[[object, str], tuple]


def sample_params(spec: ParamSpec, count: int, rng: np.random.Generator, low: float = 0.2,
                  high: float = 0.8) -> list[EngineParams]:
    out = []
    for _ in range(count):
        continuous = {p.name: float(rng.uniform(low, high)) for p in spec.continuous}
        discrete = {s.name: s.options[int(rng.integers(len(s.options)))] for s in spec.discrete}
        out.append(EngineParams(continuous, discrete))
    return out


def identifiable_sliders(engine, threshold: float) -> dict:
    """{'values': (N,) identifiability, 'mask': (N,) bool, 'source': how it was computed}."""
    from face2param.methods.iterative import EngineFaceModel, identifiability

    values = identifiability(EngineFaceModel(engine, 64)).detach().cpu().numpy().astype(float)
    return {"values": values, "mask": values >= threshold, "threshold": threshold,
            "source": "face2param.methods.iterative.identifiability (front-view landmarks, the other "
                      f"sliders re-adjusting), threshold {threshold:g} eye distances"}


def r_squared(truth: np.ndarray, predicted: np.ndarray, centre: float | None = None) -> float:
    """Pooled R^2 over all entries of (samples, sliders) arrays, SS_tot about `centre` (None: each
    slider's sample mean); NaN when the truth has no spread."""
    total = float(((truth - (truth.mean(0) if centre is None else centre)) ** 2).sum())
    if truth.size == 0 or total <= 1e-12 * truth.size:  # no spread (up to rounding)
        return math.nan
    return 1.0 - float(((predicted - truth) ** 2).sum()) / total


def _target(kind: str, engine, params: EngineParams, size: int, analysis_config):
    from face2param.faces.analysis import analyse_face
    from face2param.methods.fit import as_numpy_image
    from face2param.methods.target import target_from_analysis, target_from_engine

    if kind == "exact":
        return target_from_engine(engine, params, size)
    image = as_numpy_image(engine.render(params, size))
    return target_from_analysis(analyse_face(image, analysis_config), image)


def evaluate_recovery(engine, methods: tuple[str, ...], run_method: MethodRunner,
                      config: RecoveryConfig, analysis_config=None,
                      progress: Callable[[str, float, str], None] | None = None) -> dict:
    """Recovery scores per target kind and method (see the module docstring)."""
    from face2param.faces.analysis import FaceAnalysisConfig
    from face2param.methods.fit import landmark_nme

    analysis_config = analysis_config or FaceAnalysisConfig()  # the photo path: colours too
    unknown = [k for k in config.targets if k not in TARGET_KINDS]
    if unknown:
        raise UserInputError(f"unknown recovery target {unknown[0]!r}; choose from {', '.join(TARGET_KINDS)}")
    spec = engine.spec
    names, groups = spec.continuous_names, [p.group for p in spec.continuous]
    ident = identifiable_sliders(engine, config.identifiable_threshold)
    mask = ident["mask"]
    truths = sample_params(spec, config.samples, np.random.default_rng(config.seed), config.low, config.high)
    section: dict = {
        "samples": config.samples, "range": [config.low, config.high], "seed": config.seed,
        "render_size": config.render_size,
        "identifiable": {"source": ident["source"], "count": int(mask.sum()), "of": len(names),
                         "sliders": {n: round(float(v), 5) for n, v, m in zip(names, ident["values"], mask) if m}},
        "targets": {},
    }
    steps, done = max(len(config.targets) * len(truths) * len(methods), 1), 0
    for kind in config.targets:
        fitted: dict[str, list] = {m: [] for m in methods}  # (sample index, FitResult, seconds, nme)
        failures: dict[str, str] = {}
        gaps = []
        for index, truth in enumerate(truths):
            try:
                target = _target(kind, engine, truth, config.render_size, analysis_config)
            except UserInputError as exc:  # analyse_face found no face on the render
                failures[f"sample {index}"] = f"{type(exc).__name__}: {exc}"
                done += len(methods)
                continue
            gaps.append(landmark_nme(engine, truth, target))
            for method in methods:
                result, seconds, reason = run_method(target, method)
                done += 1
                if progress:
                    progress("recovery", done / steps, f"{kind} sample {index + 1}/{len(truths)}: {method}")
                if result is None:
                    failures[f"sample {index} {method}"] = reason
                    continue
                fitted[method].append((index, result, seconds, landmark_nme(engine, result.params, target)))
        section["targets"][kind] = {
            "true_parameter_nme": _mean(gaps),  # landmark error of the true parameters: the floor
            "failures": failures,
            "methods": {m: _scores(spec, truths, rows, names, groups, ident, (config.low + config.high) / 2)
                        for m, rows in fitted.items()},
        }
    return section


def _scores(spec, truths, rows, names, groups, ident: dict, centre: float) -> dict:
    if not rows:
        return {"fitted": 0}
    mask, ident = ident["mask"], ident["values"]
    truth = np.array([[truths[i].continuous[n] for n in names] for i, *_ in rows])
    pred = np.array([[r.params.continuous[n] for n in names] for _, r, *_ in rows])
    group_names = sorted(set(groups))
    per_group = {}
    for group in group_names:
        cols = np.array([g == group for g in groups]) & mask
        if cols.any():
            per_group[group] = {"r2": r_squared(truth[:, cols], pred[:, cols], centre), "sliders": int(cols.sum())}
    accuracy = {s.name: float(np.mean([r.params.discrete[s.name] == truths[i].discrete[s.name]
                                       for i, r, *_ in rows])) for s in spec.discrete}
    return {
        "fitted": len(rows),
        "r2_identifiable": r_squared(truth[:, mask], pred[:, mask], centre),
        "r2_all_sliders": r_squared(truth, pred, centre),
        # how recovery falls with identifiability (the threshold is a choice: these show its effect)
        "r2_by_identifiability": {f">={band:g}": r_squared(truth[:, ident >= band], pred[:, ident >= band], centre)
                                  for band in IDENTIFIABILITY_BANDS if (ident >= band).any()},
        "r2_per_group": per_group,
        "mean_abs_error_identifiable": float(np.abs(pred - truth)[:, mask].mean()) if mask.any() else math.nan,
        "discrete_accuracy": accuracy,
        "landmark_nme_mean": _mean([row[3] for row in rows]),
        "fit_seconds_mean": _mean([row[2] for row in rows]),
    }


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else math.nan
