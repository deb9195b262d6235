"""Differentiable identity networks for fitting (the identity loss of face-to-parameter methods).

An `IdentityEmbedder` is a torch module: (B, 3, H, W) RGB in [0, 1] (an aligned face crop) ->
(B, D) L2-normalised embeddings, differentiable with respect to the image. Architectures are
defined here; weights load from a checkpoint PATH only, never downloaded:
- LightCNN-29 v2 (Wu et al. 2018; the identity network of Shi et al.'s face-to-parameter work):
  128x128 greyscale input, 256-d. `LightCNN_29Layers_V2_checkpoint.pth.tar` from
  https://github.com/AlfredXiangWu/LightCNN (its fc2 classifier is ignored).
- ArcFace IResNet-50 / IResNet-100 (Deng et al. 2019): 112x112 RGB in [-1, 1], 512-d.
  `backbone.pth` of insightface's arcface_torch model zoo (e.g. ms1mv3_arcface_r100_fp16),
  https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from face2param.faces.errors import EmbedderCheckpointError


@runtime_checkable
class IdentityEmbedder(Protocol):
    embedding_dim: int
    input_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


# ---- LightCNN-29 v2 -------------------------------------------------------------------------
class _MaxFeatureMap(nn.Module):
    """Conv (or linear) with 2x outputs, element-wise max of the two halves."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, linear=False):
        super().__init__()
        self.out_channels = out_channels
        self.filter = (nn.Linear(in_channels, 2 * out_channels) if linear else
                       nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride, padding))

    def forward(self, x):
        a, b = torch.split(self.filter(x), self.out_channels, 1)
        return torch.max(a, b)


class _Group(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__()
        self.conv_a = _MaxFeatureMap(in_channels, in_channels, 1, 1, 0)
        self.conv = _MaxFeatureMap(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x):
        return self.conv(self.conv_a(x))


class _ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = _MaxFeatureMap(channels, channels)
        self.conv2 = _MaxFeatureMap(channels, channels)

    def forward(self, x):
        return self.conv2(self.conv1(x)) + x


def _pool(x):
    return F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)


class LightCNN29V2(nn.Module):
    """Feature part of LightCNN-29 v2 (parameter names as the released checkpoint)."""

    embedding_dim = 256
    input_size = 128

    def __init__(self, layers=(1, 2, 3, 4)):
        super().__init__()
        self.conv1 = _MaxFeatureMap(1, 48, 5, 1, 2)
        self.block1 = nn.Sequential(*[_ResBlock(48) for _ in range(layers[0])])
        self.group1 = _Group(48, 96, 3, 1, 1)
        self.block2 = nn.Sequential(*[_ResBlock(96) for _ in range(layers[1])])
        self.group2 = _Group(96, 192, 3, 1, 1)
        self.block3 = nn.Sequential(*[_ResBlock(192) for _ in range(layers[2])])
        self.group3 = _Group(192, 128, 3, 1, 1)
        self.block4 = nn.Sequential(*[_ResBlock(128) for _ in range(layers[3])])
        self.group4 = _Group(128, 128, 3, 1, 1)
        self.fc = nn.Linear(8 * 8 * 128, 256)

    def features(self, grey):  # (B, 1, 128, 128) in [0, 1]
        x = _pool(self.conv1(grey))
        x = _pool(self.group1(self.block1(x)))
        x = _pool(self.group2(self.block2(x)))
        x = self.group4(self.block4(self.group3(self.block3(x))))
        return self.fc(_pool(x).flatten(1))

    def forward(self, images):
        x = _resize(images, self.input_size)
        grey = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return F.normalize(self.features(grey), dim=1)


# ---- ArcFace IResNet --------------------------------------------------------------------------
class _IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface arcface_torch IResNet (parameter names as its backbone.pth files)."""

    embedding_dim = 512
    input_size = 112
    DEPTHS = {"iresnet50": (3, 4, 14, 3), "iresnet100": (3, 13, 30, 3)}

    def __init__(self, layers=(3, 4, 14, 3), num_features=512):
        super().__init__()
        self.embedding_dim = num_features
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def _make_layer(self, planes, blocks):
        downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 2, bias=False),
                                   nn.BatchNorm2d(planes, eps=1e-5))
        layers = [_IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers += [_IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, images):
        x = _resize(images, self.input_size) * 2.0 - 1.0
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.features(self.fc(self.dropout(self.bn2(x).flatten(1))))
        return F.normalize(x, dim=1)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > size)


# ---- loading ----------------------------------------------------------------------------------
ARCHITECTURES = ("lightcnn29v2", "iresnet50", "iresnet100")
_ARCFACE_ZOO = "https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch"
_WHERE = {
    "lightcnn29v2": "LightCNN_29Layers_V2_checkpoint.pth.tar from "
                    "https://github.com/AlfredXiangWu/LightCNN",
    "iresnet50": f"an arcface_torch r50 backbone.pth from insightface's model zoo ({_ARCFACE_ZOO})",
    "iresnet100": f"an arcface_torch r100 backbone.pth from insightface's model zoo "
                  f"({_ARCFACE_ZOO})",
}


def build_embedder(architecture: str) -> nn.Module:
    """An untrained network of the named architecture (tests; or before load_state_dict)."""
    if architecture == "lightcnn29v2":
        return LightCNN29V2()
    if architecture in IResNet.DEPTHS:
        return IResNet(IResNet.DEPTHS[architecture])
    raise EmbedderCheckpointError(
        f"unknown identity network {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")


def load_embedder(architecture: str, checkpoint: str | Path, device: str | torch.device
                  ) -> nn.Module:
    """The named network with weights from `checkpoint`, in eval mode, frozen, on `device`
    (the caller's config decides: "cpu", "cuda", "cuda:1", ...)."""
    model = build_embedder(architecture)
    path = Path(checkpoint)
    if not path.is_file():
        raise EmbedderCheckpointError(
            f"identity network checkpoint not found: {path}; for {architecture} use "
            f"{_WHERE[architecture]} (it is never downloaded automatically)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EmbedderCheckpointError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EmbedderCheckpointError(f"{path} holds no state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.removeprefix("module.").startswith(("fc2", "fc2_"))}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state)
                         if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        details = "; ".join(part for part in (
            f"missing keys {missing[:5]}" if missing else "",
            f"unexpected keys {unexpected[:5]}" if unexpected else "",
            f"wrong shapes {wrong_shape[:5]}" if wrong_shape else "") if part)
        raise EmbedderCheckpointError(
            f"{path} does not fit the {architecture} architecture ({details}); expected "
            f"{_WHERE[architecture]}")
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model.to(device)
