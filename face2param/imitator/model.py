"""The imitator G of TPAMI Table 2: a DCGAN-style generator from engine parameters to a front render.

Input: the continuous sliders concatenated with every discrete slot's one-hot (softmax-relaxed during
the search) probabilities, as a (D, 1, 1) map. Conv_1 is a 4x4 stride-1 transposed convolution to 4x4;
every further layer is a 4x4 stride-2 transposed convolution that doubles the resolution, each followed
by BatchNorm + ReLU except the last (a plain deconvolution to RGB). 512 px gives Table 2's eight layers;
each halving of image_size removes one. Filters follow Table 2's schedule by output resolution
(base up to 16 px, then halving, never below base/8: 512-512-512-256-128-64-64 for base 512).
One deviation: the last layer's output is added to the mean training image (a buffer), so a briefly
trained G starts from the average render instead of grey (CPU budgets are ~100x below the paper's).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from avatarclip_core.errors import UserInputError
from face2param.engines.base import ParamSpec


class ImitatorShapeError(UserInputError):
    """An image size the generator cannot produce."""


def layer_count(image_size: int) -> int:
    if image_size < 8 or image_size & (image_size - 1):
        raise ImitatorShapeError(f"imitator.image_size must be a power of two >= 8, got {image_size}")
    return int(math.log2(image_size)) - 1


def hidden_channels(resolution: int, base: int) -> int:
    """Filters of a hidden layer whose output is `resolution` px (Table 2's schedule)."""
    return max(min(base, base * 16 // resolution), max(base // 8, 8))


def input_size(spec: ParamSpec) -> int:
    return len(spec.continuous) + sum(len(s.options) for s in spec.discrete)


def generator_input(spec: ParamSpec, continuous: torch.Tensor, probs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, N) sliders and slot -> (B, K) probabilities -> (B, D) in spec order."""
    return torch.cat([continuous] + [probs[s.name] for s in spec.discrete], -1)


class ImitatorGenerator(nn.Module):
    def __init__(self, in_features: int, image_size: int, base_channels: int):
        super().__init__()
        layers, channels, resolution = [], in_features, 2
        for i in range(layer_count(image_size) - 1):
            resolution = 4 if i == 0 else resolution * 2  # this layer's output
            out = hidden_channels(resolution, base_channels)
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(channels, out, 4, stride, padding, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]
            channels = out
        layers.append(nn.ConvTranspose2d(channels, 3, 4, 2, 1))  # plain output layer
        self.layers = nn.Sequential(*layers)
        self.image_size = image_size
        self.register_buffer("mean_image", torch.zeros(3, image_size, image_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, 3, S, S) image (about [0, 1]; not clamped, so gradients never vanish)."""
        return self.layers(features[:, :, None, None]) + self.mean_image
