"""Shape VAE (paper Sec. 3.3.1 / 4.1.1): two-layer MLP encoder and decoder, 16-d latent.

Inputs are shape-space coordinates (space.py) standardised with the training set's mean and
standard deviation; the decoder's output is de-standardised and clipped to the slider ranges.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class ShapeVAE(nn.Module):
    def __init__(self, dim: int, latent_dim: int = 16, hidden: int = 128):
        super().__init__()
        self.dim, self.latent_dim, self.hidden = dim, latent_dim, hidden
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                     nn.Linear(hidden, dim))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape coordinates (B, D) -> latent mean and log-variance (B, Z)."""
        mu, logvar = self.encoder((x - self.mean) / self.std).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent (B, Z) -> shape coordinates (B, D) (not yet clipped to the slider ranges)."""
        return self.decoder(z) * self.std + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


@dataclass
class VAETrainReport:
    seconds: float
    epochs: int
    final_loss: float
    recon_rmse: float  # held-out, slider units, all coordinates
    recon_rmse_phenotypes: float
    prior_kl: float


def train_vae(vae: ShapeVAE, train: np.ndarray, held_out: np.ndarray, *, epochs: int, batch_size: int, lr: float,
              kl_weight: float, seed: int, num_phenotypes: int = 6) -> VAETrainReport:
    """Seeded Adam training of ``vae`` (in place) on standardised coordinates.

    Loss per sample: mean squared error of the standardised coordinates + kl_weight * KL / D.
    """
    started = time.perf_counter()
    x = torch.as_tensor(train, dtype=torch.float32)
    vae.mean.copy_(x.mean(0))
    vae.std.copy_(x.std(0).clamp_min(1e-3))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    loss_value = float("nan")
    vae.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                batch = x[order[i:i + batch_size]]
                recon, mu, logvar = vae(batch)
                rec = (((recon - batch) / vae.std) ** 2).mean()
                kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean() / vae.dim
                loss = rec + kl_weight * kl
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_value = float(loss.detach())
    vae.eval()
    rmse, rmse_p, kl = evaluate(vae, held_out, num_phenotypes)
    return VAETrainReport(time.perf_counter() - started, epochs, loss_value, rmse, rmse_p, kl)


@torch.no_grad()
def evaluate(vae: ShapeVAE, data: np.ndarray, num_phenotypes: int = 6) -> tuple[float, float, float]:
    """(RMSE over all coordinates, RMSE over phenotypes, mean KL) reconstructing from the latent mean."""
    x = torch.as_tensor(data, dtype=torch.float32)
    mu, logvar = vae.encode(x)
    err = (vae.decode(mu) - x) ** 2
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
    return float(err.mean().sqrt()), float(err[:, :num_phenotypes].mean().sqrt()), float(kl)


def vae_state_arrays(vae: ShapeVAE) -> dict[str, np.ndarray]:
    return {f"vae/{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in vae.state_dict().items()}


def vae_from_arrays(arrays, dim: int, latent_dim: int, hidden: int) -> ShapeVAE:
    vae = ShapeVAE(dim, latent_dim, hidden)
    state = {k[len("vae/"):]: torch.as_tensor(np.asarray(arrays[k])) for k in arrays if k.startswith("vae/")}
    vae.load_state_dict(state)
    return vae.eval()
