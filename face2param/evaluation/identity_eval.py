"""How well the identity embedding separates people: a folder with one subfolder per person.

Every image is analysed (`analyse_face`, colours skipped); genuine pairs (same subfolder) and
impostor pairs (different subfolders) are compared with dlib's Euclidean distance. Reported:
distance statistics, ROC AUC (probability a genuine pair is closer than an impostor pair),
accuracy at dlib's 0.6 threshold, the best single threshold and d' (separation in pooled SDs).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarclip_core.errors import UserInputError
from face2param.faces.analysis import FaceAnalysisConfig, analyse_face
from face2param.faces.identity import DLIB_SAME_PERSON_DISTANCE, identity_distance

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class IdentitySeparation:
    people: int
    images: int
    failed: dict[str, str]  # image path -> why it has no embedding
    genuine_pairs: int
    impostor_pairs: int
    genuine_distance: dict[str, float] = field(default_factory=dict)  # mean/min/max
    impostor_distance: dict[str, float] = field(default_factory=dict)
    roc_auc: float = float("nan")
    accuracy_at_dlib_threshold: float = float("nan")
    best_threshold: float = float("nan")
    best_accuracy: float = float("nan")
    d_prime: float = float("nan")


def identity_separation(folder: str | Path,
                        config: FaceAnalysisConfig | None = None) -> IdentitySeparation:
    folder = Path(folder)
    people = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if len(people) < 2:
        raise UserInputError(
            f"{folder} needs at least two subfolders (one per person) of face photos")
    config = config or FaceAnalysisConfig(compute_regions=False)
    embeddings: list[tuple[str, np.ndarray]] = []
    failed: dict[str, str] = {}
    count = 0
    for person in people:
        for path in sorted(person.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            count += 1
            try:
                embeddings.append((person.name, analyse_face(path, config).embedding))
            except UserInputError as exc:
                failed[str(path)] = str(exc)
    genuine, impostor = [], []
    for (name_a, a), (name_b, b) in itertools.combinations(embeddings, 2):
        (genuine if name_a == name_b else impostor).append(identity_distance(a, b))
    return separation_from_distances(genuine, impostor, len(people), count, failed)


def separation_from_distances(genuine: list[float], impostor: list[float], people: int, images: int,
                              failed: dict[str, str] | None = None) -> IdentitySeparation:
    """The statistics of same-person (genuine) and different-person (impostor) pair distances."""
    result = IdentitySeparation(people, images, failed or {}, len(genuine), len(impostor))
    if genuine:
        result.genuine_distance = _stats(genuine)
    if impostor:
        result.impostor_distance = _stats(impostor)
    if genuine and impostor:
        _separation(np.array(genuine), np.array(impostor), result)
    return result


def _stats(values) -> dict[str, float]:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


def _separation(genuine: np.ndarray, impostor: np.ndarray, out: IdentitySeparation) -> None:
    # AUC: P(genuine distance < impostor distance), ties count half
    less = (genuine[:, None] < impostor[None, :]).mean()
    ties = (genuine[:, None] == impostor[None, :]).mean()
    out.roc_auc = float(less + 0.5 * ties)
    total = len(genuine) + len(impostor)

    def accuracy(threshold: float) -> float:
        return float(((genuine < threshold).sum() + (impostor >= threshold).sum()) / total)

    out.accuracy_at_dlib_threshold = accuracy(DLIB_SAME_PERSON_DISTANCE)
    candidates = np.unique(np.concatenate([genuine, impostor]))
    thresholds = np.concatenate([candidates + 1e-9, [0.0]])
    accuracies = [accuracy(t) for t in thresholds]
    best = int(np.argmax(accuracies))
    out.best_threshold, out.best_accuracy = float(thresholds[best]), float(accuracies[best])
    pooled = np.sqrt((genuine.var() + impostor.var()) / 2)
    out.d_prime = float((impostor.mean() - genuine.mean()) / pooled) if pooled > 0 else float("inf")
