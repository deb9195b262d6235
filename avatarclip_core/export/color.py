"""sRGB <-> linear conversion for vertex colours.

Our vertex colours, like textures and the preview renderer's output, are display (sRGB-encoded)
values; glTF defines COLOR_0 as LINEAR (only textures are sRGB), so writers linearise and readers
re-encode, or engines would show every vertex-coloured avatar washed out. Alpha stays linear.
"""
from __future__ import annotations

import numpy as np


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def colors_srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """(V, 3|4) sRGB colours -> linear RGB (alpha unchanged)."""
    out = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0).copy()
    out[:, :3] = srgb_to_linear(out[:, :3])
    return out


def colors_linear_to_srgb(colors: np.ndarray) -> np.ndarray:
    out = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0).copy()
    out[:, :3] = linear_to_srgb(out[:, :3])
    return out
