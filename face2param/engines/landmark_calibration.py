"""Calibration of the engine's landmark tables against the real face analysis, across slider settings.

The tables (landmarks.py) are surface points cast from detections on the mean face. Detectors do not
track fixed surface points: jaw points slide along the silhouette, brows and lips follow appearance.
So away from the mean face the table points drift from what dlib / mediapipe report on the engine's
own render. The correction models that drift as an additive, piecewise-linear function of the sliders
(the same shape as the head itself, kinked at the mean on each slider's +/- side):

    landmark(x) = table(x) + c + sum_j [u_j W+_j + |u_j'| W|_j],   u_j = x_j - default_j

fitted by ridge least squares on renders analysed by `faces.analysis.analyse_face` (the photo path).
It is cheap and differentiable, additive per slider (so `methods.surrogate.AdditiveLandmarks` tabulates
it exactly: the kinks sit on its knots) and moves points in the camera's image plane only.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CALIBRATION_SIZE = 512  # render size of the calibration set (the face spans ~230 px, like a photo)
KNOTS = 9  # AdditiveLandmarks' default knots: each feature's kink must sit on one of them
WEIGHTS, OFFSET = "_calib_weights", "_calib_offset"  # npz key suffixes after the scheme name


def kinks(head) -> torch.Tensor:
    """(N,) where each parameter's correction may bend: 0.5 for sliders (Anny's +/- sides), the
    knot nearest the default for phenotypes (their tables are tabulated at these knots)."""
    defaults = torch.tensor(list(head.phenotype_defaults) + [0.5] * len(head.slider_labels))
    return (defaults * (KNOTS - 1)).round() / (KNOTS - 1)


def defaults_vector(head) -> torch.Tensor:
    return torch.tensor(list(head.phenotype_defaults) + [0.5] * len(head.slider_labels))


def calibration_features(x: torch.Tensor, defaults: torch.Tensor, kink: torch.Tensor) -> torch.Tensor:
    """(B, N) parameters -> (B, 2N) features [x - d, |x - k| - |d - k|], zero at the defaults d."""
    d, k = defaults.to(x), kink.to(x)
    return torch.cat([x - d, (x - k).abs() - (d - k).abs()], 1)


@dataclass
class LandmarkCorrection:
    """offset (L, 3) + features (B, 2N) @ weights (2N, L, 3): metres in world space."""

    offset: torch.Tensor
    weights: torch.Tensor
    defaults: torch.Tensor
    kink: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        F, L, _ = self.weights.shape
        phi = calibration_features(x, self.defaults, self.kink)
        return self.offset + (phi @ self.weights.reshape(F, L * 3)).view(-1, L, 3)

    def to(self, device) -> "LandmarkCorrection":
        return LandmarkCorrection(*(t.to(device) for t in (self.offset, self.weights, self.defaults, self.kink)))


def corrections_from_arrays(head, arrays: dict) -> dict[str, LandmarkCorrection]:
    """scheme -> {"offset": (L, 3), "weights": (2N, L, 3)} arrays -> corrections on the head's device."""
    out = {}
    for scheme, a in arrays.items():
        weights = torch.as_tensor(np.asarray(a["weights"], dtype=np.float32))
        if weights.shape[0] != 2 * head.num_params:
            raise RuntimeError(f"landmark calibration {scheme} was fitted for another parameter set: "
                               "rerun python -m face2param.engines.landmarks calibrate")
        offset = torch.as_tensor(np.asarray(a["offset"], dtype=np.float32))
        out[scheme] = LandmarkCorrection(offset, weights, defaults_vector(head), kinks(head)).to(head.neutral.device)
    return out


def load_corrections(head, path: Path) -> dict[str, LandmarkCorrection]:
    """scheme -> correction from the tables' npz (empty when the file carries none)."""
    if not path.exists():
        return {}
    with np.load(path) as data:
        arrays = {key[: -len(WEIGHTS)]: {"weights": data[key], "offset": data[key[: -len(WEIGHTS)] + OFFSET]}
                  for key in data.files if key.endswith(WEIGHTS)}
    return corrections_from_arrays(head, arrays)


def save_corrections(path: Path, corrections: dict, meta: dict) -> None:
    """Add (replace) the corrections in the tables' npz, keeping the tables: weights as float16 (the
    largest is ~1e-3 m; float16 keeps ~1e-6 m, far below a pixel) to stay small in git."""
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files if not k.endswith((WEIGHTS, OFFSET, "_calib_meta"))}
    for scheme, a in corrections.items():
        kept[scheme + WEIGHTS] = a["weights"].astype(np.float16)
        kept[scheme + OFFSET] = a["offset"].astype(np.float32)
    kept["landmark_calib_meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **kept)


@contextmanager
def corrections_applied(engine, arrays: dict):
    """Temporarily give `engine` these corrections (fitting and measuring; not thread safe)."""
    saved = engine._landmark_corrections
    engine._landmark_corrections = corrections_from_arrays(engine.head, arrays)
    try:
        yield engine
    finally:
        engine._landmark_corrections = saved


def image_plane_basis(engine, points: torch.Tensor, size: int) -> torch.Tensor:
    """(L, 2, 3): per landmark, the world offsets that move its projection by +1 px in x and in y
    (inverse of the projection's Jacobian in the world x-y plane at the mean face)."""
    eps = 1e-4
    with torch.no_grad():
        here = engine.project_landmarks(points[None], size)[0]
        cols = []
        for axis in (0, 1):
            moved = points.clone()
            moved[:, axis] += eps
            cols.append((engine.project_landmarks(moved[None], size)[0] - here) / eps)  # (L, 2) px per metre
        jac = torch.stack(cols, -1)  # (L, 2 px, 2 world)
        inv = torch.linalg.inv(jac)  # (L, 2 world, 2 px)
    basis = torch.zeros(points.shape[0], 2, 3, device=points.device)
    basis[:, :, :2] = inv.transpose(1, 2)  # row p: the world offset of one pixel along p
    return basis


def fit_corrections(engine, data: dict, ridge: float, fit_offset: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Ridge least squares of (detections - uncalibrated engine landmarks) on the features; returns
    scheme -> {offset (L, 3), weights (2N, L, 3)} float32 arrays. `ridge` is relative to the mean
    feature variance (scale free). Without `fit_offset` the correction is zero at the mean face."""
    head, device = engine.head, engine.device
    x = torch.as_tensor(data["x"], dtype=torch.float32, device=device)
    phi = calibration_features(x, defaults_vector(head), kinks(head)).double()
    mean = engine.spec.defaults().continuous_vector(engine.spec, device)[None]
    n, F = phi.shape
    design = torch.cat([torch.ones(n, 1, dtype=phi.dtype, device=device), phi], 1) if fit_offset else phi
    gram = design.T @ design
    penalty = ridge * float(phi.pow(2).mean()) * n * torch.eye(design.shape[1], dtype=phi.dtype, device=device)
    if fit_offset:
        penalty[0, 0] = 0.0
    out = {}
    with torch.no_grad():
        for scheme in ("ibug68", "mediapipe478"):
            raw = engine.uncalibrated_landmarks_tensor(x, scheme)
            residual = torch.as_tensor(data[scheme], device=device) - engine.project_landmarks(raw, CALIBRATION_SIZE)
            coef = torch.linalg.solve(gram + penalty, design.T @ residual.reshape(n, -1).double())  # (D, L*2) px
            basis = image_plane_basis(engine, engine.uncalibrated_landmarks_tensor(mean, scheme)[0], CALIBRATION_SIZE)
            world = torch.einsum("dlp,lpk->dlk", coef.view(coef.shape[0], -1, 2).float(), basis)
            offset = world[0] if fit_offset else torch.zeros_like(world[0])
            out[scheme] = {"offset": offset.cpu().numpy(), "weights": world[int(fit_offset):].cpu().numpy()}
            assert out[scheme]["weights"].shape[0] == F
    return out
