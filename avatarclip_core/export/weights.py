"""Skin-weight capping and packing for formats with a fixed number of influence slots (glTF: sets of 4).

The body models produce up to 9 influences per vertex. glTF stores them in sets of 4 (JOINTS_n /
WEIGHTS_n); Blender and Unreal read two sets (8 influences), while three.js, Unity's default quality
and VRM read only the first set, so an export profile caps the influences at 4 or 8.
`cap_influences` is the one cap (the N largest, renormalised); `pack_skin_weights` pads the result
to 4 or 8 slots for the GLB writer and folds float32 rounding into the largest weight, so every row
sums to 1 as closely as float32 allows (the Khronos validator checks it). `influence_cap_error`
measures what a cap costs on an animated mesh, in millimetres.
"""
from __future__ import annotations

import numpy as np

MAX_SLOTS = 8  # two glTF sets; readers ignore JOINTS_2 and above


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


def cap_influences(
    indices: np.ndarray, weights: np.ndarray, num_joints: int, max_influences: int
) -> tuple[np.ndarray, np.ndarray]:
    """(V, max_influences) joint indices (int64) and float64 weights: each vertex's largest influences
    after merging repeated joints, largest first, renormalised to sum to 1; unused slots hold joint 0
    with weight 0. Raises on negative weights, out-of-range joints or a vertex without any weight."""
    if not 1 <= int(max_influences) <= MAX_SLOTS:
        raise ValueError(f"max_influences must be between 1 and {MAX_SLOTS}, got {max_influences}")
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
    V, K = w.shape
    n = int(max_influences)
    if K < n:
        idx = np.concatenate([idx, np.zeros((V, n - K), np.int64)], axis=1)
        w = np.concatenate([w, np.zeros((V, n - K))], axis=1)
    idx, w = idx[:, :n], w[:, :n]
    total = w.sum(axis=1)
    if (total <= 0).any():
        bad = np.flatnonzero(total <= 0)
        raise ValueError(f"{bad.size} vertices have no skin weight (first: {bad[:5].tolist()})")
    w = w / total[:, None]
    return np.where(w > 0, idx, 0), w


def pack_skin_weights(
    indices: np.ndarray, weights: np.ndarray, num_joints: int, max_influences: int = MAX_SLOTS
) -> tuple[np.ndarray, np.ndarray]:
    """(V, S) joint indices and float32 weights for glTF, S = 4 or 8 slots, largest weight first.

    The influences are capped at `max_influences` (`cap_influences`); S is 4 when no vertex keeps more
    than 4 non-zero influences, else 8. Unused slots have weight 0 and joint 0.
    """
    idx, w = cap_influences(indices, weights, num_joints, max_influences)
    n_used = int((w > 0).sum(axis=1).max(initial=0))
    slots = 4 if n_used <= 4 else 8
    V = w.shape[0]
    if w.shape[1] < slots:
        idx = np.concatenate([idx, np.zeros((V, slots - idx.shape[1]), np.int64)], axis=1)
        w = np.concatenate([w, np.zeros((V, slots - w.shape[1]))], axis=1)
    idx, w = idx[:, :slots], w[:, :slots]
    w32 = w.astype(np.float32)
    residual = 1.0 - w32.astype(np.float64).sum(axis=1)
    w32[:, 0] = (w32[:, 0].astype(np.float64) + residual).astype(np.float32)
    idx = np.where(w32 > 0, idx, 0)  # also catches weights that underflowed to 0 in float32
    return idx, w32


def influence_cap_error(mesh, motion, max_influences: int) -> dict[str, float]:
    """How far capping `mesh`'s influences at `max_influences` moves its skinned vertices over every
    frame of `motion` (our own FK + LBS, float64), in millimetres: max, 99th percentile and mean over
    vertices x frames, and the share of vertices whose weights the cap changes."""
    import torch

    from ..body import lbs
    from ._common import motion_in_skeleton_order

    skel = mesh.skeleton
    J = skel.num_joints
    full_idx = mesh.skin_indices.detach().cpu().numpy()
    full_w = mesh.skin_weights.detach().cpu().double().numpy()
    kept_idx, kept_w = cap_influences(full_idx, full_w, J, max_influences)
    dense_full = lbs.dense_skin_weights(torch.from_numpy(full_idx).long(), torch.from_numpy(full_w), J)
    dense_full = dense_full / dense_full.sum(1, keepdim=True)  # all influences (what the body model poses)
    dense_kept = lbs.dense_skin_weights(torch.from_numpy(kept_idx), torch.from_numpy(kept_w), J)
    rotations, root = motion_in_skeleton_order(skel, motion)
    rest_world = skel.rest_transforms.detach().cpu().double()
    world = lbs.forward_kinematics(rest_world, skel.parents, rotations, root)
    transforms = lbs.skinning_transforms(world, rest_world)
    rest = mesh.vertices.detach().cpu().double()
    dist = np.concatenate([  # a few frames at a time: (frames, V, 4, 4) float64 blends add up
        (lbs.linear_blend_skinning(rest, dense_full, chunk) - lbs.linear_blend_skinning(rest, dense_kept, chunk))
        .norm(dim=-1).numpy() * 1000.0 for chunk in transforms.split(16)])
    changed = (dense_full - dense_kept).abs().amax(dim=1) > 1e-12
    return {"max_mm": float(dist.max()), "p99_mm": float(np.percentile(dist, 99)), "mean_mm": float(dist.mean()),
            "vertices_changed": float(changed.double().mean())}
