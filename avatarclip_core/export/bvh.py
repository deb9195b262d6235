"""BVH (Biovision hierarchy) motion export and import.

BVH is the lowest-common-denominator mocap format (Blender, MotionBuilder, retargeting tools). It has
no rest orientations: every joint frame is assumed aligned with the world axes in the rest pose,
offsets are world-space vectors from the parent, and a joint's channels rotate it within its
parent's (world-aligned) frame. Our rotations are local to rotated rest frames, so for a joint with
rest world rotation W_j and local motion rotation R_j (see body/types.py) we write

    R_bvh_j = W_j @ R_j @ W_j^T

the same rotation expressed in world-aligned axes. Then the world rotation change of every joint,
G_j = G_parent @ R_bvh_j, and every world joint position match `lbs.forward_kinematics` exactly, and
a rest-pose frame (R_j = I) is written as zero angles.

Conventions written: channels `Zrotation Xrotation Yrotation` (R = Rz @ Rx @ Ry, intrinsic ZXY, the
common mocap order; Euler angles are unwrapped over time so keys never jump by 360 degrees); the root
also has `Xposition Yposition Zposition`, holding its ABSOLUTE position (rest position + root
translation), which is how Blender reads and writes BVH; the root OFFSET is its rest position (the
origin for the default body, whose Root joint sits on the floor, so both readings of the root
offset agree there). Units: metres times `scale` (pass 100 for centimetres).

`read_bvh` returns a skeleton with world-aligned rest frames (the only rest orientation BVH knows),
so its rotations are the BVH rotations themselves; world joint positions round-trip exactly.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from ..body.lbs import euler_to_matrix, matrix_to_euler
from ..body.types import Motion, Skeleton
from ._atomic import atomic_write_text
from ._common import check_single_root, motion_in_skeleton_order

__all__ = ["write_bvh", "read_bvh"]

ROTATION_ORDER = "ZXY"  # channel order written by write_bvh


def _bvh_name(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "joint"


def _dfs_order(parents: list[int]) -> list[int]:
    """Joint indices in depth-first order: BVH frame columns follow the order joints appear in the file."""
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def write_bvh(skeleton: Skeleton, motion: Motion, path: str | os.PathLike, *, scale: float = 1.0) -> Path:
    """Write `motion` on `skeleton` as a BVH file at `path` (atomically); returns the resolved path."""
    check_single_root(skeleton)
    rotations, root_translation = motion_in_skeleton_order(skeleton, motion)
    parents = skeleton.parents
    rest = skeleton.rest_transforms.detach().cpu().double()
    rest_pos = rest[:, :3, 3]
    rest_rot = rest[:, :3, :3] / torch.linalg.norm(rest[:, :3, :3], dim=1, keepdim=True)

    bvh_rot = rest_rot.unsqueeze(0) @ rotations @ rest_rot.transpose(1, 2).unsqueeze(0)
    angles = matrix_to_euler(ROTATION_ORDER, bvh_rot, degrees=True).numpy()  # (T, J, 3) as Z, X, Y
    angles = np.unwrap(angles, period=360.0, axis=0)
    angles[np.abs(angles) < 1e-9] = 0.0  # no "-0.000000" in rest frames
    root_pos = ((rest_pos[0][None] + root_translation) * scale).numpy()

    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    rot_channels = " ".join(f"{axis}rotation" for axis in ROTATION_ORDER)
    lines = ["HIERARCHY"]

    def fmt(v) -> str:
        return " ".join(f"{float(x):.6f}" for x in v)

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        offset = rest_pos[j] if parents[j] < 0 else rest_pos[j] - rest_pos[parents[j]]
        kind = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {_bvh_name(skeleton.names[j])}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {fmt(offset * scale)}")
        if parents[j] < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_channels}")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            # A leaf needs an End Site; pointing it a quarter bone further gives viewers a visible bone.
            tip = 0.25 * offset if parents[j] >= 0 and float(offset.norm()) > 1e-6 else torch.tensor([0.0, 0.05, 0.0])
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {fmt(tip * scale)}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    order = _dfs_order(parents)
    T = rotations.shape[0]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / float(motion.fps):.8f}"]
    for t in range(T):
        cols = [fmt(root_pos[t])] + [fmt(angles[t, j]) for j in order]
        lines.append(" ".join(cols))
    return atomic_write_text(path, "\n".join(lines) + "\n")


class BvhJoint:
    """One joint of a BVH HIERARCHY: name, parent index (-1: the root), OFFSET and CHANNELS as written."""

    def __init__(self, name: str, parent: int) -> None:
        self.name, self.parent = name, parent
        self.offset = np.zeros(3)
        self.channels: list[str] = []


def parse_bvh_hierarchy(header: str) -> list[BvhJoint]:
    """Joints in file order (depth-first, parents first) of a BVH file's HIERARCHY section: ``header``
    is the file's text up to its MOTION line (what follows it, if given, is ignored). The one BVH
    hierarchy parser: read_bvh and the corpus importers' readers of extra channels use it."""
    tokens = header.partition("MOTION")[0].split() + ["MOTION"]
    if tokens[0] != "HIERARCHY":
        raise ValueError("not a BVH file (no HIERARCHY)")
    joints: list[BvhJoint] = []
    stack: list[int] = []  # open joint indices; -2 marks an End Site block
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            parent = next((s for s in reversed(stack) if s >= 0), -1) if tok == "JOINT" else -1
            if tok == "ROOT" and joints:
                raise ValueError("BVH files with several ROOT joints are not supported")
            joints.append(BvhJoint(tokens[i + 1], parent))
            i += 2
        elif tok == "End":  # "End Site"
            stack.append(-2)
            i += 3  # End, Site, {
            continue
        elif tok == "{":
            stack.append(len(joints) - 1)
            i += 1
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok == "OFFSET":
            if stack and stack[-1] >= 0:
                joints[stack[-1]].offset = np.array([float(x) for x in tokens[i + 1 : i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            joints[stack[-1]].channels = tokens[i + 2 : i + 2 + n]
            i += 2 + n
        elif tok == "MOTION":
            return joints
        else:
            raise ValueError(f"unexpected BVH token {tok!r}")
    raise ValueError("BVH file has no MOTION section")


def read_bvh(path: str | os.PathLike, *, scale: float = 1.0) -> tuple[Skeleton, Motion]:
    """Parse a BVH file into a world-aligned rest Skeleton and a Motion (any rotation channel order).

    `scale` is the file's units per metre (as given to `write_bvh`). Position channels on non-root
    joints cannot be expressed by `Motion` and are ignored; the root's position channels are read as
    its absolute position (see the module docstring).
    """
    text = Path(path).read_text()
    head, _, frames_text = text.partition("MOTION")
    if head.split()[:1] != ["HIERARCHY"]:
        raise ValueError(f"{path}: not a BVH file (no HIERARCHY)")
    joints = parse_bvh_hierarchy(head)
    frames_m = re.search(r"Frames:\s*(\d+)", frames_text)
    time_m = re.search(r"Frame\s+Time:\s*([0-9.eE+-]+)", frames_text)
    if not frames_m or not time_m:
        raise ValueError(f"{path}: missing 'Frames:' or 'Frame Time:'")
    T = int(frames_m.group(1))
    data_text = frames_text[time_m.end():]
    values = np.array(data_text.split(), dtype=np.float64)
    n_channels = sum(len(j.channels) for j in joints)
    if values.size != T * n_channels:
        raise ValueError(f"{path}: expected {T} frames x {n_channels} channels, got {values.size} numbers")
    values = values.reshape(T, n_channels)

    J = len(joints)
    offsets = np.stack([j.offset for j in joints]) / scale
    rest_pos = np.zeros((J, 3))
    for k, jt in enumerate(joints):
        rest_pos[k] = offsets[k] + (rest_pos[jt.parent] if jt.parent >= 0 else 0.0)
    rest = torch.eye(4, dtype=torch.float64).repeat(J, 1, 1)
    rest[:, :3, 3] = torch.from_numpy(rest_pos)

    rotations = torch.eye(3, dtype=torch.float64).repeat(T, J, 1, 1)
    root_translation = torch.zeros(T, 3, dtype=torch.float64)
    col = 0
    for k, jt in enumerate(joints):
        chans = values[:, col : col + len(jt.channels)]
        col += len(jt.channels)
        rot_idx = [c for c, name in enumerate(jt.channels) if name.lower().endswith("rotation")]
        if rot_idx:
            order = "".join(jt.channels[c][0].upper() for c in rot_idx)
            angles = torch.from_numpy(chans[:, rot_idx])
            rotations[:, k] = euler_to_matrix(order, angles, degrees=True)
        if k == 0:
            pos = {jt.channels[c][0].upper(): chans[:, c] for c, name in enumerate(jt.channels) if name.lower().endswith("position")}
            if pos:
                absolute = np.stack([pos.get(a, np.full(T, offsets[0, i] * scale)) for i, a in enumerate("XYZ")], 1)
                root_translation = torch.from_numpy(absolute / scale - rest_pos[0])

    frame_time = float(time_m.group(1))
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 1e-4 * fps:
        fps = float(round(fps))
    names = [j.name for j in joints]
    skeleton = Skeleton(names=names, parents=[j.parent for j in joints], rest_transforms=rest.float())
    motion = Motion(
        fps=fps,
        joint_names=names,
        rotations=rotations.float(),
        root_translation=root_translation.float(),
        name=Path(path).stem,
    )
    return skeleton, motion
