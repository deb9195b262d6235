"""Engine samples the translator T is trained and measured on (SwiftAvatar-style synthetic pairs).

Parameters x are drawn around the average face (TrainConfig.sample_spread, clipped to [0, 1]), colour
slots uniformly; the engine gives their landmarks (batched additive table, no rendering) and the skin
and hair colours sampled from small renders the way the fitting samples a photo. The identity feature
is the photo path's own: dlib's 68-point predictor and 128-d descriptor on a render of each sample (the
slow part, ~0.1-0.3 s a sample on one core), cached on disk under the data folder keyed by the samples
and the engine, so retraining with other network or loss settings is cheap."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avatarclip_core.errors import UserInputError

from face2param.methods.iterative import EngineFaceModel
from face2param.methods.losses import sample_face_colours
from face2param.translator.model import COLOUR_KEYS, SLOT_OF_COLOUR

LANDMARK_SIZE = 256  # pixel frame of the training landmarks (features are scale free)
COLOUR_RENDER_SIZE = 64
SCHEMES = ("ibug68", "mediapipe478")
CACHE_NAME = "face2param_translator"  # $AVATAR_DATA_DIR/cache/<this>


def sample_parameters(spec, mean: torch.Tensor, count: int, spread: float, generator: torch.Generator):
    """(count, N) sliders uniform in mean +- spread (clipped) and slot -> (count,) option indices (colour
    slots uniform, the others at their defaults)."""
    u = torch.rand(count, mean.shape[0], generator=generator).to(mean.device)
    x = (mean + (2 * u - 1) * spread).clamp(0, 1)
    slots = {}
    for s in spec.discrete:
        if s.name in SLOT_OF_COLOUR.values():
            slots[s.name] = torch.randint(len(s.options), (count,), generator=generator).to(mean.device)
        else:
            slots[s.name] = torch.full((count,), s.options.index(s.default), device=mean.device)
    return x, slots


def slot_probabilities(spec, slots: dict, rows=slice(None)) -> dict[str, torch.Tensor]:
    return {s.name: F.one_hot(slots[s.name][rows], len(s.options)).float() for s in spec.discrete}


def engine_observations(model: EngineFaceModel, x: torch.Tensor, slots: dict, chunk: int = 128):
    """Landmarks (scheme -> (B, L, 2) at LANDMARK_SIZE px) and colours (key -> (B, 3)) of samples."""
    engine, spec = model.engine, model.spec
    landmarks = {s: [] for s in model.table.schemes}
    colours = {k: [] for k in COLOUR_KEYS}
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            xs = x[i:i + chunk]
            pts = model.landmarks(xs)
            for s in landmarks:
                landmarks[s].append(pts[s])
            images = engine.render_tensor(xs, slot_probabilities(spec, slots, slice(i, i + chunk)), COLOUR_RENDER_SIZE)
            sampled = sample_face_colours(images, pts["ibug68"] * (COLOUR_RENDER_SIZE / LANDMARK_SIZE))
            for k in COLOUR_KEYS:
                colours[k].append(sampled[k])
    return {s: torch.cat(v) for s, v in landmarks.items()}, {k: torch.cat(v) for k, v in colours.items()}


def render_embedding(image: np.ndarray, points_68: np.ndarray) -> np.ndarray:
    """(128,) dlib descriptor of a render the way the photo analysis computes it: dlib's predictor in
    the box dlib would give (found from the given points), then the descriptor on its 68 points."""
    from face2param.faces.identity import dlib_embedding
    from face2param.faces.landmarks import dlib_landmarks_68, dlib_predictor_box

    box = dlib_predictor_box(image, points_68)
    return dlib_embedding(image, dlib_landmarks_68(image, box), box)


def _cache_key(engine, x: torch.Tensor, slots: dict, size: int) -> str:
    """The samples, the size and a probe render of the average face (what the cached features depend
    on: not the engine's landmark tables, so a landmark calibration keeps the cache)."""
    digest = hashlib.sha256()
    spec = engine.spec
    mean = spec.defaults().continuous_vector(spec, engine.device)[None]
    with torch.no_grad():
        probe = engine.render_tensor(mean, {k: v[None] for k, v in spec.defaults().discrete_one_hot(spec, engine.device).items()}, 32)
    digest.update(np.round(probe.cpu().numpy(), 3).tobytes())
    digest.update(x.detach().cpu().numpy().astype(np.float32).tobytes())
    for name in sorted(slots):
        digest.update(name.encode() + slots[name].cpu().numpy().astype(np.int64).tobytes())
    digest.update(str(size).encode())
    return digest.hexdigest()[:24]


def identity_embeddings(model: EngineFaceModel, x: torch.Tensor, slots: dict, size: int,
                        cache_folder: Path | None = None, chunk: int = 32, progress=None) -> torch.Tensor:
    """(B, 128) dlib descriptors of the samples' renders at `size` px, cached in cache_folder (None: no
    cache). The render's own detection decides the descriptor; the engine's landmarks only place the box."""
    from face2param.methods.fit import as_numpy_image

    engine = model.engine
    path = None
    if cache_folder is not None:
        path = Path(cache_folder) / f"embeddings_{_cache_key(engine, x, slots, size)}.npy"
        if path.is_file():
            return torch.as_tensor(np.load(path), dtype=torch.float32, device=x.device)
    out = np.zeros((x.shape[0], 128), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            rows = slice(i, i + chunk)
            images = engine.render_tensor(x[rows], slot_probabilities(model.spec, slots, rows), size)
            points = engine.project_landmarks(engine.landmarks_tensor(x[rows], "ibug68"), size).cpu().numpy()
            for j in range(images.shape[0]):
                out[i + j] = render_embedding(as_numpy_image(images[j].permute(1, 2, 0)), points[j])
            if progress:
                progress(min(i + chunk, x.shape[0]) / x.shape[0])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out)
    return torch.as_tensor(out, device=x.device)


def _missing_as_none(value: np.ndarray) -> np.ndarray | None:
    return None if np.isnan(value).all() else value


def analysed_render_targets(engine, x: torch.Tensor, slots: dict, size: int, config,
                            cache_folder: Path | None = None) -> list:
    """FitTargets of the samples' renders at `size` px through the real face analysis (what a photo
    of the avatar would give), None where the detectors miss; cached like `identity_embeddings`."""
    from face2param.faces.analysis import analyse_face
    from face2param.methods.fit import as_numpy_image
    from face2param.methods.target import FitTarget, target_from_analysis

    path = None
    if cache_folder is not None:
        path = Path(cache_folder) / f"analysed_{_cache_key(engine, x, slots, size)}.npz"
        if path.is_file():
            z = np.load(path)
            return [FitTarget(z["lm68"][i], z["lm478"][i], *(_missing_as_none(z[k][i]) for k in ("skin", "hair", "eyes", "embedding")),
                              face_px=float(z["face_px"][i])) if z["ok"][i] else None for i in range(len(z["ok"]))]
    targets = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            rows = slice(i, i + 1)
            image = as_numpy_image(engine.render_tensor(x[rows], slot_probabilities(engine.spec, slots, rows), size)[0]
                                   .permute(1, 2, 0))
            try:
                targets.append(target_from_analysis(analyse_face(image, config.faces)))
            except UserInputError:  # the detectors missed this render: it is left out
                targets.append(None)
    if path is not None:
        def stack(name, shape):
            return np.stack([np.full(shape, np.nan) if t is None or getattr(t, name) is None
                             else np.asarray(getattr(t, name), dtype=np.float64) for t in targets])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, ok=np.array([t is not None for t in targets]), lm68=stack("landmarks_68", (68, 2)),
                 lm478=stack("landmarks_478", (478, 3)), skin=stack("skin", 3), hair=stack("hair", 3),
                 eyes=stack("eyes", 3), embedding=stack("embedding", 128),
                 face_px=np.array([0.0 if t is None else t.face_px for t in targets]))
    return targets
