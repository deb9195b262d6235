"""Look from words without CLIP (avatar_studio/look): the vocabulary pass, the encoder pass with the real
offline sentence model, and prompts that differ in one attribute changing exactly that attribute."""
from __future__ import annotations

import pytest

from avatar_studio.look import parse_look
from avatar_studio.look.parse import ENCODER_THRESHOLD, LookTextError


@pytest.fixture(scope="module")
def encoder():
    from avatarclip_core.clip.text_encoder import TextEncoder

    return TextEncoder()


def summary(result) -> dict:
    """Everything a look sets, as one flat dict (garments by category)."""
    out = {**result.face, **{k: round(v, 2) for k, v in result.body.items()}}
    for g in result.garments:
        out.setdefault(g.category, (g.kind, g.colour))
    return out


def test_the_issue_example_places_every_word(encoder):
    r = parse_look("an old bearded man with glasses, red jacket, blue jeans, white sneakers", encoder)
    assert r.face == {"age_band": "senior", "beard": "full", "gender": "male", "glasses": "rectangular"}
    assert [(g.kind, g.colour) for g in r.garments] == [("jacket", "red"), ("jeans", "blue"), ("shoes", "white")]
    assert r.unplaced == [] and r.warnings == []
    red = r.garments[0].rgb
    assert red[0] > 0.6 and red[1] < 0.2 and red[2] < 0.2
    assert all(c.score == 1.0 and c.how == "vocabulary" for c in r.choices)


def test_colour_words_take_their_meaning_from_the_noun(encoder):
    r = parse_look("a young woman with long wavy blonde hair and green eyes, black dress, dark blue boots", encoder)
    assert r.face["hair_colour"] == "blonde" and r.face["hair_style"] == "long_wavy"
    assert r.face["eye_colour"] == "green" and r.face["gender"] == "female"
    assert [(g.kind, g.colour) for g in r.garments] == [("dress", "black"), ("boots", "dark blue")]
    assert max(r.garments[1].rgb) < max(parse_look("blue boots", False).garments[0].rgb)  # 'dark' darkens


def test_body_words_set_phenotypes_and_short_hair_is_not_a_short_body(encoder):
    r = parse_look("a tall heavy muscular guy with short hair", encoder)
    assert r.body == {"height": 0.78, "weight": 0.78, "muscle": 0.78}
    assert r.face["hair_style"] == "short"
    assert parse_look("a short woman", encoder).body == {"height": 0.25}


@pytest.mark.parametrize("word,key,value", [
    ("sneaker", "shoes", "shoes"), ("overcoat", "top", "jacket"), ("moustached", "beard", "moustache"),
    ("hooded", "top", "hoodie"), ("blouses", "top", "shirt"), ("trenchcoat", "top", "jacket"),
])
def test_words_outside_the_vocabulary_are_placed_by_meaning(encoder, word, key, value):
    r = parse_look(f"a person in {word}", encoder)
    got = summary(r)
    assert (got[key][0] if isinstance(got.get(key), tuple) else got.get(key)) == value, got
    placed = [c for c in r.choices if c.how == "encoder"] + [g for g in r.garments if g.how == "encoder"]
    assert placed and all(ENCODER_THRESHOLD <= p.score < 1 for p in placed)


@pytest.mark.parametrize("word", ["freckles", "tattoo", "guitar", "pirate", "necklace", "scarf", "gloves",
                                  "sunny", "earrings", "robot"])
def test_words_it_cannot_place_are_reported_never_dropped(encoder, word):
    r = parse_look(f"a man with glasses and {word}", encoder)
    assert r.unplaced == [word]
    assert r.face["glasses"] == "rectangular"


@pytest.mark.parametrize("text,expected,unplaced", [
    ("a man without a beard", {"gender": "male", "beard": "none"}, []),  # not a full beard
    ("a woman not wearing glasses", {"gender": "female", "glasses": "none"}, []),
    ("a man without a long beard", {"gender": "male", "beard": "none"}, []),
    ("a man with dark hair", {"gender": "male", "hair_colour": "dark_brown"}, []),  # not dark skin, nor long hair
    ("a woman with fair hair", {"gender": "female", "hair_colour": "blonde"}, []),
    ("a woman with light blonde hair", {"gender": "female", "hair_colour": "platinum"}, []),
    ("a man with dark messy hair", {"gender": "male", "hair_colour": "dark_brown"}, ["messy"]),
    ("a man whose hair is grey", {"gender": "male", "hair_colour": "grey"}, []),  # the colour after its noun
    ("a woman with eyes of green", {"gender": "female", "eye_colour": "green"}, []),
    ("a man with a thick beard", {"gender": "male", "beard": "full"}, []),  # not a thin body
    ("a man with a short beard", {"gender": "male", "beard": "full"}, []),  # not a short body
    ("a guy sporting a bushy grey moustache", {"gender": "male", "beard": "moustache", "hair_colour": "grey"}, []),
    ("a woman in round eyeglasses", {"gender": "female", "glasses": "round"}, []),
    ("a jacket in red", {"top": ("jacket", "red")}, []),
    ("a red leather jacket", {"top": ("jacket", "red")}, ["leather"]),
    ("a man wearing a dark blue suit", {"gender": "male", "top": ("jacket", "dark blue")}, []),  # encoder word
    ("a man in black", {"gender": "male"}, ["black (no noun to colour)"]),  # not black skin
])
def test_paraphrased_looks_set_what_they_say_and_nothing_else(encoder, text, expected, unplaced):
    r = parse_look(text, encoder)
    assert summary(r) == expected and r.unplaced == unplaced and r.warnings == []


def test_conflicting_words_keep_the_first_and_say_so(encoder):
    r = parse_look("a bald man with long hair", encoder)
    assert r.face["hair_style"] == "bald"
    assert any("both set hair_style" in w for w in r.warnings)


def test_bad_input_is_refused_clearly():
    with pytest.raises(LookTextError, match="at most 500"):
        parse_look("red " * 200, False)
    with pytest.raises(LookTextError, match="must be text"):
        parse_look(42, False)


BASE = "a young woman with long brown hair and glasses, blue t-shirt, black jeans, white sneakers"
ONE_CHANGE = [  # (changed prompt, the key that must change)
    (BASE.replace("brown hair", "blonde hair"), "hair_colour"),
    (BASE.replace("brown hair", "red hair"), "hair_colour"),
    (BASE.replace("brown hair", "grey hair"), "hair_colour"),
    (BASE.replace("long brown", "short brown"), "hair_style"),
    (BASE.replace("long brown", "curly brown"), "hair_style"),
    (BASE.replace(" and glasses", " and round glasses"), "glasses"),
    (BASE.replace(" and glasses", " and no glasses"), "glasses"),
    (BASE.replace("young woman", "old woman"), "age_band"),
    (BASE.replace("young woman", "young man"), "gender"),
    (BASE.replace("blue t-shirt", "red t-shirt"), "top"),
    (BASE.replace("blue t-shirt", "blue hoodie"), "top"),
    (BASE.replace("blue t-shirt", "blue jacket"), "top"),
    (BASE.replace("blue t-shirt", "green shirt"), "top"),
    (BASE.replace("black jeans", "blue jeans"), "bottom"),
    (BASE.replace("black jeans", "black skirt"), "bottom"),
    (BASE.replace("black jeans", "khaki shorts"), "bottom"),
    (BASE.replace("white sneakers", "brown boots"), "shoes"),
    (BASE.replace("white sneakers", "black sneakers"), "shoes"),
    (BASE + ", green eyes", "eye_colour"),
    (BASE + ", freckles, tanned", "skin_tone"),
    ("a young man with short black hair, clean-shaven, grey hoodie, jeans", None),
]


def test_prompts_that_differ_in_one_attribute_change_exactly_that_attribute(encoder):
    """The issue asks for >= 90 % on a set we write: measured here on 20 one-word changes (all pass)."""
    base = summary(parse_look(BASE, encoder))
    ok = []
    for prompt, key in ONE_CHANGE:
        if key is None:
            continue
        changed = summary(parse_look(prompt, encoder))
        differs = {k for k in set(base) | set(changed) if base.get(k) != changed.get(k)}
        ok.append(differs == {key})
    assert sum(ok) / len(ok) >= 0.9, [p for (p, _), good in zip(ONE_CHANGE, ok) if not good]
    bearded = summary(parse_look(ONE_CHANGE[-1][0].replace("clean-shaven", "bearded"), encoder))
    shaven = summary(parse_look(ONE_CHANGE[-1][0], encoder))
    assert {k for k in set(bearded) | set(shaven) if bearded.get(k) != shaven.get(k)} == {"beard"}
