"""What a user may fix of a photo's attributes: the attribute vocabulary, the engine slots, and the one
check of a `fixed` dict. Plain data (no numpy, cv2 or torch): the job API checks a photo job's
`attributes` input at submit and the web page lists the choices from here, in processes that never
load those (tests/test_architecture.py).
"""
from __future__ import annotations

from avatarclip_core.errors import UserInputError

GENDERS = ("male", "female")
AGE_BANDS = ("child", "young_adult", "adult", "senior")
HAIR_LENGTHS = ("bald", "short", "long")
HAIR_COLOURS = ("black", "dark_brown", "brown", "auburn", "red", "blonde", "platinum", "grey", "white")
BEARDS = ("none", "short", "full")
MOUSTACHES = ("none", "short", "full")
GLASSES = ("no", "yes")
ATTRIBUTE_VALUES = {"gender": GENDERS, "age_band": AGE_BANDS, "hair_length": HAIR_LENGTHS,
                    "hair_colour": HAIR_COLOURS, "beard": BEARDS, "moustache": MOUSTACHES, "glasses": GLASSES}
MAX_FIXED = 64  # far more keys than any engine has slots: a larger dict is not a user's correction


class UnknownAttributeError(UserInputError):
    """A fixed attribute with an unknown name or value."""


def fixed_slot_options(spec) -> dict[str, list[str]]:
    """The slots a user may fix directly (by their engine option names)."""
    return {s.name: list(s.options) for s in spec.discrete}


def fixable_attributes(spec) -> dict[str, list[str]]:
    """Every key a user may fix (fit(fixed=...), the web form, REST) with its allowed values: the
    attributes' vocabulary and the engine's slots (both where names overlap: beard 'short' or 'stubble')."""
    out = {k: list(v) for k, v in ATTRIBUTE_VALUES.items()}
    for name, options in fixed_slot_options(spec).items():
        out[name] = list(dict.fromkeys(out.get(name, []) + options))  # as validate_fixed accepts them
    return out


def validate_fixed(fixed: dict | None, slot_options: dict[str, list[str]] | None = None) -> dict[str, str]:
    """User-fixed attributes/slots -> a checked dict. Keys: the attribute names (gender, age_band,
    hair_length, hair_colour, beard, moustache, glasses, skin_tone) and engine slot names
    (hair_style, ... from `slot_options`). Raises UnknownAttributeError on an unknown key or value."""
    if not fixed:
        return {}
    if not isinstance(fixed, dict):
        raise UnknownAttributeError(f"fixed attributes must be a JSON object, got {type(fixed).__name__}")
    if len(fixed) > MAX_FIXED:
        raise UnknownAttributeError(f"too many fixed attributes ({len(fixed)}; at most {MAX_FIXED})")
    slot_options = slot_options or {}
    allowed = {k: list(v) for k, v in ATTRIBUTE_VALUES.items()}
    for key, options in slot_options.items():  # beard/glasses/hair_colour/skin_tone: attribute or slot values
        allowed[key] = list(dict.fromkeys(allowed.get(key, []) + list(options)))
    if "skin_tone" not in allowed:
        allowed["skin_tone"] = None  # any palette option; checked against the engine when applied
    out = {}
    for key, value in fixed.items():
        if key not in allowed:
            raise UnknownAttributeError(f"unknown attribute {str(key)[:40]!r}; choose from {', '.join(sorted(allowed))}")
        options = allowed[key]
        if not isinstance(value, str) or (options is not None and value not in options):
            shown = repr(value[:40]) if isinstance(value, str) else repr(value)[:40]
            raise UnknownAttributeError(f"unknown value {shown} for {key}; choose one of {', '.join(options or [])}"
                                        if options else f"{key} needs an option name (text), got {shown}")
        out[key] = value
    return out
