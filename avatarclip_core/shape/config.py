"""Typed configs of the shape VAE, the code-book and the shape query (YAML section ``shape``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from avatarclip_core.config.ranges import Count, NonNegative, NonNegativeInt, Positive


@dataclass
class ShapeVAEConfig:
    latent_dim: Count = 16  # paper
    hidden: Count = 128  # width of the two hidden layers of encoder and decoder
    train_samples: Count = 20000  # bodies drawn from the training distribution (space.py)
    held_out: NonNegativeInt = 2000
    epochs: Count = 20
    batch_size: Count = 512
    lr: Positive = 3e-3
    kl_weight: NonNegative = 0.1  # per coordinate, against the standardised reconstruction error


@dataclass
class CodebookConfig:
    samples: Count = 4096  # latent codes drawn from N(0, I) (paper: 40,960)
    size: Count = 256  # K-Means centroids (paper: 2,048)
    kmeans_iters: Count = 40


@dataclass
class ShapeQueryConfig:
    method: Literal["auto", "clip", "text"] = "auto"  # auto uses CLIP when a real scorer is given
    neutral_text: str = "a person"  # t_n of Eq. 4


@dataclass
class ShapeConfig:
    """name: the artifact set (packaged: preview, standard, paper); artifacts_dir: "" = the data
    folder's shape/<name> when `avatar train shape` wrote one, else the packaged set."""

    name: str = "preview"
    artifacts_dir: str = ""
    seed: NonNegativeInt = 0
    vae: ShapeVAEConfig = field(default_factory=ShapeVAEConfig)
    codebook: CodebookConfig = field(default_factory=CodebookConfig)
    query: ShapeQueryConfig = field(default_factory=ShapeQueryConfig)


PACKAGED_SETS = ("preview", "standard", "paper")


def preset_shape_config(name: str) -> ShapeConfig:
    """ShapeConfig of a preset: the ``text.shape`` section of configs/<name>.yaml (what the packaged
    artifact set `name` was built with)."""
    from avatarclip_core.config import load_config

    return load_config(ShapeConfig, name, section="text.shape")
