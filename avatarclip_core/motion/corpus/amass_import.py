"""Import AMASS `.npz` clips (SMPL / SMPL+H / SMPL-X axis-angle poses) as canonical clips.

Keys: `poses` (T, 72 | 156 | 165): per joint axis-angle in SMPL joint order (the first 22 body
joints are used; hands are ignored); `trans` (T, 3) root translation; `mocap_framerate` (or
`mocap_frame_rate`). SMPL rest frames are world-aligned, so the local rotations are already
world-axis rotations as if the parents were at rest. AMASS's world is Z-up: the global orientation
and translation are turned to Y-up (x, y, z) -> (x, z, -y). The SMPL rest joints below are the
neutral template's (a T-pose): only bone directions and the leg length are used from them.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from avatarclip_core.body.lbs import axis_angle_to_matrix
from avatarclip_core.body.types import Skeleton
from avatarclip_core.motion.canonical import ROLES, CanonicalMotion
from avatarclip_core.motion.corpus.bvh_import import MotionFileError
from avatarclip_core.motion.corpus.retarget import SourceRig, retarget

SMPL_JOINTS = ["pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
               "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
               "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
# Neutral SMPL template joints (metres, Y up, facing +Z, T-pose), rounded.
SMPL_REST_JOINTS = torch.tensor([
    [-0.002, -0.223, 0.028], [0.070, -0.314, 0.024], [-0.068, -0.314, 0.023], [-0.003, -0.109, 0.003],
    [0.104, -0.676, 0.017], [-0.106, -0.678, 0.018], [0.006, 0.025, 0.001], [0.089, -1.058, -0.029],
    [-0.089, -1.057, -0.026], [0.002, 0.070, 0.028], [0.117, -1.123, 0.091], [-0.115, -1.123, 0.095],
    [-0.001, 0.288, -0.009], [0.079, 0.187, -0.005], [-0.078, 0.186, -0.008], [0.005, 0.352, 0.042],
    [0.173, 0.207, -0.015], [-0.177, 0.209, -0.014], [0.427, 0.186, -0.039], [-0.428, 0.186, -0.036],
    [0.679, 0.199, -0.043], [-0.684, 0.198, -0.044]])
Z_UP_TO_Y_UP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)
POSE_WIDTHS = {72: "SMPL", 156: "SMPL+H", 165: "SMPL-X"}
FRAMERATE_KEYS = ("mocap_framerate", "mocap_frame_rate")


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise MotionFileError(f"{path}: not a readable .npz file ({exc})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MotionFileError(f"{path}: not an .npz archive (a single array)")
    with data:
        keys = set(data.files)
        rate_key = next((k for k in FRAMERATE_KEYS if k in keys), None)
        missing = [k for k in ("poses", "trans") if k not in keys] + ([] if rate_key else ["mocap_framerate"])
        if missing:
            raise MotionFileError(f"{path}: not an AMASS clip: missing keys {missing} (has {sorted(keys)[:10]})")
        poses, trans, fps = data["poses"], data["trans"], float(data[rate_key])
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
        raise MotionFileError(f"{path}: 'poses' must be (T, 72 | 156 | 165) axis-angle, got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise MotionFileError(f"{path}: 'trans' must be ({poses.shape[0]}, 3), got {trans.shape}")
    if not fps > 0 or poses.shape[0] < 1:
        raise MotionFileError(f"{path}: needs at least one frame and a positive frame rate (got {fps})")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all()):
        raise MotionFileError(f"{path}: 'poses' or 'trans' contain NaN or inf")
    return poses, trans, fps


def import_amass(path: str | os.PathLike, skeleton: Skeleton, face_forward: bool = True) -> CanonicalMotion:
    """An AMASS clip as a canonical clip retargeted to `skeleton` (at the file's frame rate)."""
    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"{path}: no such AMASS file")
    poses, trans, fps = _load(path)
    T = poses.shape[0]
    body = torch.from_numpy(poses[:, : 3 * len(SMPL_JOINTS)].astype(np.float32)).reshape(T, len(SMPL_JOINTS), 3)
    rotations = axis_angle_to_matrix(body)
    rig = SourceRig(SMPL_PARENTS, SMPL_REST_JOINTS, [SMPL_JOINTS.index(r) for r in ROLES],
                    (SMPL_JOINTS.index("left_foot"), SMPL_JOINTS.index("right_foot")))
    # SMPL rotates the body about the pelvis joint and then adds `trans`: the pelvis moves by `trans`.
    displacement = torch.from_numpy(trans.astype(np.float32))
    return retarget(rotations, displacement, fps, rig, skeleton, world_to_y_up=Z_UP_TO_Y_UP,
                    face_forward=face_forward)
