"""The one training loop of the motion models (pose VAE, motion VAE): seeded, Adam with a one-cycle
schedule, shuffled mini-batches, per-epoch progress. Each model brings its epoch data and batch loss."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch


def train_epochs(model: torch.nn.Module, *, epochs: int, batch_size: int, lr: float, pct_start: float, seed: int,
                 samples_per_epoch: int, epoch_data: Callable[[torch.Generator], torch.Tensor],
                 batch_loss: Callable[[torch.Tensor], torch.Tensor], clip_grad: float | None = None,
                 progress=None, label: str = "epoch") -> tuple[float, float]:
    """Train `model` in place; returns (last batch loss, seconds). The shuffles and `epoch_data` draw from
    one generator seeded with `seed`; torch's global RNG (sampling inside the loss) is seeded too and
    restored afterwards, so a run is reproducible and leaves the caller's RNG alone."""
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, epochs * math.ceil(samples_per_epoch / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start)
    loss_value = float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(epochs):
            data = epoch_data(gen)
            order = torch.randperm(len(data), generator=gen).to(data.device)
            for i in range(0, len(data), batch_size):
                loss = batch_loss(data[order[i:i + batch_size]])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                opt.step()
                sched.step()
                loss_value = float(loss.detach())
            if progress is not None:
                progress((epoch + 1) / max(1, epochs), f"{label} {epoch + 1}/{epochs} loss {loss_value:.4f}")
    return loss_value, time.perf_counter() - started
