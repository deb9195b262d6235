"""parse_look: a look description -> face attributes/slots (`fixed` keys), body phenotypes and garments,
each with its score and the words that set it; words it cannot place are listed in `unplaced`.

Two passes. Words first: the vocabulary's phrases, longest first, with the nouns that give colours their
meaning ("red hair" is a hair colour, "red jacket" a garment colour, "blue eyes" an eye colour), also when
the colour comes after its noun ("hair that is grey", "a jacket in red"); a hair shade before a hair noun
("dark hair", "fair hair") is a hair colour; adjectives of a beard belong to it ("a thick beard", not a
thick body), a frame shape to any glasses word ("round eyeglasses"); "no", "without" and "not" before a
beard, glasses or hair take them off ("without glasses"). Then meaning: each leftover word (not glue like
"with") is compared with every vocabulary phrase by the offline sentence encoder; it is placed when the
best cosine reaches `encoder_threshold` ("spectacles" -> glasses, "trainers" -> shoes), reported
otherwise; a colour said right before such a word is the garment's colour ("a blue suit"). Scores: 1.0
for a vocabulary phrase, the cosine for an encoder match.
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
HAIR_SHADES = ("dark", "light", "fair", "pale")  # a hair colour only next to a hair noun or hair colour word
EYE_NOUNS = ("eyes", "eyed", "eye")
NEGATIONS = ("no", "without", "not")  # before a beard, glasses or hair: none of them
NEGATABLE = {"beard": "none", "glasses": "none", "hair_style": "bald"}
BEARD_ADJECTIVES = ("short", "long", "thick", "thin", "bushy", "full", "trimmed", "neat", "big", "small", "heavy",
                    "light", "scruffy", "patchy", "groomed", "well-groomed")
GLASSES_SHAPES = {"round": "round", "circular": "round", "oval": "round", "square": "rectangular",
                  "rectangular": "rectangular"}  # before any glasses word: 'round eyeglasses', 'square spectacles'
_HAIR_FROM_COLOUR = {"black": "black", "brown": "brown", "dark brown": "dark_brown", "light brown": "brown",
                     "red": "red", "dark red": "auburn", "orange": "red", "grey": "grey", "gray": "grey",
                     "silver": "grey", "white": "white", "yellow": "blonde", "gold": "blonde", "light blonde": "platinum",
                     "dark": "dark_brown", "light": "blonde", "fair": "blonde", "pale": "platinum",
                     "pale blonde": "platinum", "platinum blonde": "platinum", "dark blonde": "blonde"}
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


def _place_words(words: list[str], result: LookResult) -> list[tuple[str, str | None]]:
    """Vocabulary pass over one segment; returns the words left over (glue removed), each with the colour
    said right before it (or None) for the encoder pass."""
    leftovers: list[tuple[str, str | None]] = []
    i, subject = 0, None  # subject: what a colour after its noun describes (hair, eyes, the last garment)
    while i < len(words):
        choices, garments = len(result.choices), len(result.garments)
        used = (_negated_phrase(words, i, result) or _hair_phrase(words, i, result) or _beard_phrase(words, i, result)
                or _glasses_phrase(words, i, result) or _eye_or_skin_phrase(words, i, result)
                or _garment_phrase(words, i, result, leftovers))
        if used:
            new = result.choices[choices:]
            if len(result.garments) > garments:
                subject = result.garments[-1]
            elif words[i + used - 1] in HAIR_NOUNS and not new:  # a bare hair noun: "hair that is grey"
                subject = "hair"
            elif any(c.key == "hair_style" for c in new) and not any(c.key == "hair_colour" for c in new):
                subject = "hair"
            else:
                subject = None
            i += used
            continue
        used = _colour_phrase(words, i, result, subject, leftovers)
        if used:
            i, subject = i + used, None
            continue
        if words[i] in EYE_NOUNS:  # a bare eye noun says nothing on its own: "eyes of green"
            i, subject = i + 1, "eyes"
            continue
        hit, n = _match_phrase(words, i)
        if hit:
            key, value = hit
            phrase = " ".join(words[i:i + n])
            if key == "garment":
                _add_garment(result, str(value), None, None, 1.0, phrase, "vocabulary")
                subject = result.garments[-1]
            else:
                result.choices.append(LookChoice(key, value, 1.0, phrase, "vocabulary"))
                subject = "hair" if key == "hair_style" else None
            i += n
            continue
        if words[i] not in STOPWORDS:
            leftovers.append((words[i], None))
            subject = None  # "a jacket with pockets in red": not the jacket's colour for sure
        i += 1
    return leftovers


def _hair_option(colour: str) -> str | None:
    """A hair colour option from its words ("blonde", "dark brown", "fair", "platinum blonde")."""
    option = HAIR_COLOUR_WORDS.get(colour) or _HAIR_FROM_COLOUR.get(colour)
    if option is None and " " in colour:  # a shade or colour before a hair colour word: the word decides
        option = HAIR_COLOUR_WORDS.get(colour.split()[-1]) or _HAIR_FROM_COLOUR.get(colour.split()[-1])
    return option if option in HAIR_COLOUR_OPTIONS else None


def _add_hair_colour(result: LookResult, colour: str, phrase: str) -> None:
    option = _hair_option(colour)
    if option:
        result.choices.append(LookChoice("hair_colour", option, 1.0, phrase, "vocabulary"))
    else:
        result.unplaced.append(f"{colour} (no such hair colour)")


def _unknown(words: list[str], k: int) -> bool:
    """A word the vocabulary pass cannot read (a material, a style, an encoder word): 'leather', 'suit'."""
    w = words[k]
    return (w not in STOPWORDS and w not in HAIR_NOUNS and w not in EYE_NOUNS and w not in NEGATIONS
            and w not in HAIR_COLOUR_WORDS and not _colour_at(words, k)[2] and not _match_phrase(words, k)[0])


def _negated_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'without a beard', 'not wearing glasses', 'no hair': the beard, glasses or hair set to none."""
    if words[i] not in NEGATIONS:
        return 0
    j = i + 1
    while j < len(words) and words[j] in STOPWORDS:
        j += 1
    if j < len(words) and words[j] in HAIR_NOUNS:
        hit, n = ("hair_style", "bald"), 1
    else:
        hit, n = _match_phrase(words, j)
        k = j
        while not (hit and hit[0] == "beard") and k < len(words) and words[k] in BEARD_ADJECTIVES:
            k += 1  # 'without a long beard'
            hit, n = _match_phrase(words, k)
        n += k - j
    if not hit or hit[0] not in NEGATABLE:
        return 0
    key = hit[0]
    result.choices.append(LookChoice(key, NEGATABLE[key], 1.0, " ".join(words[i:j + n]), "vocabulary"))
    return j + n - i


def _beard_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'a thick beard', 'a bushy grey moustache', 'light stubble': adjectives and colours of a beard are
    the beard's ('thick' is not a body, 'short' not a height); a beard's colour is the hair colour."""
    j, colour = i, None
    while j < len(words):
        modifier, name, n = _colour_at(words, j)
        if n:
            colour, j = (f"{modifier} {name}" if modifier else name), j + n
        elif words[j] in HAIR_COLOUR_WORDS:
            colour, j = words[j], j + 1
        elif words[j] in BEARD_ADJECTIVES:
            j += 1
        else:
            break
    if j == i:
        return 0
    hit, n = _match_phrase(words, j)
    if not hit or hit[0] != "beard" or hit[1] == "none":
        return 0
    phrase = " ".join(words[i:j + n])
    result.choices.append(LookChoice("beard", hit[1], 1.0, phrase, "vocabulary"))
    if colour:
        _add_hair_colour(result, colour, phrase)
    return j + n - i


def _glasses_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'round eyeglasses', 'square spectacles': a frame shape before any glasses word."""
    j = i
    while j < len(words) and words[j] in GLASSES_SHAPES:
        j += 1
    hit, n = _match_phrase(words, j)
    if j == i or not hit or hit[0] != "glasses" or hit[1] == "none":
        return 0
    result.choices.append(LookChoice("glasses", GLASSES_SHAPES[words[j - 1]], 1.0, " ".join(words[i:j + n]),
                                     "vocabulary"))
    return j + n - i


def _colour_phrase(words: list[str], i: int, result: LookResult, subject, leftovers: list) -> int:
    """A colour (or hair shade) no noun right after it claimed: before words the vocabulary cannot read it
    goes with them to the encoder pass ('a blue suit'), or to a hair noun after them ('red messy hair',
    'dark messy hair'); else after its noun it colours that noun ('hair that is grey', 'a jacket in red',
    'eyes of blue'); else it is reported."""
    modifier, name, n = _colour_at(words, i)
    shade = not n and words[i] in HAIR_SHADES
    if not n and not shade:
        return 0
    colour, n = (words[i], 1) if shade else (f"{modifier} {name}" if modifier else name, n)
    k = i + n
    while k < len(words) and k - i - n < 2 and _unknown(words, k):
        k += 1
    if k > i + n and k < len(words) and words[k] in HAIR_NOUNS:
        _add_hair_colour(result, colour, " ".join(words[i:k + 1]))
        leftovers += [(w, None) for w in words[i + n:k]]
        return k + 1 - i
    if shade:
        return 0
    if k > i + n:
        run = words[i + n:k]
        leftovers += [(w, None) for w in run[:-1]] + [(run[-1], colour)]
        return k - i
    if isinstance(subject, GarmentChoice) and subject.colour == "default":
        subject.colour, subject.rgb = colour, colour_rgb(name, modifier)
        subject.words = f"{subject.words} {colour}"
        return n
    if subject == "hair":
        _add_hair_colour(result, colour, colour)
        return n
    if subject == "eyes":
        _add_eye_colour(result, colour, colour)
        return n
    # a colour of nothing named: reported, not guessed by meaning ('red' is nearest 'redhead', 'black'
    # nearest 'black skin': "a man in black" would get a skin tone)
    result.unplaced.append(f"{colour} (no noun to colour)")
    return n


def _add_eye_colour(result: LookResult, colour: str, phrase: str) -> None:
    option = _EYE_FROM_COLOUR.get(colour)
    if option in EYE_COLOUR_OPTIONS:
        result.choices.append(LookChoice("eye_colour", option, 1.0, phrase, "vocabulary"))
    else:
        result.unplaced.append(f"{colour} eyes (no such eye colour)")


def _hair_phrase(words: list[str], i: int, result: LookResult) -> int:
    """'long wavy blonde hair', 'short grey hair', 'dark hair', 'platinum blonde hair': shapes, shades and
    colours + a hair noun; a bare hair noun is used up (it says nothing on its own)."""
    j, shapes, colour = i, [], None
    while j < len(words):
        modifier, name, n = _colour_at(words, j)
        if n:
            colour, j = (f"{modifier} {name}" if modifier else name), j + n
        elif words[j] in HAIR_SHAPES:
            shapes.append(words[j])
            j += 1
        elif words[j] in HAIR_COLOUR_WORDS:  # after a shade or colour: 'light blonde', 'platinum blonde'
            colour, j = (f"{colour} {words[j]}" if colour else words[j]), j + 1
        elif words[j] in HAIR_SHADES and j + 1 < len(words) and (
                words[j + 1] in HAIR_NOUNS + HAIR_SHAPES or words[j + 1] in HAIR_COLOUR_WORDS):
            colour, j = words[j], j + 1
        else:
            break
    if j >= len(words) or words[j] not in HAIR_NOUNS:
        return 0
    if j == i:
        return 1
    phrase = " ".join(words[i:j + 1])
    if colour:
        _add_hair_colour(result, colour, phrase)
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
    if noun in EYE_NOUNS:
        _add_eye_colour(result, colour, " ".join(words[i:i + n + 1]))
        return n + 1
    if noun in ("skin", "skinned"):
        hit = _INDEX.get((colour.split()[-1], "skin")) or _INDEX.get(tuple(colour.split()) + ("skin",))
        if hit and hit[0] == "skin_tone":
            result.choices.append(LookChoice("skin_tone", hit[1], 1.0, " ".join(words[i:i + n + 1]), "vocabulary"))
        else:
            result.unplaced.append(f"{colour} skin")
        return n + 1
    return 0


def _garment_phrase(words: list[str], i: int, result: LookResult, leftovers: list) -> int:
    """'red jacket', 'dark blue jeans', 'white t-shirt', 'a red leather jacket', 'a red coloured jacket': a
    colour, up to two words the vocabulary cannot read (left for the encoder pass), then a garment phrase."""
    modifier, name, n = _colour_at(words, i)
    if not n:
        return 0
    k = i + n
    while k < len(words) and k - i - n < 2 and (_unknown(words, k) or words[k] in ("coloured", "colored")):
        k += 1
    hit, m = _match_phrase(words, k)
    if not hit or hit[0] != "garment":
        return 0
    leftovers += [(w, None) for w in words[i + n:k] if w not in STOPWORDS]
    _add_garment(result, str(hit[1]), modifier, name, 1.0, " ".join(words[i:k + m]), "vocabulary")
    return k + m - i


def _add_garment(result: LookResult, kind: str, modifier: str | None, name: str | None, score: float,
                 words: str, how: str) -> None:
    category, default, _ = GARMENTS[kind]
    colour = name or default
    rgb = colour_rgb(colour, modifier)
    result.garments.append(GarmentChoice(kind, category, f"{modifier} {colour}" if modifier else (colour if name else "default"),
                                         rgb, score, words, how))


def _place_by_meaning(leftovers: list[tuple[str, str | None]], result: LookResult, encoder,
                      threshold: float) -> None:
    """Leftover words by meaning; a colour said before one colours it where it is a garment."""
    said = [f"{colour} {word}" if colour else word for word, colour in leftovers]
    if encoder is False:
        result.unplaced += said
        return
    if encoder is None:
        from avatarclip_core.clip.text_encoder import TextEncoder, TextEncoderUnavailableError

        try:
            encoder = TextEncoder()
        except TextEncoderUnavailableError as exc:
            result.unplaced += said
            result.warnings.append(f"words not in the look vocabulary were not placed ({exc})")
            return
    targets, phrase_embeddings = _vocabulary_embeddings(encoder)
    sims = encoder.encode([word for word, _ in leftovers]) @ phrase_embeddings.T
    for row, (word, colour) in enumerate(leftovers):
        best = int(sims[row].argmax())
        score = float(sims[row, best])
        if score < threshold:
            result.unplaced.append(said[row])
            continue
        _, key, value = targets[best]
        if key == "garment":
            modifier, name = colour.split() if colour and " " in colour else (None, colour)
            _add_garment(result, str(value), modifier, name, score, said[row], "encoder")
            continue
        result.choices.append(LookChoice(key, value, round(score, 4), word, "encoder"))
        if colour and key in ("hair_style", "beard"):  # 'a red mohawk': the hair's colour
            _add_hair_colour(result, colour, said[row])
        elif colour:
            result.unplaced.append(f"{colour} (no colour for {key.replace('_', ' ')})")


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
