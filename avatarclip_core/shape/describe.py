"""Words for a body: several English phrasings of a code-book entry, from its phenotypes.

The offline shape query (no CLIP) embeds these phrasings with the sentence model and compares
them with the user's text, relative to the neutral body's own description (an Eq. 4 analogue in
text space). Only what differs from an average adult is said ("a very tall, heavy old man"),
so the neutral body reads "a person". Thresholds follow the Anny phenotypes: age 0.67 is a
young adult and about 0.83 a 64-year-old in Anny's morphological-age calibration.
"""
from __future__ import annotations

import numpy as np

from avatarclip_core.shape.space import FACTORS, PHENOTYPES, ShapeSpace

# (upper bound, words...) bands per phenotype; None = unremarkable (not mentioned).
_HEIGHT = [(0.15, "very short", "tiny", "very small"), (0.35, "short", "short", "small"), (0.65, None),
           (0.85, "tall", "tall", "tall"), (1.01, "very tall", "giant", "extremely tall")]
_WEIGHT = [(0.15, "very thin", "skinny", "emaciated"), (0.35, "thin", "slim", "slender"), (0.65, None),
           (0.85, "heavy", "overweight", "chubby"), (1.01, "very fat", "obese", "very heavy")]
# Low muscle is deliberately not put into words: the sentence model puts "weak"/"frail" right next
# to "strong", so such entries won queries like "a strong man" (measured on the preview code-book).
_MUSCLE = [(0.68, None), (0.87, "muscular", "athletic", "strong"),
           (1.01, "very muscular", "bodybuilder", "extremely muscular")]
_AGE = [(0.6, None), (0.8, None), (0.88, "middle-aged", "middle-aged", "mature"),
        (1.01, "old", "elderly", "senior")]

_FACTOR_WORDS = {  # factor -> (phrase when high, phrase when low)
    "leg_length": ("long legs", "short legs"),
    "shoulders": ("broad shoulders", "narrow shoulders"),
    "belly": ("a big belly", "a flat stomach"),
    "hips": ("wide hips", "narrow hips"),
    "chest": ("a big chest", "a small chest"),
    "arm_length": ("long arms", "short arms"),
}
FACTOR_THRESHOLD = 0.7
MALE, FEMALE = 0.4, 0.6  # gender below / above: described as a man / a woman


def _band(value: float, bands) -> tuple[str, ...] | None:
    for upper, *words in bands:
        if value < upper:
            return None if words == [None] else tuple(words)
    return None


def _noun(gender: float, age: float, variant: int) -> str:
    if age < 0.6:
        nouns = (("teenage boy", "boy", "young man") if gender < MALE else ("teenage girl", "girl", "young woman")
                 if gender > FEMALE else ("teenager", "young person", "adolescent"))
    else:
        nouns = (("man", "male", "guy") if gender < MALE else ("woman", "female", "lady") if gender > FEMALE
                 else ("person", "human", "adult"))
    return nouns[variant % 3]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def describe_phenotypes(values: dict[str, float], factors: dict[str, float] | None = None) -> list[str]:
    """Three or four phrasings for one body: plain adjectives, synonyms, '... who is ...', and the
    first one with body-part details ("with broad shoulders and long legs") when there are any."""
    g, a = values["gender"], values["age"]
    bands = [_band(values["height"], _HEIGHT), _band(values["weight"], _WEIGHT), _band(values["muscle"], _MUSCLE)]
    age_words = _band(a, _AGE)
    details = []
    for name, (high, low) in _FACTOR_WORDS.items():
        f = (factors or {}).get(name, 0.0)
        if f > FACTOR_THRESHOLD:
            details.append(high)
        elif f < -FACTOR_THRESHOLD:
            details.append(low)

    phrasings = []
    for variant in range(3):
        adjs = [b[variant] for b in bands if b]
        noun = _noun(g, a, variant)
        if age_words and a >= 0.6:  # teen nouns already say young
            noun = f"{age_words[variant]} {noun}"
        if variant == 2 and adjs:
            phrase = f"{noun} who is {_join(adjs)}"
        else:
            phrase = ", ".join(adjs) + " " + noun if adjs else noun
        phrasings.append(f"{_article(phrase)} {phrase}")
    if details:
        phrasings.append(f"{phrasings[0]} with {_join(details)}")
    return phrasings


def describe(space: ShapeSpace, x: np.ndarray) -> list[str]:
    """Phrasings for shape coordinates ``x`` (D,)."""
    x = np.asarray(x, dtype=np.float64)
    values = {p: float(x[space.index(p)]) for p in PHENOTYPES}
    scores = space.factor_scores(x)[0]
    factors = dict(zip(FACTORS, scores.tolist()))
    return describe_phenotypes(values, factors)
