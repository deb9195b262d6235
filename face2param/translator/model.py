"""The translator network T and its input features.

Input: the face's 68 iBUG (+ 478 mediapipe) landmarks, each set similarity-aligned (Umeyama) onto the
engine's average face in units of its eye distance, minus that average face; skin and hair colour
cues; and (OneShotConfig.identity_features) the face's 128-d dlib identity descriptor, which the photo
analysis computes anyway. Features are standardised with statistics of the training samples (stored in
the network).
Network (Table 4, scaled by OneShotConfig): FC to `hidden`, `blocks` residual attention blocks
(FC-expand, FC back, squeeze-excitation gate, residual add), then two heads: coefficients of the facial
prior (Eq. 11-12: x = mean + c @ components; prior.py) for the continuous sliders, and per-slot logits of the colour slots (probabilities softmax(beta * logits)).
The slot head reads only the standardised colour cues (meta.json slot_inputs = "colours"): fed the
trunk's 1226 features it memorised the 1800 training samples through landmarks and identity (train
accuracy 1.0, held-out skin_tone 0.58 / hair_colour 0.65, while nearest-palette on the same colours
gets 0.97 / 0.89); artifacts without slot_inputs keep the old head on the trunk."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from torch import nn

from face2param.config import OneShotConfig
from face2param.methods.losses import eye_distance, similarity_fit

WEIGHTS, META = "translator.pt", "meta.json"
COLOUR_KEYS = ("skin", "hair")  # colour cues the translator reads (eye colour: too few pixels)
SLOT_OF_COLOUR = {"skin": "skin_tone", "hair": "hair_colour"}
IDENTITY_SIZE = 128  # dlib descriptor
SLOT_HIDDEN = 64  # the colour-only slot head's hidden width


class TranslatorArtifactError(ValueError):
    """A translator folder whose weights and meta.json do not fit together."""


def normalised_reference(points: torch.Tensor) -> torch.Tensor:
    """(L, 2) -> centred, in units of the 68-point eye distance when L == 68, else of the rms radius."""
    centred = points - points.mean(0)
    unit = eye_distance(points[None])[0] if points.shape[0] == 68 else centred.norm(dim=-1).pow(2).mean().sqrt()
    return centred / unit


def aligned_offsets(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, L, 2) pixel landmarks -> (B, L*2): similarity-aligned onto `reference` (L, 2), minus it."""
    moved = similarity_fit(points.to(reference.dtype), reference.expand(points.shape[0], -1, -1))
    return (moved - reference).flatten(1)


def face_features(landmarks: dict[str, torch.Tensor], colours: dict[str, torch.Tensor],
                  references: dict[str, torch.Tensor], colour_fallback: dict[str, torch.Tensor],
                  identity: torch.Tensor | None = None) -> torch.Tensor:
    """landmarks scheme -> (B, L, 2) pixels, colours key -> (B, 3) in [0, 1], identity (B, 128) dlib
    descriptors (None: a translator without identity features) -> (B, F) raw features.
    Every scheme in `references` must be present; a missing colour uses `colour_fallback` (the mean)."""
    B = landmarks["ibug68"].shape[0]
    parts = [aligned_offsets(landmarks[s], ref) for s, ref in references.items()]
    for key in COLOUR_KEYS:
        value = colours.get(key)
        parts.append(colour_fallback[key].expand(B, 3) if value is None else value.to(parts[0]))
    if identity is not None:
        parts.append(identity.to(parts[0]).reshape(B, IDENTITY_SIZE))
    return torch.cat(parts, 1)


def features_from_targets(targets: list, meta: dict, buffers: dict[str, torch.Tensor], device
                          ) -> tuple[torch.Tensor, list[str]]:
    """FitTargets (a photo's analysis, or a render's) -> ((B, F) raw features, warnings). A missing colour
    or identity descriptor is replaced by the training samples' mean (with a warning); a translator that
    reads the 478-point mesh needs it (TranslatorArtifactError names the gap)."""
    import numpy as np

    def stacked(values, columns):
        return torch.as_tensor(np.stack([np.asarray(v, dtype=np.float64)[:, :columns] if columns else v
                                         for v in values]), dtype=torch.float32, device=device)

    warnings = []
    landmarks = {"ibug68": stacked([t.landmarks_68 for t in targets], 2)}
    if "mediapipe478" in meta["references"]:
        if any(t.landmarks_478 is None for t in targets):
            raise TranslatorArtifactError("the one-shot translator needs the photo's 478-point face mesh, "
                                          "which this face analysis lacks")
        landmarks["mediapipe478"] = stacked([t.landmarks_478 for t in targets], 2)
    colours = {}
    for key in COLOUR_KEYS:
        if any(getattr(t, key) is None for t in targets):
            warnings.append(f"no {key} colour was measured: the translator used the average face's")
        else:
            colours[key] = stacked([getattr(t, key) for t in targets], 0)
    identity = None
    if meta.get("identity_features"):
        if any(t.embedding is None for t in targets):
            warnings.append("no identity descriptor was computed (faces.compute_embedding is off): the "
                            "translator used the training samples' mean descriptor")
            identity = buffers["mean_identity"].expand(len(targets), -1)
        else:
            identity = stacked([t.embedding for t in targets], 0)
    references = {s: buffers[f"ref_{s}"] for s in meta["references"]}
    fallback = {k: buffers[f"colour_{k}"] for k in COLOUR_KEYS}
    return face_features(landmarks, colours, references, fallback, identity), warnings


def feature_count(meta: dict) -> int:
    """How many raw features the translator described by meta.json reads."""
    landmarks = sum(2 * len(points) for points in meta["references"].values())
    return landmarks + 3 * len(COLOUR_KEYS) + (IDENTITY_SIZE if meta.get("identity_features") else 0)


def colour_columns(meta: dict) -> slice:
    """Where face_features puts the colour cues: after the landmark offsets, before the identity."""
    start = sum(2 * len(points) for points in meta["references"].values())
    return slice(start, start + 3 * len(COLOUR_KEYS))


class ResidualAttentionBlock(nn.Module):
    """Table 4: FC(h, e*h) - FC(e*h, h) - SE(h, r, h) gate - residual add."""

    def __init__(self, hidden: int, expansion: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(hidden, hidden * expansion), nn.ReLU(inplace=True),
                                  nn.Linear(hidden * expansion, hidden))
        squeezed = max(hidden // reduction, 1)
        self.attention = nn.Sequential(nn.Linear(hidden, squeezed), nn.ReLU(inplace=True),
                                       nn.Linear(squeezed, hidden), nn.Sigmoid())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.body(h)
        return torch.relu(h + y * self.attention(y))


class TranslatorNet(nn.Module):
    def __init__(self, features: int, param_mean: torch.Tensor, components: torch.Tensor,
                 slots: dict[str, int], config: OneShotConfig, slot_columns: slice | None = None):
        """slot_columns: the (colour) feature columns the slot head reads, through its own small MLP;
        None: the old head, a linear layer on the trunk (artifacts trained before slot_inputs)."""
        super().__init__()
        self.beta = config.beta
        self.slot_sizes = dict(slots)
        self.slot_columns = slot_columns
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.register_buffer("param_mean", param_mean.clone())  # (N,)
        self.register_buffer("components", components.clone())  # (K, N); K = 0: predict x directly
        self.stem = nn.Sequential(nn.Linear(features, config.hidden), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualAttentionBlock(config.hidden, config.expansion, config.se_reduction)
                                      for _ in range(config.blocks)])
        out = components.shape[0] or param_mean.shape[0]
        self.coefficients = nn.Linear(config.hidden, out)
        nn.init.zeros_(self.coefficients.weight)  # start at the average face
        nn.init.zeros_(self.coefficients.bias)
        if not slots:
            self.slot_logits = None
        elif slot_columns is None:
            self.slot_logits = nn.Linear(config.hidden, sum(slots.values()))
        else:
            width = slot_columns.stop - slot_columns.start
            self.slot_logits = nn.Sequential(nn.Linear(width, SLOT_HIDDEN), nn.ReLU(inplace=True),
                                             nn.Linear(SLOT_HIDDEN, sum(slots.values())))

    def forward(self, raw_features: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, F) raw features -> (B, N) sliders in [0, 1], slot -> (B, K) logits."""
        z = (raw_features - self.feature_mean) / self.feature_std
        h = self.blocks(self.stem(z))
        c = self.coefficients(h)
        x = self.param_mean + (c @ self.components if self.components.shape[0] else c)  # Eq. 11-12
        slot_in = h if self.slot_columns is None else z[:, self.slot_columns]
        logits, out, start = self.slot_logits(slot_in) if self.slot_logits is not None else None, {}, 0
        for name, size in self.slot_sizes.items():
            out[name] = logits[:, start:start + size]
            start += size
        return x.clamp(0, 1), out

    def probabilities(self, logits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(self.beta * v, -1) for k, v in logits.items()}


def save_translator(net: TranslatorNet, out_dir: Path, meta: dict) -> None:
    """translator.pt (state dict) + meta.json (what rebuilds the network and its features)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, out_dir / WEIGHTS)
    (out_dir / META).write_text(json.dumps(meta, indent=2))


def load_translator(folder: Path, device) -> tuple[TranslatorNet, dict, dict[str, torch.Tensor]]:
    """(net in eval mode on device, meta, buffers: references, colour and identity fallbacks).
    Raises TranslatorArtifactError when the files are unreadable or do not describe one network."""
    try:
        meta = json.loads((Path(folder) / META).read_text())
        state = torch.load(Path(folder) / WEIGHTS, map_location=device, weights_only=True)
        config = OneShotConfig(**meta["oneshot"])
        features = feature_count(meta)
        if state["feature_mean"].shape[0] != features:
            raise TranslatorArtifactError(f"its weights read {state['feature_mean'].shape[0]} features, "
                                          f"its meta.json describes {features}")
        slot_inputs = meta.get("slot_inputs", "trunk")
        if slot_inputs not in ("trunk", "colours"):
            raise TranslatorArtifactError(f"unknown slot_inputs {slot_inputs!r} in its meta.json")
        net = TranslatorNet(features, state["param_mean"], state["components"],
                            {k: int(v) for k, v in meta["slots"].items()}, config,
                            colour_columns(meta) if slot_inputs == "colours" else None)
        net.load_state_dict(state)
    except TranslatorArtifactError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as exc:  # torn, foreign, old
        raise TranslatorArtifactError(f"{type(exc).__name__}: {exc}") from exc
    net.to(device).eval()
    extra = {f"ref_{s}": torch.tensor(meta["references"][s], dtype=torch.float32, device=device) for s in meta["references"]}
    extra.update({f"colour_{k}": torch.tensor(v, dtype=torch.float32, device=device) for k, v in meta["mean_colours"].items()})
    if meta.get("identity_features"):
        extra["mean_identity"] = torch.tensor(meta["mean_identity"], dtype=torch.float32, device=device)
    return net, meta, extra
