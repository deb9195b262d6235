"""Photo attributes -> the engine's phenotypes and discrete slots, and the constraints of the fit.

fit() calls `attribute_constraints` before the method runs: confident attributes (and whatever the user
fixed) become fixed phenotype values (gender, age) that the iterative search holds and that replace the
one-shot translator's, and slot values (skin tone, hair colour, hair style, beard, glasses) that take
precedence over the appearance-descriptor choice of methods/slots.py. The landmark/identity fit then
only shapes the face within them. `apply_slots` records per slot where its value came from
(user / attribute / descriptor / default) for params.json's `attributes` block.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from face2param.engines.base import EngineParams
from face2param.faces.attribute_values import fixable_attributes, fixed_slot_options  # noqa: F401  (one home)
from face2param.faces.attributes import (ATTRIBUTE_VALUES, AttributeConfig, FaceAttributes, UnknownAttributeError, apply_fixed,
                                         estimate_attributes, validate_fixed)

GENDER_VALUE = {"male": 0.0, "female": 1.0}  # Anny: 0 = male, 1 = female
AGE_VALUE = {"child": 0.4, "young_adult": 0.6, "adult": 0.67, "senior": 0.9}  # Anny: 0.5 teen, 0.67 adult, 1 elderly
BEARD_STYLE = {"none": "none", "short": "stubble", "full": "full"}
SLOT_ATTRIBUTES = {"skin_tone": "skin_tone", "hair_colour": "hair_colour", "hair_style": "hair_length",
                   "beard": "beard", "glasses": "glasses"}


@dataclass
class Constraints:
    continuous: dict[str, float] = field(default_factory=dict)  # held during the fit
    discrete: dict[str, str] = field(default_factory=dict)  # win over the descriptor choice
    sources: dict[str, str] = field(default_factory=dict)  # parameter -> user | attribute
    require_glasses: bool = False  # glasses seen: any frame but none
    attributes: FaceAttributes | None = None

    def to_json(self) -> dict:
        out = {} if self.attributes is None else self.attributes.to_json()
        return {"detected": out, "set": {**{k: round(v, 4) for k, v in self.continuous.items()}, **self.discrete},
                "sources": dict(self.sources)}


def attribute_constraints(target, engine, fixed: dict | None = None, config: AttributeConfig | None = None
                          ) -> Constraints:
    """Detect the attributes of the target photo, merge the user's fixed values (checked: an unknown key or
    value raises UnknownAttributeError) and turn the confident ones into constraints."""
    config = config or AttributeConfig()
    spec = engine.spec
    checked = validate_fixed(fixed, fixed_slot_options(spec))
    if "skin_tone" in checked and "skin_tone" in spec.slot_names and checked["skin_tone"] not in spec.slot("skin_tone").options:
        raise UnknownAttributeError(f"unknown value {checked['skin_tone']!r} for skin_tone; choose one of "
                                    f"{', '.join(spec.slot('skin_tone').options)}")
    attributes = estimate_attributes(getattr(target, "appearance", None), getattr(target, "embedding", None),
                                     config, rendered_skin_ita(engine))
    attributes = apply_fixed(attributes, {k: v for k, v in checked.items()
                                          if k == "skin_tone" or v in ATTRIBUTE_VALUES.get(k, ())})
    out = Constraints(attributes=attributes)
    names = set(spec.continuous_names)

    def confident(name):
        a = attributes.attributes.get(name)
        return a is not None and a.value is not None and (a.source == "user" or a.confidence >= config.min_confidence)

    def source(name):
        return "user" if attributes[name].source == "user" else "attribute"

    if "gender" in names and attributes["gender"].value is not None and (
            attributes["gender"].source == "user" or attributes["gender"].confidence >= config.gender_min_confidence):
        a = attributes["gender"]
        # a confident photo sets gender firmly but not at the model's extreme, unless the user said so
        strength = 1.0 if a.source == "user" else float(np.clip(2 * a.confidence - 1, 0, 0.9))
        out.continuous["gender"] = 0.5 + (GENDER_VALUE[a.value] - 0.5) * strength
        out.sources["gender"] = source("gender")
    if "age" in names and getattr(target, "appearance", None) is not None:  # a photo: never a child by default
        a = attributes["age_band"]
        out.continuous["age"] = AGE_VALUE[a.value if confident("age_band") else "adult"]
        out.sources["age"] = source("age_band") if confident("age_band") else "neutral"
    slot_names = set(spec.slot_names)
    if "skin_tone" in slot_names and confident("skin_tone"):
        out.discrete["skin_tone"], out.sources["skin_tone"] = attributes["skin_tone"].value, source("skin_tone")
    if "hair_colour" in slot_names and confident("hair_colour"):
        option = _hair_colour_option(attributes["hair_colour"].value, spec.slot("hair_colour").options)
        if option:
            out.discrete["hair_colour"], out.sources["hair_colour"] = option, source("hair_colour")
    if "hair_style" in slot_names and confident("hair_length"):
        option = _hair_style(attributes, spec.slot("hair_style").options)
        if option:
            out.discrete["hair_style"], out.sources["hair_style"] = option, source("hair_length")
    if "beard" in slot_names and confident("beard"):
        option = _beard_style(attributes, spec.slot("beard").options)
        if option:
            out.discrete["beard"], out.sources["beard"] = option, source("beard")
    if "glasses" in slot_names and confident("glasses"):
        if attributes["glasses"].value == "no":
            out.discrete["glasses"] = "none"
        else:  # the descriptor chooses the frame's shape; it may not choose none
            out.require_glasses = True
        out.sources["glasses"] = source("glasses")
    for key, value in checked.items():  # slot options fixed by the user win over everything
        # (an attribute value on a slot's name, e.g. glasses "yes" or beard "short", went the attribute way above)
        if key in slot_names and value in spec.slot(key).options:
            out.discrete[key], out.sources[key] = value, "user"
    return out


def _hair_colour_option(value: str, options: list[str]) -> str | None:
    for candidate in {"white": ("white", "platinum", "grey"), "grey": ("grey", "white")}.get(value, (value,)):
        if candidate in options:
            return candidate
    return None


def _first(options: list[str], *candidates: str) -> str | None:
    return next((c for c in candidates if c in options), None)


def _hair_style(attributes: FaceAttributes, options: list[str]) -> str | None:
    length = attributes["hair_length"]
    if length.value == "bald":
        return _first(options, "bald")
    if length.value == "short":
        return _first(options, "short", "buzz", "side_part")
    if length.source == "prior":  # a woman without hair below the jaw: tied back
        return _first(options, "ponytail", "bun", "long_straight", "long")
    return _first(options, "long_straight", "long", "long_wavy", "shoulder", "bob")


def _beard_style(attributes: FaceAttributes, options: list[str]) -> str | None:
    beard, moustache = attributes["beard"].value, attributes["moustache"].value
    if beard == "none" and moustache not in (None, "none"):
        return _first(options, "moustache", "stubble")
    return _first(options, BEARD_STYLE.get(beard, beard), "stubble" if beard == "short" else "none")


def hold_continuous(params: EngineParams, constraints: Constraints) -> EngineParams:
    """A method's result with the constrained phenotypes put back (one-shot, or any method's output)."""
    if not constraints.continuous:
        return params
    return EngineParams({**params.continuous, **constraints.continuous}, dict(params.discrete))


def apply_slots(params: EngineParams, constraints: Constraints, slot_report: dict | str | None,
                glasses_options: tuple[str, ...] = ()) -> tuple[EngineParams, dict]:
    """Constrained slots replace the descriptor choice; -> (params, parameter -> source)."""
    discrete = dict(params.discrete)
    sources = {}
    # the slot step reports a dict per slot, or one sentence when it could not run (e.g. an engine
    # without coverage/landmarks, such as a black box behind an imitator)
    for slot, chosen in (slot_report if isinstance(slot_report, dict) else {}).items():
        if isinstance(chosen, dict):
            sources[slot] = "descriptor" if chosen.get("chosen") else "default"
    for slot, value in constraints.discrete.items():
        discrete[slot] = value
        sources[slot] = constraints.sources.get(slot, "attribute")
    if constraints.require_glasses and discrete.get("glasses", "none") == "none" and "glasses" not in constraints.discrete:
        discrete["glasses"] = next((o for o in glasses_options if o != "none"), discrete.get("glasses"))
        sources["glasses"] = constraints.sources.get("glasses", "attribute")
    for name in constraints.continuous:
        sources[name] = constraints.sources.get(name, "attribute")
    return EngineParams(dict(params.continuous), discrete), sources


def _rendered_skin_ita_cached(engine) -> dict[str, float]:
    """~1-7 s of renders once per engine; the bundled engine's values are kept on disk with the slot
    descriptors (same cache key rules: engine config, engine/face-analysis code, Anny/mediapipe versions)."""
    from face2param.engines.base import engine_memo

    memo = engine_memo(engine, "skin_ita")
    if "values" not in memo:
        memo["values"] = _rendered_skin_ita(engine)
    return memo["values"]


def _rendered_skin_ita(engine) -> dict[str, float]:
    options = list(engine.spec.slot("skin_tone").options)
    if type(engine).__name__ == "AnnyFaceEngine":
        from face2param.methods.slots import _disk_cached

        values = _disk_cached(("skin_tone_ita", repr(engine.config), tuple(options)),
                              lambda: np.array(list(_render_skin_ita(engine).values())))
        return dict(zip(options, values.tolist()))
    return _render_skin_ita(engine)


def _render_skin_ita(engine) -> dict[str, float]:
    from face2param.faces.attribute_cues import measure_cues
    from face2param.faces.regions import RegionConfig, analyse_regions

    spec = engine.spec
    options = spec.slot("skin_tone").options
    size = 256
    K, device = len(options), getattr(engine, "device", "cpu")
    base = spec.defaults()
    x = base.continuous_vector(spec, device)[None].expand(K, -1)
    probs = {k: v[None].expand(K, -1).clone() for k, v in base.discrete_one_hot(spec, device).items()}
    probs["skin_tone"] = torch.eye(K, device=device)
    with torch.no_grad():
        images = engine.render_tensor(x, probs, size, with_alpha=True).permute(0, 2, 3, 1).cpu().numpy()
        mesh = engine.project_landmarks(engine.landmarks_tensor(x[:1], "mediapipe478"), size)[0].cpu().numpy()
    out = {}
    for option, image in zip(options, images):
        pixels = (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
        view = analyse_regions(pixels, mesh, RegionConfig(), person=image[..., 3]).view
        out[option] = measure_cues(view).skin_ita
    return out


def rendered_skin_ita(engine) -> dict[str, float] | None:
    """skin tone option -> ITA of the engine's render of it, measured like a photo (like for like: the
    palette's own ITA ignores the renderer's shading). None for an engine that cannot render tensors."""
    if "skin_tone" not in engine.spec.slot_names or not hasattr(engine, "render_tensor"):
        return None
    return _rendered_skin_ita_cached(engine)
