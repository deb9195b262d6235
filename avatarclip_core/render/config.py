"""The render configs as plain dataclasses (no torch): NeuS's config and the job configs nest them, and
the job API checks those at submit in a process without torch. The modules that use them (cameras.py,
shading.py, backgrounds.py) import them from here."""
from __future__ import annotations

from dataclasses import dataclass
from avatarclip_core.config.ranges import FieldOfView, Fraction, NonNegative, Positive

KINDS = ("black", "white", "noise", "chessboard")


@dataclass
class BackgroundConfig:
    kinds: tuple[str, ...] = KINDS  # drawn uniformly per image
    noise_mean: Fraction = 0.5
    noise_std: NonNegative = 0.25
    block_fraction_range: tuple[float, float] = (1 / 32, 1 / 4)  # chessboard block size / min(H, W)
    blur_sigma_fraction_range: tuple[float, float] = (0.0, 0.5)  # blur sigma / block size


@dataclass
class ShadingConfig:
    """Paper defaults: light = camera direction +- U(-pi/4, pi/4) in both spherical angles."""

    light_offset_deg: float = 45.0
    ambient_range: tuple[float, float] = (0.0, 0.2)


@dataclass
class CameraSamplingConfig:
    """Random look-at cameras (AvatarCLIP Sec. 3.3.2). Lengths are metres for a 1.7 m adult and
    are multiplied by the ``scale`` argument of the samplers for other body sizes.

    Paper values: look-at offsets ~ N(0, 0.1) clipped to +-0.3, radius ~ U(1, 2), view angle
    ~ N(0, pi/3) away from the front so most views see the front, fov 60 degrees (the released
    code's neural_renderer default). Two ways to turn that angle into a direction:

    - ``mode="orbit"`` (default): the angle is the azimuth about the up axis and the elevation is
      uniform in ``elevation_range_deg``: every view is roughly level, like a person looking.
    - ``mode="cone"``: as the released AvatarCLIP code does it (the paper's "polar angle
      U(0, 2 pi)"): the camera leaves the +Z axis by the angle, towards a uniformly random
      direction, so views from above and below are as likely as from the sides.
    """

    mode: str = "orbit"  # "orbit" | "cone"
    center: tuple[float, float, float] = (0.0, 0.9, 0.0)  # body centre if the caller gives none
    target_std: NonNegative = 0.1
    target_clip: NonNegative = 0.3
    radius_range: tuple[float, float] = (1.0, 2.0)
    azimuth_std_deg: NonNegative = 60.0  # pi / 3
    elevation_range_deg: tuple[float, float] = (-15.0, 30.0)  # orbit mode only
    fov_deg: FieldOfView = 60.0
    znear: Positive = 0.01
    zfar: Positive = 100.0
    back_threshold_deg: float = 90.0  # |azimuth| beyond this counts as a back view ("the back of ...")
    # Face close-ups (the paper's face augmentation, every 4th iteration there): look-at = face
    # centre; the released code uses distance 0.4 and a pi/12 spread, always from the front.
    face_radius_range: tuple[float, float] = (0.35, 0.5)
    face_azimuth_std_deg: NonNegative = 15.0
    face_elevation_range_deg: tuple[float, float] = (-10.0, 15.0)  # orbit mode only
