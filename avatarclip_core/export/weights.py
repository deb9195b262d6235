"""Skin-weight packing for formats with a fixed number of influence slots (glTF: sets of 4).

The body models produce up to 9 influences per vertex; glTF viewers and game engines reliably read
two sets (8 influences), so this keeps all weight when it fits and otherwise the 8 largest,
renormalised. Float32 rounding is folded into the largest weight so every row sums to 1 as closely
as float32 allows (the Khronos validator checks it).
"""
from __future__ import annotations

import numpy as np


def merge_duplicate_influences(indices: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum weights of repeated joint indices within a row (as `lbs.dense_skin_weights` does)."""
    order = np.argsort(indices, axis=1, kind="stable")
    idx = np.take_along_axis(indices, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1).copy()
    for k in range(idx.shape[1] - 1, 0, -1):  # right to left, so runs of 3+ accumulate into the first
        same = idx[:, k] == idx[:, k - 1]
        w[same, k - 1] += w[same, k]
        w[same, k] = 0.0
    return idx, w


def pack_skin_weights(
    indices: np.ndarray, weights: np.ndarray, num_joints: int, max_influences: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(V, S) joint indices and float32 weights with S = 4 or 8 slots, largest weight first.

    S is 4 when no vertex has more than 4 non-zero influences, else 8. Unused slots have weight 0 and
    joint 0. Raises on negative weights, out-of-range joints or a vertex without any weight.
    """
    idx = np.asarray(indices, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    if idx.shape != w.shape or idx.ndim != 2:
        raise ValueError(f"skin indices {idx.shape} and weights {w.shape} must both be (V, K)")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("skin weights must be finite and non-negative")
    used = w > 0
    if ((idx < 0) | (idx >= num_joints))[used].any():
        raise ValueError(f"skin joint index out of range [0, {num_joints})")
    idx, w = merge_duplicate_influences(np.where(used, idx, 0), w)
    order = np.argsort(-w, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    w = np.take_along_axis(w, order, axis=1)

    n_used = int((w > 0).sum(axis=1).max(initial=0))
    slots = 4 if n_used <= 4 else 8
    if slots > max_influences:
        slots = max_influences
    V, K = w.shape
    if K < slots:
        idx = np.concatenate([idx, np.zeros((V, slots - K), np.int64)], axis=1)
        w = np.concatenate([w, np.zeros((V, slots - K))], axis=1)
    idx, w = idx[:, :slots], w[:, :slots]

    total = w.sum(axis=1)
    if (total <= 0).any():
        bad = np.flatnonzero(total <= 0)
        raise ValueError(f"{bad.size} vertices have no skin weight (first: {bad[:5].tolist()})")
    w32 = (w / total[:, None]).astype(np.float32)
    residual = 1.0 - w32.astype(np.float64).sum(axis=1)
    w32[:, 0] = (w32[:, 0].astype(np.float64) + residual).astype(np.float32)
    idx = np.where(w32 > 0, idx, 0)  # also catches weights that underflowed to 0 in float32
    return idx, w32
