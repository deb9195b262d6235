"""The paper's random background augmentation (Sec. 3.3.2, after Dream Fields).

Four kinds: pure black, pure white, Gaussian noise, Gaussian-blurred chessboard with a random
block size (and random colours). Replacing the background at random stops CLIP from rewarding
"floating" content and makes it judge the foreground. All images are (n, H, W, 3) in [0, 1];
randomness comes only from the given torch.Generator (CPU), so a seed reproduces a batch.
"""
from __future__ import annotations

import torch

from .config import KINDS, BackgroundConfig


def solid(n: int, H: int, W: int, value: float, device=None) -> torch.Tensor:
    return torch.full((n, H, W, 3), float(value), device=device)


def gaussian_noise(n: int, H: int, W: int, generator: torch.Generator | None = None,
                   mean: float = 0.5, std: float = 0.25, device=None) -> torch.Tensor:
    img = torch.randn(n, H, W, 3, generator=generator) * std + mean
    return img.clamp(0.0, 1.0).to(device)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (n, H, W, C) images (reflect padding); sigma in pixels."""
    if sigma <= 0.1:
        return images
    r = max(1, int(3.0 * sigma + 0.5))
    x = torch.arange(-r, r + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    C = images.shape[-1]
    img = images.permute(0, 3, 1, 2)
    pad_w, pad_h = min(r, img.shape[-1] - 1), min(r, img.shape[-2] - 1)
    img = torch.nn.functional.pad(img, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    kw = k[r - pad_w: r + pad_w + 1].view(1, 1, 1, -1).expand(C, 1, 1, -1)
    kh = k[r - pad_h: r + pad_h + 1].view(1, 1, -1, 1).expand(C, 1, -1, 1)
    img = torch.nn.functional.conv2d(img, kw / kw.sum(-1, keepdim=True), groups=C)
    img = torch.nn.functional.conv2d(img, kh / kh.sum(-2, keepdim=True), groups=C)
    return img.permute(0, 2, 3, 1).contiguous()


def blurred_chessboard(n: int, H: int, W: int, generator: torch.Generator | None = None,
                       config: BackgroundConfig | None = None, device=None) -> torch.Tensor:
    """Chessboards with a random block size, two random colours and a random Gaussian blur."""
    cfg = config or BackgroundConfig()
    out = []
    ys, xs = torch.arange(H).view(H, 1), torch.arange(W).view(1, W)
    for _ in range(n):
        lo, hi = cfg.block_fraction_range
        block = max(2, int(round(min(H, W) * (lo + (hi - lo) * float(torch.rand(1, generator=generator))))))
        colors = torch.rand(2, 3, generator=generator)
        off = torch.randint(0, block, (2,), generator=generator)
        parity = (((ys + off[0]) // block + (xs + off[1]) // block) % 2).bool()
        img = torch.where(parity.unsqueeze(-1), colors[1], colors[0]).unsqueeze(0)
        slo, shi = cfg.blur_sigma_fraction_range
        sigma = block * (slo + (shi - slo) * float(torch.rand(1, generator=generator)))
        out.append(gaussian_blur(img, sigma))
    return torch.cat(out).to(device)


def random_backgrounds(n: int, H: int, W: int | None = None, generator: torch.Generator | None = None,
                       config: BackgroundConfig | None = None, device=None) -> torch.Tensor:
    """(n, H, W, 3) backgrounds, each of a kind drawn uniformly from ``config.kinds``."""
    cfg = config or BackgroundConfig()
    W = H if W is None else W
    kinds = torch.randint(0, len(cfg.kinds), (n,), generator=generator).tolist()
    out = []
    for k in kinds:
        kind = cfg.kinds[k]
        if kind == "black":
            out.append(solid(1, H, W, 0.0))
        elif kind == "white":
            out.append(solid(1, H, W, 1.0))
        elif kind == "noise":
            out.append(gaussian_noise(1, H, W, generator, cfg.noise_mean, cfg.noise_std))
        elif kind == "chessboard":
            out.append(blurred_chessboard(1, H, W, generator, cfg))
        else:
            raise ValueError(f"unknown background kind {kind!r}; choose from {KINDS}")
    return torch.cat(out).to(device)
