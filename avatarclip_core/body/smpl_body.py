"""`SmplBody`: an optional adapter over `smplx` for users who hold SMPL model files.

SMPL files are not redistributable, so nothing here downloads them: the user passes the path of
`SMPL_NEUTRAL.pkl` (or a folder holding `SMPL_<GENDER>.pkl`). Posing uses our `lbs` module (no pose
correctives, as in game engines). SMPL is already Y-up and faces +Z; we lift feet to y = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from avatarclip_core.body import lbs
from avatarclip_core.body.model import BODY_MODELS, SliderBody, SliderSpec
from avatarclip_core.errors import UserInputError

SMPL_JOINT_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
]

HOW_TO_GET_SMPL = (
    "register at https://smpl.is.tue.mpg.de, download the SMPL model files and pass the path of "
    "SMPL_NEUTRAL.pkl (or the folder holding SMPL_<GENDER>.pkl) as body.smpl.model_path"
)


class SmplModelMissingError(UserInputError, FileNotFoundError):
    pass


@dataclass
class SmplConfig:
    model_path: str = ""
    gender: Literal["neutral", "male", "female"] = "neutral"  # (used when model_path is a folder)
    num_betas: int = 10


@BODY_MODELS.register("smpl", SmplConfig)
class SmplBody(SliderBody):
    name = "smpl"
    mesh_name = "smpl_avatar"

    def __init__(self, config: SmplConfig, device: str = "cpu") -> None:
        path = Path(config.model_path).expanduser() if config.model_path else None
        if path is None or not path.exists():
            where = f" at {path}" if path else ""
            raise SmplModelMissingError(f"SMPL model file not found{where}: {HOW_TO_GET_SMPL}")
        if path.is_dir():
            candidate = path / f"SMPL_{config.gender.upper()}.pkl"
            if not candidate.is_file():
                raise SmplModelMissingError(f"no {candidate.name} in {path}: {HOW_TO_GET_SMPL}")
        import smplx

        try:
            smpl = smplx.SMPL(model_path=str(path), gender=config.gender, num_betas=config.num_betas)
        except ModuleNotFoundError as exc:  # the official .pkl files pickle chumpy arrays
            raise SmplModelMissingError(
                f"loading {path} needs the '{exc.name}' package (pip install {exc.name})"
            ) from exc
        self.device = torch.device(device)
        self.config = config
        self._v_template = smpl.v_template.float().to(self.device)
        self._shapedirs = smpl.shapedirs.float().to(self.device)  # (V, 3, B)
        self._j_regressor = smpl.J_regressor.float().to(self.device)  # (J, V)
        parents = smpl.parents.tolist()
        self.parents = [-1] + [int(p) for p in parents[1:]]
        n_joints = len(self.parents)
        self.joint_names = (SMPL_JOINT_NAMES + [f"joint_{i}" for i in range(24, n_joints)])[:n_joints]
        self.faces = torch.as_tensor(smpl.faces.astype("int64"), device=self.device)
        weights = smpl.lbs_weights.float().to(self.device)  # (V, J) dense
        k = min(4, n_joints)
        top = weights.topk(k, dim=1)
        self.skin_indices = top.indices
        self.skin_weights = top.values / top.values.sum(1, keepdim=True).clamp_min(1e-8)
        self.dense_weights = lbs.dense_skin_weights(self.skin_indices, self.skin_weights, n_joints)
        self.semantic_joints = {
            name: self.joint_names.index(name)
            for name in ("pelvis", "head", "left_wrist", "right_wrist", "left_ankle", "right_ankle")
            if name in self.joint_names
        }
        self._specs = [
            SliderSpec(f"beta_{i}", -3.0, 3.0, 0.0, "shape", f"SMPL shape coefficient {i} (std devs)")
            for i in range(self._shapedirs.shape[-1])
        ]

    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        betas = shape.reshape(-1, self._shapedirs.shape[-1]).to(self.device, torch.float32)
        verts = self._v_template + torch.einsum("vcb,nb->nvc", self._shapedirs, betas)
        joints = torch.einsum("jv,nvc->njc", self._j_regressor, verts)
        lift = -verts[..., 1].amin(dim=1)  # feet on the ground
        verts = verts.clone()
        verts[..., 1] += lift[:, None]
        joints = joints.clone()
        joints[..., 1] += lift[:, None]
        world = torch.eye(4, device=self.device).repeat(betas.shape[0], len(self.parents), 1, 1)
        world[..., :3, 3] = joints
        return verts, world
