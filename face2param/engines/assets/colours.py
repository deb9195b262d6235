"""Colour palettes of the discrete colour slots (linear RGB in [0, 1]).

Blending by probabilities (the softmax relaxation) is one matmul: probs (B, K) @ palette (K, 3).
"""
from __future__ import annotations

import torch

# Options are appended, never inserted: artifacts trained on an older, shorter list (the one-shot translator,
# the identity surrogate) read the options they know by position and name.
# Fitzpatrick-like range, light to deepest.
SKIN_TONES = {
    "porcelain": (0.96, 0.83, 0.75), "ivory": (0.93, 0.78, 0.67), "beige": (0.87, 0.70, 0.57),
    "sand": (0.82, 0.64, 0.50), "olive": (0.74, 0.58, 0.42), "tan": (0.66, 0.48, 0.34),
    "brown": (0.52, 0.36, 0.24), "umber": (0.40, 0.26, 0.17), "deep": (0.28, 0.18, 0.12),
    "ebony": (0.20, 0.13, 0.09),
}
HAIR_COLOURS = {
    "black": (0.05, 0.04, 0.04), "dark_brown": (0.20, 0.12, 0.07), "brown": (0.38, 0.24, 0.13),
    "auburn": (0.50, 0.20, 0.10), "red": (0.72, 0.30, 0.12), "blonde": (0.82, 0.64, 0.36),
    # blonde golden, platinum a pale yellow blonde, grey mid neutral, white bright and cool: apart in renders
    "platinum": (0.90, 0.84, 0.68), "grey": (0.58, 0.58, 0.58),
    "white": (0.94, 0.94, 0.95),
}
EYE_COLOURS = {
    "brown": (0.35, 0.20, 0.10), "dark_brown": (0.18, 0.10, 0.05), "hazel": (0.55, 0.42, 0.20),
    "green": (0.25, 0.50, 0.25), "blue": (0.25, 0.45, 0.80), "grey": (0.55, 0.60, 0.65),
}
SCLERA = (0.93, 0.92, 0.90)
CAVITY = (0.35, 0.12, 0.12)
TONGUE = (0.75, 0.35, 0.35)
GLASSES_FRAME = (0.08, 0.08, 0.09)


def palette(colours: dict[str, tuple[float, float, float]], device=None) -> torch.Tensor:
    """(K, 3) tensor in the dict's order (the slot's option order)."""
    return torch.tensor(list(colours.values()), dtype=torch.float32, device=device)


def blend(probs: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """probs (B, K) x palette (K, 3) -> (B, 3)."""
    return probs @ colours
