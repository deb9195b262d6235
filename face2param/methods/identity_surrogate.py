"""A differentiable stand-in for dlib's identity network over the engine's parameters (Eq. 5 without
a differentiable face-recognition checkpoint).

The papers' identity loss 1 - cos(F_recg(render(x)), F_recg(photo)) needs gradients through the
recognition network. dlib's ResNet (the one identity network that exists offline) gives none, so
S(x, p) ~ F_recg(render(x, p)) is fitted on engine samples: a ridge regression from the slider offsets
to the average face and the colour-slot probabilities to the 128-d descriptor of the render, computed
exactly the way the photo analysis computes the photo's (translator.samples.identity_embeddings,
shared cache). The iterative search then minimises 1 - cos(S(x, p), e_photo) beside the landmarks:
exact gradients, no rendering, microseconds per step.

Measured: the packaged surrogate (1,600 preview samples, 160 held out) has descriptor R^2 0.58 and a
cosine of 0.980 to the render's own descriptor vs 0.949 for the mean descriptor. On dlib's example photos
(9 usable faces, a 700-sample surrogate) identity_weight 0.01 raised the real dlib cosine of the fitted
render to the photo from 0.849 (mean face) / 0.845 (landmarks only) to 0.889, landmark NME 0.030 -> 0.038.
The evaluation uses the same dlib network the surrogate imitates: it shows the term works, not that a
second recognition network would agree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.errors import UserInputError

PACKAGED = Path(__file__).resolve().parent.parent / "artifacts" / "identity" / "preview.npz"
# the mean dlib descriptor of real photos (person-balanced; `save_photo_mean`): renders and photos sit in two
# places of dlib's space, and the identity term compares them after moving the photo into the renders' place
PHOTO_MEAN = PACKAGED.with_name("photo_mean.npz")
COLOUR_SLOT_INPUTS = ("skin_tone", "hair_colour")  # the slots the search relaxes; others stay default
TRAIN_COMMAND = "avatar train face2param --identity"


class IdentitySurrogateUnavailableError(UserInputError):
    """No fitted surrogate for this engine's parameters."""


@dataclass
class IdentitySurrogate:
    continuous_names: list[str]
    mean: torch.Tensor  # (N,) the average face the offsets are taken from
    slot_sizes: dict[str, int]  # slot -> options, in feature order
    weight: torch.Tensor  # (N + sum(slot sizes) + 1, D): offsets, slot probabilities, bias
    metrics: dict = field(default_factory=dict)

    def features(self, x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x - self.mean] + [probs[name].to(x) for name in self.slot_sizes]
        return torch.cat(parts + [torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], 1)

    def __call__(self, x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, N) sliders, slot -> (B, K) probabilities -> (B, D) predicted descriptors."""
        return self.features(x, probs) @ self.weight.to(x)

    def to(self, device) -> "IdentitySurrogate":
        return IdentitySurrogate(self.continuous_names, self.mean.to(device), dict(self.slot_sizes),
                                 self.weight.to(device), dict(self.metrics))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, mean=self.mean.cpu().numpy(), weight=self.weight.cpu().numpy(),
                            meta=np.array(json.dumps({"continuous_names": self.continuous_names,
                                                      "slot_sizes": self.slot_sizes, "metrics": self.metrics})))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, device="cpu") -> "IdentitySurrogate":
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            return cls(meta["continuous_names"], torch.as_tensor(z["mean"], device=device),
                       {k: int(v) for k, v in meta["slot_sizes"].items()},
                       torch.as_tensor(z["weight"], device=device), meta.get("metrics", {}))


def trained_surrogate_path() -> Path:
    from avatarclip_core.paths import data_dir

    return data_dir() / "face2param" / "identity" / "surrogate.npz"


def surrogate_path(configured: str) -> Path:
    """iterative.identity_surrogate when set; else one trained into the data folder; else the packaged one."""
    if configured:
        return Path(configured).expanduser()
    trained = trained_surrogate_path()
    return trained if trained.is_file() else PACKAGED


_LOADED: dict = {}


def load_for_engine(configured: str, spec, device) -> IdentitySurrogate:
    path = surrogate_path(configured)
    if not path.is_file():
        raise IdentitySurrogateUnavailableError(
            f"no identity surrogate at {path}; fit one with `{TRAIN_COMMAND}` (a few CPU minutes) or set "
            "iterative.identity_weight=0")
    key = (str(path), str(device), path.stat().st_mtime_ns)
    if key not in _LOADED:
        try:
            _LOADED[key] = IdentitySurrogate.load(path, device)
        except (OSError, ValueError, KeyError) as exc:
            raise IdentitySurrogateUnavailableError(f"{path} is not an identity surrogate ({exc})") from None
    surrogate = _LOADED[key]
    if surrogate.continuous_names != spec.continuous_names:
        raise IdentitySurrogateUnavailableError(
            f"the identity surrogate {path} was fitted for other engine parameters; refit it with `{TRAIN_COMMAND}`")
    return _with_appended_options(surrogate, spec)


def _with_appended_options(surrogate: IdentitySurrogate, spec) -> IdentitySurrogate:
    """A surrogate fitted before colour options were appended to a slot (colours.py only appends): each new
    option gets the mean of that slot's fitted rows, i.e. "no identity information about this colour"
    (dlib's descriptor of a face crop barely depends on hair or skin colour; refitting sees the option)."""
    sizes = {name: len(spec.slot(name).options) for name in surrogate.slot_sizes}
    if sizes == surrogate.slot_sizes:
        return surrogate
    rows, at = [surrogate.weight[:len(surrogate.continuous_names)]], len(surrogate.continuous_names)
    for name, fitted in surrogate.slot_sizes.items():
        block = surrogate.weight[at:at + fitted]
        if sizes[name] < fitted:
            raise IdentitySurrogateUnavailableError(
                f"the identity surrogate was fitted for {fitted} {name} options, the engine has {sizes[name]}; "
                f"refit it with `{TRAIN_COMMAND}`")
        rows += [block, block.mean(0, keepdim=True).expand(sizes[name] - fitted, -1)]
        at += fitted
    rows.append(surrogate.weight[at:])
    return IdentitySurrogate(surrogate.continuous_names, surrogate.mean, sizes, torch.cat(rows),
                             {**surrogate.metrics, "appended_options": {k: sizes[k] - surrogate.slot_sizes[k] for k in sizes}})


def identity_loss(embed, photo_embedding: torch.Tensor):
    """Eq. 5 as the search takes it: (x, probs) -> (B,) 1 - cos(embed(x, p), e_photo); `embed` is the
    surrogate, or an identity network on the candidate's render."""
    def loss(x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        return 1 - torch.cosine_similarity(embed(x, probs), photo_embedding.to(x), dim=-1)
    if isinstance(embed, IdentitySurrogate):  # the search's preconditioner takes it (iterative.search)
        loss.curvature = cosine_curvature(embed, photo_embedding)
    return loss


def cosine_curvature(surrogate: IdentitySurrogate, photo_embedding: torch.Tensor):
    """(x, probs) -> (B, N, N): the positive semi-definite part of the Hessian in x of 1 - cos(S(x, p), e) for the
    linear surrogate, c W (I - s s^T) W^T / |S|^2 (s = S / |S|, c the cosine clamped at 0, W the slider rows of
    its weight); the rest, (g s^T + s g^T) / |S|^2 with g = e / |e| - c s, is indefinite and small near the photo."""
    N = len(surrogate.continuous_names)

    def curvature(x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            W = surrogate.weight[:N].to(x)
            s = surrogate(x, probs)
            length = s.norm(dim=-1).clamp_min(1e-12)
            cos = torch.cosine_similarity(s, photo_embedding.to(x), dim=-1).clamp_min(0.0)
            Wu = (s / length[:, None]) @ W.T  # (B, N)
            return (cos / length ** 2)[:, None, None] * (W @ W.T - Wu[:, :, None] * Wu[:, None, :])
    return curvature


def photo_mean_descriptor(descriptors: np.ndarray, people) -> np.ndarray:
    """Mean of per-person mean descriptors (a person with many photos does not pull it)."""
    descriptors, people = np.asarray(descriptors, np.float64), np.asarray(people)
    return np.stack([descriptors[people == p].mean(0) for p in sorted(set(people.tolist()))]).mean(0)


def save_photo_mean(path: Path, mean: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mean=np.asarray(mean, np.float32), meta=np.array(json.dumps(meta)))


_PHOTO_MEANS: dict = {}


def load_photo_mean(path: Path = PHOTO_MEAN) -> np.ndarray | None:
    """The packaged mean photo descriptor, or None when it is missing (the plain cosine term is used)."""
    key = str(path)
    if key not in _PHOTO_MEANS:
        _PHOTO_MEANS[key] = np.load(path)["mean"].astype(np.float32) if Path(path).is_file() else None
    return _PHOTO_MEANS[key]


def render_domain_loss(embed, photo_embedding: torch.Tensor, photo_mean: torch.Tensor, render_mean: torch.Tensor):
    """Eq. 5 across the photo/render gap: (x, probs) -> (B,) squared distance between the candidate's descriptor
    and the photo's moved into the renders' place (photo - mean photo + mean render). Why not the cosine to the
    raw photo: every render sits on the same side of every photo (shading, no skin texture), so that cosine
    mostly pulls all renders the same way, toward the photos' common place, and renders of different people
    end nearest the same few photos; this target keeps only what sets the person apart from the mean photo."""
    target = (photo_embedding - photo_mean + render_mean).detach()

    def loss(x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((embed(x, probs) - target.to(x)) ** 2).sum(-1)
    return loss


def distinct_loss(embed, photo_embedding: torch.Tensor, photo_mean: torch.Tensor, render_mean: torch.Tensor):
    """What sets this person apart, as far as the photo shows it: (x, probs) -> (B,) a squared hinge, 1 at the mean
    face and 0 once the candidate's descriptor has moved from the mean face's along u = (photo - mean photo) / |..|
    by as much as the photo lies from the mean photo. Why: the cosine to the photo is dominated by what every
    render shares with every photo, so renders of different people end nearest the same few photos (hubs, the
    ones near the photos' mean); this term asks only for the person's own direction away from the mean, in the
    renders' place, and stops there (no caricature past the photo)."""
    direction = (photo_embedding - photo_mean).detach()
    reach = direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    unit, reach = direction / reach, reach[..., 0]

    def loss(x: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
        along = ((embed(x, probs) - render_mean.to(x)) * unit.to(x)).sum(-1)
        return (torch.relu(reach.to(x) - along) / reach.to(x)) ** 2
    return loss


def fit_identity_surrogate(model, count: int, spread: float, ridge: float, render_size: int, seed: int,
                           cache_folder: Path | None, validation_fraction: float = 0.1,
                           progress=None) -> IdentitySurrogate:
    """Ridge regression of the render's dlib descriptor on engine samples (model: an EngineFaceModel).
    Samples whose render gave no descriptor (all zeros) are left out and counted."""
    from face2param.translator.samples import identity_embeddings, sample_parameters, slot_probabilities

    spec = model.spec
    mean = spec.defaults().continuous_vector(spec, model.engine.device)
    generator = torch.Generator().manual_seed(seed)
    x, slots = sample_parameters(spec, mean, count, spread, generator)
    descriptors = identity_embeddings(model, x, slots, render_size, cache_folder, progress=progress).double()
    probs = slot_probabilities(spec, slots)
    slot_sizes = {s.name: len(s.options) for s in spec.discrete if s.name in COLOUR_SLOT_INPUTS}
    surrogate = IdentitySurrogate(spec.continuous_names, mean.double(), slot_sizes,
                                  torch.zeros(0, dtype=torch.float64))
    ok = descriptors.norm(dim=1) > 0
    features = surrogate.features(x.double(), {k: v.double() for k, v in probs.items()})[ok]
    descriptors = descriptors[ok]
    held = max(1, int(round(validation_fraction * len(features))))
    train_f, train_d, val_f, val_d = features[:-held], descriptors[:-held], features[-held:], descriptors[-held:]
    gram = train_f.T @ train_f + ridge * torch.eye(train_f.shape[1], dtype=train_f.dtype, device=train_f.device)
    weight = torch.linalg.solve(gram, train_f.T @ train_d)
    predicted = val_f @ weight
    residual = ((predicted - val_d) ** 2).sum()
    spread_total = ((val_d - train_d.mean(0)) ** 2).sum()
    metrics = {
        "samples": int(count), "failed_descriptors": int((~ok).sum()), "heldout": int(held),
        "spread": spread, "ridge": ridge, "render_size": render_size, "seed": seed,
        "heldout_r2": round(float(1 - residual / spread_total), 4),
        "heldout_cosine": round(float(torch.cosine_similarity(predicted, val_d).mean()), 4),
        "heldout_cosine_of_mean_descriptor": round(float(torch.cosine_similarity(
            train_d.mean(0, keepdim=True), val_d).mean()), 4),
    }
    return IdentitySurrogate(spec.continuous_names, mean.float(), slot_sizes, weight.float(), metrics)


def train_identity_surrogate(config, out_path: Path | None = None, progress=None) -> Path:
    """`avatar train face2param --identity`: fit the surrogate for the configured (differentiable) engine
    and write it (default: $AVATAR_DATA_DIR/face2param/identity/surrogate.npz, preferred over the packaged)."""
    import time

    from avatarclip_core.paths import data_dir
    from face2param.engines.base import DifferentiableEngine
    from face2param.methods.fit import load_engine
    from face2param.methods.iterative import EngineFaceModel

    engine = load_engine(config)
    if not isinstance(engine, DifferentiableEngine):
        raise UserInputError("the identity surrogate is fitted on a differentiable engine's renders; a black-box "
                             "engine is fitted through its imitator (`avatar train face2param --imitator`)")
    cfg = config.identity_surrogate
    started = time.perf_counter()
    step = (lambda fraction: progress("describe renders", fraction, "")) if progress else None
    surrogate = fit_identity_surrogate(EngineFaceModel(engine, config.iterative.render_size), cfg.samples, cfg.spread,
                                       cfg.ridge, cfg.render_size, config.seed, data_dir() / "cache" / "face2param_identity",
                                       cfg.validation_fraction, step)
    surrogate.metrics["fit_seconds"] = round(time.perf_counter() - started, 1)
    out_path = out_path or trained_surrogate_path()
    surrogate.save(out_path)
    return out_path
