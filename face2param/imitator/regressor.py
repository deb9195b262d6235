"""The avatar-domain landmark regressor: a small CNN from a front render (the engine's or the
imitator's) to the 68 iBUG landmarks in normalised image coordinates ([0, 1], x right, y down).

A black-box engine exposes no landmarks, so its labels are the photo detectors' points on its renders
(labels.py): the search then compares like with like, the detector's view of the avatar against the
detector's view of the photo. Stride-2 convolutions down to 4x4 keep where things are (no global
pooling); the output is an offset from the mean training landmarks in units of their spread."""
from __future__ import annotations

import torch
from torch import nn

POINTS = 68


class LandmarkRegressor(nn.Module):
    def __init__(self, image_size: int, channels: int = 32):
        super().__init__()
        layers, c_in, c, size = [], 3, channels, image_size
        while size > 4:
            layers += [nn.Conv2d(c_in, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in, c, size = c, min(c * 2, channels * 8), size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * 16, POINTS * 2))
        nn.init.zeros_(self.head[-1].weight)  # start at the mean landmarks
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("mean_landmarks", torch.full((POINTS, 2), 0.5))
        # per-coordinate spread of the training labels: the head predicts offsets in these units (a raw
        # offset is ~1% of the image, far below what one optimiser step moves an unscaled output)
        self.register_buffer("landmark_scale", torch.full((POINTS, 2), 0.05))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 68, 2) normalised coordinates."""
        offsets = self.head(self.features(images)).view(-1, POINTS, 2)
        return self.mean_landmarks + self.landmark_scale * offsets
