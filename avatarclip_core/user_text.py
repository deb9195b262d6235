"""User-supplied text (prompts, motion descriptions) and JSON numbers checked the same way at every
entry point: REST (web.jobs), the job API (job kinds) and the command line.

Python strings can hold what is not text: a lone UTF-16 surrogate comes from a JSON escape such as
"\\ud800" or from invalid UTF-8 on a command line (decoded with surrogateescape), and it fails only
later, deep inside a tokenizer. Control characters (Unicode category Cc: C0, DEL, C1) have no
place in a prompt either.
"""
from __future__ import annotations

import json
import math
import unicodedata

from avatarclip_core.errors import UserInputError


def check_text(value: str, what: str, max_chars: int | None = None) -> str:
    """`value` unchanged, or UserInputError naming `what` and the first bad character."""
    if max_chars is not None and len(value) > max_chars:
        raise UserInputError(f"{what} has {len(value)} characters; keep it under {max_chars}")
    for i, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cs":
            raise UserInputError(f"{what} is not valid text: character {i + 1} is a lone surrogate "
                                 "(invalid UTF-8, or a \\ud800-style escape without its pair)")
        if category == "Cc":
            raise UserInputError(f"{what} contains control characters (U+{ord(char):04X} at character {i + 1})")
    return value


def check_number(value: object, what: str) -> float:
    """A JSON number as a finite float; text ("0.5"), true/false and null are refused, not coerced
    (sliders, face parameters, selftest knobs: REST and job API alike)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = json.dumps(value) if isinstance(value, (str, bool, type(None))) else type(value).__name__
        raise UserInputError(f"{what} must be a number, got {shown[:40]}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        shown = f"a {len(str(value))}-digit number" if isinstance(value, int) else json.dumps(value)
        raise UserInputError(f"{what} must be a number, got {shown} (not a finite number)")
    return number
