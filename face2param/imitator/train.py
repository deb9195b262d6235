"""Training of the imitator G and the avatar-domain landmark regressor on any engine's renders.

Only `engine.render(params, size)` is used, so this works for black-box engines (ExternalEngine).
Parameters: sliders uniform in default +- imitator.sample_spread (clipped to [0, 1]), every discrete
slot uniform. Each render (label_render_size px) is labelled by the photo detectors (labels.py); renders
where they miss the face are dropped and counted. G and the regressor see a fixed square crop around
the face (face_crop). G: TPAMI Eq. 1, L1 pixel loss, SGD(lr, momentum) as the paper or Adam (the CPU
preview), with step decay. The regressor then learns the labels from the engine's renders and (regressor_on_imitator)
from G's renders of the same parameters, the images it sees during the search. A held-out split gives
the metrics: G's L1 against the mean training image's, the regressor's aligned NME against the mean
landmarks'."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from avatarclip_core.config import ConfigError
from face2param.config import Face2ParamConfig
from face2param.engines.base import EngineParams, ParamSpec
from face2param.imitator.artifact import artifact_dir, save_imitator
from face2param.imitator.labels import detect_render_landmarks
from face2param.imitator.model import ImitatorGenerator, generator_input, input_size, layer_count
from face2param.imitator.regressor import LandmarkRegressor
from face2param.methods.losses import aligned_landmark_error

OPTIMIZERS = ("sgd", "adam")
CROP_SCALE = 1.7  # crop side / the default face's landmark box side
CROP_RAISE = 0.12  # crop centre above the box centre, in crop sides


def sample_engine_parameters(spec: ParamSpec, count: int, spread: float, generator: torch.Generator) -> list[EngineParams]:
    """Sliders uniform in default +- spread (clipped), every discrete slot uniform."""
    names = spec.continuous_names
    mean = spec.defaults().continuous_vector(spec)
    x = (mean + (2 * torch.rand(count, len(names), generator=generator) - 1) * spread).clamp(0, 1)
    picks = {s.name: torch.randint(len(s.options), (count,), generator=generator) for s in spec.discrete}
    return [EngineParams(dict(zip(names, x[i].tolist())),
                         {s.name: s.options[int(picks[s.name][i])] for s in spec.discrete}) for i in range(count)]


def face_crop(points: torch.Tensor | None, label_size: int) -> tuple[int, int, int]:
    """(left, top, side) pixels of the square the imitator sees: the default face's landmark box, widened
    (CROP_SCALE) and raised (CROP_RAISE) to keep the hair samples above the brows, kept in the render.
    The engine's camera is fixed, so one crop serves every render (TPAMI: G fits the front face only)."""
    low, high = points.min(0).values, points.max(0).values
    side = float((high - low).max()) * CROP_SCALE
    cx, cy = float(low[0] + high[0]) / 2, float(low[1] + high[1]) / 2 - CROP_RAISE * side
    side = min(int(round(side)), label_size)
    left = min(max(int(round(cx - side / 2)), 0), label_size - side)
    top = min(max(int(round(cy - side / 2)), 0), label_size - side)
    return left, top, side


def crop_image(image: torch.Tensor, crop: tuple[int, int, int], image_size: int) -> torch.Tensor:
    """(H, W, 3) render -> (3, S, S) crop, area-resampled."""
    left, top, side = crop
    chw = image[top:top + side, left:left + side].permute(2, 0, 1)[None].float().cpu()
    return F.interpolate(chw, size=(image_size, image_size), mode="area")[0]


def render_dataset(engine, params: list[EngineParams], image_size: int, label_size: int, report):
    """(inputs (B, D), crops (B, 3, S, S), landmarks (B, 68, 2) normalised to the crop, failed
    detections, crop box in render pixels)."""
    spec = engine.spec
    reference = detect_render_landmarks(engine.render(spec.defaults(), label_size))
    if reference is None:
        raise RuntimeError("the detectors find no face in the engine's render of its default parameters: "
                           "the imitator needs a frontal face filling most of the image")
    crop = face_crop(torch.as_tensor(reference[:, :2]), label_size)
    origin = torch.tensor(crop[:2], dtype=torch.float32)
    inputs, images, landmarks, failed = [], [], [], 0
    for i, p in enumerate(params):
        image = engine.render(p, label_size)  # (H, W, 3) in [0, 1]
        points = detect_render_landmarks(image)
        if points is None:
            failed += 1
        else:
            images.append(crop_image(image, crop, image_size))
            landmarks.append((torch.as_tensor(points[:, :2], dtype=torch.float32) - origin) / crop[2])
            probs = {k: v[None] for k, v in p.discrete_one_hot(spec).items()}
            inputs.append(generator_input(spec, p.continuous_vector(spec)[None], probs)[0])
        if i % 25 == 0 or i == len(params) - 1:
            report("render", (i + 1) / len(params), f"{i + 1}/{len(params)} renders, {failed} without a detected face")
    if len(images) < 4:
        raise RuntimeError(f"the detectors found a face in only {len(images)} of {len(params)} engine renders: "
                           "check that the engine renders a frontal face filling the image")
    return torch.stack(inputs), torch.stack(images), torch.stack(landmarks), failed, crop


def _batches(count: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(count, generator=generator)
    for i in range(0, count, batch_size):
        if count - i >= 2:  # BatchNorm needs two samples
            yield order[i:i + batch_size]


def train_generator(inputs, images, cfg, device, generator, report) -> ImitatorGenerator:
    net = ImitatorGenerator(inputs.shape[1], cfg.image_size, cfg.base_channels).to(device)
    net.mean_image.copy_(images.mean(0))
    optimiser = (torch.optim.SGD(net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum) if cfg.optimizer == "sgd"
                 else torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, betas=(cfg.momentum, 0.999)))
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, max(cfg.lr_decay_every, 1), cfg.lr_decay)
    for epoch in range(cfg.epochs):
        net.train()
        for b in _batches(len(inputs), cfg.batch_size, generator):
            loss = (net(inputs[b]) - images[b]).abs().mean()  # Eq. 1
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        report("imitator", (epoch + 1) / cfg.epochs, f"epoch {epoch + 1}: L1 {float(loss.detach()):.4f}")
    return net.eval()


def train_regressor(images, landmarks, cfg, device, generator, report) -> LandmarkRegressor:
    net = LandmarkRegressor(cfg.image_size, cfg.regressor_channels).to(device)
    net.mean_landmarks.copy_(landmarks.mean(0))
    net.landmark_scale.copy_(landmarks.std(0).clamp_min(1e-4))
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.regressor_learning_rate)
    steps = max(cfg.regressor_epochs * max(len(images) // cfg.batch_size, 1), 1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for epoch in range(cfg.regressor_epochs):
        net.train()
        for b in _batches(len(images), cfg.batch_size, generator):
            loss = ((net(images[b]) - landmarks[b]) / net.landmark_scale).abs().mean()  # in label spreads
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        report("regressor", (epoch + 1) / cfg.regressor_epochs, f"epoch {epoch + 1}: loss {float(loss.detach()):.5f}")
    return net.eval()


def landmark_nme(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean similarity-aligned 68-point distance in eye distances (what the search minimises)."""
    return float(aligned_landmark_error(pred, target, squared=False).mean())


def train_imitator(config: Face2ParamConfig | None = None, engine=None, out_dir: Path | str | None = None,
                   progress=None) -> Path:
    """Render, label, train G and the regressor, write imitator.pt + meta.json; returns the folder."""
    from face2param.engines.base import engine_name
    from face2param.methods.fit import config_device, load_engine

    config = config or Face2ParamConfig()
    cfg = config.imitator
    layer_count(cfg.image_size)  # bad knobs fail before any rendering
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"imitator.optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    report = progress or (lambda stage, fraction, message="": None)
    started = time.perf_counter()
    engine = engine or load_engine(config)
    device = torch.device(config_device(config))
    out_dir = Path(out_dir) if out_dir else artifact_dir(config, engine)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)

    params = sample_engine_parameters(engine.spec, cfg.samples, cfg.sample_spread, generator)
    inputs, images, landmarks, failed, crop = render_dataset(engine, params, cfg.image_size, cfg.label_render_size, report)
    render_seconds = time.perf_counter() - started
    inputs, images, landmarks = inputs.to(device), images.to(device), landmarks.to(device)
    n_val = max(int(round(len(images) * cfg.validation_fraction)), 1)
    val, train = slice(0, n_val), slice(n_val, None)

    t0 = time.perf_counter()
    net_g = train_generator(inputs[train], images[train], cfg, device, generator, report)
    g_seconds = time.perf_counter() - t0
    with torch.no_grad():
        imitated = torch.cat([net_g(inputs[i:i + 256]) for i in range(0, len(inputs), 256)])
    reg_images, reg_landmarks = images[train], landmarks[train]
    if cfg.regressor_on_imitator:
        reg_images = torch.cat([reg_images, imitated[train]])
        reg_landmarks = torch.cat([reg_landmarks, landmarks[train]])
    t0 = time.perf_counter()
    net_r = train_regressor(reg_images, reg_landmarks, cfg, device, generator, report)
    r_seconds = time.perf_counter() - t0

    with torch.no_grad():
        mean_image = images[train].mean(0)
        truth = landmarks[val]  # (the aligned NME is scale free)
        mean_points = landmarks[train].mean(0).expand_as(landmarks[val])
        metrics = {
            "samples": len(params), "detection_failures": failed, "train_samples": len(images) - n_val,
            "heldout_samples": n_val,
            "imitator_l1": float((imitated[val] - images[val]).abs().mean()),
            "mean_image_l1": float((mean_image - images[val]).abs().mean()),
            "regressor_nme": landmark_nme(net_r(images[val]), truth),
            "regressor_nme_on_imitator": landmark_nme(net_r(imitated[val]), truth),
            "mean_landmarks_nme": landmark_nme(mean_points, truth),
            "render_seconds": round(render_seconds, 1), "imitator_seconds": round(g_seconds, 1),
            "regressor_seconds": round(r_seconds, 1), "total_seconds": round(time.perf_counter() - started, 1),
        }
    meta = {"engine": engine_name(engine), "spec": engine.spec.to_json(),
            "continuous_names": engine.spec.continuous_names, "imitator": asdict(cfg), "seed": config.seed,
            "crop": {"left": crop[0], "top": crop[1], "side": crop[2], "render_size": cfg.label_render_size},
            "metrics": metrics}
    save_imitator(out_dir, net_g, net_r, meta)
    report("save", 1.0, f"G L1 {metrics['imitator_l1']:.4f} (mean image {metrics['mean_image_l1']:.4f}); "
                        f"regressor NME {metrics['regressor_nme']:.4f} (mean {metrics['mean_landmarks_nme']:.4f})")
    return out_dir
