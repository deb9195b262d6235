"""Pose VAE (VPoser-like, AvatarCLIP Sec. 3.4.1) over the 20 canonical roles, and a VPoser v2 loader.

Poses are `canonical.ROLES` rotations (world-axis rotations per role, as if its parents were at
rest), fed as continuous 6-D rotations (Zhou et al. 2019; `lbs.matrix_to_rotation_6d`). The
encoder and decoder are two-layer MLPs with a 32-d latent, as VPoser's.

``load_vposer(path)`` reads a human-body-prior VPoser v2 checkpoint (the ``V02_05`` folder with
``snapshots/*.ckpt``, or the ``.ckpt`` itself) into a re-implementation of its network, wrapped
so it speaks our roles. Role map (SMPL body joint index in VPoser's 21-joint ``pose_body`` ->
role): 1 left_hip, 2 right_hip, 3 spine1, 4 left_knee, 5 right_knee, 6 spine2, 7 left_ankle,
8 right_ankle, 9 spine3, 12 neck, 13 left_collar, 14 right_collar, 15 head, 16 left_shoulder,
17 right_shoulder, 18 left_elbow, 19 right_elbow, 20 left_wrist, 21 right_wrist. SMPL's toes
(10 left_foot, 11 right_foot) have no role: fed as rest, dropped on decoding. The pelvis is
SMPL's global orientation, which VPoser does not model: kept at rest. SMPL's joint frames are
world-aligned (Y up, facing +Z) in its T-pose rest, so its local rotations R are world-axis
rotations too; only the rest poses differ (our canonical rest is the default Anny body's A-pose
with bent elbows). With O_r the rotation taking role r's bone direction in SMPL's T-pose to its
direction in our rest (``rest_offsets``), a pose matches when W_r = O_parent(r) R_r O_r^T.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avatarclip_core.body.lbs import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from avatarclip_core.errors import UserInputError
from avatarclip_core.motion.canonical import ROLES

log = logging.getLogger(__name__)
NUM_ROLES = len(ROLES)


class VPoserCheckpointError(UserInputError):
    """The --vposer path is missing or is not a VPoser v2 checkpoint."""


def rotation_angle_degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotation matrices (..., 3, 3) -> (...) in degrees."""
    cos = ((a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


class PoseVAE(nn.Module):
    """Our pose VAE: (B, 20, 3, 3) canonical rotations <-> (B, latent_dim)."""

    kind = "ours"

    def __init__(self, latent_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.latent_dim, self.hidden = latent_dim, hidden
        d = NUM_ROLES * 6
        self.encoder = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, d))

    def encode(self, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance (B, Z) of poses (B, 20, 3, 3)."""
        x = matrix_to_rotation_6d(rotations).reshape(rotations.shape[0], -1)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Poses (B, 20, 3, 3) of latents (B, Z)."""
        return rotation_6d_to_matrix(self.decoder(z).reshape(z.shape[0], NUM_ROLES, 6))


def train_pose_vae(vae: PoseVAE, train: torch.Tensor, held_out: torch.Tensor, *, epochs: int, batch_size: int,
                   lr: float, kl_weight: float, seed: int, device: str = "cpu", progress=None) -> dict:
    """Seeded Adam training in place on (N, 20, 3, 3) poses; returns held-out metrics and timings.

    Loss: mean squared error of the decoded 6-D rotations + kl_weight * KL / latent_dim.
    """
    from avatarclip_core.motion.training import train_epochs

    vae.to(device).train()
    x = matrix_to_rotation_6d(train.float()).to(device)

    def batch_loss(batch6: torch.Tensor) -> torch.Tensor:
        mu, logvar = vae.encode(rotation_6d_to_matrix(batch6))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = matrix_to_rotation_6d(vae.decode(z))
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean() / vae.latent_dim
        return F.mse_loss(recon, batch6) + kl_weight * kl

    loss_value, seconds = train_epochs(vae, epochs=epochs, batch_size=batch_size, lr=lr, pct_start=0.15, seed=seed,
                                       samples_per_epoch=len(x), epoch_data=lambda gen: x, batch_loss=batch_loss,
                                       progress=progress, label="pose VAE epoch")
    vae.eval()
    return {"seconds": round(seconds, 2), "epochs": epochs, "seconds_per_epoch": round(seconds / max(1, epochs), 3),
            "final_loss": loss_value, **pose_reconstruction_error(vae, held_out, device)}


@torch.no_grad()
def pose_reconstruction_error(model, poses: torch.Tensor, device: str = "cpu") -> dict:
    """Held-out reconstruction through the latent mean: mean and 95th-percentile angle per joint (degrees)."""
    poses = poses.float().to(device)
    err = rotation_angle_degrees(model.decode(model.encode(poses)[0]), poses)
    roles = err[:, 1:] if getattr(model, "kind", "") == "vposer" else err  # VPoser does not model the pelvis
    return {"held_out_poses": int(len(poses)), "recon_deg_mean": round(float(roles.mean()), 3),
            "recon_deg_p95": round(float(roles.flatten().quantile(0.95)), 3)}


# --- VPoser v2 (human-body-prior) -----------------------------------------------------------------

SMPL_BODY_TO_ROLE = {
    1: "left_hip", 2: "right_hip", 3: "spine1", 4: "left_knee", 5: "right_knee", 6: "spine2", 7: "left_ankle",
    8: "right_ankle", 9: "spine3", 12: "neck", 13: "left_collar", 14: "right_collar", 15: "head",
    16: "left_shoulder", 17: "right_shoulder", 18: "left_elbow", 19: "right_elbow", 20: "left_wrist",
    21: "right_wrist",
}


class _NormalDist(nn.Module):
    def __init__(self, n: int, latent: int):
        super().__init__()
        self.mu, self.logvar = nn.Linear(n, latent), nn.Linear(n, latent)

    def forward(self, x):  # VPoser's "logvar" head is a softplus scale
        return self.mu(x), F.softplus(self.logvar(x))


class _Flatten(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class _VPoserV2Net(nn.Module):
    """VPoser v2's layers, indexed as in human_body_prior/models/vposer_model.py (state-dict compatible)."""

    def __init__(self, num_neurons: int = 512, latent_dim: int = 32):
        super().__init__()
        n_in = 21 * 3
        self.encoder_net = nn.Sequential(
            _Flatten(), nn.BatchNorm1d(n_in), nn.Linear(n_in, num_neurons), nn.LeakyReLU(),
            nn.BatchNorm1d(num_neurons), nn.Dropout(0.1), nn.Linear(num_neurons, num_neurons),
            nn.Linear(num_neurons, num_neurons), _NormalDist(num_neurons, latent_dim))
        self.decoder_net = nn.Sequential(
            nn.Linear(latent_dim, num_neurons), nn.LeakyReLU(), nn.Dropout(0.1), nn.Linear(num_neurons, num_neurons),
            nn.LeakyReLU(), nn.Linear(num_neurons, 21 * 6))


PARENT_ROLE = {
    "pelvis": None, "spine1": "pelvis", "spine2": "spine1", "spine3": "spine2", "neck": "spine3", "head": "neck",
    **{f"{s}_{r}": p for s in ("left", "right") for r, p in (
        ("hip", "pelvis"), ("knee", f"{s}_hip"), ("ankle", f"{s}_knee"), ("collar", "spine3"),
        ("shoulder", f"{s}_collar"), ("elbow", f"{s}_shoulder"), ("wrist", f"{s}_elbow"))},
}
# Bone of each role (role -> child role) and its direction in SMPL's T-pose; ankles keep no offset.
_BONES = {"spine1": ("spine2", (0, 1, 0)), "spine2": ("spine3", (0, 1, 0)), "spine3": ("neck", (0, 1, 0)),
          "neck": ("head", (0, 1, 0)),
          **{f"{s}_{r}": (c if c else None, d) for s, x in (("left", 1.0), ("right", -1.0)) for r, c, d in (
              ("hip", f"{s}_knee", (0, -1, 0)), ("knee", f"{s}_ankle", (0, -1, 0)),
              ("collar", f"{s}_shoulder", (x, 0, 0)), ("shoulder", f"{s}_elbow", (x, 0, 0)),
              ("elbow", f"{s}_wrist", (x, 0, 0)))}}


def rest_offsets(skeleton) -> torch.Tensor:
    """(20, 3, 3) O_r: minimal rotations from SMPL T-pose bone directions to `skeleton`'s rest ones
    (identity for the pelvis, head and ankles; wrists follow their forearm)."""
    from avatarclip_core.motion.canonical import role_joint_indices

    pos = skeleton.rest_positions[role_joint_indices(skeleton)].float()
    out = torch.eye(3).repeat(NUM_ROLES, 1, 1)
    for role, (child, smpl_dir) in _BONES.items():
        a = torch.tensor(smpl_dir, dtype=torch.float32)
        b = F.normalize(pos[ROLES.index(child)] - pos[ROLES.index(role)], dim=0)
        axis = torch.linalg.cross(a, b)
        angle = torch.atan2(axis.norm(), (a * b).sum())
        out[ROLES.index(role)] = axis_angle_to_matrix(F.normalize(axis, dim=0) * angle) if axis.norm() > 1e-8 \
            else torch.eye(3)
    for side in ("left", "right"):
        out[ROLES.index(f"{side}_wrist")] = out[ROLES.index(f"{side}_elbow")]
    return out


class VPoserPoseModel(nn.Module):
    """A VPoser v2 network behind our pose-model interface (encode/decode of (B, 20, 3, 3) poses)."""

    kind = "vposer"

    def __init__(self, net: _VPoserV2Net, source: str, offsets: torch.Tensor | None = None):
        super().__init__()
        offsets = torch.eye(3).repeat(NUM_ROLES, 1, 1) if offsets is None else offsets.float()
        parents = [ROLES.index(PARENT_ROLE[r]) if PARENT_ROLE[r] else None for r in ROLES]
        parent_offsets = torch.stack([offsets[p] if p is not None else torch.eye(3) for p in parents])
        self.register_buffer("offsets", offsets)
        self.register_buffer("parent_offsets", parent_offsets)
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.latent_dim = int(net.decoder_net[0].in_features)
        self.source = source
        self._smpl = list(SMPL_BODY_TO_ROLE)
        self._roles = [ROLES.index(r) for r in SMPL_BODY_TO_ROLE.values()]

    def encode(self, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = rotations.shape[0]
        aa = rotations.new_zeros(B, 21, 3)
        smpl = self.parent_offsets.transpose(-1, -2) @ rotations @ self.offsets  # R = O_p^T W O
        aa[:, [j - 1 for j in self._smpl]] = matrix_to_axis_angle(smpl[:, self._roles])
        mu, scale = self.net.encoder_net(aa)
        return mu, 2.0 * torch.log(scale.clamp_min(1e-6))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        mats = rotation_6d_to_matrix(self.net.decoder_net(z).reshape(z.shape[0], 21, 6))
        out = torch.eye(3, dtype=mats.dtype, device=mats.device).repeat(z.shape[0], NUM_ROLES, 1, 1)
        out[:, self._roles] = mats[:, [j - 1 for j in self._smpl]]
        return self.parent_offsets @ out @ self.offsets.transpose(-1, -2)  # W = O_p R O^T


def _find_checkpoint(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(path.glob("snapshots/*.ckpt"), key=lambda p: p.stat().st_mtime) or sorted(path.glob("*.ckpt"))
        if found:
            return found[-1]
        raise VPoserCheckpointError(
            f"--vposer {path}: no VPoser checkpoint in this folder (expected snapshots/*.ckpt, as in V02_05/)")
    raise VPoserCheckpointError(f"--vposer {path}: no such file or folder (give the V02_05 folder or its .ckpt)")


def load_vposer(path: str | Path, device: str = "cpu", skeleton=None) -> VPoserPoseModel:
    """A human-body-prior VPoser v2 checkpoint as a pose model; sizes are read from the weights.

    skeleton: the rest pose our canonical rotations refer to (default: the corpus's default
    skeleton, the Anny body); its bone directions give the T-pose offsets."""
    ckpt = _find_checkpoint(Path(path).expanduser())
    try:
        try:
            data = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception:  # Lightning checkpoints may pickle their hyper-parameters: the user chose this file
            data = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise VPoserCheckpointError(f"--vposer {ckpt}: not a readable PyTorch checkpoint ({exc})"[:400]) from None
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise VPoserCheckpointError(f"--vposer {ckpt}: no state_dict in this file")
    state = {k.removeprefix("vp_model."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k.startswith(("encoder_net.", "decoder_net."))}
    try:
        num_neurons, latent = state["decoder_net.0.weight"].shape
        net = _VPoserV2Net(int(num_neurons), int(latent))
        net.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise VPoserCheckpointError(
            f"--vposer {ckpt}: not a VPoser v2 checkpoint (human-body-prior V02_05 layout expected): "
            f"{' '.join(str(exc).split())[:300]}") from None
    log.info("loaded VPoser v2 (latent %d, %d units) from %s", latent, num_neurons, ckpt)
    if skeleton is None:
        from avatarclip_core.motion.corpus import default_skeleton

        skeleton = default_skeleton()
    return VPoserPoseModel(net, str(ckpt), rest_offsets(skeleton)).to(device)
