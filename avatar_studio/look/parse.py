"""parse_look: a look description -> face attributes/slots (`fixed` keys), body phenotypes and garments,
each with its score and the words that set it; words it cannot place are listed in `unplaced`.

Two passes. Words first: the vocabulary's phrases, longest first, with the nouns that give colours their
meaning ("red hair" is a hair colour, "red jacket" a garment colour, "blue eyes" an eye colour). Then
meaning: each leftover word (not glue like "with") is compared with every vocabulary phrase by the
offline sentence encoder; it is placed when the best cosine reaches `encoder_threshold` ("spectacles"
-> glasses, "trainers" -> shoes), reported otherwise. Scores: 1.0 for a vocabulary phrase, the cosine for
an encoder match.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from avatar_studio.look.colours import COLOURS, MODIFIERS, colour_rgb
from avatar_studio.look.vocabulary import (BODY, EYE_COLOUR_OPTIONS, FACE, GARMENTS, HAIR_COLOUR_OPTIONS,
                                           HAIR_COLOUR_WORDS, STOPWORDS)

ENCODER_THRESHOLD = 0.65  # cosine of all-MiniLM-L6-v2 at which a word is placed (tests/test_look.py)
MAX_LOOK_CHARS = 500
HAIR_NOUNS = ("hair", "haired")
HAIR_SHAPES = ("long", "short", "curly", "wavy", "straight", "shoulder-length", "medium")
_HAIR_FROM_COLOUR = {"black": "black", "brown": "brown", "dark brown": "dark_brown", "light brown": "brown",
                     "red": "red", "dark red": "auburn", "orange": "red", "grey": "grey", "gray": "grey",
                     "silver": "grey", "white": "white", "yellow": "blonde", "gold": "blonde", "light blonde": "platinum"}
_EYE_FROM_COLOUR = {"brown": "brown", "dark brown": "dark_brown", "hazel": "hazel", "green": "green",
                    "blue": "blue", "light blue": "blue", "grey": "grey", "gray": "grey", "black": "dark_brown"}


@dataclass
class LookChoice:
    key: str  # a face attribute/slot (gender, hair_style, ...) or a body phenotype (height, weight, muscle)
    value: str | float
    score: float
    words: str
    how: str  # "vocabulary" | "encoder"


@dataclass
class GarmentChoice:
    kind: str  # a GARMENTS key
    category: str  # top | bottom | dress | shoes
    colour: str  # a colour name (with its modifier) or "default"
    rgb: tuple[float, float, float]
    score: float
    words: str
    how: str


@dataclass
class LookResult:
    text: str
    choices: list[LookChoice] = field(default_factory=list)
    garments: list[GarmentChoice] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def face(self) -> dict[str, str]:
        """The `fixed` dict of the face engine (first choice per key wins)."""
        out: dict[str, str] = {}
        for c in self.choices:
            if c.key in FACE or c.key in ("hair_colour", "eye_colour"):
                out.setdefault(c.key, str(c.value))
        return out

    @property
    def body(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in self.choices:
            if c.key in BODY:
                out.setdefault(c.key, float(c.value))
        return out

    def to_json(self) -> dict:
        return {"text": self.text, "face": self.face, "body": self.body,
                "choices": [asdict(c) for c in self.choices],
                "garments": [{**asdict(g), "rgb": list(g.rgb)} for g in self.garments],
                "unplaced": list(self.unplaced), "warnings": list(self.warnings)}


class LookTextError(ValueError):
    """A look description that cannot be read (too long, not text)."""


def _tokens(text: str) -> list[list[str]]:
    """Segments (split at , ; . and 'and'/'with'/'wearing' boundaries are kept as words) of lowercase words."""
    segments = []
    for part in re.split(r"[,;.!?]+", text.lower()):
        words = re.findall(r"[a-z]+(?:['-][a-z]+)*", part)
        if words:
            segments.append(words)
    return segments


def _phrase_index() -> dict[tuple[str, ...], tuple[str, object]]:
    """(words) -> (key, value) for every whole-word vocabulary phrase."""
    index: dict[tuple[str, ...], tuple[str, object]] = {}
    for key, values in FACE.items():
        for value, phrases in values.items():
            for p in phrases:
                index[tuple(p.split())] = (key, value)
    for key, levels in BODY.items():
        for level, phrases in levels.items():
            for p in phrases:
                index.setdefault(tuple(p.split()), (key, level))
    for word, option in HAIR_COLOUR_WORDS.items():
        index[(word,)] = ("hair_colour", option)
    for kind, (_, _, phrases) in GARMENTS.items():
        for p in phrases:
            index[tuple(p.split())] = ("garment", kind)
    return index


_INDEX = _phrase_index()
_MAX_PHRASE = max(len(k) for k in _INDEX)


def _colour_at(words: list[str], i: int) -> tuple[str | None, str | None, int]:
    """(modifier, colour name, words used) of a colour starting at words[i], or (None, None, 0)."""
    if i < len(words) and words[i] in MODIFIERS and i + 1 < len(words) and words[i + 1] in COLOURS:
        return words[i], words[i + 1], 2
    if i < len(words) and words[i] in COLOURS:
        return None, words[i], 1
    return None, None, 0


def _match_phrase(words: list[str], i: int) -> tuple[tuple[str, object] | None, int]:
    for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
        hit = _INDEX.get(tuple(words[i:i + n]))
        if hit:
            return hit, n
    return None, 0


def parse_look(text: str, encoder=None, encoder_threshold: float = ENCODER_THRESHOLD) -> LookResult:
    """Place a look description; `encoder`: an avatarclip_core TextEncoder (None: loaded on first need;
    False: words only, leftovers reported)."""
    if not isinstance(text, str):
        raise LookTextError(f"the look must be text, got {type(text).__name__}")
    if len(text) > MAX_LOOK_CHARS:
        raise LookTextError(f"the look has {len(text)} characters; at most {MAX_LOOK_CHARS}")
    result = LookResult(text=text)
    leftovers: list[str] = []
    for words in _tokens(text):
        leftovers += _place_words(words, result)
    if leftovers:
        _place_by_meaning(leftovers, result, encoder, encoder_threshold)
    _check_conflicts(result)
    return result


def _place_words(words: list[str], result: LookResult) -> list[str]:
    """Vocabulary pass over one segment; returns the words left over (glue removed)."""
    leftovers, i = [], 0
    while i < len(words):
        used = _hair_phrase(words, i, result) or _eye_or_skin_phrase(words, i, result) or _garment_phrase(words, i, result)
        if used:
            i += used
            continue
        hit, n = _match_phrase(words, i)
        if hit:
            key, value = hit
            phrase = " ".join(words[i:i + n])
            if key == "garment":
                _add_garment(result, str(value), None, None, 1.0, phrase, "vocabulary")
            else:
                result.choices.append(LookChoice(key, value, 1.0, phrase, "vocabulary"))
            i += n
            continue
        if words[i] not in STOPWORDS:
            leftovers.append(words[i])
        i += 1
    return leftovers


def _hair_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'long wavy blonde hair', 'short grey hair', 'red-haired': shapes + colour + a hair noun."""
    j, shapes, colour = i, [], None
    while j < len(words):
        modifier, name, n = _colour_at(words, j)
        if n:
            colour, j = (f"{modifier} {name}" if modifier else name), j + n
        elif words[j] in HAIR_SHAPES:
            shapes.append(words[j])
            j += 1
        elif words[j] in HAIR_COLOUR_WORDS:
            colour, j = words[j], j + 1
        else:
            break
    if j >= len(words) or words[j] not in HAIR_NOUNS or j == i:
        return 0
    phrase = " ".join(words[i:j + 1])
    if colour:
        option = HAIR_COLOUR_WORDS.get(colour) or _HAIR_FROM_COLOUR.get(colour)
        if option in HAIR_COLOUR_OPTIONS:
            result.choices.append(LookChoice("hair_colour", option, 1.0, phrase, "vocabulary"))
        else:
            result.unplaced.append(f"{colour} (no such hair colour)")
    if shapes:
        style = _INDEX.get(tuple(shapes) + ("hair",)) or _INDEX.get((shapes[-1], "hair"))
        if style and style[0] == "hair_style":
            result.choices.append(LookChoice("hair_style", style[1], 1.0, phrase, "vocabulary"))
        else:
            result.unplaced.append(" ".join(shapes) + " hair")
    return j + 1 - i


def _eye_or_skin_phrase(words: list[str], i: int, result: LookResult) -> int:
    modifier, name, n = _colour_at(words, i)
    if not n or i + n >= len(words):
        return 0
    noun = words[i + n]
    colour = f"{modifier} {name}" if modifier else name
    if noun in ("eyes", "eyed", "eye"):
        option = _EYE_FROM_COLOUR.get(colour)
        if option in EYE_COLOUR_OPTIONS:
            result.choices.append(LookChoice("eye_colour", option, 1.0, " ".join(words[i:i + n + 1]), "vocabulary"))
        else:
            result.unplaced.append(f"{colour} eyes (no such eye colour)")
        return n + 1
    if noun in ("skin", "skinned"):
        hit = _INDEX.get((colour.split()[-1], "skin")) or _INDEX.get(tuple(colour.split()) + ("skin",))
        if hit and hit[0] == "skin_tone":
            result.choices.append(LookChoice("skin_tone", hit[1], 1.0, " ".join(words[i:i + n + 1]), "vocabulary"))
        else:
            result.unplaced.append(f"{colour} skin")
        return n + 1
    return 0


def _garment_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'red jacket', 'dark blue jeans', 'white t-shirt': a colour, then a garment phrase."""
    modifier, name, n = _colour_at(words, i)
    if not n:
        return 0
    hit, m = _match_phrase(words, i + n)
    if not hit or hit[0] != "garment":
        return 0
    _add_garment(result, str(hit[1]), modifier, name, 1.0, " ".join(words[i:i + n + m]), "vocabulary")
    return n + m


def _add_garment(result: LookResult, kind: str, modifier: str | None, name: str | None, score: float,
                 words: str, how: str) -> None:
    category, default, _ = GARMENTS[kind]
    colour = name or default
    rgb = colour_rgb(colour, modifier)
    result.garments.append(GarmentChoice(kind, category, f"{modifier} {colour}" if modifier else (colour if name else "default"),
                                         rgb, score, words, how))


def _place_by_meaning(leftovers: list[str], result: LookResult, encoder, threshold: float) -> None:
    if encoder is False:
        result.unplaced += leftovers
        return
    if encoder is None:
        from avatarclip_core.clip.text_encoder import TextEncoder, TextEncoderUnavailableError

        try:
            encoder = TextEncoder()
        except TextEncoderUnavailableError as exc:
            result.unplaced += leftovers
            result.warnings.append(f"words not in the look vocabulary were not placed ({exc})")
            return
    targets, phrase_embeddings = _vocabulary_embeddings(encoder)
    sims = encoder.encode(leftovers) @ phrase_embeddings.T
    for row, word in enumerate(leftovers):
        best = int(sims[row].argmax())
        score = float(sims[row, best])
        if score < threshold:
            result.unplaced.append(word)
            continue
        _, key, value = targets[best]
        if key == "garment":
            _add_garment(result, str(value), None, None, score, word, "encoder")
        else:
            result.choices.append(LookChoice(key, value, round(score, 4), word, "encoder"))


_EMBEDDINGS: dict[str, tuple[list, object]] = {}


def _vocabulary_embeddings(encoder) -> tuple[list[tuple[str, str, object]], object]:
    """(phrase, key, value) targets and their embeddings, once per encoder model in a process."""
    key = getattr(encoder, "model_id", None) or str(id(encoder))
    if key not in _EMBEDDINGS:
        targets = [(" ".join(words), k, v) for words, (k, v) in _INDEX.items()
                   if len(words) > 1 or k != "gender"]  # pronouns carry no look by meaning
        _EMBEDDINGS[key] = (targets, encoder.encode([t[0] for t in targets]))
    return _EMBEDDINGS[key]


def _check_conflicts(result: LookResult) -> None:
    seen: dict[str, LookChoice] = {}
    for c in result.choices:
        if c.key in seen and seen[c.key].value != c.value:
            result.warnings.append(f"'{c.words}' and '{seen[c.key].words}' both set {c.key}; "
                                   f"kept {seen[c.key].value!r}")
        seen.setdefault(c.key, c)
    categories: dict[str, GarmentChoice] = {}
    for g in result.garments:
        cat = "top" if g.category == "dress" else g.category
        if cat in categories:
            result.warnings.append(f"'{g.words}' and '{categories[cat].words}' are both {cat}s; "
                                   "the first is worn over the body, the later one is kept in the list")
        categories.setdefault(cat, g)
