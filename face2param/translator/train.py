"""Self-supervised training of the translator T on engine samples (SwiftAvatar-style synthetic pairs).

Parameters x are drawn around the average face (TrainConfig.sample_spread, clipped to [0, 1]), colour
slots uniformly; the engine gives their landmarks (batched additive table, no rendering) and the skin
and hair colours sampled from small renders the way the fitting samples a photo. T is trained with the
parameter loss |T(f(x)) - x|, the loopback loss (TPAMI Eq. 7: the landmarks of T's output against the
input landmarks, similarity-aligned, in eye distances) and cross-entropy on the colour slots.
The facial prior (Eq. 11-12) uses the principal directions of the samples as the landmarks see them:
the leading eigenvectors of the landmark Gauss-Newton matrix at the mean (slider combinations the
landmarks cannot tell apart collapse onto one direction, so T never has to guess between them)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from face2param.config import Face2ParamConfig
from face2param.methods.iterative import EngineFaceModel, _without_similarity
from face2param.methods.losses import aligned_landmark_error, eye_distance, sample_face_colours
from face2param.translator.model import (COLOUR_KEYS, SLOT_OF_COLOUR, TranslatorNet, face_features,
                                         normalised_reference, save_translator)

LANDMARK_SIZE = 256  # pixel frame of the training landmarks (features are scale free)
COLOUR_RENDER_SIZE = 64
DENSE_WEIGHT = 0.5  # 478-point term relative to the 68 points (as IterativeConfig.dense_landmark_weight)
SCHEMES = ("ibug68", "mediapipe478")
# input jitter (in eye distances) standing in for a detector's error on photos (T learns to denoise);
# off in the shipped preview: 0.02 with a contended 6-epoch run did worse on the astronaut (0.056 vs 0.046)
LANDMARK_NOISE = 0.0


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
            probs = {s.name: F.one_hot(slots[s.name][i:i + chunk], len(s.options)).float() for s in spec.discrete}
            images = engine.render_tensor(xs, probs, COLOUR_RENDER_SIZE)
            sampled = sample_face_colours(images, pts["ibug68"] * (COLOUR_RENDER_SIZE / LANDMARK_SIZE))
            for k in COLOUR_KEYS:
                colours[k].append(sampled[k])
    return {s: torch.cat(v) for s, v in landmarks.items()}, {k: torch.cat(v) for k, v in colours.items()}


def prior_components(model: EngineFaceModel, mean: torch.Tensor, count: int) -> torch.Tensor:
    """(count, N) leading eigenvectors of the landmark Gauss-Newton matrix at the mean (Eq. 11-12)."""
    if count <= 0:
        return torch.zeros(0, mean.shape[0], device=mean.device)
    jac = model.jacobian(mean[None])
    pts = model.landmarks(mean[None])
    unit = eye_distance(pts["ibug68"])[0]
    weights = {"ibug68": 1.0, "mediapipe478": DENSE_WEIGHT}
    H = torch.zeros(mean.shape[0], mean.shape[0], dtype=torch.float64, device=mean.device)
    for s, J in jac.items():
        Jf = (_without_similarity(J[0], pts[s][0]) / unit).double()
        H += weights[s] / (Jf.shape[1] // 2) * Jf @ Jf.T
    _, vectors = torch.linalg.eigh(H)
    return vectors[:, -count:].flip(1).T.float().contiguous()


def loopback_loss(model: EngineFaceModel, x_hat: torch.Tensor, landmarks: dict) -> torch.Tensor:
    """(B,) Eq. 7 on landmarks: T's output through the engine vs the input, squared NME."""
    pred = model.landmarks(x_hat)
    unit = eye_distance(pred["ibug68"]).detach()
    loss = aligned_landmark_error(pred["ibug68"], landmarks["ibug68"], unit)
    if "mediapipe478" in pred:
        loss = loss + DENSE_WEIGHT * aligned_landmark_error(pred["mediapipe478"], landmarks["mediapipe478"], unit)
    return loss


def _jittered_features(landmarks, colours, b, references, fallback, generator):
    """Features of batch b with Gaussian landmark noise of LANDMARK_NOISE eye distances."""
    eye_px = eye_distance(landmarks["ibug68"][b])[:, None, None]
    noisy = {s: v[b] + LANDMARK_NOISE * eye_px * torch.randn(v[b].shape, generator=generator).to(v.device)
             for s, v in landmarks.items()}
    return face_features(noisy, {k: v[b] for k, v in colours.items()}, references, fallback)


def landmark_nme(model: EngineFaceModel, x: torch.Tensor, landmarks: dict) -> torch.Tensor:
    """(B,) mean 68-point distance in eye distances (the evaluation's NME)."""
    with torch.no_grad():
        return aligned_landmark_error(model.landmarks(x)["ibug68"], landmarks["ibug68"], squared=False)


def train_translator(config: Face2ParamConfig | None = None, out_dir: Path | str | None = None,
                     progress=None, time_budget_s: float = 240.0) -> Path:
    """Train T on engine samples and write translator.pt, meta.json and metrics.json to out_dir
    (default: $AVATAR_DATA_DIR/face2param/translator, which fit_oneshot then prefers over the packaged
    preview artifact; `-o face2param/artifacts/preview` rebuilds that one). Returns the folder."""
    from face2param.methods.fit import load_engine
    from face2param.methods.oneshot import trained_artifact_dir

    config = config or Face2ParamConfig()
    tc, oc = config.train, config.oneshot
    out_dir = Path(out_dir) if out_dir else trained_artifact_dir()
    report = progress or (lambda stage, fraction, message="": None)
    started = time.perf_counter()
    engine = load_engine(config)
    device = torch.device(getattr(engine, "device", "cpu"))
    model = EngineFaceModel(engine, LANDMARK_SIZE, SCHEMES)
    spec = engine.spec
    mean = spec.defaults().continuous_vector(spec, device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)

    report("samples", 0.0, f"{tc.samples} engine samples")
    x, slots = sample_parameters(spec, mean, tc.samples, tc.sample_spread, generator)
    landmarks, colours = engine_observations(model, x, slots)
    defaults = spec.defaults()
    mean_obs = engine_observations(model, mean[None], {s.name: torch.tensor([s.options.index(defaults.discrete[s.name])], device=device) for s in spec.discrete})
    references = {s: normalised_reference(mean_obs[0][s][0]) for s in model.table.schemes}
    fallback = {k: mean_obs[1][k][0] for k in COLOUR_KEYS}
    features = face_features(landmarks, colours, references, fallback)

    report("train", 0.2, "translator")
    n_val = max(int(tc.samples * tc.validation_fraction), 1)
    train_idx, val_idx = torch.arange(n_val, tc.samples, device=device), torch.arange(n_val, device=device)
    slot_sizes = {name: len(spec.slot(name).options) for name in SLOT_OF_COLOUR.values()}
    net = TranslatorNet(features.shape[1], mean, prior_components(model, mean, oc.pca_components), slot_sizes, oc).to(device)
    net.feature_mean.copy_(features[train_idx].mean(0))
    net.feature_std.copy_(features[train_idx].std(0).clamp_min(1e-6))
    optimiser = torch.optim.Adam(net.parameters(), lr=tc.learning_rate)
    steps = max(tc.epochs * (len(train_idx) // tc.batch_size), 1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    train_start, epochs_run = time.perf_counter(), 0
    for epoch in range(tc.epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
        for i in range(0, len(order) - tc.batch_size + 1, tc.batch_size):
            b = order[i:i + tc.batch_size]
            x_hat, logits = net(_jittered_features(landmarks, colours, b, references, fallback, generator)
                                if LANDMARK_NOISE > 0 else features[b])
            loss = tc.parameter_weight * (x_hat - x[b]).abs().mean(-1)
            loss = loss + tc.loopback_weight * loopback_loss(model, x_hat, {s: v[b] for s, v in landmarks.items()})
            for name, z in logits.items():
                loss = loss + F.cross_entropy(z, slots[name][b], reduction="none")
            optimiser.zero_grad()
            loss.mean().backward()
            optimiser.step()
            schedule.step()
        epochs_run = epoch + 1
        report("train", 0.2 + 0.75 * epochs_run / tc.epochs, f"epoch {epochs_run}: loss {float(loss.detach().mean()):.4g}")
        if time.perf_counter() - started > time_budget_s:
            break

    net.eval()
    with torch.no_grad():
        x_val, logits = net(features[val_idx])
        val_lm = {s: v[val_idx] for s, v in landmarks.items()}
        nme_t = landmark_nme(model, x_val, val_lm)
        nme_mean = landmark_nme(model, mean.expand(n_val, -1), val_lm)
        accuracy = {k: float((z.argmax(-1) == slots[k][val_idx]).float().mean()) for k, z in logits.items()}
    metrics = {"heldout_samples": n_val, "nme_translator": float(nme_t.mean()), "nme_mean_face": float(nme_mean.mean()),
               "param_mae_translator": float((x_val - x[val_idx]).abs().mean()),
               "param_mae_mean_face": float((mean - x[val_idx]).abs().mean()),
               "slot_accuracy": accuracy, "epochs_run": epochs_run,
               "train_seconds": round(time.perf_counter() - train_start, 1),
               "total_seconds": round(time.perf_counter() - started, 1)}
    meta = {"oneshot": asdict(oc), "train": asdict(tc), "seed": config.seed, "engine": "anny_face",
            "landmark_noise": LANDMARK_NOISE,
            "continuous_names": spec.continuous_names, "slots": slot_sizes,
            "slot_options": {k: list(spec.slot(k).options) for k in slot_sizes},
            "colour_slots": dict(SLOT_OF_COLOUR),
            "references": {s: r.cpu().tolist() for s, r in references.items()},
            "mean_colours": {k: v.cpu().tolist() for k, v in fallback.items()}, "metrics": metrics}
    save_translator(net, out_dir, meta)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    report("train", 1.0, f"held-out NME {metrics['nme_translator']:.4f} (mean face {metrics['nme_mean_face']:.4f})")
    return out_dir
