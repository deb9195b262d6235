"""Motion VAE (AvatarCLIP Sec. 3.4.2, after ACTOR): transformer encoder/decoder over fixed-length clips.

A clip is L frames of 20 canonical role rotations as 6-D rotations plus the root translation:
123 features per frame. Root translation: horizontal (x, z) displacement from the clip's first
frame and absolute height offset (y). Why: a window cropped anywhere in a clip then starts at the
origin (no dependence on where the crop began), there is no integration drift over a 3 s window as
velocities would have, and the height stays absolute because it decides ground contact (squats,
jumps); the MSE then measures positions the viewer sees.

Encoder: projection E_p, learnable distribution tokens mu / sigma prepended, sinusoidal positional
encoding, transformer encoder layers, R_mu / R_sigma on the two token outputs. Decoder: queries are
the positional encodings plus D_p(z), memory is D_p(z); transformer decoder layers and D_o.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avatarclip_core.body.lbs import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from avatarclip_core.motion.canonical import ROLES
from avatarclip_core.motion.pose_vae import rotation_angle_degrees

NUM_ROLES = len(ROLES)
FEATURES = NUM_ROLES * 6 + 3


def sinusoidal_encoding(length: int, width: int) -> torch.Tensor:
    """(length, width) positional encoding of Vaswani et al. 2017."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(length, width)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : width // 2]
    return pe


def to_features(rotations: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """(B, T, 20, 3, 3) rotations + (B, T, 3) root translation -> (B, T, 123) features."""
    rel = root.clone()
    rel[..., [0, 2]] = root[..., [0, 2]] - root[..., :1, [0, 2]]
    return torch.cat([matrix_to_rotation_6d(rotations).flatten(-2), rel], dim=-1)


def from_features(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 123) -> rotations (B, T, 20, 3, 3) and root translation (B, T, 3)."""
    rot6 = features[..., : NUM_ROLES * 6].reshape(*features.shape[:-1], NUM_ROLES, 6)
    return rotation_6d_to_matrix(rot6), features[..., NUM_ROLES * 6:]


def resample(rotations: torch.Tensor, root: torch.Tensor, src_fps: float, dst_fps: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-time a clip (T, R, 3, 3) + (T, 3): slerp between neighbouring frames, linear root."""
    T = rotations.shape[0]
    if abs(src_fps - dst_fps) < 1e-6 or T < 2:
        return rotations, root
    n = int(math.floor((T - 1) * dst_fps / src_fps + 1e-6)) + 1
    idx = torch.arange(n, dtype=torch.float32) * (src_fps / dst_fps)
    i0 = idx.floor().long().clamp(max=T - 1)
    i1 = (i0 + 1).clamp(max=T - 1)
    f = (idx - i0.float()).to(rotations.dtype)
    r0, r1 = rotations[i0], rotations[i1]
    step = matrix_to_axis_angle(r0.transpose(-1, -2) @ r1) * f[:, None, None]
    rot = r0 @ axis_angle_to_matrix(step)
    return rot, root[i0] + (root[i1] - root[i0]) * f[:, None].to(root.dtype)


def crop(rotations: torch.Tensor, root: torch.Tensor, start: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`frames` frames from `start`; a clip that is too short holds its last frame."""
    rot, rt = rotations[start:start + frames], root[start:start + frames]
    if rot.shape[0] < frames:
        pad = frames - rot.shape[0]
        rot = torch.cat([rot, rot[-1:].expand(pad, *rot.shape[1:])])
        rt = torch.cat([rt, rt[-1:].expand(pad, 3)])
    return rot, rt


class MotionVAE(nn.Module):
    def __init__(self, frames: int = 60, latent_dim: int = 64, width: int = 128, layers: int = 2, heads: int = 4,
                 ff: int = 256, dropout: float = 0.1, norm_first: bool = False):
        super().__init__()
        self.frames, self.latent_dim = frames, latent_dim
        self.hparams = dict(frames=frames, latent_dim=latent_dim, width=width, layers=layers, heads=heads, ff=ff,
                            dropout=dropout, norm_first=norm_first)
        self.input = nn.Linear(FEATURES, width)  # E_p
        self.dist_tokens = nn.Parameter(torch.randn(2, width) * 0.02)  # mu and sigma tokens
        enc = nn.TransformerEncoderLayer(width, heads, ff, dropout, activation="gelu", batch_first=True,
                                         norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(enc, layers, enable_nested_tensor=False)
        self.to_mu, self.to_logvar = nn.Linear(width, latent_dim), nn.Linear(width, latent_dim)  # R_mu, R_sigma
        # Start with a small posterior variance: with unit noise on an untrained encoder's means the
        # decoder first learns to ignore z and reproduces the average (over-smoothed) motion.
        nn.init.constant_(self.to_logvar.bias, -6.0)
        self.from_latent = nn.Linear(latent_dim, width)  # D_p
        dec = nn.TransformerDecoderLayer(width, heads, ff, dropout, activation="gelu", batch_first=True,
                                         norm_first=norm_first)
        self.decoder = nn.TransformerDecoder(dec, layers)
        self.output = nn.Linear(width, FEATURES)  # D_o
        self.register_buffer("pe", sinusoidal_encoding(frames + 2, width), persistent=False)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 123) -> latent mean and log-variance (B, Z)."""
        B, T = features.shape[:2]
        h = torch.cat([self.dist_tokens.expand(B, 2, -1), self.input(features)], dim=1) + self.pe[: T + 2]
        out = self.encoder(h)
        return self.to_mu(out[:, 0]), self.to_logvar(out[:, 1]).clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> (B, frames, 123) features (6-D rotations are not yet orthonormalised)."""
        m = self.from_latent(z)[:, None]
        return self.output(self.decoder(self.pe[: self.frames] + m, m))

    def decode_motion(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Z) -> rotations (B, T, 20, 3, 3), root translation (B, T, 3)."""
        return from_features(self.decode(z))


def _loss(vae: MotionVAE, batch: torch.Tensor, kl_weight: float, root_weight: float) -> torch.Tensor:
    mu, logvar = vae.encode(batch)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = vae.decode(z)
    rot, root = from_features(recon)
    rot_loss = F.mse_loss(matrix_to_rotation_6d(rot).flatten(-2), batch[..., : NUM_ROLES * 6])
    root_loss = F.mse_loss(root, batch[..., NUM_ROLES * 6:])
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean() / vae.latent_dim
    return rot_loss + root_weight * root_loss + kl_weight * kl


def random_windows(clips: list[tuple[torch.Tensor, torch.Tensor]], frames: int, per_clip: int,
                   gen: torch.Generator) -> torch.Tensor:
    """(N * per_clip, frames, 123) random crops of resampled clips [(rot (T,20,3,3), root (T,3))]."""
    out = []
    for rot, root in clips:
        for _ in range(per_clip):
            start = int(torch.randint(0, max(1, rot.shape[0] - frames + 1), (1,), generator=gen))
            r, t = crop(rot, root, start, frames)
            out.append(to_features(r[None], t[None])[0])
    return torch.stack(out)


def train_motion_vae(vae: MotionVAE, train_clips, held_out_clips, *, epochs: int, batch_size: int, lr: float,
                     kl_weight: float, root_weight: float, windows_per_clip: int, seed: int, device: str = "cpu",
                     progress=None) -> dict:
    """Seeded Adam training in place on resampled clips; returns held-out metrics and timings."""
    from avatarclip_core.motion.training import train_epochs

    vae.to(device).train()
    loss_value, seconds = train_epochs(
        vae, epochs=epochs, batch_size=batch_size, lr=lr, pct_start=0.1, seed=seed,
        samples_per_epoch=len(train_clips) * windows_per_clip,
        epoch_data=lambda gen: random_windows(train_clips, vae.frames, windows_per_clip, gen).to(device),
        batch_loss=lambda batch: _loss(vae, batch, kl_weight, root_weight), clip_grad=1.0,
        progress=progress, label="motion VAE epoch")
    vae.eval()
    held = random_windows(held_out_clips, vae.frames, 2, torch.Generator().manual_seed(seed + 1))
    return {"seconds": round(seconds, 2), "epochs": epochs, "seconds_per_epoch": round(seconds / max(1, epochs), 3),
            "final_loss": loss_value, **motion_reconstruction_error(vae, held, device)}


@torch.no_grad()
def motion_reconstruction_error(vae: MotionVAE, windows: torch.Tensor, device: str = "cpu") -> dict:
    """Held-out reconstruction through the latent mean: angle per joint (degrees), root error (metres)."""
    vae.eval()
    windows = windows.to(device)
    rot, root = vae.decode_motion(vae.encode(windows)[0])
    true_rot, true_root = from_features(windows)
    angle = rotation_angle_degrees(rot, true_rot)
    root_err = (root - true_root).norm(dim=-1)
    return {"held_out_windows": int(len(windows)), "recon_deg_mean": round(float(angle.mean()), 3),
            "recon_deg_p95": round(float(angle.flatten().quantile(0.95)), 3),
            "root_error_m_mean": round(float(root_err.mean()), 4)}
