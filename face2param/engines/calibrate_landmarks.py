"""Build, measure and refit the landmark calibration (landmark_calibration.py) of the Anny engine.

A calibration set is N engine faces (sliders uniform in default +- spread, clipped; every discrete
slot uniform, as photos vary in hair, beards and glasses) rendered at 512 px and analysed by
`faces.analysis.analyse_face`, the photo path. Sets are cached under
$AVATAR_DATA_DIR/cache/face2param_landmark_calibration (the detections do not depend on the tables; a
set's name carries a hash of the code and library versions they do depend on).
Run:  python -m face2param.engines.landmarks calibrate   (see landmarks.py for the options)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .landmark_calibration import CALIBRATION_SIZE

SPREAD = 0.35  # as the translator's training samples (TrainConfig.sample_spread)
IBUG_GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
               "mouth": range(48, 68)}


def mediapipe_groups() -> dict[str, list[int]]:
    """Mediapipe's own index sets per face part (its FACEMESH_* connections); the rest is 'other'."""
    from mediapipe.python.solutions import face_mesh_connections as c

    def ids(*sets):
        return sorted({i for s in sets for edge in s for i in edge})

    groups = {"jaw": ids(c.FACEMESH_FACE_OVAL), "brows": ids(c.FACEMESH_LEFT_EYEBROW, c.FACEMESH_RIGHT_EYEBROW),
              "nose": ids(c.FACEMESH_NOSE), "eyes": ids(c.FACEMESH_LEFT_EYE, c.FACEMESH_RIGHT_EYE, c.FACEMESH_IRISES),
              "mouth": ids(c.FACEMESH_LIPS)}
    named = {i for g in groups.values() for i in g}
    groups["other"] = [i for i in range(478) if i not in named]
    return groups


SLOT_POLICIES = ("random", "bare")  # bare: default hair and brows, no beard or glasses; colours random
COLOUR_SLOTS = ("skin_tone", "hair_colour", "eye_colour")


def cache_path(count: int, seed: int, spread: float, slots: str = "random") -> Path:
    """The set's file: its name says what was asked for and carries `_code_digest()`, so a change to the
    renders or the analysis makes a new set instead of reading detections the code no longer gives."""
    from avatarclip_core.paths import cache_dir

    suffix = "" if slots == "random" else f"_{slots}"
    return (cache_dir("face2param_landmark_calibration")
            / f"set_n{count}_seed{seed}_spread{spread:g}{suffix}_{_code_digest()}.npz")


def _code_digest() -> str:
    """A hash of what a set's detections come from: this module (the sampling), the engine's head and
    renderer, the face analysis and the versions of the libraries under them."""
    from avatarclip_core import render
    from avatarclip_core.provenance import installed_versions
    from avatarclip_core.tensor_cache import Digest
    from face2param import faces
    from face2param.engines import anny_engine, head

    versions = installed_versions(("anny", "mediapipe", "dlib-bin", "opencv-python-headless", "numpy", "torch"))
    code = ([Path(__file__), Path(anny_engine.__file__), Path(head.__file__)]
            + sorted(Path(faces.__file__).parent.glob("*.py")) + sorted(Path(render.__file__).parent.glob("*.py")))
    return Digest(repr(sorted(versions.items()))).files(code).hexdigest(12)


def sample_faces(engine, count: int, seed: int, spread: float = SPREAD, slots: str = "random"):
    """(count, N) sliders and (count, slots) option indices (spec order)."""
    rng = np.random.default_rng(seed)
    spec = engine.spec
    mean = engine.spec.defaults().continuous_vector(spec).numpy()
    x = np.clip(mean + rng.uniform(-spread, spread, (count, len(mean))), 0, 1).astype(np.float32)
    options = np.stack([rng.integers(len(s.options), size=count) for s in spec.discrete], 1)
    if slots == "bare":
        for j, s in enumerate(spec.discrete):
            if s.name not in COLOUR_SLOTS:
                options[:, j] = s.options.index("none" if "none" in s.options else s.default)
    return x, options


def analyse_renders(engine, x: np.ndarray, slots: np.ndarray, batch: int = 8, progress=None) -> dict:
    """Render faces (x, slot indices) at CALIBRATION_SIZE and analyse them; keys x, slots, ibug68
    (n, 68, 2), mediapipe478 (n, 478, 2) for the faces the analysis found (failures are dropped)."""
    from avatarclip_core.errors import UserInputError
    from face2param.faces.analysis import FaceAnalysisConfig, analyse_face

    spec, config = engine.spec, FaceAnalysisConfig(compute_embedding=False, compute_regions=False)
    keep, found68, found478 = [], [], []
    started = time.perf_counter()
    for i in range(0, len(x), batch):
        xs = torch.as_tensor(x[i:i + batch], device=engine.device)
        probs = {s.name: torch.nn.functional.one_hot(torch.as_tensor(slots[i:i + batch, j], device=engine.device),
                                                     len(s.options)).float() for j, s in enumerate(spec.discrete)}
        with torch.no_grad():
            images = engine.render_tensor(xs, probs, CALIBRATION_SIZE).permute(0, 2, 3, 1).clamp(0, 1)
        for k, image in enumerate((images.cpu().numpy() * 255 + 0.5).astype(np.uint8)):
            try:
                analysis = analyse_face(image, config)
            except UserInputError:
                continue
            keep.append(i + k)
            found68.append(analysis.landmarks_68[:, :2])
            found478.append(analysis.landmarks_478[:, :2])
        if progress and (i // batch) % 10 == 0:
            progress(f"calibration set: {i + len(xs)}/{len(x)} faces, {time.perf_counter() - started:.0f} s")
    return {"x": x[keep], "slots": slots[keep], "ibug68": np.stack(found68).astype(np.float32),
            "mediapipe478": np.stack(found478).astype(np.float32)}


def collect(engine, count: int, seed: int, spread: float = SPREAD, slots: str = "random", progress=print) -> dict:
    """`analyse_renders` of `count` sampled faces, cached (plus 'requested': the count asked for)."""
    path = cache_path(count, seed, spread, slots)
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    data = analyse_renders(engine, *sample_faces(engine, count, seed, spread, slots), progress=progress)
    data["requested"] = np.int32(count)
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, **data)
    partial.replace(path)  # a concurrent reader never sees half a file
    return data


def agreement(engine, data: dict, calibrated: bool = True) -> dict:
    """Engine landmarks vs the detections: scheme -> group -> mean NME (detections similarity-aligned
    onto the engine's points, in the engine's 68-point eye distances), plus 'all' and per-face NMEs."""
    from face2param.methods.losses import eye_distance, similarity_fit

    x = torch.as_tensor(data["x"], device=engine.device)
    points = engine.landmarks_tensor if calibrated else engine.uncalibrated_landmarks_tensor
    out = {}
    with torch.no_grad():
        pred = {s: engine.project_landmarks(points(x, s), CALIBRATION_SIZE).cpu() for s in ("ibug68", "mediapipe478")}
        unit = eye_distance(pred["ibug68"])
        for scheme, groups in (("ibug68", IBUG_GROUPS), ("mediapipe478", mediapipe_groups())):
            moved = similarity_fit(torch.as_tensor(data[scheme]), pred[scheme])
            dist = (moved - pred[scheme]).norm(dim=-1) / unit[:, None]  # (n, L)
            scores = {g: float(dist[:, list(ids)].mean()) for g, ids in groups.items()}
            scores["all"] = float(dist.mean())
            scores["per_face"] = dist.mean(1).numpy()
            out[scheme] = scores
    return out


def split(data: dict, heldout_fraction: float) -> tuple[dict, dict]:
    """(fit, held-out) by position: the samples are i.i.d., the tail is held out."""
    n = len(data["x"])
    cut = n - max(int(round(n * heldout_fraction)), 1)
    per_face = ("x", "slots", "ibug68", "mediapipe478")
    return ({k: data[k][:cut] for k in per_face}, {k: data[k][cut:] for k in per_face})


RIDGES = (0.03, 0.1, 0.3, 1.0)  # relative to the mean feature variance


def choose_ridge(engine, fit_set: dict, ridges=RIDGES, fit_offset: bool = False) -> tuple[float, dict]:
    """The ridge with the lowest mean NME (both schemes) on the last fifth of the fit set."""
    from .landmark_calibration import corrections_applied, fit_corrections

    inner, check = split(fit_set, 0.2)
    scores = {}
    for ridge in ridges:
        with corrections_applied(engine, fit_corrections(engine, inner, ridge, fit_offset)):
            result = agreement(engine, check)
        scores[ridge] = result["ibug68"]["all"] + result["mediapipe478"]["all"]
    return min(scores, key=scores.get), scores


def restrict_to_groups(corrections: dict, groups: tuple[str, ...]) -> dict:
    """Zero the correction outside the named groups (e.g. ('jaw',): only the contour points slide)."""
    members = {"ibug68": IBUG_GROUPS, "mediapipe478": mediapipe_groups()}
    out = {}
    for scheme, arrays in corrections.items():
        keep = np.zeros(arrays["weights"].shape[1], bool)
        for g in groups:
            keep[list(members[scheme][g])] = True
        out[scheme] = {k: np.where(keep[:, None] if k == "offset" else keep[None, :, None], v, 0).astype(v.dtype)
                       for k, v in arrays.items()}
    return out


def calibrate(engine, path: Path, count: int = 2000, seed: int = 0, heldout_fraction: float = 0.2,
              ridge: float | None = None, fit_offset: bool = False, groups: tuple[str, ...] | None = None,
              progress=print) -> dict:
    """Collect (or load) a calibration set, fit on all but the held-out tail, write the correction
    into the tables' npz at `path`; returns held-out agreement before and after, per scheme and group.
    No offset by default: on 2000 faces a fitted constant changed the held-out NME by < 0.0003, and
    without it the mean face keeps exactly the table's points (the detections there)."""
    from .landmark_calibration import corrections_applied, fit_corrections, save_corrections

    data = collect(engine, count, seed, progress=progress)
    fit_set, heldout = split(data, heldout_fraction)
    scores = {}
    if ridge is None:
        ridge, scores = choose_ridge(engine, fit_set, fit_offset=fit_offset)
    corrections = fit_corrections(engine, fit_set, ridge, fit_offset)
    if groups:
        corrections = restrict_to_groups(corrections, groups)
    before = agreement(engine, heldout, calibrated=False)
    with corrections_applied(engine, corrections):
        after = agreement(engine, heldout)
        mean = engine.spec.defaults().continuous_vector(engine.spec, engine.device)[None]
        at_mean = {s: float((engine.project_landmarks(engine.landmarks_tensor(mean, s), CALIBRATION_SIZE)
                             - engine.project_landmarks(engine.uncalibrated_landmarks_tensor(mean, s),
                                                        CALIBRATION_SIZE)).norm(dim=-1).mean()) for s in corrections}
    save_corrections(path, corrections, {"count": count, "seed": seed, "spread": SPREAD, "ridge": ridge,
                                         "fit_faces": len(fit_set["x"]), "heldout_faces": len(heldout["x"]),
                                         "groups": list(groups or ["all"])})

    def summary(result):
        return {s: {g: round(v, 5) for g, v in groups.items() if g != "per_face"} for s, groups in result.items()}

    return {"faces": len(data["x"]), "requested": int(data["requested"]), "fit_faces": len(fit_set["x"]),
            "heldout_faces": len(heldout["x"]), "ridge": ridge, "groups": list(groups or ["all"]), "ridge_scores": scores,
            "correction_at_mean_face_px": at_mean, "heldout_before": summary(before), "heldout_after": summary(after)}
