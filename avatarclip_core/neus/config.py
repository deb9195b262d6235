"""Typed configuration of the NeuS implicit avatar (AvatarCLIP Sec. 3.3.2, 4.1.1).

``NeusConfig()`` holds the ``standard`` values (CPU in minutes). ``neus_preset(name)`` applies the
``text.neus`` section of configs/<name>.yaml on top: ``preview`` (CPU in seconds to a minute),
``standard``, ``paper`` (the paper's values: 6-layer SDF MLP with positional encoding and
geometric initialisation, 4-layer colour MLP, 32 uniform + 32 importance samples, Adam 5e-4,
30k iterations; for a GPU). Every key is also overridable per job as ``neus.<key>``
(``avatar text --set neus.iterations=200``).

Lengths are metres in the world (the template's frame: Y up, facing +Z) unless a name says
otherwise; the networks themselves work in a normalised cube (see ``Normalizer``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from avatarclip_core.render.config import BackgroundConfig, CameraSamplingConfig, ShadingConfig
from avatarclip_core.config.ranges import (Count, Fraction, GridResolution, HashLog2Size, NonNegative, NonNegativeInt,
                                           Pixels, Positive, SamplingGrid, TextureSize)


@dataclass
class NeusConfig:
    # --- SDF network f(p) -----------------------------------------------------------------------
    encoding: Literal["hashgrid", "frequency"] = "hashgrid"  # paper: frequency (positional encoding)
    sdf_layers: Count = 3  # linear layers of the SDF MLP (paper: 6)
    sdf_width: Count = 64  # hidden width (paper: 256)
    sdf_skip_layers: tuple[int, ...] = ()  # layers that re-concatenate the input (paper 6 layers: (3,))
    feature_dim: Count = 16  # SDF-network feature vector handed to the colour networks (paper: 256)
    frequency_bands: NonNegativeInt = 6  # positional-encoding octaves when encoding == "frequency" (NeuS: 6)
    hash_levels: Count = 12
    hash_features: Count = 2  # features per level
    hash_log2_size: HashLog2Size = 16  # table entries per level = 2 ** this
    hash_base_resolution: Count = 16
    hash_max_resolution: Count = 512  # finest grid over the normalised cube (~4 mm on a 2 m box)
    init_radius: Positive = 0.5  # geometric initialisation: a sphere of this radius (normalised units)
    activation: Literal["softplus", "relu"] = "relu"  # hidden activation of f (NeuS: softplus, slower on CPU)
    softplus_beta: Positive = 100.0
    weight_norm: bool = False  # NeuS uses weight normalisation; off on the CPU presets (slower)
    # --- colour networks c(p, n, v) and c_c ----------------------------------------------------
    color_layers: Count = 3  # linear layers (paper: 4)
    color_width: Count = 64  # (paper: 256)
    color_use_view: bool = False  # the paper drops the view direction (albedo-like textures)
    color_use_normal: bool = True
    # c_c's own hash grid (beyond the paper, where colour sees only f's features): texture detail
    # that trains fast without moving the geometry through f's shared features. 0 levels: off.
    color_grid_levels: NonNegativeInt = 8
    color_grid_log2_size: HashLog2Size = 15
    color_grid_max_resolution: Count = 512
    lr_color_encoding: Positive = 1e-2
    template_color: tuple[float, float, float] = (0.7, 0.7, 0.7)  # what c(p) reconstructs (neutral)
    # --- learnable variance (s = exp(10 v)) ----------------------------------------------------
    variance_init: Positive = 0.6  # s ~ 400: a few-mm density shell on a body-sized box (NeuS: 0.3)
    # --- ray marching -----------------------------------------------------------------------------
    n_samples: Count = 24  # uniform samples per ray (paper: 32)
    n_importance: NonNegativeInt = 16  # importance samples (paper: 32), in up_sample_steps rounds
    up_sample_steps: NonNegativeInt = 2  # NeuS: 4
    prune_threshold: NonNegative = 1e-4  # drop samples whose estimated weight is below this (0: keep all)
    perturb: bool = True  # stratified jitter of the uniform samples while training
    bound_margin: NonNegative = 0.08  # metres added around the template's bounding box
    ray_chunk: Count = 8192  # rays per chunk when rendering without gradients
    sampling_grid_resolution: SamplingGrid = 128  # place samples with f cached on a grid (0: query the network)
    sampling_grid_every: Count = 16  # stage-2 steps between grid refreshes
    # --- stage 1: fit f, c to the template ------------------------------------------------------
    stage1_iterations: NonNegativeInt = 600  # SDF-supervised steps (points with the template's signed distance)
    stage1_points: Count = 8192  # points per step (half near the surface, a quarter uniform, a quarter on it)
    stage1_render_iterations: NonNegativeInt = 60  # multi-view render steps (colour + mask), learn s
    stage1_render_size: Pixels = 64
    stage1_render_train_sdf: bool = False  # render steps also move f (with SDF supervision + eikonal)
    stage1_bank_size: Count = 200_000  # precomputed points with template signed distances
    surface_std: tuple[float, float] = (0.005, 0.04)  # metres: Gaussian offsets of near-surface points
    eikonal_weight: NonNegative = 0.1  # lambda1 (Eq. 5) on |grad f| = 1
    normal_weight: NonNegative = 0.1  # grad f vs the template normal at surface points
    mask_weight: NonNegative = 0.1  # lambda2 (Eq. 5)
    sdf_clamp: Positive = 0.1  # metres: template SDF targets are clamped to +-this
    cache: bool = True  # cache stage-1 networks per template (paths.cache_dir("neus"))
    cache_max_entries: NonNegativeInt = 256  # least recently used stage-1 files beyond this are deleted (0: no limit)
    # --- optimisation ------------------------------------------------------------------------------
    lr: Positive = 5e-4  # Adam, stage 2 (paper: 5e-4 throughout)
    lr_encoding: Positive = 1e-3  # stage-2 hash tables; more lets CLIP tear thin parts; unused for "frequency"
    lr_variance: Positive = 5e-3
    stage1_lr: Positive = 2e-3  # stage 1 (a supervised fit: fewer, larger steps), cosine decay to 10 %
    stage1_lr_encoding: Positive = 1e-2
    # --- stage 2: CLIP sculpting and texturing ---------------------------------------------------
    iterations: NonNegativeInt = 400  # paper: 30000
    image_size: Pixels = 96  # rendered for CLIP (paper ~150 thanks to the dilated silhouettes)
    batch_size: Count = 1  # views per step
    lambda_recon: NonNegative = 10.0  # weight of L1 (our shape-keeping SDF term, normalised units) in Eq. 6
    lambda_color_clip: NonNegative = 1.0  # lambda3: L_clip(shaded colour render)
    lambda_geometry_clip: NonNegative = 1.0  # lambda4: L_clip(texture-less render)
    sculpt_band: NonNegative = 0.05  # metres: f is free up to this far outside the template surface ...
    sculpt_band_inside: NonNegative = 0.01  # ... and this far inside it (thin limbs must not vanish)
    reg_points: NonNegativeInt = 4096  # regularisation points per step
    dilation_radius: NonNegative = 0.06  # metres, projected per view: silhouette dilation
    dilation_px: NonNegativeInt = 0  # > 0: fixed dilation in pixels instead
    face_every: NonNegativeInt = 4  # every k-th step is a face close-up with face_prompt (0: never)
    random_shading: bool = True  # Eq. 9 on the colour render (False: unlit colour)
    stage2_train_variance: bool = False  # let CLIP move s too (off: it tends to blur the surface)
    camera: CameraSamplingConfig = field(default_factory=CameraSamplingConfig)
    shading: ShadingConfig = field(default_factory=ShadingConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    progress_every: Count = 10
    # --- extraction -------------------------------------------------------------------------------
    mc_resolution: GridResolution = 192  # marching-cubes cells along the tallest axis
    min_component_fraction: Fraction = 0.02  # drop connected pieces smaller than this (of all faces)
    texture_size: TextureSize = 1024  # UV texture bake (0: no bake)
    texture_padding: NonNegativeInt = 4  # texels of chart gutter filled by dilation
    seed: NonNegativeInt = 0
    device: str = "cpu"  # where the networks run: cpu | cuda | cuda:N | auto (CUDA when available)


def neus_preset(name: str = "standard", overrides: dict[str, Any] | None = None) -> NeusConfig:
    """NeusConfig for a named preset: the ``text.neus`` section of configs/<name>.yaml (the one
    config system), then dotted ``overrides`` (strings convert)."""
    from avatarclip_core.config import load_config

    return load_config(NeusConfig, name, overrides, section="text.neus")
