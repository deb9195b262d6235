"""The project's one camera model: batched pinhole cameras plus the paper's camera sampling.

View convention (OpenGL style): a world point ``p`` maps to view space as ``p_view = R @ p + T``
(column vectors; ``R`` is world-to-view, so its *rows* are the camera's x, y, z axes in world
space). The camera sits at the view-space origin, +X right, +Y up and looks down **-Z**, so a
visible point has ``z_view < 0`` and ``depth = -z_view > 0``.

NDC: x right, y up, both in [-1, 1] across the image; z is OpenGL's [-1, 1] between znear and
zfar. Pixels: ``(x_pix, y_pix)`` with the origin at the top-left corner of the image, pixel
``(row i, col j)`` covers ``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)``. The field
of view is vertical, in degrees; the aspect ratio comes from the image size (W / H).

Angles used by the orbit/sampling helpers follow the avatar: azimuth 0 puts the camera on +Z
(in front of an avatar that faces +Z), positive azimuth turns towards +X about the +Y axis,
elevation > 0 looks down from above.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .config import CameraSamplingConfig

ImageSize = int | tuple[int, int]


def as_hw(image_size: ImageSize) -> tuple[int, int]:
    """(H, W) from an int (square) or an (H, W) pair."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def _vec3(x, batch: int | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dtype, device=device)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if batch is not None and t.shape[0] == 1 and batch > 1:
        t = t.expand(batch, 3)
    return t


def look_at_rotation(eye: torch.Tensor, at: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) world-to-view rotation whose rows are the camera axes (x right, y up, z back)."""
    z = torch.nn.functional.normalize(eye - at, dim=-1)
    x = torch.linalg.cross(up, z, dim=-1)
    # Looking straight along `up`: any horizontal right axis will do; pick one that keeps x stable.
    bad = x.norm(dim=-1, keepdim=True) < 1e-6
    if bool(bad.any()):
        alt = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device).expand_as(up)
        x = torch.where(bad, torch.linalg.cross(alt, z, dim=-1), x)
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.linalg.cross(z, x, dim=-1)
    return torch.stack([x, y, z], dim=-2)


def look_at_view_transform(eye, at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), device=None):
    """World-to-view (R, T) for cameras at ``eye`` looking at ``at`` (see the module docstring).

    eye, at, up: (3,) or (B, 3) (broadcast to the largest batch). Returns R (B, 3, 3), T (B, 3)
    with ``p_view = R @ p + T``. Differentiable in eye/at when they are tensors.
    """
    dtype = eye.dtype if isinstance(eye, torch.Tensor) else torch.float32
    device = device or (eye.device if isinstance(eye, torch.Tensor) else None)
    eye_t, at_t, up_t = (_vec3(v, device=device, dtype=dtype) for v in (eye, at, up))
    B = max(eye_t.shape[0], at_t.shape[0], up_t.shape[0])
    eye_t, at_t, up_t = (v.expand(B, 3) for v in (eye_t, at_t, up_t))
    R = look_at_rotation(eye_t, at_t, up_t)
    T = -(R @ eye_t.unsqueeze(-1)).squeeze(-1)
    return R, T


@dataclass
class PerspectiveCameras:
    """A batch of B pinhole cameras (vertical ``fov`` in degrees) with world-to-view R, T.

    ``image_size`` is optional here; projection methods take it as an argument too, because
    the same cameras are often rendered at several resolutions (preview vs. CLIP input).
    """

    R: torch.Tensor  # (B, 3, 3) world-to-view rotation
    T: torch.Tensor  # (B, 3) world-to-view translation
    fov: float | torch.Tensor = 60.0  # degrees, vertical; scalar or (B,)
    znear: float = 0.01
    zfar: float = 100.0
    image_size: ImageSize | None = None

    def __post_init__(self) -> None:
        if self.R.dim() == 2:
            self.R = self.R.unsqueeze(0)
        if self.T.dim() == 1:
            self.T = self.T.unsqueeze(0)
        if self.R.shape[-2:] != (3, 3) or self.T.shape[-1] != 3 or self.R.shape[0] != self.T.shape[0]:
            raise ValueError("PerspectiveCameras: R must be (B, 3, 3) and T (B, 3) with the same B")

    # --- batch plumbing -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.R.shape[0])

    @property
    def device(self) -> torch.device:
        return self.R.device

    def to(self, device) -> PerspectiveCameras:
        fov = self.fov.to(device) if isinstance(self.fov, torch.Tensor) else self.fov
        return replace(self, R=self.R.to(device), T=self.T.to(device), fov=fov)

    def __getitem__(self, idx) -> PerspectiveCameras:
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        fov = self.fov[idx] if isinstance(self.fov, torch.Tensor) and self.fov.dim() > 0 else self.fov
        return replace(self, R=self.R[idx], T=self.T[idx], fov=fov)

    def expand(self, n: int) -> PerspectiveCameras:
        """Broadcast a single camera to n (a no-op when already n)."""
        if len(self) == n:
            return self
        if len(self) != 1:
            raise ValueError(f"cannot broadcast {len(self)} cameras to {n}")
        fov = self.fov.expand(n) if isinstance(self.fov, torch.Tensor) and self.fov.numel() == 1 else self.fov
        return replace(self, R=self.R.expand(n, 3, 3), T=self.T.expand(n, 3), fov=fov)

    # --- geometry -----------------------------------------------------------------------------
    def get_camera_center(self) -> torch.Tensor:
        """(B, 3) camera positions in world space: ``-R^T T``."""
        return -(self.R.transpose(1, 2) @ self.T.unsqueeze(-1)).squeeze(-1)

    def get_view_direction(self) -> torch.Tensor:
        """(B, 3) unit world-space direction the cameras look along (their -Z axis)."""
        return -self.R[:, 2, :]

    def _focal(self, dtype, device) -> torch.Tensor:
        fov = torch.as_tensor(self.fov, dtype=dtype, device=device).reshape(-1)
        return 1.0 / torch.tan(torch.deg2rad(fov) * 0.5)  # (1,) or (B,)

    def _image_size(self, image_size: ImageSize | None) -> tuple[int, int]:
        size = image_size if image_size is not None else self.image_size
        return as_hw(size) if size is not None else (1, 1)

    def world_to_view(self, points: torch.Tensor) -> torch.Tensor:
        """points (P, 3) or (B, P, 3) -> (B, P, 3) view-space points."""
        if points.dim() == 2:
            points = points.unsqueeze(0)
        return points @ self.R.transpose(1, 2) + self.T.unsqueeze(1)

    def projection_matrix(self, image_size: ImageSize | None = None) -> torch.Tensor:
        """(B, 4, 4) OpenGL projection matrix (view -> clip) for the given image aspect."""
        H, W = self._image_size(image_size)
        f = self._focal(self.R.dtype, self.R.device).expand(len(self))
        n, fa = self.znear, self.zfar
        P = torch.zeros(len(self), 4, 4, dtype=self.R.dtype, device=self.R.device)
        P[:, 0, 0] = f * H / W
        P[:, 1, 1] = f
        P[:, 2, 2] = -(fa + n) / (fa - n)
        P[:, 2, 3] = -2.0 * fa * n / (fa - n)
        P[:, 3, 2] = -1.0
        return P

    def view_to_ndc(self, pv: torch.Tensor, image_size: ImageSize | None = None) -> torch.Tensor:
        """(B, P, 3) view points -> (B, P, 3) NDC (x right, y up, OpenGL z in [-1, 1])."""
        H, W = self._image_size(image_size)
        f = self._focal(pv.dtype, pv.device).view(-1, 1)
        depth = (-pv[..., 2]).clamp_min(1e-8)
        x = f * (H / W) * pv[..., 0] / depth
        y = f * pv[..., 1] / depth
        n, fa = self.znear, self.zfar
        z = (fa + n) / (fa - n) + 2.0 * fa * n / ((fa - n) * pv[..., 2].clamp_max(-1e-8))
        return torch.stack([x, y, z], dim=-1)

    def transform_points(self, points: torch.Tensor, image_size: ImageSize | None = None) -> torch.Tensor:
        """World -> view -> NDC. points (P, 3) or (B, P, 3) -> (B, P, 3)."""
        return self.view_to_ndc(self.world_to_view(points), image_size)

    def transform_points_screen(self, points: torch.Tensor, image_size: ImageSize | None = None) -> torch.Tensor:
        """World -> pixels: (B, P, 3) holding (x_pix, y_pix, depth), depth = -z_view in metres.

        This is what the rasteriser consumes: pixel coordinates for coverage and the positive
        view depth for the z-test and perspective-correct interpolation.
        """
        H, W = self._image_size(image_size)
        pv = self.world_to_view(points)
        f = self._focal(pv.dtype, pv.device).view(-1, 1)
        depth = -pv[..., 2]
        inv = 1.0 / depth.clamp_min(1e-8)
        x = (f * (H / W) * pv[..., 0] * inv + 1.0) * (0.5 * W)
        y = (1.0 - f * pv[..., 1] * inv) * (0.5 * H)
        return torch.stack([x, y, depth], dim=-1)


def cameras_look_at(eye, at, up=(0.0, 1.0, 0.0), fov: float = 60.0, znear: float = 0.01, zfar: float = 100.0,
                    image_size: ImageSize | None = None, device=None) -> PerspectiveCameras:
    """Convenience: PerspectiveCameras from eye/at/up."""
    R, T = look_at_view_transform(eye, at, up, device=device)
    return PerspectiveCameras(R=R, T=T, fov=fov, znear=znear, zfar=zfar, image_size=image_size)


def orbit_eye(distance, azimuth, elevation, at) -> torch.Tensor:
    """(B, 3) camera positions on a sphere around ``at``; angles in radians (tensors)."""
    ce = torch.cos(elevation)
    offset = torch.stack([ce * torch.sin(azimuth), torch.sin(elevation), ce * torch.cos(azimuth)], dim=-1)
    return at + distance.unsqueeze(-1) * offset


def orbit_camera(distance=2.5, azimuth=0.0, elevation=0.0, at=(0.0, 0.9, 0.0), fov: float = 40.0,
                 degrees: bool = True, image_size: ImageSize | None = None, device=None) -> PerspectiveCameras:
    """Cameras orbiting ``at`` for previews. azimuth 0 = in front of the avatar (on +Z).

    distance / azimuth / elevation: scalars or (B,) sequences (broadcast together).
    """
    d, az, el = (torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1) for v in (distance, azimuth, elevation))
    B = max(d.numel(), az.numel(), el.numel())
    d, az, el = (v.expand(B) for v in (d, az, el))
    if degrees:
        az, el = torch.deg2rad(az), torch.deg2rad(el)
    at_t = _vec3(at, B, device=device)
    eye = orbit_eye(d, az, el, at_t)
    return cameras_look_at(eye, at_t, fov=fov, image_size=image_size, device=device)


# --- the paper's random camera sampling ---------------------------------------------------------

@dataclass
class CameraSample:
    """Sampled cameras plus how they were drawn (so callers can pick prompts, e.g. back views)."""

    cameras: PerspectiveCameras
    eye: torch.Tensor  # (B, 3)
    at: torch.Tensor  # (B, 3)
    azimuth: torch.Tensor  # (B,) radians, 0 = front, wrapped to (-pi, pi]
    elevation: torch.Tensor  # (B,) radians
    radius: torch.Tensor  # (B,)
    is_back: torch.Tensor  # (B,) bool

    def __len__(self) -> int:
        return len(self.cameras)


def _uniform(n, lo, hi, generator):
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _make_sample(at, radius, azimuth, elevation, config: CameraSamplingConfig, device) -> CameraSample:
    azimuth = torch.atan2(torch.sin(azimuth), torch.cos(azimuth))  # wrap to (-pi, pi]
    eye = orbit_eye(radius, azimuth, elevation, at)
    eye, at, radius, azimuth, elevation = (t.to(device) for t in (eye, at, radius, azimuth, elevation))
    cams = cameras_look_at(eye, at, fov=config.fov_deg, znear=config.znear, zfar=config.zfar, device=device)
    is_back = azimuth.abs() > math.radians(config.back_threshold_deg)
    return CameraSample(cams, eye, at, azimuth, elevation, radius, is_back)


def _angles(n: int, std_deg: float, elevation_range_deg, mode: str, generator, clip_front: bool = False):
    """(azimuth, elevation) in radians for ``n`` views, drawn as described in CameraSamplingConfig."""
    angle = torch.randn(n, generator=generator) * math.radians(std_deg)
    if clip_front:
        angle = angle.clamp(-math.pi / 2, math.pi / 2)
    if mode == "orbit":
        lo, hi = (math.radians(a) for a in elevation_range_deg)
        return angle, _uniform(n, lo, hi, generator)
    if mode == "cone":
        roll = torch.rand(n, generator=generator) * (2 * math.pi)
        d = torch.stack([torch.sin(angle) * torch.cos(roll), torch.sin(angle) * torch.sin(roll), torch.cos(angle)], -1)
        return torch.atan2(d[:, 0], d[:, 2]), torch.asin(d[:, 1].clamp(-1.0, 1.0))
    raise ValueError(f"CameraSamplingConfig.mode must be 'orbit' or 'cone', not {mode!r}")


def sample_random_cameras(n: int, generator: torch.Generator | None = None,
                          config: CameraSamplingConfig | None = None, center=None, scale: float = 1.0,
                          device=None) -> CameraSample:
    """n random cameras around the body centre as in the paper (see CameraSamplingConfig).

    center: (3,) body centre (default ``config.center``); scale: body height / 1.7 m.
    Draws on the CPU from ``generator`` (deterministic under a seed) and moves the result to ``device``.
    """
    cfg = config or CameraSamplingConfig()
    c = torch.as_tensor(cfg.center if center is None else center, dtype=torch.float32).reshape(1, 3).cpu()
    offset = (torch.randn(n, 3, generator=generator) * cfg.target_std).clamp(-cfg.target_clip, cfg.target_clip)
    at = c + offset * scale
    radius = _uniform(n, *cfg.radius_range, generator) * scale
    azimuth, elevation = _angles(n, cfg.azimuth_std_deg, cfg.elevation_range_deg, cfg.mode, generator)
    return _make_sample(at, radius, azimuth, elevation, cfg, device)


def face_camera(face_center, n: int = 1, generator: torch.Generator | None = None,
                config: CameraSamplingConfig | None = None, scale: float = 1.0, device=None) -> CameraSample:
    """Cameras looking at the face centre from the front half (the paper's face augmentation).

    Without a generator: a deterministic frontal close-up at the middle of ``face_radius_range``.
    """
    cfg = config or CameraSamplingConfig()
    at = torch.as_tensor(face_center, dtype=torch.float32).reshape(1, 3).cpu().expand(n, 3)
    if generator is None:
        radius = torch.full((n,), 0.5 * sum(cfg.face_radius_range)) * scale
        azimuth, elevation = torch.zeros(n), torch.zeros(n)
    else:
        radius = _uniform(n, *cfg.face_radius_range, generator) * scale
        azimuth, elevation = _angles(n, cfg.face_azimuth_std_deg, cfg.face_elevation_range_deg, cfg.mode,
                                     generator, clip_front=True)
    return _make_sample(at, radius, azimuth, elevation, cfg, device)
