"""Photo attributes, each with a confidence: gender, age band, skin tone, hair colour and length, beard,
moustache, glasses. They set the engine's phenotypes and discrete slots before the landmark/identity fit
shapes the face (methods/attribute_slots.py).

How each is decided (cues: faces/attribute_cues.py, measured on the face analysis's crop/mask/mesh):
- gender: a linear discriminant on dlib's 128-d descriptor (artifacts/attributes/gender.npz: one
  direction + bias, trained by `train_gender` on person-balanced class means with a shrunk covariance;
  leave-one-person-out on faces-identity in its meta.json); a confident beard adds male evidence.
- skin tone: ITA angle of the white-balanced cheek/forehead median, mapped onto the palette's ITA.
- hair colour: L*a*b* rules (black / browns / auburn, red / blonde, platinum / grey, white by low chroma
  and lightness: a white-haired man is no blond).
- hair length: hair pixels beside the face AND below the jaw -> long; a skin-coloured smooth scalp ->
  bald; else short, except that a woman (confident gender) without visible hair below the jaw most
  often wears long hair tied back (the faces-identity photos of long-haired women show exactly that),
  so she gets long/tied-back at low confidence.
- beard: darkness of moustache / chin / jaw zones against the upper cheeks.
- glasses: a straight horizontal edge across the nose bridge AND under the eyes (both frame parts).
- age band: only grey/white hair says "senior"; otherwise "adult" at low confidence (no extreme).
Weak evidence gives the neutral value with a low confidence, never an extreme.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from face2param.faces.attribute_cues import AttributeCues, ita_degrees, measure_cues
# the vocabulary and the check of user-fixed values are plain data (the job API and the web use them)
from face2param.faces.attribute_values import (AGE_BANDS, ATTRIBUTE_VALUES, BEARDS, GENDERS, GLASSES,  # noqa: F401
                                               HAIR_COLOURS, HAIR_LENGTHS, MOUSTACHES, UnknownAttributeError,
                                               validate_fixed)
from face2param.faces.config import AttributeConfig

ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "artifacts" / "attributes"
NEUTRAL = {"gender": None, "age_band": "adult", "hair_length": "short", "hair_colour": None, "beard": "none",
           "moustache": "none", "glasses": "no", "skin_tone": None}


@dataclass
class Attribute:
    value: str | None  # None: not determined (the engine default stays)
    confidence: float  # 0-1: probability-like belief in `value`
    source: str = "photo"  # photo | prior | user
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"value": self.value, "confidence": round(float(self.confidence), 3), "source": self.source}
        if self.evidence:
            out["evidence"] = {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v)
                               for k, v in self.evidence.items()}
        return out


@dataclass
class FaceAttributes:
    attributes: dict[str, Attribute]
    cues: AttributeCues | None = None

    def __getitem__(self, name: str) -> Attribute:
        return self.attributes[name]

    def to_json(self) -> dict:
        out = {k: a.to_json() for k, a in self.attributes.items()}
        if self.cues is not None:
            out["cues"] = self.cues.to_json()
        return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


# ---- gender model ---------------------------------------------------------------------------------

def train_gender(descriptors: np.ndarray, female: np.ndarray, people: np.ndarray, shrinkage: float = 0.5) -> dict:
    """A linear discriminant (w, b) on dlib descriptors: class means of per-person means (a person with
    many photos does not dominate), covariance of all photos shrunk towards its mean variance.
    Scores are scaled so the two class means sit at -1 (male) and +1 (female)."""
    descriptors, female, people = np.asarray(descriptors, np.float64), np.asarray(female, bool), np.asarray(people)
    persons = sorted(set(people.tolist()))
    means = np.stack([descriptors[people == p].mean(0) for p in persons])
    labels = np.array([female[people == p][0] for p in persons])
    if labels.all() or not labels.any():
        raise ValueError("train_gender needs people of both genders")
    mf, mm = means[labels].mean(0), means[~labels].mean(0)
    cov = np.cov(descriptors.T)
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / len(cov) * np.eye(len(cov))
    w = np.linalg.solve(cov, mf - mm)
    b = -float((mf + mm) @ w) / 2
    half = float((mf - mm) @ w) / 2
    return {"w": w / half, "b": b / half}


_GENDER: dict = {}


def load_gender_model(folder: str | Path = "") -> dict | None:
    path = Path(folder) if folder else ARTIFACT_DIR
    key = str(path)
    if key not in _GENDER:
        npz = path / "gender.npz"
        if not npz.is_file():
            _GENDER[key] = None
        else:
            data = np.load(npz)
            _GENDER[key] = {"w": data["w"], "b": float(data["b"])}
    return _GENDER[key]


def gender_score(embedding: np.ndarray, model: dict) -> float:
    """> 0 female, < 0 male; +-1 at the training class means."""
    return float(np.asarray(embedding, np.float64) @ model["w"] + model["b"])


# ---- decisions ------------------------------------------------------------------------------------

def estimate_attributes(view, embedding: np.ndarray | None, config: AttributeConfig = AttributeConfig(),
                        skin_reference: dict | None = None, gender_model: dict | None = None) -> FaceAttributes:
    """Attributes of one analysed face: `view` is its AppearanceView (faces/regions.py), `embedding` its
    dlib descriptor. `skin_reference` (skin tone option -> ITA, e.g. of the engine's renders of each tone,
    methods/attribute_slots.rendered_skin_ita, or `palette_ita`) maps the skin onto the engine's tones."""
    if view is None:
        return FaceAttributes({k: Attribute(NEUTRAL[k], 0.0, "prior", {"why": "no photo appearance"})
                               for k in NEUTRAL})
    cues = measure_cues(view, config.cues)
    out: dict[str, Attribute] = {}
    beard, moustache = _beard(cues, config)
    out["beard"], out["moustache"] = beard, moustache
    out["gender"] = _gender(embedding, beard, config, gender_model)
    out["glasses"] = _glasses(cues, config)
    out["hair_colour"] = _hair_colour(cues, config)
    out["hair_length"] = _hair_length(cues, out["gender"], config)
    out["skin_tone"] = _skin_tone(cues, skin_reference)
    out["age_band"] = _age(out["hair_colour"], config)
    return FaceAttributes(out, cues)


def _gender(embedding, beard: Attribute, config: AttributeConfig, model: dict | None) -> Attribute:
    model = model if model is not None else load_gender_model(config.gender_artifact)
    logit, evidence = 0.0, {}
    if embedding is not None and model is not None and "unavailable" not in model:
        score = gender_score(embedding, model)
        logit += config.gender_temperature * score
        evidence["descriptor_score"] = score
    if beard.value in ("short", "full") and beard.confidence >= config.min_confidence:
        logit -= 3.0  # a beard: strong male evidence
        evidence["beard"] = beard.value
    if not evidence:
        return Attribute(None, 0.5, "prior", {"why": "no identity descriptor and no beard"})
    p_female = _sigmoid(logit)
    value = "female" if p_female >= 0.5 else "male"
    return Attribute(value, max(p_female, 1 - p_female), "photo", {**evidence, "p_female": p_female})


def _beard(cues: AttributeCues, config: AttributeConfig) -> tuple[Attribute, Attribute]:
    d = cues.beard_darkness
    score = float(np.mean([d["moustache"], d["chin"], d["jaw"]]))
    p = _sigmoid((score - config.beard_threshold) / config.beard_width)
    if p >= 0.5:
        beard = Attribute("full" if score >= config.full_beard_threshold else "short", p, "photo", {"darkness": score})
    else:
        beard = Attribute("none", 1 - p, "photo", {"darkness": score})
    pm = _sigmoid((d["moustache"] - config.moustache_threshold) / config.beard_width)
    if beard.value != "none":
        moustache = Attribute(beard.value, max(pm, p), "photo", {"darkness": d["moustache"]})
    elif pm >= 0.5:
        moustache = Attribute("short", pm, "photo", {"darkness": d["moustache"], "chin": d["chin"]})
    else:
        moustache = Attribute("none", 1 - pm, "photo", {"darkness": d["moustache"]})
    return beard, moustache


def _glasses(cues: AttributeCues, config: AttributeConfig) -> Attribute:
    edge = min(cues.glasses_edges["bridge"], cues.glasses_edges["under_eyes"])
    p = _sigmoid((edge - config.glasses_threshold) / config.glasses_width)
    return Attribute("yes" if p >= 0.5 else "no", max(p, 1 - p), "photo", {"edge": edge})


def _hair_colour(cues: AttributeCues, config: AttributeConfig) -> Attribute:
    if cues.greyscale:
        return Attribute(None, 0.0, "prior", {"why": "greyscale photo"})
    if cues.hair_lab is None:
        return Attribute(None, 0.0, "prior", {"why": "no hair colour seen (bald, covered or skin-coloured)"})
    lightness, a, b = cues.hair_lab
    chroma = math.hypot(a, b)
    ev = {"L": lightness, "a": a, "b": b}
    if lightness < config.black_lightness:
        return Attribute("black", _margin(config.black_lightness - lightness, 6), "photo", ev)
    if chroma < config.grey_chroma and b < 6 and lightness >= 40:  # neutral and light: grey or white, not blond
        value = "white" if lightness >= config.white_lightness else "grey"
        return Attribute(value, _margin(config.grey_chroma - chroma, 3), "photo", ev)
    if a > 12 and a > 0.5 * b:
        return Attribute("red" if lightness >= 45 else "auburn", _margin(a - 12, 4), "photo", ev)
    if lightness >= 50:
        value = "platinum" if lightness >= 70 and chroma < 14 else "blonde"
        return Attribute(value, _margin(lightness - 50, 6), "photo", ev)
    if lightness >= 32:
        return Attribute("brown", _margin(min(lightness - 32, 50 - lightness), 6), "photo", ev)
    return Attribute("dark_brown", _margin(min(lightness - config.black_lightness, 32 - lightness), 6), "photo", ev)


def _margin(distance: float, width: float) -> float:
    """Confidence from the distance to the nearest decision boundary: 0.5 on it, ~0.95 three widths in."""
    return _sigmoid(distance / width)


def _hair_length(cues: AttributeCues, gender: Attribute, config: AttributeConfig) -> Attribute:
    ev = {"below_jaw": cues.hair_below_jaw, "beside_face": cues.hair_beside_face, "view": cues.hair_view,
          "scalp_texture": cues.scalp_texture}
    long_evidence = min(cues.hair_below_jaw, cues.hair_beside_face)
    if long_evidence >= config.long_hair_fraction:
        return Attribute("long", _margin(long_evidence - config.long_hair_fraction, 0.05), "photo", ev)
    female = gender.value == "female" and gender.confidence >= config.gender_min_confidence
    smooth = not math.isnan(cues.scalp_texture) and cues.scalp_texture < config.bald_scalp_texture
    if smooth and gender.value != "female" and _scalp_coloured(cues, config):  # bald women: rare, user-fixed
        return Attribute("bald", _margin(config.bald_scalp_texture - cues.scalp_texture, 0.1), "photo", ev)
    if female:
        return Attribute("long", config.tied_back_confidence, "prior",
                         {**ev, "why": "no hair below the jaw on a woman: most likely tied back"})
    if cues.hair_view < config.min_hair_view:
        return Attribute("short", 0.5, "prior", {**ev, "why": "the photo does not show below the jaw"})
    return Attribute("short", _margin(config.long_hair_fraction - long_evidence, 0.05), "photo", ev)


def _scalp_coloured(cues: AttributeCues, config: AttributeConfig) -> bool:
    if cues.hair_like_skin:
        return True
    if cues.hair_lab is None:
        return False
    skin = _lab_of(cues.skin_rgb)
    # a scalp is lit like the forehead: dark hair in a dim photo can be near the skin's colour, not its lightness
    lit_like_skin = cues.hair_lab[0] >= config.bald_lightness_ratio * skin[0]
    return lit_like_skin and float(np.linalg.norm(np.subtract(cues.hair_lab, skin))) < config.bald_skin_delta_e


def _lab_of(rgb) -> np.ndarray:
    from face2param.faces.attribute_cues import _lab

    return _lab(rgb)


def palette_ita(palette: dict) -> dict[str, float]:
    """option -> ITA of a palette colour (RGB 0-1)."""
    return {k: ita_degrees(np.asarray(v) * 255.0) for k, v in palette.items()}


def _skin_tone(cues: AttributeCues, itas: dict | None) -> Attribute:
    ev = {"ita": cues.skin_ita, "lightness": cues.skin_lightness}
    if cues.greyscale:
        return Attribute(None, 0.0, "prior", {**ev, "why": "greyscale photo"})
    if not itas:
        return Attribute(None, 0.0, "prior", {**ev, "why": "no skin tone reference given"})
    names = sorted(itas, key=lambda k: -itas[k])
    values = np.array([itas[k] for k in names])
    distance = np.abs(values - cues.skin_ita)
    best = int(distance.argmin())
    # lighting still moves ITA by ~10-15 degrees between photos of one person: confidence from the gap
    # to the next tone relative to that spread
    gaps = np.sort(distance)
    confidence = _sigmoid((gaps[1] - gaps[0]) / 10.0) if len(gaps) > 1 else 1.0
    # the skin tone is always set (the palette's neutral default is no safer a guess than the photo)
    return Attribute(names[best], max(confidence, 0.7), "photo", {**ev, "palette_ita": round(float(values[best]), 2)})


def _age(hair_colour: Attribute, config: AttributeConfig) -> Attribute:
    if hair_colour.value in ("grey", "white") and hair_colour.confidence >= config.min_confidence:
        return Attribute("senior", config.senior_confidence, "photo", {"hair_colour": hair_colour.value})
    return Attribute("adult", 0.4, "prior", {"why": "no age cue beyond hair colour is measured: the neutral adult"})


# ---- user overrides -------------------------------------------------------------------------------

def apply_fixed(attributes: FaceAttributes, fixed: dict[str, str]) -> FaceAttributes:
    """The user's values replace detected ones (confidence 1, source 'user')."""
    merged = dict(attributes.attributes)
    for key, value in fixed.items():
        if key in ATTRIBUTE_VALUES or key == "skin_tone":
            merged[key] = Attribute(value, 1.0, "user")
    return FaceAttributes(merged, attributes.cues)


def save_gender_artifact(folder: Path, model: dict, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "gender.npz", w=np.asarray(model["w"], np.float32), b=np.float32(model["b"]))
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
