"""The translator's facial prior (TPAMI 3.5, Eq. 11-12): T predicts K coefficients, not the N sliders.

`fits` (the paper's): run the iterative method on a set of faces, stack the fitted parameters into a
matrix, and take its mean m and the SVD whitening projection P (N, K): x_hat = P^T (x - m) (Eq. 11),
x* = (P P^T)^+ P x_hat* + m (Eq. 12; P P^T has rank K, so the inverse is the pseudo-inverse). Faces are
the photos of a folder when given, otherwise engine renders analysed by the real photo detectors.
`landmark`: the leading eigenvectors of the engine's landmark Gauss-Newton matrix at the average face
(what the landmarks can see), around the average face.
Both return (mean (N,), components (K, N)) with x = mean + coefficients @ components."""
from __future__ import annotations

from pathlib import Path

import torch

from avatarclip_core.errors import UserInputError
from face2param.methods.iterative import EngineFaceModel, _without_similarity, batch_target, search
from face2param.methods.losses import eye_distance

PRIORS = ("landmark", "fits")
DENSE_WEIGHT = 0.5  # 478-point term relative to the 68 points (as IterativeConfig.dense_landmark_weight)


class PriorFacesError(UserInputError):
    """The prior's photo folder gave too few analysable faces."""


def landmark_gauss_newton(model: EngineFaceModel, mean: torch.Tensor) -> torch.Tensor:
    """(N, N) float64 Gauss-Newton matrix of the landmark loss at the mean (similarity motions removed):
    (x - mean)^T H (x - mean) is about the loss of moving the face by x - mean."""
    jac = model.jacobian(mean[None])
    pts = model.landmarks(mean[None])
    unit = eye_distance(pts["ibug68"])[0]
    weights = {"ibug68": 1.0, "mediapipe478": DENSE_WEIGHT}
    H = torch.zeros(mean.shape[0], mean.shape[0], dtype=torch.float64, device=mean.device)
    for s, J in jac.items():
        Jf = (_without_similarity(J[0], pts[s][0]) / unit).double()
        H += weights[s] / (Jf.shape[1] // 2) * Jf @ Jf.T
    return H


def landmark_prior(model: EngineFaceModel, mean: torch.Tensor, count: int) -> torch.Tensor:
    """(count, N) leading eigenvectors of the landmark Gauss-Newton matrix at the mean."""
    if count <= 0:
        return torch.zeros(0, mean.shape[0], device=mean.device)
    _, vectors = torch.linalg.eigh(landmark_gauss_newton(model, mean))
    return vectors[:, -count:].flip(1).T.float().contiguous()


def whitening_projection(params: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, N) parameter matrix -> (m (N,), P (N, K)): the mean and the SVD whitening projection onto
    the K = min(count, rank) leading principal directions (Eq. 11 gives unit-variance coefficients)."""
    m = params.mean(0)
    centred = (params - m).double()
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    rank = int((s > s[0] * 1e-6).sum()) if s.numel() and s[0] > 0 else 0
    k = min(count, rank)
    std = s[:k] / max(params.shape[0] - 1, 1) ** 0.5
    P = vh[:k].T / std  # (N, K)
    return m, P.float()


def project(x: torch.Tensor, m: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Eq. 11: x_hat = P^T (x - m), (B, N) -> (B, K)."""
    return (x - m) @ P


def inverse_components(P: torch.Tensor) -> torch.Tensor:
    """(K, N) rows C with x* = m + x_hat @ C = (P P^T)^+ P x_hat + m (Eq. 12)."""
    P = P.double()  # in float32 the rounding of P P^T would add spurious tiny directions that pinv inverts
    return (torch.linalg.pinv(P @ P.T, hermitian=True) @ P).T.float().contiguous()


def photo_targets(folder: Path, config) -> list:
    """FitTargets of the analysable face photos in a folder (others are skipped)."""
    from face2param.evaluation.identity_eval import IMAGE_SUFFIXES
    from face2param.faces.analysis import analyse_face
    from face2param.faces.images import load_image
    from face2param.methods.target import target_from_analysis

    folder = Path(folder)
    if not folder.is_dir():
        raise PriorFacesError(f"--prior-photos {folder} is not a folder of face photos")
    targets = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            pixels = load_image(path)
            targets.append(target_from_analysis(analyse_face(pixels, config.faces), pixels))
        except UserInputError:  # not a face photo: the prior uses the others
            continue
    if len(targets) < 2:
        raise PriorFacesError(f"{folder} has {len(targets)} analysable face photo(s); the prior needs at least 2")
    return targets


def prior_search_config(config):
    """The iterative settings of the prior's fits: landmarks only (colours, slots and identity play no
    part in the sliders' prior)."""
    from dataclasses import replace

    return replace(config.iterative, relaxed_slots=(), color_weight=0.0, identity_weight=0.0)


def fitted_parameters(model: EngineFaceModel, targets: list, config, batch: int = 64) -> torch.Tensor:
    """(M, N) landmark-only iterative fits of the targets, from the average face."""
    iterative = prior_search_config(config)
    spec, device = model.spec, model.engine.device
    start = spec.defaults().continuous_vector(spec, device)
    out = []
    for i in range(0, len(targets), batch):
        chunk = targets[i:i + batch]
        result = search(model, batch_target(chunk, device), iterative, start.expand(len(chunk), -1).clone())
        out.append(result.continuous)
    return torch.cat(out)
