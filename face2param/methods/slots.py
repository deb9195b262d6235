"""Discrete assets (hair style, beard, eyebrows, glasses) from the photo, by analysis-by-synthesis.

After the continuous fit, each option of a slot is rendered on the mean face (cached; or on the fitted
face for slots.fitted_face_methods) with the fitted colours; the SAME appearance descriptors
(faces/appearance.py) are measured on the photo and on every render, the options are scored by
softmax(-beta * distance) (F2P's relaxation of discrete choices; distances in units of the options'
typical separation) and the argmax is taken when its probability reaches min_confidence. Otherwise
the slot keeps the engine default and the losses say why: no silent guess. The one-shot path renders
on the mean face (in the fitted colours), so its engine descriptors are cached per colour combination.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from face2param.config import SlotChoiceConfig
from face2param.engines.base import EngineParams, engine_memo
from face2param.faces.appearance import AppearanceView, describe, polygon_mask
from face2param.faces.landmarks import FACE_OVAL
from face2param.faces.regions import RegionConfig, analyse_regions

SLOT_DESCRIPTORS = {"hair_style": "hair", "beard": "beard", "eyebrows": "brows", "glasses": "glasses"}
RENDER_COLOURS = ("skin_tone", "hair_colour")  # the fitted colours the mean-face renders take (eyes: too small)


@dataclass
class SlotChoice:
    option: str
    probabilities: dict[str, float]
    confidence: float  # probability of the best option
    chosen: bool  # False: kept the default (see note)
    note: str = ""

    def to_json(self) -> dict:
        out = {"option": self.option, "confidence": round(self.confidence, 4), "chosen": self.chosen,
               "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()}}
        return {**out, "note": self.note} if self.note else out


def engine_descriptors(engine, params: EngineParams, slot: str, config: SlotChoiceConfig,
                       regions: RegionConfig) -> np.ndarray:
    """(options, D) descriptors of engine renders of every option of `slot` on `params` (the other
    slots as they are in params), cached per engine, face, other slots and settings."""
    spec = engine.spec
    params = params.validated(spec)
    others = tuple(sorted((k, v) for k, v in params.discrete.items() if k != slot))
    face = tuple(np.round(params.continuous_vector(spec).numpy(), 4).tolist())
    memo = engine_memo(engine, "slot_descriptors")
    key = (slot, face, others, config.render_size, repr(config.descriptors), repr(regions))
    if key not in memo:
        compute = functools.partial(_render_descriptors, engine, params, slot, config, regions)
        memo[key] = (_disk_cached((repr(engine.config),) + key, compute)
                     if type(engine).__name__ == "AnnyFaceEngine" else compute())
    return memo[key]


@functools.lru_cache(maxsize=1)
def _code_key() -> str:
    """Changes with the engine's, the face analysis's or this module's code and with Anny/mediapipe."""
    from avatarclip_core.child_json import ROOT, source_key

    return source_key([ROOT / "face2param" / "engines", ROOT / "face2param" / "faces"], ["anny", "mediapipe"]) + \
        hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]


def _disk_cached(key: tuple, compute) -> np.ndarray:
    """The renders of a colour pair cost ~0.7-1.5 s once; kept in the user cache folder so a fresh worker
    process, or a new data folder, answers its first photo of that pair in milliseconds too (bundled engine
    only: its code and data identify it; another engine's descriptors stay in memory)."""
    from avatarclip_core.paths import user_cache_dir

    path = user_cache_dir("face2param_slots") / f"{hashlib.sha256((_code_key() + repr(key)).encode()).hexdigest()[:24]}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):  # a damaged cache file is recomputed, not trusted
            pass
    value = compute()
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
    np.save(tmp, value)
    os.replace(tmp, path)
    return value


def _render_descriptors(engine, params, slot, config, regions) -> np.ndarray:
    spec, size = engine.spec, config.render_size
    options = spec.slot(slot).options
    K, device = len(options), engine.device
    x = params.continuous_vector(spec, device)[None].expand(K, -1)
    probs = {k: v[None].expand(K, -1).clone() for k, v in params.discrete_one_hot(spec, device).items()}
    probs[slot] = torch.eye(K, device=device)
    with torch.no_grad():
        images = engine.render_tensor(x, probs, size, with_alpha=True).permute(0, 2, 3, 1).cpu().numpy()
        mesh = engine.project_landmarks(engine.landmarks_tensor(x[:1], "mediapipe478"), size)[0].cpu().numpy()
    rows = []
    for image in images:
        pixels = (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
        view = analyse_regions(pixels, mesh, regions, person=image[..., 3]).view
        rows.append(describe(view, config.descriptors)[SLOT_DESCRIPTORS[slot]])
    return np.stack(rows)


def _photo_problem(view: AppearanceView | None, config: SlotChoiceConfig) -> str:
    """Why the photo's appearance cannot choose assets ('' when it can)."""
    if view is None:
        return "no photo appearance (a face analysis without regions, or a synthetic target)"
    if view.greyscale:
        return "the photo is greyscale: hair and skin cannot be told apart by colour"
    oval = polygon_mask(view.crop.shape[:2], np.asarray(view.points)[list(FACE_OVAL), :2])
    if (view.person & oval).sum() < config.min_person_fraction * max(int(oval.sum()), 1):
        return "the person segmentation missed the face"
    return ""


def _render_base(spec, params: EngineParams, wanted: list[str], on_fitted_face: bool) -> EngineParams:
    """What the option renders of `wanted` slots are made on. The fast path renders the mean face in
    the fitted colours (cached per colour combination; the default colours instead lost half the beard
    accuracy on renders: 0.6 -> 0.3); options are compared with the other asset slots at their
    defaults: each slot on its own."""
    base = params if on_fitted_face else EngineParams(
        {}, {s: params.discrete[s] for s in RENDER_COLOURS if s in params.discrete}).validated(spec)
    return EngineParams(base.continuous, {**base.discrete, **{s: spec.slot(s).default for s in wanted}})


def prefill_slot_descriptors(engine, config: SlotChoiceConfig, regions: RegionConfig, progress=None) -> int:
    """Render and cache (memory and disk) the option descriptors of every colour combination the
    mean-face path can meet, so no photo pays the first use of its colours (~0.6-0.9 s once per
    combination, the slowest part of a first iterative fit: measured 0.44 s median / 0.72 s max over 61
    photos with the cache filled, up to 1.4 s without). Returns the number of combinations."""
    spec = engine.spec
    wanted = [s for s in config.slots if s in spec.slot_names and s in SLOT_DESCRIPTORS]
    colours = [s for s in RENDER_COLOURS if s in spec.slot_names]
    combinations = list(itertools.product(*(spec.slot(s).options for s in colours)))
    defaults = spec.defaults().validated(spec)
    for done, combination in enumerate(combinations):
        params = EngineParams(defaults.continuous, {**defaults.discrete, **dict(zip(colours, combination))})
        base = _render_base(spec, params, wanted, on_fitted_face=False)
        for slot in wanted:
            engine_descriptors(engine, base, slot, config, regions)
        if progress is not None:
            progress((done + 1) / len(combinations), ", ".join(combination))
    return len(combinations)


def choose_slots(view: AppearanceView | None, engine, params: EngineParams, config: SlotChoiceConfig,
                 regions: RegionConfig, on_fitted_face: bool) -> tuple[EngineParams, dict]:
    """(params with the chosen slots, {"slots": slot -> SlotChoice json, "slot_choice_seconds": s})."""
    started = time.perf_counter()
    spec = engine.spec
    params = params.validated(spec)
    wanted = [s for s in config.slots if s in spec.slot_names and s in SLOT_DESCRIPTORS]
    problem = _photo_problem(view, config) if wanted else ""
    photo = {} if problem else describe(view, config.descriptors)
    base = _render_base(spec, params, wanted, on_fitted_face)
    chosen, report = dict(params.discrete), {}
    for slot in wanted:
        default = spec.slot(slot).default
        if problem:
            choice = SlotChoice(default, {}, 0.0, False, f"kept the default: {problem}")
        else:
            choice = _score(slot, photo[SLOT_DESCRIPTORS[slot]], engine_descriptors(engine, base, slot, config, regions),
                            spec.slot(slot).options, default, config)
        chosen[slot] = choice.option
        report[slot] = choice.to_json()
    seconds = round(time.perf_counter() - started, 4)
    return EngineParams(params.continuous, chosen), {"slots": report, "slot_choice_seconds": seconds}


def _score(slot, photo: np.ndarray, options_desc: np.ndarray, options: list[str], default: str,
           config: SlotChoiceConfig) -> SlotChoice:
    if slot == "hair_style":  # the last entry is how much of the hair grid the photo shows
        seen, photo, options_desc = photo[-1], photo[:-1], options_desc[:, :-1]
        if seen < config.min_hair_grid_seen:
            return SlotChoice(default, {}, 0.0, False, f"kept the default: the photo shows {seen:.0%} of the "
                              f"area around the head (needs {config.min_hair_grid_seen:.0%})")
    distance = np.linalg.norm(options_desc - photo[None], axis=1)
    pairwise = np.linalg.norm(options_desc[:, None] - options_desc[None], axis=-1)
    separation = float(np.median(pairwise[np.triu_indices(len(options), 1)]))
    logits = -config.beta * distance / max(separation, 1e-6)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    best = int(probs.argmax())
    table = dict(zip(options, probs.tolist()))
    if probs[best] < config.min_confidence:
        return SlotChoice(default, table, float(probs[best]), False,
                          f"kept the default: {options[best]} only {probs[best]:.0%} likely "
                          f"(needs {config.min_confidence:.0%})")
    return SlotChoice(options[best], table, float(probs[best]), True)
