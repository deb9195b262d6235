"""Iterative F2P (Shi et al. 2019; TPAMI 3.4.2): search x in [0, 1] by projected gradient descent.

The loss compares the candidate face with the photo's: similarity-aligned 68 iBUG (and 478 mediapipe)
landmarks, skin and hair colour sampled from a render, and an identity term (a differentiable identity
network given by path, or the identity surrogate of dlib's network: methods/identity_surrogate.py).
Renders and landmarks come from a differentiable engine, or, for a black-box engine, from the imitator G
and the avatar-domain landmark regressor (`FaceModel`).

The descent step is preconditioned by the Gauss-Newton matrix of the landmark term at the start
(damped, Levenberg-Marquardt style): slider effects differ by orders of magnitude in pixels, and a
plain step would move only the strongest. Sliders the landmarks cannot see get no gradient and stay at
the average face. Discrete slots are one-hot vectors relaxed by softmax(beta * z) and read back by argmax.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from face2param.config import IterativeConfig
from face2param.engines.base import EngineParams, ParamSpec
from face2param.methods.face_prior import FacePrior
from face2param.methods.surrogate import AdditiveLandmarks
from face2param.methods.losses import aligned_landmark_error, eye_distance, sample_face_colours
from face2param.methods.target import FitTarget

COLOUR_SLOTS = {"skin": "skin_tone", "hair": "hair_colour", "eyes": "eye_colour"}


class FaceModel(Protocol):
    """A differentiable view of an engine: what the search needs."""

    spec: ParamSpec
    size: int  # pixel size of the images and landmarks below

    def landmarks(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, N) -> scheme -> (B, L, 2) pixels."""
        ...

    def render(self, x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, N), slot -> (B, K) -> (B, 3, size, size)."""
        ...


class EngineFaceModel:
    """A `DifferentiableEngine` as a FaceModel: landmarks from its additive table (surrogate.py; exact
    for Anny and a gather instead of a head evaluation), renders from the engine itself."""

    def __init__(self, engine, size: int, schemes: tuple[str, ...] = ("ibug68", "mediapipe478")):
        self.engine, self.spec, self.size = engine, engine.spec, size
        mean = engine.spec.defaults().continuous_vector(engine.spec, engine.device)
        available = []
        for scheme in schemes:
            try:
                engine.landmarks_tensor(mean[None], scheme)
                available.append(scheme)
            except Exception:  # the engine has no table for this scheme
                continue
        if "ibug68" not in available:
            raise RuntimeError("the engine offers no 68-point (ibug68) landmarks")
        self.table = _cached_table(engine, mean, tuple(available))

    def landmarks(self, x):
        return {s: self.engine.project_landmarks(self.table.points3d(x, s), self.size) for s in self.table.schemes}

    def jacobian(self, x, eps: float = 1e-3) -> dict[str, torch.Tensor]:
        """scheme -> (B, N, L, 2) pixel slopes (perspective by a small finite step along each slope)."""
        out = {}
        with torch.no_grad():
            for s in self.table.schemes:
                P, J = self.table.points3d(x, s), self.table.jacobian3d(x, s)
                B, N, L, _ = J.shape
                scale = eps / J.flatten(2).norm(dim=-1).clamp_min(1e-12)[..., None, None]  # (B, N, 1, 1)
                moved = self.engine.project_landmarks((P[:, None] + scale * J).reshape(B * N, L, 3), self.size)
                here = self.engine.project_landmarks(P, self.size)
                out[s] = (moved.view(B, N, L, 2) - here[:, None]) / scale
        return out

    def render(self, x, probs):
        return self.engine.render_tensor(x, probs, self.size)

    # renders are affine in the vertex colours (Lambert shading, soft compositing) and those in the slot
    # probabilities: the search's colour term can be a one-render linear model (_ColourProbe)
    colours_affine_in_slots = True


def _cached_table(engine, mean, schemes):
    """The engine's table, once per engine object (and on disk for the bundled engine: surrogate.py)."""
    from face2param.engines.base import engine_memo

    tables = engine_memo(engine, "landmark_tables")
    if schemes not in tables:
        tables[schemes] = AdditiveLandmarks(engine, mean, list(schemes), cache=True)
    return tables[schemes]


@dataclass
class BatchTarget:
    landmarks: dict[str, torch.Tensor]  # scheme -> (B, L, 2) photo pixels
    colours: dict[str, torch.Tensor]  # "skin" | "hair" | "eyes" -> (B, 3) in [0, 1]
    # the identity term (Eq. 5): (x, slot probabilities) -> (B,) 1 - cos(embedding of the candidate, photo's)
    identity: Callable[[torch.Tensor, dict], torch.Tensor] | None = None
    fixed: dict[int, float] = field(default_factory=dict)  # slider index -> value held (photo attributes)


@dataclass
class SearchResult:
    continuous: torch.Tensor  # (B, N)
    probs: dict[str, torch.Tensor]  # slot -> (B, K) (relaxed slots: softmax; others: one-hot default)
    history: dict[str, list[float]]
    landmark_nme: torch.Tensor  # (B,) final mean 68-point error / eye distance


def _one_hot(spec: ParamSpec, B: int, device) -> dict[str, torch.Tensor]:
    probs = {}
    for s in spec.discrete:
        p = torch.zeros(B, len(s.options), device=device)
        p[:, s.options.index(s.default)] = 1.0
        probs[s.name] = p
    return probs


def _landmark_loss(pred: dict, target: dict, config: IterativeConfig) -> torch.Tensor:
    """(B,) weighted squared NME of the available schemes (the 68 points set the unit)."""
    unit = eye_distance(pred["ibug68"]).detach()
    loss = config.landmark_weight * aligned_landmark_error(pred["ibug68"], target["ibug68"], unit)
    if "mediapipe478" in pred and "mediapipe478" in target and config.dense_landmark_weight > 0:
        loss = loss + config.dense_landmark_weight * aligned_landmark_error(
            pred["mediapipe478"], target["mediapipe478"], unit)
    return loss


def _fd_jacobian(model: FaceModel, x: torch.Tensor, step: float = 0.02) -> dict[str, torch.Tensor]:
    """Central differences, one batched call per side (for models without `jacobian`)."""
    B, N = x.shape
    eye = step * torch.eye(N, device=x.device)
    plus = (x[:, None] + eye).clamp(0, 1).reshape(B * N, N)
    minus = (x[:, None] - eye).clamp(0, 1).reshape(B * N, N)
    with torch.no_grad():
        hi, lo = model.landmarks(plus), model.landmarks(minus)
    width = (plus - minus).view(B, N, N).diagonal(dim1=1, dim2=2).clamp_min(1e-6)  # (B, N)
    return {s: (hi[s] - lo[s]).view(B, N, *hi[s].shape[1:]) / width[..., None, None] for s in hi}


def _preconditioner(model: FaceModel, x: torch.Tensor, target: BatchTarget, config: IterativeConfig,
                    prior: FacePrior | None = None) -> torch.Tensor:
    """(B, N, N) damped Gauss-Newton matrix of the landmark loss at x (plus the face prior's Hessian)."""
    B, N = x.shape
    jac = model.jacobian(x) if hasattr(model, "jacobian") else _fd_jacobian(model, x)
    with torch.no_grad():
        unit = eye_distance(model.landmarks(x)["ibug68"])  # (B,)
    weights = {"ibug68": config.landmark_weight, "mediapipe478": config.dense_landmark_weight}
    H = torch.zeros(B, N, N, device=x.device)
    for scheme, J in jac.items():
        if scheme not in target.landmarks or weights.get(scheme, 0) <= 0:
            continue
        J = J.reshape(B, N, -1) / unit[:, None, None]  # (B, N, 2L)
        H += 2 * weights[scheme] / (J.shape[-1] // 2) * J @ J.transpose(1, 2)
    damping = config.damping * H.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-8)
    eye = torch.eye(N, device=x.device)
    H = H + (damping[:, None, None] + 2 * config.prior_weight) * eye
    return H if prior is None else H + prior.hessian(x)


def _projected_newton_step(H: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, lower: torch.Tensor | float = 0.0,
                           upper: torch.Tensor | float = 1.0) -> torch.Tensor:
    """H^-1 g on the free variables (Bertsekas' projected Newton): a variable at a bound whose gradient
    pushes it outward is held there, so the others are solved without its phantom move."""
    active = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
    free = (~active).to(H.dtype)
    mask = free[:, :, None] * free[:, None, :]
    eye = torch.diag_embed(1 - free)
    step = torch.linalg.solve(H * mask + eye, (grad * free)[..., None])[..., 0]
    return step


class _ColourProbe:
    """The colours sampled from the candidate's render as an affine function of the relaxed slots'
    probabilities at fixed geometry: exact for an engine whose render is affine in the vertex colours and
    those in the probabilities (`FaceModel.colours_affine_in_slots`: the Anny engine, Lambert shading and
    soft compositing), one render and three backward passes per colour instead of a render per iteration.
    The colour term steers the slots only (x is detached there), so only the geometry it was built at
    goes stale between refreshes."""

    def __init__(self, model: FaceModel, x: torch.Tensor, probs_fixed: dict, probs: dict, keys) -> None:
        leaves = {k: v.detach().requires_grad_(True) for k, v in probs.items()}
        with torch.enable_grad():
            x = x.detach()
            images = model.render(x, {**probs_fixed, **leaves})
            sampled = sample_face_colours(images, model.landmarks(x)["ibug68"].detach())
        self.start = {k: v.detach() for k, v in leaves.items()}
        self.base = {key: sampled[key].detach() for key in keys}
        self.slopes: dict[str, dict[str, torch.Tensor]] = {}  # colour -> slot -> (B, 3, K)
        names = list(leaves)
        for key in keys:
            rows = [torch.autograd.grad(sampled[key][:, c].sum(), [leaves[n] for n in names], retain_graph=True,
                                        allow_unused=True) for c in range(3)]
            self.slopes[key] = {n: torch.stack([torch.zeros_like(leaves[n]) if r[i] is None else r[i] for r in rows], 1)
                                for i, n in enumerate(names)}

    def __call__(self, probs: dict) -> dict[str, torch.Tensor]:
        return {key: self.base[key] + sum((slope @ (probs[n] - self.start[n])[..., None])[..., 0]
                                          for n, slope in slopes.items())
                for key, slopes in self.slopes.items()}


def _x_loss(model: FaceModel, target: BatchTarget, config: IterativeConfig, prior: FacePrior | None,
            mean: torch.Tensor, x: torch.Tensor, probs: dict, mesh_active: tuple | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """(total, landmarks, identity (B,), landmarks by scheme): the terms that move x (the colour term steers the
    relaxed slots only); mesh_active: FacePrior.mesh_active(x)."""
    pts = model.landmarks(x)
    lmk = _landmark_loss(pts, target.landmarks, config)
    total = lmk + config.prior_weight * ((x - mean) ** 2).sum(-1)
    if prior is not None:
        total = total + prior.penalty(x, mesh_active=mesh_active)
    identity = torch.zeros(x.shape[0], device=x.device)
    if target.identity is not None and config.identity_weight > 0:
        identity = target.identity(x, probs)  # Eq. 5
        total = total + config.identity_weight * identity
    return total, lmk, identity, pts


def _held(x: torch.Tensor, fixed: dict[int, float]) -> torch.Tensor:
    """The projection of Eq. 9 plus the attributes held (photo attributes constrain the fit, not searched)."""
    x = x.clamp(0.0, 1.0)
    for index, value in fixed.items():
        x[:, index] = value
    return x


def search(model: FaceModel, target: BatchTarget, config: IterativeConfig, x0: torch.Tensor,
           progress: Callable[[int, float], None] | None = None, prior: FacePrior | None = None) -> SearchResult:
    """Projected (preconditioned) descent from x0 (B, N) (the average face); `prior` (face_prior.py) adds its
    penalty to the loss and its Hessian to the preconditioner. With `config.line_search` a step that does not
    lower the loss is halved (per row), the identity term's curvature joins the preconditioner where the term
    offers it, and the search stops once the loss falls by less than `stop_tolerance` (relative) for
    `stop_patience` iterations in a row; the paper's schedule (fixed steps, all iterations) otherwise."""
    spec, device, B = model.spec, x0.device, x0.shape[0]
    mean = x0.detach().clone()
    x = x0.detach().clone().requires_grad_(True)
    probs_fixed = _one_hot(spec, B, device)
    wanted_colours = {k: v for k, v in target.colours.items() if COLOUR_SLOTS[k] in config.relaxed_slots}
    relaxed = [s for s in spec.discrete if s.name in config.relaxed_slots and config.color_weight > 0
               and any(COLOUR_SLOTS[k] == s.name for k in wanted_colours)]
    # uniform start: with beta = 100 a one-hot start would be saturated (no gradient)
    logits = {s.name: torch.full((B, len(s.options)), 0.5, device=device, requires_grad=True) for s in relaxed}
    optimiser = torch.optim.Adam(list(logits.values()), lr=config.discrete_learning_rate) if logits else None
    history: dict[str, list[float]] = {"total": [], "landmarks": [], "colour": [], "identity": []}
    probe = config.colour_probe and getattr(model, "colours_affine_in_slots", False)
    use_identity = target.identity is not None and config.identity_weight > 0
    curvature = getattr(target.identity, "curvature", None) if use_identity and config.line_search else None
    colour_model, quiet, previous, taken = None, 0, None, None
    # the step's box: the prior's barrier margins. The barrier's curvature counts only once a slider is past its
    # margin, so a full step carried sliders across it to the bound (loss +0.1 each: 30x the landmark term), and
    # its steepness (0.1 at the bound) keeps every optimum within ~1e-3 of the margin anyway
    box = (torch.zeros_like(mean), torch.ones_like(mean)) if prior is None else (
        prior.lower.clamp(0.0, 1.0).to(mean).expand_as(mean), prior.upper.clamp(0.0, 1.0).to(mean).expand_as(mean))

    def current_probs():
        return {**probs_fixed, **{k: torch.softmax(config.beta * z, -1) for k, z in logits.items()}}

    def colour_loss(sampled):
        colour = torch.zeros(B, device=device)
        for key, value in wanted_colours.items():
            colour = colour + ((sampled[key] - value) ** 2).sum(-1)
        return colour

    it = 0
    for it in range(config.iterations):
        every = max(config.lr_decay_every, 1)
        lr = config.learning_rate * config.lr_decay ** (it // every)
        if it % every == 0:  # piecewise-linear sliders: refresh the slopes on the side x has moved to
            H_data = _preconditioner(model, x.detach(), target, config)
            if probe and logits:
                colour_model = _ColourProbe(model, x, probs_fixed, {k: v.detach() for k, v in current_probs().items()
                                                                     if k in logits}, list(wanted_colours))
        # the prior's curvature every step: its barrier switches on as a slider crosses the margin, and a
        # step scaled by the landmark curvature alone then overshoots (measured: the search diverged,
        # landmark NME 0.033 -> 0.148 on 15 real photos)
        H = H_data if prior is None else H_data + prior.hessian(x.detach())
        probs = current_probs()
        held_probs = {k: v.detach() for k, v in probs.items()}
        if curvature is not None:
            H = H + config.identity_weight * curvature(x.detach(), held_probs)
        # the mesh hinges that are on at x: the same loss and gradient as the whole head's, for a few vertices
        active = prior.mesh_active(x.detach()) if prior is not None and config.line_search else None
        total_x, lmk, identity, pts = _x_loss(model, target, config, prior, mean, x, held_probs, active)
        colour = torch.zeros(B, device=device)
        if logits:  # colours steer the relaxed slots only: through x they would fight the landmarks
            if colour_model is not None:
                sampled = colour_model(probs)
            else:
                sampled = sample_face_colours(model.render(x.detach(), probs), pts["ibug68"].detach())
            colour = colour_loss(sampled)
        total = total_x + config.color_weight * colour
        x.grad = None
        if optimiser:
            optimiser.zero_grad()
        total.sum().backward()
        with torch.no_grad():
            if config.line_search:  # the prior's margins as the box (a slider past one stays, it does not go on)
                lower, upper = torch.minimum(box[0], x), torch.maximum(box[1], x)
                step = _projected_newton_step(H, x, x.grad, lower, upper)
                # each row starts from twice the step it took last time (at most lr; lr after a failed search):
                # fewer halvings
                start = lr if taken is None else torch.where(taken > 0, (2 * taken).clamp(max=lr), lr)
                moved, taken = _line_search(lambda y: _x_loss(model, target, config, prior, mean, y, held_probs)[0],
                                            x.detach(), step, start, total_x.detach(), target.fixed,
                                            config.max_backtracks, lower, upper)
                x.copy_(moved)
            else:
                step = _projected_newton_step(H, x, x.grad)
                x -= lr * step
                x.copy_(_held(x, target.fixed))
        if optimiser:
            optimiser.step()
        for name, value in (("total", total), ("landmarks", lmk), ("colour", colour), ("identity", identity)):
            history[name].append(float(value.detach().mean()))
        if progress:
            progress(it, float(total.mean()))
        now = total_x.detach()
        if config.stop_tolerance > 0 and previous is not None:  # early stop on a plateau of every row
            calm = bool(((previous - now) <= config.stop_tolerance * previous.abs()).all())
            quiet = quiet + 1 if calm else 0
            if quiet >= config.stop_patience:
                break
        previous = now
    if colour_model is not None:  # the slots' remaining steps on the colour model: microseconds each
        for _ in range(it + 1, config.iterations):
            optimiser.zero_grad()
            (config.color_weight * colour_loss(colour_model(current_probs()))).sum().backward()
            optimiser.step()

    with torch.no_grad():
        probs = current_probs()
        pts = model.landmarks(x)
        nme = aligned_landmark_error(pts["ibug68"], target.landmarks["ibug68"], squared=False)
    return SearchResult(x.detach(), {k: v.detach() for k, v in probs.items()}, history, nme)


def _line_search(loss: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, step: torch.Tensor,
                 start: float | torch.Tensor, before: torch.Tensor, fixed: dict[int, float], backtracks: int,
                 lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x - t step projected onto [lower, upper], t (B, 1)): t from `start` (a number or (B, 1)) halved per row
    until the row's loss does not rise (a row that finds no such t stays where it was, t = 0): the
    Gauss-Newton step overshoots where the mesh term or the identity term curves more than the
    preconditioner says."""
    t = torch.as_tensor(start, dtype=x.dtype, device=x.device).expand(x.shape[0], 1).clone()
    accepted = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    candidate = x
    for _ in range(backtracks + 1):
        candidate = _held(torch.minimum(torch.maximum(x - t * step, lower), upper), fixed)
        accepted = loss(candidate) <= before
        if bool(accepted.all()):
            break
        t = torch.where(accepted[:, None], t, t / 2)
    return torch.where(accepted[:, None], candidate, x), torch.where(accepted[:, None], t, torch.zeros_like(t))


def batch_target(targets: list[FitTarget], device, schemes=("ibug68", "mediapipe478")) -> BatchTarget:
    """Stack FitTargets; a colour is used only when every target has it."""
    lm = {"ibug68": torch.tensor(np.stack([t.landmarks_68[:, :2] for t in targets]), dtype=torch.float32, device=device)}
    if "mediapipe478" in schemes and all(t.landmarks_478 is not None for t in targets):
        lm["mediapipe478"] = torch.tensor(np.stack([t.landmarks_478[:, :2] for t in targets]),
                                          dtype=torch.float32, device=device)
    colours = {}
    for key in COLOUR_SLOTS:
        values = [getattr(t, key) for t in targets]
        if all(v is not None for v in values):
            colours[key] = torch.tensor(np.stack(values), dtype=torch.float32, device=device)
    return BatchTarget(lm, colours)


def fit_iterative(target: FitTarget, model: FaceModel, config: IterativeConfig, device,
                  identity: Callable[[torch.Tensor, dict], torch.Tensor] | None = None,
                  progress: Callable[[int, float], None] | None = None,
                  prior: FacePrior | None = None) -> tuple[EngineParams, dict, list[str]]:
    """One photo -> parameters; returns (params, losses, warnings). With a face prior the fitted head is
    checked for mesh artefacts and the sliders that cause them moved back towards the start until it passes
    (losses["face_prior"])."""
    spec = model.spec
    batch = batch_target([target], device)
    batch.identity = identity
    warnings = []
    if target.skin is None:
        warnings.append("no skin colour was measured: skin tone left at the engine default")
    names = spec.continuous_names
    batch.fixed = {names.index(k): float(v) for k, v in target.fixed_continuous.items() if k in names}
    x0 = spec.defaults().continuous_vector(spec, device)[None].clone()
    for index, value in batch.fixed.items():
        x0[:, index] = value
    result = search(model, batch, config, x0, progress, prior)
    x, prior_report = result.continuous, None
    if prior is not None:
        x, prior_report = prior.check_and_back_off(x, x0[0])
        if prior_report[0].get("mesh", {}).get("backoff", 1.0) < 1.0:
            mesh = prior_report[0]["mesh"]
            warnings.append(f"the fitted head had mesh artefacts ({mesh['found']}); kept {mesh['backoff']:.0%} of "
                            f"the way from the average face on the {mesh['sliders_backed_off']} sliders that caused them")
    params = EngineParams.from_tensors(spec, x[0], {k: v[0] for k, v in result.probs.items()})
    losses = {"landmark_nme": float(result.landmark_nme[0]),
              "initial_total": result.history["total"][0] if result.history["total"] else math.nan,
              "final_total": result.history["total"][-1] if result.history["total"] else math.nan,
              "history": result.history}
    if prior_report is not None:
        losses["face_prior"] = prior_report[0]
    return params, losses, warnings


def _without_similarity(J: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, L, 2) slopes with the image-plane similarity motions (shift, scale, roll) of the (L, 2) points
    projected out: the landmark loss is blind to them."""
    c = points - points.mean(0)
    gauge = torch.stack([torch.stack([torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])], -1),
                         torch.stack([torch.zeros_like(c[:, 0]), torch.ones_like(c[:, 0])], -1),
                         c, torch.stack([-c[:, 1], c[:, 0]], -1)]).reshape(4, -1)  # (4, 2L)
    q, _ = torch.linalg.qr(gauge.T)
    flat = J.reshape(J.shape[0], -1)
    return flat - (flat @ q) @ q.T


def identifiability(model: FaceModel, x: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) per parameter: the rms landmark motion (in eye distances) that a full-range change of it
    still causes when every other parameter re-adjusts to compensate: 1 / sqrt((J^T J)^-1_jj). Near
    zero for sliders the front-view landmarks cannot see or cannot tell from others."""
    spec = model.spec
    device = next(iter(model.table.base.values())).device if hasattr(model, "table") else "cpu"
    x = spec.defaults().continuous_vector(spec, device)[None] if x is None else x[:1]
    jac = model.jacobian(x) if hasattr(model, "jacobian") else _fd_jacobian(model, x)
    with torch.no_grad():
        unit = eye_distance(model.landmarks(x)["ibug68"])[0]
    points = model.landmarks(x)
    J = torch.cat([_without_similarity(j[0], points[s][0]) for s, j in jac.items()], 1) / unit  # (N, 2L_total)
    L = J.shape[1] // 2
    H = (J @ J.T / L).double()
    values, vectors = torch.linalg.eigh(H)
    floor = 1e-10 * float(values.max())
    cov_diag = (vectors ** 2 / values.clamp_min(floor)).sum(1)
    return cov_diag.rsqrt().float()
