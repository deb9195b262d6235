"""Colour words -> sRGB (0..1): the plain names people use for clothes, hair and eyes, with light/dark
modifiers. Hair, eye and skin words map onto the engine's palettes by nearest colour in parse.py."""
from __future__ import annotations

COLOURS: dict[str, tuple[float, float, float]] = {
    "black": (0.05, 0.05, 0.06), "white": (0.93, 0.93, 0.92), "grey": (0.5, 0.5, 0.52), "gray": (0.5, 0.5, 0.52),
    "silver": (0.75, 0.76, 0.78), "red": (0.75, 0.1, 0.1), "crimson": (0.62, 0.05, 0.12),
    "maroon": (0.45, 0.07, 0.1), "burgundy": (0.45, 0.08, 0.15), "pink": (0.95, 0.55, 0.7),
    "orange": (0.95, 0.5, 0.1), "yellow": (0.95, 0.85, 0.2), "gold": (0.85, 0.68, 0.2),
    "mustard": (0.8, 0.65, 0.15), "beige": (0.87, 0.8, 0.65), "cream": (0.96, 0.93, 0.82),
    "khaki": (0.74, 0.69, 0.5), "tan": (0.76, 0.6, 0.42), "brown": (0.42, 0.26, 0.13),
    "olive": (0.45, 0.45, 0.18), "green": (0.15, 0.55, 0.2), "lime": (0.55, 0.85, 0.2),
    "teal": (0.05, 0.5, 0.5), "turquoise": (0.2, 0.75, 0.75), "cyan": (0.2, 0.8, 0.9),
    "blue": (0.12, 0.25, 0.75), "navy": (0.07, 0.1, 0.3), "denim": (0.2, 0.32, 0.5),
    "purple": (0.45, 0.2, 0.6), "violet": (0.55, 0.35, 0.8), "lilac": (0.78, 0.64, 0.85),
    "magenta": (0.8, 0.1, 0.6),
}
MODIFIERS = {"dark": 0.55, "light": 1.6, "pale": 1.5, "bright": 1.15, "deep": 0.6}  # scale of the colour


def colour_rgb(name: str, modifier: str | None = None) -> tuple[float, float, float]:
    """The colour of a (modifier, name) pair: 'dark green' darkens green, 'light blue' lightens blue."""
    r, g, b = COLOURS[name]
    if modifier is None:
        return (r, g, b)
    scale = MODIFIERS[modifier]
    if scale < 1:
        return tuple(round(c * scale, 3) for c in (r, g, b))
    return tuple(round(min(1.0, c + (1 - c) * (scale - 1)), 3) for c in (r, g, b))  # towards white
