"""Self-supervised training of the translator T on engine samples (samples.py: parameters, landmarks,
colours and dlib identity descriptors of the engine's faces).

T is trained with the parameter loss |T(f(x)) - x|, the loopback loss (TPAMI Eq. 7: the landmarks of
T's output against the input landmarks, similarity-aligned, in eye distances) and cross-entropy on the
colour slots, predicting the coefficients of the facial prior (prior.py, Eq. 11-12). Held-out metrics
are measured twice: on the engine's exact landmarks and on renders through the real face analysis
(what a photo of the avatar would give)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig
from face2param.methods.iterative import EngineFaceModel
from face2param.methods.losses import aligned_landmark_error, eye_distance
from face2param.translator import prior as priors
from face2param.translator.model import (COLOUR_KEYS, SLOT_OF_COLOUR, TranslatorNet, colour_columns,
                                         face_features, features_from_targets, normalised_reference, save_translator)
from face2param.translator.samples import (CACHE_NAME, LANDMARK_SIZE, SCHEMES, analysed_render_targets,  # noqa: F401
                                           engine_observations, identity_embeddings, sample_parameters)

DENSE_WEIGHT = priors.DENSE_WEIGHT
# the colour-only slot head (model.py) learns 10x faster than the trunk: at the trunk's rate its ~800 steps
# underfit the 9 closely spaced skin tones (held-out 0.77 vs 1.0 at 10x; hair 0.88 vs 0.95, colour-only tests)
SLOT_HEAD_LR_SCALE = 10.0
ANALYSED_HELDOUT = 48  # held-out renders measured through the real face analysis (~0.3 s each, cached)


def loopback_loss(model: EngineFaceModel, x_hat: torch.Tensor, landmarks: dict) -> torch.Tensor:
    """(B,) Eq. 7 on landmarks: T's output through the engine vs the input, squared NME."""
    pred = model.landmarks(x_hat)
    unit = eye_distance(pred["ibug68"]).detach()
    loss = aligned_landmark_error(pred["ibug68"], landmarks["ibug68"], unit)
    if "mediapipe478" in pred:
        loss = loss + DENSE_WEIGHT * aligned_landmark_error(pred["mediapipe478"], landmarks["mediapipe478"], unit)
    return loss


def landmark_nme(model: EngineFaceModel, x: torch.Tensor, landmarks: dict) -> torch.Tensor:
    """(B,) mean 68-point distance in eye distances (the evaluation's NME)."""
    with torch.no_grad():
        return aligned_landmark_error(model.landmarks(x)["ibug68"], landmarks["ibug68"], squared=False)


def check_prior_settings(config: Face2ParamConfig) -> None:
    """Bad prior settings fail before any sample is computed (and never get silently ignored)."""
    oc, tc = config.oneshot, config.train
    if oc.prior not in priors.PRIORS:
        raise UserInputError(f"unknown oneshot.prior {oc.prior!r}; choose one of {', '.join(priors.PRIORS)}")
    if tc.prior_photos and oc.prior != "fits":
        raise UserInputError(f"train.prior_photos is read only by the fits prior: add --set oneshot.prior=fits "
                             f"(oneshot.prior is {oc.prior!r})")


def build_prior(config: Face2ParamConfig, model: EngineFaceModel, mean: torch.Tensor, cache) -> tuple:
    """(param_mean (N,), components (K, N), description) of OneShotConfig.prior."""
    oc, tc = config.oneshot, config.train
    check_prior_settings(config)
    if oc.prior == "landmark" or oc.pca_components <= 0:
        return mean, priors.landmark_prior(model, mean, oc.pca_components), {"prior": "landmark"}
    if tc.prior_photos:
        targets, source = priors.photo_targets(Path(tc.prior_photos), config), f"photos in {tc.prior_photos}"
    else:
        generator = torch.Generator().manual_seed(config.seed + 1)  # faces apart from the training samples
        xp, sp = sample_parameters(model.spec, mean, tc.prior_fits, tc.sample_spread, generator)
        found = analysed_render_targets(model.engine, xp, sp, tc.prior_render_size, config, cache)
        targets, source = [t for t in found if t is not None], f"{tc.prior_fits} engine renders, analysed"
    fitted = _cached_fits(model, targets, config, cache)
    m, P = priors.whitening_projection(fitted, oc.pca_components)
    centred = fitted - m
    kept = priors.project(fitted, m, P) @ priors.inverse_components(P)
    energy = float(1 - ((centred - kept) ** 2).sum() / (centred ** 2).sum().clamp_min(1e-12))
    return m, priors.inverse_components(P), {"prior": "fits", "faces": len(targets), "source": source,
                                             "components": P.shape[1], "energy_kept": round(energy, 4)}


def _cached_fits(model: EngineFaceModel, targets: list, config: Face2ParamConfig, cache: Path) -> torch.Tensor:
    """priors.fitted_parameters, cached per targets, search settings and the engine's landmarks (probed at
    a few faces: a landmark calibration changes the fits)."""
    import hashlib

    digest = hashlib.sha256(repr(priors.prior_search_config(config)).encode())
    for t in targets:
        digest.update(np.asarray(t.landmarks_68, dtype=np.float32).tobytes())
        digest.update(b"" if t.landmarks_478 is None else np.asarray(t.landmarks_478[:, :2], dtype=np.float32).tobytes())
    spec = model.spec
    probes = torch.rand(4, len(spec.continuous_names), generator=torch.Generator().manual_seed(0)).to(model.engine.device)
    with torch.no_grad():
        for points in model.landmarks(probes).values():
            digest.update(np.round(points.cpu().numpy(), 3).tobytes())
    path = cache / f"fits_{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        return torch.as_tensor(np.load(path), device=model.engine.device)
    fitted = priors.fitted_parameters(model, targets, config)
    np.save(path, fitted.cpu().numpy())
    return fitted


def train_translator(config: Face2ParamConfig | None = None, out_dir: Path | str | None = None,
                     progress=None, time_budget_s: float | None = None) -> Path:
    """Train T on engine samples and write translator.pt, meta.json and metrics.json to out_dir
    (default: $AVATAR_DATA_DIR/face2param/translator, which fit_oneshot then prefers over the packaged
    preview artifact; `-o face2param/artifacts/preview` rebuilds that one). Returns the folder."""
    from avatarclip_core.paths import cache_dir
    from face2param.methods.fit import load_engine
    from face2param.methods.oneshot import trained_artifact_dir

    config = config or Face2ParamConfig()
    check_prior_settings(config)
    tc, oc = config.train, config.oneshot
    budget = tc.time_budget_s if time_budget_s is None else time_budget_s
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
    cache = cache_dir(CACHE_NAME)

    report("samples", 0.0, f"{tc.samples} engine samples")
    x, slots = sample_parameters(spec, mean, tc.samples, tc.sample_spread, generator)
    landmarks, colours = engine_observations(model, x, slots)
    identity = (identity_embeddings(model, x, slots, tc.identity_render_size, cache,
                                    progress=lambda f: report("samples", 0.1 * f, "identity descriptors"))
                if oc.identity_features else None)
    defaults = spec.defaults()
    mean_obs = engine_observations(model, mean[None], {s.name: torch.tensor([s.options.index(defaults.discrete[s.name])], device=device) for s in spec.discrete})
    references = {s: normalised_reference(mean_obs[0][s][0]) for s in model.table.schemes}
    fallback = {k: mean_obs[1][k][0] for k in COLOUR_KEYS}
    features = face_features(landmarks, colours, references, fallback, identity)

    report("prior", 0.1, f"{oc.prior} prior")
    param_mean, components, prior_info = build_prior(config, model, mean, cache)
    report("train", 0.2, "translator")
    n_val = max(int(tc.samples * tc.validation_fraction), 1)
    train_idx, val_idx = torch.arange(n_val, tc.samples, device=device), torch.arange(n_val, device=device)
    slot_sizes = {name: len(spec.slot(name).options) for name in SLOT_OF_COLOUR.values()}
    colours_at = colour_columns({"references": references})
    assert torch.equal(features[:, colours_at], torch.cat([colours[k] for k in COLOUR_KEYS], 1).to(features))
    net = TranslatorNet(features.shape[1], param_mean, components, slot_sizes, oc, colours_at).to(device)
    net.feature_mean.copy_(features[train_idx].mean(0))
    net.feature_std.copy_(features[train_idx].std(0).clamp_min(1e-6))
    head = list(net.slot_logits.parameters())
    trunk = [p for p in net.parameters() if all(p is not q for q in head)]
    optimiser = torch.optim.Adam([{"params": trunk}, {"params": head, "lr": tc.learning_rate * SLOT_HEAD_LR_SCALE}],
                                 lr=tc.learning_rate)
    steps = max(tc.epochs * (len(train_idx) // tc.batch_size), 1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    surrogate = None
    if tc.identity_weight > 0 and identity is not None:
        from face2param.methods.identity_surrogate import identity_loss, load_for_engine

        surrogate = load_for_engine(config.iterative.identity_surrogate, spec, device)
    train_start, epochs_run = time.perf_counter(), 0
    for epoch in range(tc.epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
        for i in range(0, len(order) - tc.batch_size + 1, tc.batch_size):
            b = order[i:i + tc.batch_size]
            x_hat, logits = net(features[b])
            loss = tc.parameter_weight * (x_hat - x[b]).abs().mean(-1)
            loss = loss + tc.loopback_weight * loopback_loss(model, x_hat, {s: v[b] for s, v in landmarks.items()})
            if surrogate is not None:  # TPAMI's identity loss, F_recg through the surrogate of dlib's network
                true_probs = {k: F.one_hot(slots[k][b], n).float() for k, n in surrogate.slot_sizes.items()}
                loss = loss + tc.identity_weight * identity_loss(surrogate, identity[b])(x_hat, true_probs)
            for name, z in logits.items():
                loss = loss + F.cross_entropy(z, slots[name][b], reduction="none")
            optimiser.zero_grad()
            loss.mean().backward()
            optimiser.step()
            schedule.step()
        epochs_run = epoch + 1
        report("train", 0.2 + 0.7 * epochs_run / tc.epochs, f"epoch {epochs_run}: loss {float(loss.detach().mean()):.4g}")
        if 0 < budget < time.perf_counter() - train_start:  # the loop only (cached features vary in cost); 0: none
            break

    net.eval()
    meta = {"oneshot": asdict(oc), "train": asdict(tc), "seed": config.seed, "engine": "anny_face",
            "identity_features": bool(oc.identity_features), "prior": prior_info,
            "slot_inputs": "colours",  # the slot head reads the colour cues only (model.py)
            "continuous_names": spec.continuous_names, "slots": slot_sizes,
            "slot_options": {k: list(spec.slot(k).options) for k in slot_sizes},
            "colour_slots": dict(SLOT_OF_COLOUR),
            "references": {s: r.cpu().tolist() for s, r in references.items()},
            "mean_colours": {k: v.cpu().tolist() for k, v in fallback.items()}}
    buffers = {**{f"ref_{s}": r for s, r in references.items()}, **{f"colour_{k}": v for k, v in fallback.items()}}
    if identity is not None:
        meta["mean_identity"] = identity[train_idx].mean(0).cpu().tolist()
        buffers["mean_identity"] = identity[train_idx].mean(0)
    report("evaluate", 0.9, "held-out samples")
    metrics = heldout_metrics(net, model, x, slots, features, landmarks, val_idx, mean, meta, buffers, config, cache)
    metrics.update({"prior": prior_info, "identity_features": bool(oc.identity_features), "epochs_run": epochs_run,
                    "train_seconds": round(time.perf_counter() - train_start, 1),
                    "total_seconds": round(time.perf_counter() - started, 1)})
    meta["metrics"] = metrics
    save_translator(net, out_dir, meta)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    report("train", 1.0, f"held-out NME {metrics['nme_translator']:.4f} (mean face {metrics['nme_mean_face']:.4f})")
    return out_dir


def heldout_metrics(net, model, x, slots, features, landmarks, val_idx, mean, meta, buffers, config, cache) -> dict:
    """Exact-landmark and analysed-render held-out NME, parameter MAE and slot accuracy, T vs the mean face."""
    n_val = len(val_idx)
    with torch.no_grad():
        x_val, logits = net(features[val_idx])
        val_lm = {s: v[val_idx] for s, v in landmarks.items()}
        out = {"heldout_samples": n_val, "nme_translator": float(landmark_nme(model, x_val, val_lm).mean()),
               "nme_mean_face": float(landmark_nme(model, mean.expand(n_val, -1), val_lm).mean()),
               "param_mae_translator": float((x_val - x[val_idx]).abs().mean()),
               "param_mae_mean_face": float((mean - x[val_idx]).abs().mean()),
               "slot_accuracy": {k: float((z.argmax(-1) == slots[k][val_idx]).float().mean()) for k, z in logits.items()}}
    rows = val_idx[:min(ANALYSED_HELDOUT, n_val)]
    found = analysed_render_targets(model.engine, x[rows], {k: v[rows] for k, v in slots.items()},
                                    config.train.prior_render_size, config, cache)
    keep = [i for i, t in enumerate(found) if t is not None]
    if not keep:
        return out
    targets = [found[i] for i in keep]
    with torch.no_grad():
        feats, _ = features_from_targets(targets, meta, buffers, x.device)
        x_an, logits = net(feats)
        seen = {"ibug68": torch.as_tensor(np.stack([t.landmarks_68[:, :2] for t in targets]), dtype=torch.float32, device=x.device)}
        truth = x[rows][keep]
        out["analysed"] = {
            "renders": len(keep), "render_px": config.train.prior_render_size,
            "nme_translator": float(landmark_nme(model, x_an, seen).mean()),
            "nme_mean_face": float(landmark_nme(model, mean.expand(len(keep), -1), seen).mean()),
            "nme_truth": float(landmark_nme(model, truth, seen).mean()),  # the detectors' own error
            "param_mae_translator": float((x_an - truth).abs().mean()),
            "param_mae_mean_face": float((mean - truth).abs().mean()),
            "slot_accuracy": {k: float((z.argmax(-1) == slots[k][rows][keep]).float().mean()) for k, z in logits.items()}}
    return out
